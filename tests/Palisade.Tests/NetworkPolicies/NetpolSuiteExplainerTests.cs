using System.Net;
using Palisade.Datapath.Identity;
using Palisade.Policies.Network;
using Palisade.Policies.Network.Compilation;
using Palisade.Testing;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>
/// The privileged netpol suite's cases (tests/Shared/NetpolCases.cs), run through the parser,
/// normaliser, compiler and <see cref="PolicyExplainer"/> with the identity labels the agent
/// gives a standalone pod (<see cref="IdentityLabels"/>): the same YAML must give the same
/// expected matrix here as the kernel gives in Palisade.IntegrationTests' NetpolTruthTableTests.
/// </summary>
public sealed class NetpolSuiteExplainerTests
{
    private const string PodCidr = "10.0.0.0/16";

    private static IPAddress AddressOf(string pod) =>
        IPAddress.Parse($"10.0.{Array.IndexOf(NetpolPods.Namespaces, NetpolPods.NamespaceOf(pod)) + 1}.{Array.IndexOf(NetpolPods.Names, NetpolPods.NameOf(pod)) + 1}");

    private static uint IdOf(string pod) => 256 + (uint)NetpolPods.All.ToList().IndexOf(pod);

    /// <summary>What the agent makes of K8S_POD_NAMESPACE=NS, PALISADE_LABELS=pod=NAME: Cilium-form labels, namespace labelled by its name.</summary>
    private static Dictionary<string, string> Labels(string pod)
    {
        var ns = NetpolPods.NamespaceOf(pod);
        return IdentityLabels.For(ns, new Dictionary<string, string> { ["pod"] = NetpolPods.NameOf(pod) }, IdentityLabels.DefaultNamespaceLabels(ns))
            .Select(l => l.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal);
    }

    private static readonly NamedPort[] ServePorts =
        [.. NetpolPods.Probes.Select(p => new NamedPort(NetpolPods.PortName(p), p.Protocol == "UDP" ? L4Protocol.Udp : L4Protocol.Tcp, p.Port))];

    private sealed class Cluster
    {
        private readonly Dictionary<string, EndpointPolicy> _policies = [];

        public Cluster(NetpolCase c)
        {
            var parsed = NetworkPolicyParser.Parse(c.Render(p => AddressOf(p).ToString(), PodCidr), "case.yaml");
            Assert.True(parsed.Ok, $"{c.Name}: {string.Join(Environment.NewLine, parsed.Errors)}");
            Assert.True(parsed.Warnings.Count == 0, $"{c.Name}: {string.Join(Environment.NewLine, parsed.Warnings)}");
            var names = parsed.Policies.Select(p => NetworkPolicyNormalizer.Normalize(p).Policy).Select(r => r.Namespace is { Length: > 0 } ns ? $"{ns}/{r.Name}" : r.Name);
            Assert.Equal(c.PolicyNames.Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
            var mode = c.Enforcement switch
            {
                "default" => EnforcementMode.Default,
                "always" => EnforcementMode.Always,
                "never" => EnforcementMode.Never,
                _ => throw new ArgumentException($"case {c.Name}: enforcement \"{c.Enforcement}\" is not default, always or never"),
            };
            var input = new CompilationInput(
                [.. parsed.Policies.Select(NetworkPolicyNormalizer.Normalize)],
                [.. NetpolPods.All.Select(p => new KnownIdentity(IdOf(p), Labels(p), ServePorts, [AddressOf(p)]))],
                [new KnownNode("node-1", new Dictionary<string, string>(), IsLocal: true)],
                mode, new AuditSettings(c.AuditNamespaces.ToHashSet(), new HashSet<PolicyRef>()));
            var rules = new RuleTable();
            var cidrs = new CidrIdentityAllocator();
            foreach (var pod in NetpolPods.All)
            {
                _policies[pod] = EndpointPolicyCompiler.Compile(input, new PolicySubjectEndpoint(pod, NetpolPods.NamespaceOf(pod), Labels(pod), ServePorts), rules, cidrs);
            }
        }

        public Explanation Explain(string from, string to, NetpolProbe probe)
        {
            var proto = probe.Protocol == "UDP" ? (byte)17 : (byte)6;
            return from == NetpolPods.Host
                ? PolicyExplainer.Explain(null, ReservedIdentities.Host, _policies[to], IdOf(to), proto, (ushort)probe.Port)
                : PolicyExplainer.Explain(_policies[from], IdOf(from), _policies[to], IdOf(to), proto, (ushort)probe.Port);
        }

        /// <summary>The matrix the datapath would give: reachable unless the explainer says Dropped (Audit passes).</summary>
        public Reachability Matrix(NetpolCase c, NetpolProbe probe)
        {
            var r = new Reachability(true, c.WithHost);
            foreach (var from in r.Sources)
            {
                foreach (var to in Reachability.Destinations.Where(t => Reachability.IsCompared(from, t)))
                {
                    r[from, to] = Explain(from, to, probe).Verdict != PolicyVerdict.Dropped;
                }
            }
            return r;
        }
    }

    public static TheoryData<string> Cases() => [.. NetpolCases.Cases.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheExplainerGivesTheCasesExpectedMatrix(string name)
    {
        var c = NetpolCases.ByName(name);
        var cluster = new Cluster(c);

        var failures = c.Probes.Select(p => c.Expect(p).Compare(cluster.Matrix(c, p), $"{c.Name} {p}")).OfType<string>().ToList();

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void TheCasesCoverTheIssuesList()
    {
        // Each name is one item of issue 17's acceptance list; the privileged suite runs the same objects.
        Assert.Equal(22, NetpolCases.Cases.Count);
        Assert.Equal(NetpolCases.Cases.Count, NetpolCases.Cases.Select(c => c.Name).Distinct().Count());
        Assert.Contains(NetpolCases.Cases, c => c.Enforcement == "always");
        Assert.Contains(NetpolCases.Cases, c => c.AuditNamespaces.Count > 0);
        Assert.Contains(NetpolCases.Cases, c => c.UsesNamedPorts);
        Assert.Contains(NetpolCases.Cases, c => c.WithHost);
    }

    [Fact]
    public void AuditedDropsAreReportedAsAuditAndEnforcedOnesNameTheirReason()
    {
        var audit = new Cluster(NetpolCases.AuditNamespace);
        Assert.Equal(PolicyVerdict.Audit, audit.Explain("y/a", "x/a", new NetpolProbe(80, "TCP")).Verdict);
        Assert.Equal(PolicyVerdict.Audit, audit.Explain("x/a", "y/a", new NetpolProbe(80, "TCP")).Verdict);
        Assert.Equal(PolicyVerdict.Forwarded, audit.Explain("y/a", "z/a", new NetpolProbe(80, "TCP")).Verdict);

        var deny = new Cluster(NetpolCases.DenyOverAllow);
        Assert.Equal(PolicyDropReason.PolicyDeny, deny.Explain("x/b", "x/a", new NetpolProbe(80, "TCP")).Reason);
        Assert.Equal(PolicyDropReason.PolicyDenied, deny.Explain("y/b", "x/a", new NetpolProbe(80, "TCP")).Reason);
    }

    [Fact]
    public void RenderFillsInPodAddressesAndThePodCidr()
    {
        var yaml = NetpolCases.IpBlockExcept.Render(p => AddressOf(p).ToString(), PodCidr);

        Assert.Contains("cidr: \"10.0.0.0/16\", except: [\"10.0.2.2/32\"]", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("{{", yaml, StringComparison.Ordinal);
    }
}
