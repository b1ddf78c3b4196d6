using System.Text.RegularExpressions;

namespace Palisade.Testing;

/// <summary>
/// One case of the netpol truth-table suite: policy YAML (unchanged NetworkPolicy / Cilium
/// YAML, one file), the agent's settings, and the expected reachability for each probed port and
/// protocol. Both the unit suite (compiler + PolicyExplainer) and the privileged suite (the real
/// agent, pods in network namespaces, real packets) run every case against the same
/// expectation, so the explainer and the kernel are held to one truth table.
/// </summary>
/// <remarks>
/// Pod addresses are not known before the pods exist: the YAML may name them as
/// <c>{{ip:y/b}}</c>, and the pod CIDR as <c>{{pod-cidr}}</c>; <see cref="Render"/> fills them in.
/// </remarks>
public sealed record NetpolCase(string Name, string Yaml, Func<NetpolProbe, Reachability> Expect)
{
    /// <summary>The agent's enforcement mode (Cilium's: default, always, never).</summary>
    public string Enforcement { get; init; } = "default";

    /// <summary>Namespaces in audit mode (verdicts reported as AUDIT, nothing dropped).</summary>
    public IReadOnlyList<string> AuditNamespaces { get; init; } = [];

    /// <summary>The case needs the pods' named ports (serve-80-tcp, ...).</summary>
    public bool UsesNamedPorts { get; init; }

    /// <summary>The table has a host row (connections from the node's root network namespace).</summary>
    public bool WithHost { get; init; }

    /// <summary>The ports and protocols probed; all four unless a case says otherwise.</summary>
    public IReadOnlyList<NetpolProbe> Probes { get; init; } = NetpolPods.Probes;

    /// <summary>The policy names the YAML defines ("namespace/name", "name" for clusterwide), to wait for.</summary>
    public IReadOnlyList<string> PolicyNames { get; init; } = [];

    public string Render(Func<string, string> podAddress, string podCidr) =>
        Regex.Replace(Yaml, @"\{\{(ip:(?<pod>[xyz]/[abc])|pod-cidr)\}\}", m => m.Groups["pod"].Success ? podAddress(m.Groups["pod"].Value) : podCidr);

    public override string ToString() => Name;
}

/// <summary>
/// The cases. Names follow test/e2e/network/netpol/network_policy.go where the e2e suite has the
/// case (its policies carry over); the rest cover what issue 17 adds (Cilium deny rules,
/// entities, enforcement and audit modes). Namespaces carry only kubernetes.io/metadata.name,
/// as the e2e suite's namespaceLabelKey and a standalone agent give them; pods carry pod=NAME.
/// </summary>
public static class NetpolCases
{
    private static string K8s(string name, string ns, string spec) =>
        $"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec.TrimEnd('\n')}\n";

    private static Reachability All(bool reachable = true) => new(reachable);

    private static Func<NetpolProbe, Reachability> Same(Func<Reachability> build) => _ => build();

    private static readonly Peer AnyPod = new();

    private static Peer Ns(string ns) => new(ns);

    private static Peer Pod(string pod) => new(NetpolPods.NamespaceOf(pod), NetpolPods.NameOf(pod));

    public static readonly NetpolCase NoPolicies = new("no policies: every pod reaches every pod", "", Same(() => All()));

    public static readonly NetpolCase DefaultDenyIngress = new("should support a 'default-deny-ingress' policy",
        K8s("deny-ingress", "x", "  podSelector: {}\n  policyTypes: [Ingress]"),
        Same(() => All().ExpectPeer(AnyPod, Ns("x"), false))) { PolicyNames = ["x/deny-ingress"] };

    public static readonly NetpolCase DefaultDenyEgress = new("should deny egress from all pods in a namespace",
        K8s("deny-egress", "x", "  podSelector: {}\n  policyTypes: [Egress]"),
        Same(() => All().ExpectPeer(Ns("x"), AnyPod, false))) { PolicyNames = ["x/deny-egress"] };

    public static readonly NetpolCase DefaultDenyAll = new("should support a 'default-deny-all' policy",
        K8s("deny-all", "x", "  podSelector: {}\n  policyTypes: [Ingress, Egress]"),
        Same(() => All().ExpectPeer(AnyPod, Ns("x"), false).ExpectPeer(Ns("x"), AnyPod, false))) { PolicyNames = ["x/deny-all"] };

    public static readonly NetpolCase PodSelector = new("should enforce policy to allow traffic from pods within server namespace based on PodSelector",
        K8s("x-a-allows-x-b", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - podSelector: {matchLabels: {pod: b}}
            """),
        Same(() => All().ExpectAllIngress("x/a", false).Expect("x/b", "x/a", true))) { PolicyNames = ["x/x-a-allows-x-b"] };

    public static readonly NetpolCase NamespaceSelector = new("should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
        K8s("allow-client-a-via-ns-selector", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
            """),
        Same(() => All().ExpectPeer(Ns("x"), Pod("x/a"), false).ExpectPeer(Ns("z"), Pod("x/a"), false))) { PolicyNames = ["x/allow-client-a-via-ns-selector"] };

    public static readonly NetpolCase PodSelectorMatchExpressions = new("should enforce policy based on PodSelector with MatchExpressions",
        K8s("x-a-allows-x-b", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - podSelector:
                    matchExpressions: [{key: pod, operator: In, values: [b]}]
            """),
        Same(() => All().ExpectAllIngress("x/a", false).Expect("x/b", "x/a", true))) { PolicyNames = ["x/x-a-allows-x-b"] };

    public static readonly NetpolCase NamespaceSelectorMatchExpressions = new("should enforce policy based on NamespaceSelector with MatchExpressions",
        K8s("allow-ns-y-match-selector", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - namespaceSelector:
                    matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [y]}]
            """),
        Same(() => All().ExpectPeer(Ns("x"), Pod("x/a"), false).ExpectPeer(Ns("z"), Pod("x/a"), false))) { PolicyNames = ["x/allow-ns-y-match-selector"] };

    /// <summary>Two peers in one rule: ORed.</summary>
    public static readonly NetpolCase PodOrNamespaceSelector = new("should enforce policy based on PodSelector or NamespaceSelector",
        K8s("allow-ns-not-x-or-pod-b", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - namespaceSelector:
                    matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
                - podSelector: {matchLabels: {pod: b}}
            """),
        Same(() => All().Expect("x/c", "x/a", false))) { PolicyNames = ["x/allow-ns-not-x-or-pod-b"] };

    /// <summary>Both selectors in one peer: ANDed.</summary>
    public static readonly NetpolCase PodAndNamespaceSelector = new("should enforce policy based on PodSelector and NamespaceSelector",
        K8s("allow-ns-not-x-and-pod-b", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - from:
                - namespaceSelector:
                    matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
                  podSelector: {matchLabels: {pod: b}}
            """),
        Same(() => All().ExpectAllIngress("x/a", false).Expect("y/b", "x/a", true).Expect("z/b", "x/a", true))) { PolicyNames = ["x/allow-ns-not-x-and-pod-b"] };

    public static readonly NetpolCase Ports = new("should enforce policy based on Ports",
        K8s("allow-ingress-on-port-81", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - ports: [{port: 81, protocol: TCP}]
                from:
                - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
            """),
        p => p == new NetpolProbe(81, "TCP")
            ? All().ExpectAllIngress("x/a", false).ExpectPeer(Ns("y"), Pod("x/a"), true)
            : All().ExpectAllIngress("x/a", false)) { PolicyNames = ["x/allow-ingress-on-port-81"] };

    public static readonly NetpolCase NamedPort = new("should allow ingress access on one named port",
        K8s("allow-all-on-serve-81-tcp", "x", """
              podSelector: {}
              ingress:
              - ports: [{port: serve-81-tcp}]
            """),
        p => p == new NetpolProbe(81, "TCP") ? All() : All().ExpectPeer(AnyPod, Ns("x"), false))
    { PolicyNames = ["x/allow-all-on-serve-81-tcp"], UsesNamedPorts = true };

    public static readonly NetpolCase EgressNamedPort = new("should allow egress access on one named port",
        K8s("allow-egress-on-serve-80-udp", "x", """
              podSelector: {matchLabels: {pod: a}}
              policyTypes: [Egress]
              egress:
              - ports: [{port: serve-80-udp, protocol: UDP}]
            """),
        p => p == new NetpolProbe(80, "UDP") ? All() : All().ExpectAllEgress("x/a", false))
    { PolicyNames = ["x/allow-egress-on-serve-80-udp"], UsesNamedPorts = true };

    /// <summary>endPort: the range 81-90 holds 81, not 80.</summary>
    public static readonly NetpolCase EndPort = new("should enforce ingress policy allowing a port range with endPort",
        K8s("allow-81-to-90", "x", """
              podSelector: {matchLabels: {pod: a}}
              ingress:
              - ports: [{port: 81, endPort: 90, protocol: TCP}]
            """),
        p => p == new NetpolProbe(81, "TCP") ? All() : All().ExpectAllIngress("x/a", false)) { PolicyNames = ["x/allow-81-to-90"] };

    public static readonly NetpolCase IpBlockExcept = new("should enforce except clause while egress access to server in CIDR block",
        K8s("deny-client-a-via-except-cidr-egress-rule", "x", """
              podSelector: {matchLabels: {pod: a}}
              policyTypes: [Egress]
              egress:
              - to:
                - ipBlock: {cidr: "{{pod-cidr}}", except: ["{{ip:y/b}}/32"]}
            """),
        Same(() => All().Expect("x/a", "y/b", false))) { PolicyNames = ["x/deny-client-a-via-except-cidr-egress-rule"] };

    /// <summary>x/a's egress is limited, its ingress is not: connections to x/a and their replies pass, x/a's own only to y/b.</summary>
    public static readonly NetpolCase EgressOnly = new("should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
        K8s("allow-to-y-b", "x", """
              podSelector: {matchLabels: {pod: a}}
              policyTypes: [Egress]
              egress:
              - to:
                - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
                  podSelector: {matchLabels: {pod: b}}
            """),
        Same(() => All().ExpectAllEgress("x/a", false).Expect("x/a", "y/b", true))) { PolicyNames = ["x/allow-to-y-b"] };

    /// <summary>One policy limits x/a's ingress, another x/b's egress; each leaves the other direction (and the replies) alone.</summary>
    public static readonly NetpolCase IngressAndEgressIndependently = new("should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
        K8s("x-a-ingress-from-y", "x", """
              podSelector: {matchLabels: {pod: a}}
              policyTypes: [Ingress]
              ingress:
              - from:
                - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
            """) + "---\n" + K8s("x-b-egress-to-z", "x", """
              podSelector: {matchLabels: {pod: b}}
              policyTypes: [Egress]
              egress:
              - to:
                - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}
            """),
        Same(() => All().ExpectAllIngress("x/a", false).ExpectPeer(Ns("y"), Pod("x/a"), true)
            .ExpectAllEgress("x/b", false).ExpectPeer(Pod("x/b"), Ns("z"), true)))
    { PolicyNames = ["x/x-a-ingress-from-y", "x/x-b-egress-to-z"] };

    /// <summary>Cilium: a deny rule wins over an allow of the same traffic, on the ports it names only.</summary>
    public static readonly NetpolCase DenyOverAllow = new("a CiliumNetworkPolicy ingressDeny beats its own allow",
        """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: deny-b-on-80, namespace: x}
        spec:
          endpointSelector: {matchLabels: {pod: a}}
          ingress:
          - fromEndpoints: [{}]
          ingressDeny:
          - fromEndpoints: [{matchLabels: {pod: b}}]
            toPorts: [{ports: [{port: "80", protocol: TCP}]}]
        """,
        p =>
        {
            // fromEndpoints [{}] in a namespaced CNP: the pods of its own namespace.
            var r = All().ExpectAllIngress("x/a", false).ExpectPeer(Ns("x"), Pod("x/a"), true);
            return p == new NetpolProbe(80, "TCP") ? r.Expect("x/b", "x/a", false) : r;
        })
    { PolicyNames = ["x/deny-b-on-80"] };

    public static readonly NetpolCase ClusterwideDenyOverAllow = new("a CiliumClusterwideNetworkPolicy egressDeny beats a namespaced allow",
        """
        apiVersion: cilium.io/v2
        kind: CiliumClusterwideNetworkPolicy
        metadata: {name: no-udp-81-from-y}
        spec:
          endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: y}}
          egress:
          - toEntities: [all]
          egressDeny:
          - toEntities: [all]
            toPorts: [{ports: [{port: "81", protocol: UDP}]}]
        ---
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: allow-all-egress, namespace: y}
        spec:
          endpointSelector: {}
          egress:
          - toEntities: [all]
        """,
        p => p == new NetpolProbe(81, "UDP") ? All().ExpectPeer(Ns("y"), AnyPod, false) : All())
    { PolicyNames = ["no-udp-81-from-y", "y/allow-all-egress"] };

    /// <summary>fromEntities host: the node reaches x/a, pods do not; toEntities world: x/a reaches no pod (pods are cluster, not world).</summary>
    public static readonly NetpolCase EntitiesHostAndWorld = new("CiliumNetworkPolicy entities host and world",
        """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: host-in-world-out, namespace: x}
        spec:
          endpointSelector: {matchLabels: {pod: a}}
          ingress:
          - fromEntities: [host]
          egress:
          - toEntities: [world]
        """,
        Same(() => new Reachability(true, withHost: true).ExpectAllIngress("x/a", false).Expect(NetpolPods.Host, "x/a", true).ExpectAllEgress("x/a", false)))
    { PolicyNames = ["x/host-in-world-out"], WithHost = true };

    /// <summary>Enforcement always: every endpoint is in default deny both ways; only what a policy allows passes.</summary>
    public static readonly NetpolCase EnforcementAlways = new("enforcement mode always: only what a policy allows passes",
        """
        apiVersion: cilium.io/v2
        kind: CiliumClusterwideNetworkPolicy
        metadata: {name: y-talks-to-x}
        spec:
          endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: y}}
          egress:
          - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: x}}]
        ---
        apiVersion: cilium.io/v2
        kind: CiliumClusterwideNetworkPolicy
        metadata: {name: x-hears-y}
        spec:
          endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: x}}
          ingress:
          - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]
        """,
        Same(() => All(false).ExpectPeer(Ns("y"), Ns("x"), true)))
    { PolicyNames = ["y-talks-to-x", "x-hears-y"], Enforcement = "always" };

    /// <summary>Audit mode for namespace x: its default deny is reported as AUDIT, nothing is dropped.</summary>
    public static readonly NetpolCase AuditNamespace = new("audit mode for a namespace: a default deny drops nothing",
        K8s("deny-all", "x", "  podSelector: {}\n  policyTypes: [Ingress, Egress]"),
        Same(() => All())) { PolicyNames = ["x/deny-all"], AuditNamespaces = ["x"] };

    /// <summary>Every case whose whole expectation is a truth table (the unit suite runs them all; the privileged suite too).</summary>
    public static readonly IReadOnlyList<NetpolCase> Cases =
    [
        NoPolicies, DefaultDenyIngress, DefaultDenyEgress, DefaultDenyAll, PodSelector, NamespaceSelector,
        PodSelectorMatchExpressions, NamespaceSelectorMatchExpressions, PodOrNamespaceSelector, PodAndNamespaceSelector,
        Ports, NamedPort, EgressNamedPort, EndPort, IpBlockExcept, EgressOnly, IngressAndEgressIndependently,
        DenyOverAllow, ClusterwideDenyOverAllow, EntitiesHostAndWorld, EnforcementAlways, AuditNamespace,
    ];

    public static NetpolCase ByName(string name) => Cases.Single(c => c.Name == name);
}
