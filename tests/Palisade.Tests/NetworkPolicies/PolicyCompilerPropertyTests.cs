using Palisade.Policies.Network;
using Palisade.Policies.Network.Compilation;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>
/// Random rule sets of allows and denies over overlapping peers and port ranges: the verdict the
/// compiled entries give (through the datapath's lookup) equals the one the rules mean, read
/// directly: a matching deny drops, else a matching allow passes, else the default decides.
/// </summary>
public sealed class PolicyCompilerPropertyTests
{
    private const byte Tcp = 6, Udp = 17;
    private static readonly PolicyRef Ref = new(NetworkPolicyKind.CiliumNetworkPolicy, "x", "random");

    private static readonly (uint Id, Dictionary<string, string> Labels)[] Peers =
    [
        (256, new() { ["k8s:pod"] = "a", [NetworkVocabulary.NamespaceLabel] = "x" }),
        (257, new() { ["k8s:pod"] = "b", [NetworkVocabulary.NamespaceLabel] = "x" }),
        (258, new() { ["k8s:pod"] = "a", [NetworkVocabulary.NamespaceLabel] = "y" }),
        (259, new() { ["k8s:pod"] = "c", [NetworkVocabulary.NamespaceLabel] = "y" }),
    ];

    private static readonly Peer[] PeerChoices =
    [
        new EndpointPeer(new IdentitySelector([new("k8s:pod", "In", ["a"])])),
        new EndpointPeer(new IdentitySelector([new(NetworkVocabulary.NamespaceLabel, "In", ["y"])])),
        new EndpointPeer(new IdentitySelector([new("k8s:pod", "In", ["b"]), new(NetworkVocabulary.NamespaceLabel, "In", ["x"])])),
        new EntityPeer("all"),
    ];

    private static readonly ushort[] ProbePorts = [0, 1, 79, 80, 81, 82, 443, 1023, 1024, 8080, 65535];

    private static L4Match RandomL4(Random random)
    {
        var protocol = random.Next(4) switch { 0 => L4Protocol.Tcp, 1 => L4Protocol.Udp, 2 => L4Protocol.Any, _ => L4Protocol.Tcp };
        return random.Next(5) switch
        {
            0 => AnyTraffic.Instance,
            1 => new PortMatch(protocol, 0, 65535),
            2 => new PortMatch(protocol, ProbePorts[random.Next(ProbePorts.Length)], ProbePorts[random.Next(ProbePorts.Length)]) is var p && p.First <= p.Last ? p : new PortMatch(protocol, p.Last, p.First),
            _ => new PortMatch(protocol, 80, 80 + random.Next(3)),
        };
    }

    private static bool L4Covers(L4Match match, byte proto, ushort port) => match switch
    {
        AnyTraffic => true,
        PortMatch p => (p.Protocol == L4Protocol.Any ? proto is Tcp or Udp or 132 : proto == (p.Protocol == L4Protocol.Tcp ? Tcp : Udp)) && port >= p.First && port <= p.Last,
        _ => false,
    };

    private static bool PeerCovers(Peer peer, uint id) => peer switch
    {
        EntityPeer { Entity: "all" } => true,
        EndpointPeer e => Peers.Any(p => p.Id == id && e.Selector.Matches(p.Labels)),
        _ => false,
    };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void CompiledEntriesDecideAsTheRulesSay(int seed)
    {
        var random = new Random(seed);
        for (var round = 0; round < 150; round++)
        {
            var defaultDeny = random.Next(3) != 0;
            var rules = Enumerable.Range(0, 1 + random.Next(6)).Select(i => new NetworkRule(
                TrafficDirection.Ingress, random.Next(3) == 0 ? RuleAction.Deny : RuleAction.Allow,
                PeerChoices[random.Next(PeerChoices.Length)], RandomL4(random),
                new RuleOrigin(Ref, "random.yaml", $"spec.ingress[{i}]", null, null))).ToList();
            var set = new NormalizedRuleSet("spec", new PolicySubject(SubjectKind.Endpoints, IdentitySelector.All), defaultDeny, false, rules, [], null);
            var input = new CompilationInput([new NormalizedPolicy(Ref, "random.yaml", [set], [])],
                [.. Peers.Select(p => new KnownIdentity(p.Id, p.Labels, []))], [], EnforcementMode.Default, AuditSettings.None);
            var compiled = EndpointPolicyCompiler.Compile(input, new PolicySubjectEndpoint("s", "x", new Dictionary<string, string>(), []), new RuleTable(), new CidrIdentityAllocator());

            foreach (var (id, _) in Peers)
            {
                foreach (var proto in new[] { Tcp, Udp })
                {
                    foreach (var port in ProbePorts)
                    {
                        var matching = rules.Where(r => PeerCovers(r.Peer, id) && L4Covers(r.L4, proto, port)).ToList();
                        var expected = matching.Any(r => r.Action == RuleAction.Deny) ? PolicyVerdict.Dropped
                            : matching.Any(r => r.Action == RuleAction.Allow) || !defaultDeny ? PolicyVerdict.Forwarded
                            : PolicyVerdict.Dropped;

                        var actual = PolicyExplainer.Decide(compiled, PolicyDirection.Ingress, id, proto, port);

                        Assert.True(expected == actual.Verdict,
                            $"seed {seed} round {round}: identity {id} {proto}/{port}: rules say {expected}, entries give {actual}\n" +
                            $"default deny {defaultDeny}\nrules:\n  {string.Join("\n  ", rules)}\nentries:\n  {string.Join("\n  ", compiled.Entries)}");
                        if (expected == PolicyVerdict.Dropped && matching.Count > 0)
                        {
                            Assert.Equal(PolicyDropReason.PolicyDeny, actual.Reason);
                            Assert.All(actual.Rules, o => Assert.Contains(matching, r => r.Action == RuleAction.Deny && r.Origin == o));
                        }
                    }
                }
            }
        }
    }
}
