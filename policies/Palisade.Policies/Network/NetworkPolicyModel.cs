namespace Palisade.Policies.Network;

/// <summary>
/// A network policy as its YAML says it, checked field by field. Every element keeps the
/// path it came from (e.g. <c>spec.ingress[0].toPorts[1]</c>), so statuses and verdicts can
/// name the exact rule. <see cref="Unsupported"/> lists the parts Palisade cannot enforce yet.
/// </summary>
public abstract record NetworkPolicyResource(PolicyRef Ref, IReadOnlyDictionary<string, string> Labels, string Source, IReadOnlyList<UnsupportedPart> Unsupported)
{
    /// <summary>Validated means every rule is enforced as written; PartiallyEnforced names what is not.</summary>
    public PolicySupport Support => Unsupported.Count == 0 ? PolicySupport.Validated : PolicySupport.PartiallyEnforced;
}

/// <summary>Whether a policy that parsed is enforced in full.</summary>
public enum PolicySupport
{
    /// <summary>Every rule is enforced as written.</summary>
    Validated,

    /// <summary>The policy is enforced, but some rules are "not supported yet" and act as the status says (never weaker than written).</summary>
    PartiallyEnforced,
}

/// <summary>
/// A part of a rule Palisade does not enforce yet, where it is, and what the datapath does
/// instead. <see cref="Effect"/> is always on the safe side: an allow rule that cannot be
/// enforced in full allows nothing; a deny rule that cannot be enforced in full denies more.
/// </summary>
public sealed record UnsupportedPart(string Path, string Feature, UnsupportedEffect Effect, string Message)
{
    public override string ToString() => $"{Path}: not supported yet: {Message}";
}

/// <summary>What the datapath does with a rule holding an unsupported part.</summary>
public enum UnsupportedEffect
{
    /// <summary>The allow rule (or the toPorts entry) allows nothing until the feature is supported.</summary>
    AllowsNothing,

    /// <summary>The deny rule denies its ports to and from every peer, a superset of what it names.</summary>
    DeniesAllPeers,
}

/// <summary>A Kubernetes networking.k8s.io/v1 NetworkPolicy.</summary>
public sealed record KubernetesNetworkPolicy(
    PolicyRef Ref,
    IReadOnlyDictionary<string, string> Labels,
    string Source,
    LabelSelector PodSelector,
    IReadOnlyList<TrafficDirection> PolicyTypes,
    IReadOnlyList<KubernetesRule> Ingress,
    IReadOnlyList<KubernetesRule> Egress)
    : NetworkPolicyResource(Ref, Labels, Source, []);

/// <summary>One ingress (from) or egress (to) rule: any listed peer, on any listed port. Empty lists match everything.</summary>
public sealed record KubernetesRule(string Path, TrafficDirection Direction, IReadOnlyList<KubernetesPeer> Peers, IReadOnlyList<KubernetesPort> Ports);

/// <summary>A peer: pods (podSelector and/or namespaceSelector, ANDed) or an ipBlock.</summary>
public sealed record KubernetesPeer(string Path, LabelSelector? PodSelector, LabelSelector? NamespaceSelector, IpBlock? IpBlock);

/// <summary>A CIDR with the prefixes cut out of it (ipBlock, fromCIDRSet, toCIDRSet, fromCIDR, toCIDR).</summary>
public sealed record IpBlock(string Path, CidrPrefix Cidr, IReadOnlyList<CidrPrefix> Except);

/// <summary>A port or port range of a NetworkPolicy; <see cref="Port"/> null means every port of the protocol.</summary>
public sealed record KubernetesPort(string Path, L4Protocol Protocol, PortValue? Port, int? EndPort);

/// <summary>A CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy: one rule per spec (spec, or each of specs).</summary>
public sealed record CiliumPolicy(
    PolicyRef Ref,
    IReadOnlyDictionary<string, string> Labels,
    string Source,
    IReadOnlyList<UnsupportedPart> UnsupportedParts,
    IReadOnlyList<CiliumRule> Rules)
    : NetworkPolicyResource(Ref, Labels, Source, UnsupportedParts);

/// <summary>One Cilium rule (api.Rule): whom it selects and its four rule lists.</summary>
public sealed record CiliumRule(
    string Path,
    LabelSelector? EndpointSelector,
    LabelSelector? NodeSelector,
    IReadOnlyList<CiliumPeerRule> Ingress,
    IReadOnlyList<CiliumPeerRule> IngressDeny,
    IReadOnlyList<CiliumPeerRule> Egress,
    IReadOnlyList<CiliumPeerRule> EgressDeny,
    IReadOnlyList<string> RuleLabels,
    bool? DefaultDenyIngress,
    bool? DefaultDenyEgress,
    string? Description,
    string? Log);

/// <summary>A label selector with the path it was written at.</summary>
public sealed record PathedSelector(string Path, LabelSelector Selector);

/// <summary>An entity (world, host, ...) with the path it was written at.</summary>
public sealed record PathedEntity(string Path, string Entity);

/// <summary>
/// One entry of ingress, ingressDeny, egress or egressDeny. Cilium allows one kind of peer per
/// entry (fromEndpoints, fromCIDR(Set), fromEntities, fromNodes, ...); none means every peer
/// when ports or ICMP types are given, and nothing at all otherwise.
/// </summary>
public sealed record CiliumPeerRule(
    string Path,
    TrafficDirection Direction,
    RuleAction Action,
    IReadOnlyList<PathedSelector> Endpoints,
    IReadOnlyList<PathedSelector> Requires,
    IReadOnlyList<PathedSelector> Nodes,
    IReadOnlyList<IpBlock> Cidrs,
    IReadOnlyList<PathedEntity> Entities,
    IReadOnlyList<CiliumPortRule> ToPorts,
    IReadOnlyList<IcmpField> Icmps,
    string? Authentication,
    bool HasUnsupportedPeers)
{
    /// <summary>True when the entry names no peer of any kind (supported or not).</summary>
    public bool WildcardPeer => Endpoints.Count == 0 && Nodes.Count == 0 && Cidrs.Count == 0 && Entities.Count == 0 && !HasUnsupportedPeers;
}

/// <summary>A toPorts entry: its ports, and whether an L7 or TLS part makes it unenforceable for now.</summary>
public sealed record CiliumPortRule(string Path, IReadOnlyList<CiliumPort> Ports, bool HasUnsupportedParts);

/// <summary>A port, port range (endPort) or named port, with its protocol; port 0 is every port.</summary>
public sealed record CiliumPort(string Path, PortValue Port, int? EndPort, L4Protocol Protocol);

/// <summary>An ICMP type of one family (Cilium matches the type, not the code).</summary>
public sealed record IcmpField(string Path, IpFamily Family, byte Type);
