using System.Net;
using System.Text;
using Palisade.Policies.Network;
using Palisade.Policies.Network.Compilation;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>
/// Reachability between pods a, b, c of namespaces x, y, z on ports 80 and 81 over TCP and UDP,
/// in the style of Kubernetes' test/e2e/network/netpol: a policy set per case, the whole
/// matrix computed with <see cref="PolicyExplainer"/> over the compiled map entries and
/// compared with the expected one (printed as a matrix when they differ).
/// </summary>
public sealed class NetworkPolicyTruthTableTests
{
    private const byte Tcp = 6, Udp = 17;
    private static readonly string[] Namespaces = ["x", "y", "z"];
    private static readonly string[] PodNames = ["a", "b", "c"];
    private static readonly List<string> Pods = [.. Namespaces.SelectMany(n => PodNames.Select(p => $"{n}/{p}"))];

    private static uint IdOf(string pod) => 256 + (uint)Pods.IndexOf(pod);

    private static Dictionary<string, string> Labels(string pod)
    {
        var (ns, name) = (pod[..1], pod[2..]);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["k8s:pod"] = name,
            ["k8s:io.kubernetes.pod.namespace"] = ns,
            ["k8s:io.cilium.k8s.namespace.labels.ns"] = ns,
            ["k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name"] = ns,
        };
    }

    // As NetworkPolicyNormalizerTests numbers them: x/a 10.0.1.1, y/b 10.0.2.2, ...
    private static IPAddress AddressOf(string pod) =>
        IPAddress.Parse($"10.0.{Array.IndexOf(Namespaces, pod[..1]) + 1}.{Array.IndexOf(PodNames, pod[2..]) + 1}");

    private static IPAddress AddressV6Of(string pod) =>
        IPAddress.Parse($"fd00::{Array.IndexOf(Namespaces, pod[..1]) + 1}:{Array.IndexOf(PodNames, pod[2..]) + 1}");

    private static readonly NamedPort[] ServePorts =
    [
        new("serve-80-tcp", L4Protocol.Tcp, 80), new("serve-80-udp", L4Protocol.Udp, 80),
        new("serve-81-tcp", L4Protocol.Tcp, 81), new("serve-81-udp", L4Protocol.Udp, 81),
    ];

    /// <summary>The cluster of the e2e suite compiled under <paramref name="yaml"/>: one policy per pod.</summary>
    private sealed class Cluster
    {
        public Dictionary<string, EndpointPolicy> Policies { get; } = [];
        public IReadOnlyList<CidrIdentity> Cidrs { get; private set; } = [];

        /// <param name="dualStack">Every pod also has an IPv6 address (fd00::NS:POD), as on a dual-stack node.</param>
        public Cluster(string yaml, EnforcementMode mode = EnforcementMode.Default, AuditSettings? audit = null, bool dualStack = false)
        {
            var parsed = NetworkPolicyParser.Parse(yaml, "case.yaml");
            Assert.True(parsed.Ok, string.Join(Environment.NewLine, parsed.Errors));
            var input = new CompilationInput(
                [.. parsed.Policies.Select(NetworkPolicyNormalizer.Normalize)],
                [.. Pods.Select(p => new KnownIdentity(IdOf(p), Labels(p), ServePorts, dualStack ? [AddressOf(p), AddressV6Of(p)] : [AddressOf(p)]))],
                [new KnownNode("node-1", new Dictionary<string, string>(), IsLocal: true)],
                mode, audit ?? AuditSettings.None);
            var rules = new RuleTable();
            var cidrs = new CidrIdentityAllocator();
            foreach (var pod in Pods)
            {
                Policies[pod] = EndpointPolicyCompiler.Compile(input, new PolicySubjectEndpoint(pod, pod[..1], Labels(pod), ServePorts), rules, cidrs);
                Cidrs = Policies[pod].CidrIdentities;
            }
        }

        public Explanation Explain(string from, string to, ushort port, byte proto) =>
            PolicyExplainer.Explain(Policies[from], IdOf(from), Policies[to], IdOf(to), proto, port);

        public uint CidrId(string prefix) => Cidrs.Single(c => c.Prefix.ToString() == prefix).Identity;
    }

    /// <summary>The expected matrix: every pair reachable until a case says otherwise; a pod to itself is not checked (loopback).</summary>
    private sealed class Reachability
    {
        private readonly Dictionary<(string, string), bool> _expected = Pods.SelectMany(f => Pods.Select(t => (f, t))).ToDictionary(k => k, _ => true);

        public Reachability Expect(Func<string, bool> from, Func<string, bool> to, bool reachable)
        {
            foreach (var key in _expected.Keys.Where(k => from(k.Item1) && to(k.Item2)).ToList())
            {
                _expected[key] = reachable;
            }
            return this;
        }

        public void Check(Cluster cluster, ushort port, byte proto)
        {
            var wrong = new List<string>();
            var sb = new StringBuilder($"{port}/{(proto == Tcp ? "TCP" : "UDP")}: expected / computed\n        ").AppendJoin(" ", Pods).Append('\n');
            foreach (var from in Pods)
            {
                sb.Append(from).Append("   ");
                foreach (var to in Pods)
                {
                    var got = from == to || cluster.Explain(from, to, port, proto).Verdict != PolicyVerdict.Dropped;
                    var want = from == to || _expected[(from, to)];
                    sb.Append(want ? '.' : 'X').Append(got == want ? ' ' : got ? '.' : 'X').Append("  ");
                    if (got != want)
                    {
                        wrong.Add($"{from} -> {to}: {cluster.Explain(from, to, port, proto)}");
                    }
                }
                sb.Append('\n');
            }
            Assert.True(wrong.Count == 0, sb + string.Join("\n", wrong));
        }

        public void CheckAll(Cluster cluster)
        {
            foreach (var port in new ushort[] { 80, 81 })
            {
                foreach (var proto in new[] { Tcp, Udp })
                {
                    Check(cluster, port, proto);
                }
            }
        }
    }

    private static Func<string, bool> In(string ns) => p => p.StartsWith(ns + "/", StringComparison.Ordinal);

    private static Func<string, bool> Is(string pod) => p => p == pod;

    private static readonly Func<string, bool> Any = _ => true;

    private static string K8s(string name, string ns, string spec) => $"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: {name}
          namespace: {ns}
        spec:
        {spec}
        """;

    [Fact]
    public void WithoutPoliciesEveryPodReachesEveryPod()
    {
        new Reachability().CheckAll(new Cluster(""));
    }

    [Fact]
    public void DefaultDenyIngressIsolatesTheNamespace()
    {
        var cluster = new Cluster(K8s("deny", "x", "  podSelector: {}\n  policyTypes: [Ingress]"));

        new Reachability().Expect(Any, In("x"), false).CheckAll(cluster);
        var why = cluster.Explain("y/a", "x/a", 80, Tcp);
        Assert.Equal(PolicyDropReason.PolicyDenied, why.Reason);
        Assert.Contains(why.DecidingRules, r => r.Policy.Name == "deny" && r.Source == "case.yaml");
    }

    [Fact]
    public void DefaultDenyEgressCutsTheNamespaceOff()
    {
        var cluster = new Cluster(K8s("deny", "x", "  podSelector: {}\n  policyTypes: [Egress]"));

        new Reachability().Expect(In("x"), Any, false).CheckAll(cluster);
    }

    [Fact]
    public void APodSelectorAloneAllowsThosePodsOfThePolicysNamespace()
    {
        var cluster = new Cluster(K8s("allow-b", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - podSelector: {matchLabels: {pod: b}}
            """));

        new Reachability().Expect(Any, Is("x/a"), false).Expect(Is("x/b"), Is("x/a"), true).CheckAll(cluster);
    }

    [Fact]
    public void ANamespaceSelectorAloneAllowsEveryPodOfThoseNamespaces()
    {
        var cluster = new Cluster(K8s("allow-y", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - namespaceSelector: {matchLabels: {ns: y}}
            """));

        new Reachability().Expect(Any, Is("x/a"), false).Expect(In("y"), Is("x/a"), true).CheckAll(cluster);
    }

    [Fact]
    public void PodAndNamespaceSelectorsInOnePeerAreAnded()
    {
        var cluster = new Cluster(K8s("allow-y-b", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - namespaceSelector: {matchLabels: {ns: y}}
                  podSelector: {matchLabels: {pod: b}}
            """));

        new Reachability().Expect(Any, Is("x/a"), false).Expect(Is("y/b"), Is("x/a"), true).CheckAll(cluster);
    }

    [Fact]
    public void PeersOfOneRuleAreOred()
    {
        var cluster = new Cluster(K8s("allow-b-or-y", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - namespaceSelector: {matchLabels: {ns: y}}
                - podSelector: {matchLabels: {pod: b}}
            """));

        new Reachability().Expect(Any, Is("x/a"), false).Expect(In("y"), Is("x/a"), true).Expect(Is("x/b"), Is("x/a"), true).CheckAll(cluster);
    }

    [Fact]
    public void MatchExpressionsSelectNamespacesByExclusion()
    {
        var cluster = new Cluster(K8s("not-x", "x", """
              podSelector: {}
              ingress:
              - from:
                - namespaceSelector:
                    matchExpressions: [{key: ns, operator: NotIn, values: [x]}]
                  podSelector:
                    matchExpressions: [{key: pod, operator: In, values: [a, b]}]
            """));

        new Reachability().Expect(Any, In("x"), false)
            .Expect(p => !In("x")(p) && !p.EndsWith("/c", StringComparison.Ordinal), In("x"), true).CheckAll(cluster);
    }

    [Fact]
    public void ANamedPortAllowsOnlyThePortAndProtocolItNames()
    {
        var cluster = new Cluster(K8s("named", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - ports:
                - port: serve-80-tcp
            """));

        new Reachability().Check(cluster, 80, Tcp);
        new Reachability().Expect(Any, Is("x/a"), false).Check(cluster, 81, Tcp);
        new Reachability().Expect(Any, Is("x/a"), false).Check(cluster, 80, Udp);
    }

    [Fact]
    public void AnEgressNamedPortResolvesAgainstThePeer()
    {
        var cluster = new Cluster(K8s("named-egress", "x", """
              podSelector: {matchLabels: {pod: a}}
              policyTypes: [Egress]
              egress:
              - ports:
                - port: serve-81-udp
                  protocol: UDP
            """));

        new Reachability().Check(cluster, 81, Udp);
        new Reachability().Expect(Is("x/a"), Any, false).Check(cluster, 81, Tcp);
        new Reachability().Expect(Is("x/a"), Any, false).Check(cluster, 80, Udp);
    }

    [Fact]
    public void AnEndPortRangeAllowsEveryPortOfTheRangeAndNoOther()
    {
        var cluster = new Cluster(K8s("range", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - ports:
                - port: 80
                  endPort: 81
                  protocol: TCP
            """));

        new Reachability().Check(cluster, 80, Tcp);
        new Reachability().Check(cluster, 81, Tcp);
        new Reachability().Expect(Any, Is("x/a"), false).Check(cluster, 80, Udp);
        Assert.Equal(PolicyVerdict.Dropped, cluster.Explain("y/a", "x/a", 82, Tcp).Verdict);
        Assert.Equal(PolicyVerdict.Dropped, cluster.Explain("y/a", "x/a", 79, Tcp).Verdict);
        var entry = Assert.Single(cluster.Policies["x/a"].Entries, e => e.Direction == PolicyDirection.Ingress);
        Assert.Equal((80, 23), (entry.Port, entry.L4Prefix));
    }

    [Fact]
    public void AnIpBlockAllowsItsCidrButNotItsExcept()
    {
        var cluster = new Cluster(K8s("cidr", "x", """
              podSelector: {matchLabels: {pod: a}}
              policyTypes: [Egress]
              egress:
              - to:
                - ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}
            """));

        new Reachability().Expect(Is("x/a"), Any, false).CheckAll(cluster);
        var a = cluster.Policies["x/a"];
        Assert.Equal(PolicyVerdict.Forwarded, PolicyExplainer.Explain(a, IdOf("x/a"), null, cluster.CidrId("192.168.0.0/16"), Tcp, 80).Verdict);
        Assert.Equal(PolicyVerdict.Dropped, PolicyExplainer.Explain(a, IdOf("x/a"), null, cluster.CidrId("192.168.1.0/24"), Tcp, 80).Verdict);
        Assert.Equal(PolicyVerdict.Dropped, PolicyExplainer.Explain(a, IdOf("x/a"), null, ReservedIdentities.World, Tcp, 80).Verdict);
        Assert.Equal(["192.168.0.0/16", "192.168.1.0/24"], a.CidrIdentities.Select(c => c.Prefix.ToString()));
    }

    /// <summary>
    /// On a dual-stack node an IPv4 ipBlock judges pods by their IPv4 addresses: the e2e
    /// "except clause" case keeps its matrix, and the status notes that the identity's IPv6
    /// traffic is let in by the same entry.
    /// </summary>
    [Fact]
    public void AnIPv4IpBlockSelectsDualStackPodsByTheirIPv4Address()
    {
        var cluster = new Cluster("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: deny-client-a-via-except-cidr-egress-rule, namespace: x}
            spec:
              podSelector: {matchLabels: {pod: a}}
              policyTypes: [Egress]
              egress:
              - to:
                - ipBlock: {cidr: 10.0.0.0/16, except: [10.0.2.2/32]}
            """, dualStack: true);

        new Reachability().Expect(Is("x/a"), Is("y/b"), false).CheckAll(cluster);
        var notes = string.Join("; ", cluster.Policies["x/a"].Statuses.Select(s => s.Note).OfType<string>());
        Assert.Contains($"identity {IdOf("x/b")} is allowed by its IPv4 addresses in 10.0.0.0/16; the entry allows its IPv6 traffic too", notes, StringComparison.Ordinal);
        Assert.DoesNotContain($"identity {IdOf("y/b")} ", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void ADenyRuleBeatsAnAllowOfTheSameTraffic()
    {
        var cluster = new Cluster("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: deny-b, namespace: x}
            spec:
              endpointSelector: {matchLabels: {pod: a}}
              ingress:
              - fromEndpoints: [{}]
              ingressDeny:
              - fromEndpoints: [{matchLabels: {pod: b}}]
                toPorts: [{ports: [{port: "80", protocol: TCP}]}]
            """);

        new Reachability().Expect(Any, Is("x/a"), false).Expect(In("x"), Is("x/a"), true).Expect(Is("x/b"), Is("x/a"), false).Check(cluster, 80, Tcp);
        new Reachability().Expect(Any, Is("x/a"), false).Expect(In("x"), Is("x/a"), true).Check(cluster, 81, Tcp);
        var why = cluster.Explain("x/b", "x/a", 80, Tcp);
        Assert.Equal(PolicyDropReason.PolicyDeny, why.Reason);
        Assert.Equal("spec.ingressDeny[0]", Assert.Single(why.DecidingRules).Rule);
    }

    [Fact]
    public void AClusterwideDenyBeatsANamespacedAllow()
    {
        var cluster = new Cluster("""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: {name: no-udp-81}
            spec:
              endpointSelector: {}
              ingressDeny:
              - fromEntities: [all]
                toPorts: [{ports: [{port: "81", protocol: UDP}]}]
            ---
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: allow-all, namespace: y}
            spec:
              endpointSelector: {}
              ingress:
              - fromEntities: [all]
            """);

        // A deny rule alone turns default deny on (Cilium), so only y, which allows all, is reachable.
        new Reachability().Expect(Any, Any, false).Check(cluster, 81, Udp);
        new Reachability().Expect(Any, Any, false).Expect(Any, In("y"), true).Check(cluster, 80, Udp);
        new Reachability().Expect(Any, Any, false).Expect(Any, In("y"), true).Check(cluster, 81, Tcp);
    }

    [Fact]
    public void EntitiesMapToReservedAndCidrIdentities()
    {
        var cluster = new Cluster("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: world-only, namespace: x}
            spec:
              endpointSelector: {matchLabels: {pod: a}}
              egress:
              - toEntities: [world]
              ingress:
              - fromEntities: [host]
            ---
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: some-cidr, namespace: z}
            spec:
              endpointSelector: {}
              egress:
              - toCIDR: [192.0.2.0/24]
            """);

        new Reachability().Expect(Is("x/a"), Any, false).Expect(Any, Is("x/a"), false).Expect(In("z"), Any, false).CheckAll(cluster);
        var a = cluster.Policies["x/a"];
        Assert.Equal(PolicyVerdict.Forwarded, PolicyExplainer.Explain(a, IdOf("x/a"), null, ReservedIdentities.World, Tcp, 443).Verdict);
        Assert.Equal(PolicyVerdict.Forwarded, PolicyExplainer.Explain(a, IdOf("x/a"), null, cluster.CidrId("192.0.2.0/24"), Tcp, 443).Verdict);
        Assert.Equal(PolicyVerdict.Dropped, PolicyExplainer.Explain(a, IdOf("x/a"), null, ReservedIdentities.Host, Tcp, 443).Verdict);
        Assert.Equal(PolicyVerdict.Forwarded, PolicyExplainer.Explain(null, ReservedIdentities.Host, a, IdOf("x/a"), Tcp, 80).Verdict);
        Assert.Equal(PolicyVerdict.Dropped, PolicyExplainer.Explain(null, ReservedIdentities.World, a, IdOf("x/a"), Tcp, 80).Verdict);
    }

    [Fact]
    public void EnforcementModeAlwaysDropsWhatNoPolicyAllows()
    {
        var cluster = new Cluster(K8s("allow-to-a", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - podSelector: {}
            """), EnforcementMode.Always);

        // Always: egress is enforced everywhere too, and no policy allows any egress.
        new Reachability().Expect(Any, Any, false).CheckAll(cluster);
        Assert.Equal(PolicyVerdict.Forwarded, PolicyExplainer.Decide(cluster.Policies["x/a"], PolicyDirection.Ingress, IdOf("x/b"), Tcp, 80).Verdict);
    }

    [Fact]
    public void EnforcementModeNeverEnforcesNothing()
    {
        new Reachability().CheckAll(new Cluster(K8s("deny", "x", "  podSelector: {}\n  policyTypes: [Ingress, Egress]"), EnforcementMode.Never));
    }

    [Fact]
    public void AnAuditedNamespaceReportsAuditAndDropsNothing()
    {
        var yaml = K8s("deny", "x", "  podSelector: {}\n  policyTypes: [Ingress]");
        var cluster = new Cluster(yaml, audit: new AuditSettings(new HashSet<string> { "x" }, new HashSet<PolicyRef>()));

        new Reachability().CheckAll(cluster);
        Assert.Equal(PolicyVerdict.Audit, cluster.Explain("y/a", "x/a", 80, Tcp).Verdict);
        Assert.Equal(PolicyVerdict.Forwarded, cluster.Explain("y/a", "z/a", 80, Tcp).Verdict);
    }

    [Fact]
    public void AnAuditedPolicysDenyIsReportedButAnEnforcedDenyStillDrops()
    {
        var yaml = """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: audited, namespace: x}
            spec:
              endpointSelector: {}
              ingressDeny:
              - fromEndpoints: [{matchLabels: {pod: b}}]
            ---
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: enforced, namespace: x}
            spec:
              endpointSelector: {}
              ingress:
              - fromEntities: [all]
              ingressDeny:
              - fromEndpoints: [{matchLabels: {pod: c}}]
                toPorts: [{ports: [{port: "80", protocol: TCP}]}]
            """;
        var audited = new PolicyRef(NetworkPolicyKind.CiliumNetworkPolicy, "x", "audited");
        var cluster = new Cluster(yaml, audit: new AuditSettings(new HashSet<string>(), new HashSet<PolicyRef> { audited }));

        Assert.Equal(PolicyVerdict.Audit, cluster.Explain("x/b", "x/a", 80, Tcp).Verdict);
        Assert.Equal(PolicyVerdict.Dropped, cluster.Explain("x/c", "x/a", 80, Tcp).Verdict);
        Assert.Equal(PolicyVerdict.Forwarded, cluster.Explain("x/c", "x/a", 81, Tcp).Verdict);
        Assert.Equal(PolicyVerdict.Forwarded, cluster.Explain("y/b", "x/a", 80, Tcp).Verdict);
    }

    [Fact]
    public void EgressOnlyAndIngressOnlyPoliciesLeaveTheOtherDirectionOpen()
    {
        var cluster = new Cluster(K8s("egress-only", "x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - podSelector: {matchLabels: {pod: b}}"));

        Assert.Equal(DirectionMode.Off, cluster.Policies["x/a"].Ingress.Mode);
        Assert.Equal(DirectionMode.Enforce, cluster.Policies["x/a"].Egress.Mode);
        new Reachability().Expect(Is("x/a"), Any, false).Expect(Is("x/a"), Is("x/b"), true).CheckAll(cluster);
    }

    [Fact]
    public void AVerdictNamesTheFilePolicyAndRuleThatAllowedIt()
    {
        var cluster = new Cluster(K8s("allow-b", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - podSelector: {matchLabels: {pod: b}}
                ports:
                - port: 80
            """));

        var why = cluster.Explain("x/b", "x/a", 80, Tcp);

        Assert.Equal(PolicyVerdict.Forwarded, why.Verdict);
        var rule = Assert.Single(why.DecidingRules);
        Assert.Equal("NetworkPolicy x/allow-b spec.ingress[0] [from[0], ports[0]] (case.yaml)", rule.ToString());
        Assert.Equal(why.Ingress!.Entry!.Rule, cluster.Policies["x/a"].Rules.Intern(rule));
    }

    [Fact]
    public void EveryMapEntryUnderADenyOfTheSameIdentityIsLeftOut()
    {
        var cluster = new Cluster("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: mixed, namespace: x}
            spec:
              endpointSelector: {matchLabels: {pod: a}}
              ingress:
              - fromEndpoints: [{matchLabels: {pod: b}}]
                toPorts: [{ports: [{port: "80", protocol: TCP}]}]
              ingressDeny:
              - fromEndpoints: [{matchLabels: {pod: b}}]
            """);

        var entries = cluster.Policies["x/a"].Entries.Where(e => e.Identity == IdOf("x/b")).ToList();

        var deny = Assert.Single(entries);
        Assert.True(deny.IsDeny);
        Assert.Equal(0, deny.L4Prefix);
        Assert.Equal(PolicyDropReason.PolicyDeny, cluster.Explain("x/b", "x/a", 80, Tcp).Reason);
    }

    public static TheoryData<string, string, string, int, string, string> E2eCases() => NetworkPolicyNormalizerTests.E2eCases();

    [Theory]
    [MemberData(nameof(E2eCases))]
    public void TheCompiledEntriesGiveTheReachabilityOfTheNormalisedRules(string name, string ns, string spec, int port, string protocol, string blocked)
    {
        var cluster = new Cluster(K8s("case", ns, spec.TrimEnd('\n')));
        var proto = protocol == "UDP" ? Udp : Tcp;

        bool[] actual = [.. Pods.SelectMany(from => Pods.Select(to => cluster.Explain(from, to, (ushort)port, proto).Verdict != PolicyVerdict.Dropped))];
        var expected = NetworkPolicyNormalizerTests.Reachability.Expected(blocked);

        Assert.True(expected.SequenceEqual(actual), $"{name}:{Environment.NewLine}expected{Environment.NewLine}{NetworkPolicyNormalizerTests.Reachability.Print(expected)}compiled{Environment.NewLine}{NetworkPolicyNormalizerTests.Reachability.Print(actual)}");
    }

    [Fact]
    public void AnIpBlockSelectsPodsByAddressOnlyForNetworkPolicies()
    {
        var cilium = new Cluster("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: cidr, namespace: x}
            spec:
              endpointSelector: {matchLabels: {pod: a}}
              egress:
              - toCIDR: [10.0.2.0/24]
            """);

        new Reachability().Expect(Is("x/a"), Any, false).CheckAll(cilium);
    }
}
