using System.Net;
using Palisade.Policies.Network;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>
/// The normalised form says what Kubernetes and Cilium mean: namespace scopes made explicit,
/// one flat rule per peer and port, origins that name the rule. The NetworkPolicy cases are
/// those of Kubernetes' test/e2e/network/netpol (namespaces x, y, z; pods a, b, c; ports 80
/// and 81), checked on the full reachability matrix through <see cref="Reachability"/>.
/// </summary>
public sealed class NetworkPolicyNormalizerTests
{
    private static NormalizedPolicy Normalize(string yaml)
    {
        var result = NetworkPolicyParser.Parse(yaml, "case.yaml");
        Assert.True(result.Ok, string.Join(Environment.NewLine, result.Errors));
        return NetworkPolicyNormalizer.Normalize(Assert.Single(result.Policies));
    }

    private static NormalizedPolicy Compat(string file, int index = 0) =>
        NetworkPolicyNormalizer.Normalize(CiliumExamplesCompatibilityTests.ParseFile(file).Policies[index]);

    private static string Knp(string ns, string spec) =>
        $"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: case\n  namespace: {ns}\nspec:\n{spec}";

    [Fact]
    public void ANamespacedCiliumPolicyKeepsItsSelectorsInItsNamespace()
    {
        var policy = Compat("l4/l3_l4_combined.yaml");

        var set = Assert.Single(policy.RuleSets);
        Assert.Equal("endpoints any:role=backend, k8s:io.kubernetes.pod.namespace=default", set.Subject.ToString());
        var rule = Assert.Single(set.Rules);
        Assert.Equal("ingress allow endpoints any:role=frontend, k8s:io.kubernetes.pod.namespace=default 80/TCP", rule.ToString());
        Assert.Equal("CiliumNetworkPolicy default/l4-rule spec.ingress[0] [fromEndpoints[0], toPorts[0].ports[0]] (l4/l3_l4_combined.yaml)", rule.Origin.ToString());
        Assert.True(set.DefaultDenyIngress);
        Assert.False(set.DefaultDenyEgress);
    }

    [Fact]
    public void APeerThatNamesANamespaceOrNamespaceLabelsLeavesThePolicyNamespace()
    {
        Assert.Equal("ingress allow endpoints k8s:io.kubernetes.pod.namespace=ns2, any:name=luke any",
            Assert.Single(Compat("kubernetes/namespace/namespace-policy.yaml").Rules).ToString());
        Assert.Equal("ingress allow endpoints any:io.cilium.k8s.namespace.labels.faction=alliance any",
            Compat("kubernetes/namespace/namespace-labels-policy.yaml").Rules.First().ToString());
    }

    [Fact]
    public void AClusterwidePolicyPeerSelectsPodsOfEveryNamespace()
    {
        var rule = Assert.Single(Compat("kubernetes/clusterwide/clusterscope-policy.yaml").Rules);

        Assert.Equal("ingress allow endpoints any:name=luke, k8s:io.kubernetes.pod.namespace any", rule.ToString());
    }

    [Fact]
    public void PortsWithoutPeersAllowEveryPeerAndAnEmptyRuleOnlyDenies()
    {
        Assert.Equal(["ingress allow endpoints any:role=frontend, k8s:io.kubernetes.pod.namespace=default any", "ingress allow entity all 80/TCP"],
            Compat("l4/multi_rule.yaml").Rules.Select(r => r.ToString()));
        var deny = Assert.Single(Compat("l3/egress-default-deny/egress-default-deny.yaml").RuleSets);
        Assert.Empty(deny.Rules);
        Assert.True(deny.DefaultDenyEgress);
    }

    [Fact]
    public void DenyRulesHostPoliciesIcmpRangesAndExtendedProtocolsNormalise()
    {
        Assert.Contains("egress deny endpoints any:role=backend, k8s:io.kubernetes.pod.namespace=default any", Compat("l3/egress-deny/egress-deny.yaml").Rules.Select(r => r.ToString()));
        Assert.Equal(SubjectKind.Nodes, Assert.Single(Compat("host/demo-host-policy.yaml").RuleSets).Subject.Kind);
        Assert.Equal(["egress allow entity all icmp type 8", "egress allow entity all icmpv6 type 128"], Compat("l4/icmp.yaml").Rules.Select(r => r.ToString()));
        Assert.Equal("egress allow entity all 80-444/TCP", Assert.Single(Compat("l4/l4_port_range.yaml").Rules).ToString());
        Assert.Contains("egress allow entity all VRRP", Compat("host/allow-extended-protocols.yaml").Rules.Select(r => r.ToString()));
        Assert.Equal(["egress allow cidr 20.1.1.1/32 any", "egress allow cidr 10.0.0.0/8 except 10.96.0.0/12 any"], Compat("l3/cidr/cidr.yaml").Rules.Select(r => r.ToString()));
    }

    [Fact]
    public void RequiresAreKeptAsRequirementsThatGrantNothing()
    {
        var set = Assert.Single(Compat("l3/requires/requires.yaml").RuleSets);

        Assert.Empty(set.Rules);
        var requirement = Assert.Single(set.Requirements);
        Assert.Equal("any:env=prod, k8s:io.kubernetes.pod.namespace=default", requirement.Selector.ToString());
        Assert.Equal("specs[0].ingress[0]", requirement.Origin.Rule);
    }

    [Fact]
    public void AnUnsupportedPartOfAnAllowRuleAllowsNothingWhileTheRestIsEnforced()
    {
        var dns = Compat("l3/fqdn/fqdn.yaml");

        Assert.Empty(dns.Rules);
        Assert.True(Assert.Single(dns.RuleSets).DefaultDenyEgress);
        var mixed = Normalize("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: mixed, namespace: shop}
            spec:
              endpointSelector: {matchLabels: {app: web}}
              ingress:
              - fromEndpoints: [{matchLabels: {app: lb}}]
                toPorts:
                - ports: [{port: "80", protocol: TCP}]
                  rules: {http: [{method: GET}]}
                - ports: [{port: "9090", protocol: TCP}]
              - fromEndpoints: [{matchLabels: {app: admin}}]
                authentication: {mode: required}
            """);
        Assert.Equal("ingress allow endpoints any:app=lb, k8s:io.kubernetes.pod.namespace=shop 9090/TCP", Assert.Single(mixed.Rules).ToString());
        Assert.Equal(["spec.ingress[0].toPorts[0].rules.http", "spec.ingress[1].authentication"], mixed.Unsupported.Select(u => u.Path));
    }

    [Fact]
    public void ADenyRuleWithAnUnsupportedPeerDeniesItsPortsToEveryPeer()
    {
        var policy = Normalize("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: no-db, namespace: shop}
            spec:
              endpointSelector: {}
              egress:
              - toEntities: [all]
              egressDeny:
              - toServices: [{k8sService: {serviceName: db, namespace: shop}}]
                toPorts: [{ports: [{port: "5432", protocol: TCP}]}]
            """);

        Assert.Contains("egress deny entity all 5432/TCP", policy.Rules.Select(r => r.ToString()));
        var part = Assert.Single(policy.Unsupported);
        Assert.Equal(UnsupportedEffect.DeniesAllPeers, part.Effect);
        Assert.Contains("denies its ports to every peer", part.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EnableDefaultDenyFalseLeavesTheDirectionOpen()
    {
        var set = Assert.Single(Normalize("""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: {name: dns-for-all}
            spec:
              endpointSelector: {}
              enableDefaultDeny: {egress: false}
              egress:
              - toEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns}}]
                toPorts: [{ports: [{port: "53", protocol: ANY}]}]
            """).RuleSets);

        Assert.False(set.DefaultDenyEgress);
        Assert.Equal("egress allow endpoints any:k8s-app=kube-dns, k8s:io.kubernetes.pod.namespace=kube-system 53/ANY", Assert.Single(set.Rules).ToString());
    }

    [Fact]
    public void ANetworkPolicyNamesEachPeerAndPortOfItsRules()
    {
        var policy = Normalize(Knp("x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - podSelector: {matchLabels: {pod: b}}
                - namespaceSelector: {matchLabels: {ns: y}}
                ports:
                - port: 80
                - protocol: UDP
                  port: 81
            """));

        var set = Assert.Single(policy.RuleSets);
        Assert.Equal("endpoints k8s:pod=a, k8s:io.kubernetes.pod.namespace=x", set.Subject.ToString());
        Assert.Equal(
        [
            "ingress allow endpoints k8s:pod=b, k8s:io.kubernetes.pod.namespace=x 80/TCP",
            "ingress allow endpoints k8s:pod=b, k8s:io.kubernetes.pod.namespace=x 81/UDP",
            "ingress allow endpoints k8s:io.cilium.k8s.namespace.labels.ns=y, k8s:io.kubernetes.pod.namespace 80/TCP",
            "ingress allow endpoints k8s:io.cilium.k8s.namespace.labels.ns=y, k8s:io.kubernetes.pod.namespace 81/UDP",
        ], set.Rules.Select(r => r.ToString()));
        Assert.Equal("NetworkPolicy x/case spec.ingress[0] [from[1], ports[1]] (case.yaml)", set.Rules[3].Origin.ToString());
        Assert.True(set.DefaultDenyIngress);
        Assert.False(set.DefaultDenyEgress);
    }

    // The e2e cases: policy spec in namespace x (unless named), port/protocol probed, and the
    // pairs that must be blocked; every other pair of the 9x9 matrix must connect.
    public static TheoryData<string, string, string, int, string, string> E2eCases() => new()
    {
        { "default-deny-ingress", "x", "  podSelector: {}\n  policyTypes: [Ingress]\n", 80, "TCP", "*->x/*" },
        { "default-deny-all", "x", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n", 80, "TCP", "*->x/*, x/*->*" },
        { "allow from pod b in the server namespace", "x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}\n", 80, "TCP", "*->x/a except x/b->x/a" },
        { "allow from namespace y only", "x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n", 80, "TCP", "*->x/a except y/*->x/a" },
        { "podSelector with matchExpressions", "x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - podSelector:\n        matchExpressions: [{key: pod, operator: In, values: [b]}]\n", 80, "TCP", "*->x/a except x/b->x/a" },
        { "namespaceSelector with matchExpressions NotIn", "x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions: [{key: ns, operator: NotIn, values: [x]}]\n", 80, "TCP", "*->x/a except y/*->x/a, z/*->x/a" },
        { "podSelector OR namespaceSelector", "x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions: [{key: ns, operator: NotIn, values: [x]}]\n    - podSelector: {matchLabels: {pod: b}}\n", 80, "TCP", "*->x/a except y/*->x/a, z/*->x/a, x/b->x/a" },
        { "podSelector AND namespaceSelector", "x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions: [{key: ns, operator: NotIn, values: [x]}]\n      podSelector: {matchLabels: {pod: b}}\n", 80, "TCP", "*->x/a except y/b->x/a, z/b->x/a" },
        { "allow on port 81 only, probed on 80", "x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports: [{port: 81}]\n    from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n", 80, "TCP", "*->x/a" },
        { "allow on port 81 only, probed on 81", "x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports: [{port: 81}]\n    from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n", 81, "TCP", "*->x/a except y/*->x/a" },
        { "allow-all ingress", "x", "  podSelector: {}\n  ingress:\n  - {}\n", 80, "TCP", "" },
        { "named port serve-81-tcp, probed on 80", "x", "  podSelector: {}\n  ingress:\n  - ports: [{port: serve-81-tcp}]\n", 80, "TCP", "*->x/*" },
        { "named port serve-81-tcp, probed on 81", "x", "  podSelector: {}\n  ingress:\n  - ports: [{port: serve-81-tcp}]\n", 81, "TCP", "" },
        { "port range 80-81", "x", "  podSelector: {}\n  ingress:\n  - ports: [{port: 80, endPort: 81, protocol: TCP}]\n", 81, "TCP", "" },
        { "UDP only, probed over TCP", "x", "  podSelector: {}\n  ingress:\n  - ports: [{port: 81, protocol: UDP}]\n", 81, "TCP", "*->x/*" },
        { "any port of a protocol", "x", "  podSelector: {}\n  ingress:\n  - ports: [{protocol: TCP}]\n", 81, "TCP", "" },
        { "deny egress from pod a", "x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n", 80, "TCP", "x/a->*" },
        { "egress to pod b of namespace y only", "x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - namespaceSelector: {matchLabels: {ns: y}}\n      podSelector: {matchLabels: {pod: b}}\n", 80, "TCP", "x/a->* except x/a->y/b" },
        { "egress to a CIDR block with except", "x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.2.0/24, except: [10.0.2.2/32]}\n", 80, "TCP", "x/a->* except x/a->y/a, x/a->y/c" },
        { "ingress-only policy leaves egress open", "x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress]\n  egress:\n  - to: [{podSelector: {matchLabels: {pod: c}}}]\n", 80, "TCP", "*->x/a" },
    };

    [Theory]
    [MemberData(nameof(E2eCases))]
    public void NetworkPolicyE2eCaseGivesTheExpectedReachability(string name, string ns, string spec, int port, string protocol, string blocked)
    {
        var policy = Normalize(Knp(ns, spec));
        var proto = protocol == "UDP" ? L4Protocol.Udp : L4Protocol.Tcp;

        var actual = Reachability.Matrix([policy], port, proto);
        var expected = Reachability.Expected(blocked);

        Assert.True(expected.SequenceEqual(actual), $"{name}:{Environment.NewLine}expected{Environment.NewLine}{Reachability.Print(expected)}actual{Environment.NewLine}{Reachability.Print(actual)}");
    }

    [Fact]
    public void StackedPoliciesAreAUnion()
    {
        var a = Normalize(Knp("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {pod: b}}}]\n"));
        var b = Normalize(Knp("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]\n"));

        Assert.True(Reachability.Expected("*->x/a except x/b->x/a, y/*->x/a").SequenceEqual(Reachability.Matrix([a, b], 80, L4Protocol.Tcp)));
    }

    [Fact]
    public void IdentitySelectorAnySourceMatchesEverySourceButAQualifiedKeyOnlyItsOwn()
    {
        var anyApp = new IdentitySelector([new("any:app", "In", ["web"])]);
        var k8sApp = new IdentitySelector([new("k8s:app", "In", ["web"])]);
        var container = new Dictionary<string, string> { ["container:app"] = "web" };

        Assert.True(anyApp.Matches(container));
        Assert.False(k8sApp.Matches(container));
        Assert.True(k8sApp.Matches(new Dictionary<string, string> { ["k8s:app"] = "web" }));
        Assert.True(IdentitySelector.All.Matches(container));
    }

    /// <summary>
    /// A reference evaluator of Kubernetes semantics over normalised rules, for the e2e matrix:
    /// a connection passes when the client's egress and the server's ingress both allow it.
    /// Pod x/a has IP 10.0.1.1, y/b 10.0.2.2 and so on; every pod serves serve-80-tcp and serve-81-tcp.
    /// </summary>
    internal static class Reachability
    {
        public static readonly string[] Namespaces = ["x", "y", "z"];
        public static readonly string[] Pods = ["a", "b", "c"];

        public static IEnumerable<(string Ns, string Pod)> All => Namespaces.SelectMany(n => Pods.Select(p => (n, p)));

        public static bool[] Matrix(IReadOnlyList<NormalizedPolicy> policies, int port, L4Protocol protocol) =>
            [.. All.SelectMany(from => All.Select(to => Allowed(policies, TrafficDirection.Egress, from, to, port, protocol) && Allowed(policies, TrafficDirection.Ingress, to, from, port, protocol)))];

        // "*->x/a except x/b->x/a, y/*->x/a": the pairs before "except" are blocked, those after are not.
        public static bool[] Expected(string blocked)
        {
            var parts = blocked.Split(" except ");
            var deny = Patterns(parts[0]);
            var allow = parts.Length > 1 ? Patterns(parts[1]) : [];
            return [.. All.SelectMany(from => All.Select(to => !deny.Any(d => d(from, to)) || allow.Any(a => a(from, to))))];
        }

        public static string Print(bool[] matrix)
        {
            var names = All.Select(p => $"{p.Ns}/{p.Pod}").ToList();
            var lines = new List<string> { "     " + string.Join(" ", names) };
            for (var i = 0; i < names.Count; i++)
            {
                lines.Add(names[i] + "  " + string.Join(" ", Enumerable.Range(0, names.Count).Select(j => matrix[(i * names.Count) + j] ? " . " : " X ")));
            }
            return string.Join(Environment.NewLine, lines) + Environment.NewLine;
        }

        private static List<Func<(string Ns, string Pod), (string Ns, string Pod), bool>> Patterns(string text) =>
            [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(pair =>
            {
                var ends = pair.Split("->");
                return (Func<(string Ns, string Pod), (string Ns, string Pod), bool>)((from, to) => Is(ends[0], from) && Is(ends[1], to));
            })];

        private static bool Is(string pattern, (string Ns, string Pod) pod) =>
            pattern == "*" || pattern == $"{pod.Ns}/*" || pattern == $"{pod.Ns}/{pod.Pod}";

        private static Dictionary<string, string> Labels((string Ns, string Pod) p) => new()
        {
            ["k8s:pod"] = p.Pod,
            [NetworkVocabulary.NamespaceLabel] = p.Ns,
            ["k8s:io.cilium.k8s.namespace.labels.ns"] = p.Ns,
            ["k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name"] = p.Ns,
        };

        private static IPAddress Address((string Ns, string Pod) p) =>
            IPAddress.Parse($"10.0.{Array.IndexOf(Namespaces, p.Ns) + 1}.{Array.IndexOf(Pods, p.Pod) + 1}");

        private static bool Allowed(IReadOnlyList<NormalizedPolicy> policies, TrafficDirection direction, (string Ns, string Pod) subject, (string Ns, string Pod) peer, int port, L4Protocol protocol)
        {
            var sets = policies.SelectMany(p => p.RuleSets)
                .Where(s => s.Subject.Selector.Matches(Labels(subject)) && (direction == TrafficDirection.Ingress ? s.DefaultDenyIngress : s.DefaultDenyEgress)).ToList();
            if (sets.Count == 0)
            {
                return true;
            }
            // For a named port the server is the pod that serves it: the subject on ingress, the peer on egress.
            return sets.SelectMany(s => s.Rules).Any(r => r.Direction == direction && r.Action == RuleAction.Allow && PeerMatches(r.Peer, peer) && L4Matches(r.L4, port, protocol));
        }

        private static bool PeerMatches(Peer rulePeer, (string Ns, string Pod) peer) => rulePeer switch
        {
            EndpointPeer e => e.Selector.Matches(Labels(peer)),
            EntityPeer { Entity: "all" } => true,
            CidrPeer c => c.Cidr.Contains(new CidrPrefix(Address(peer), 32)) && !c.Except.Any(x => x.Contains(new CidrPrefix(Address(peer), 32))),
            _ => false,
        };

        private static bool L4Matches(L4Match match, int port, L4Protocol protocol) => match switch
        {
            AnyTraffic => true,
            PortMatch p => (p.Protocol == protocol || p.Protocol == L4Protocol.Any) && port >= p.First && port <= p.Last,
            NamedPortMatch n => n.Protocol == protocol && n.Name == $"serve-{port}-{protocol.Name().ToLowerInvariant()}",
            _ => false,
        };
    }
}
