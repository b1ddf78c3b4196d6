using System.Globalization;

namespace Palisade.Policies.Network.Compilation;

/// <summary>Cilium's enforcement modes (--enable-policy): when an endpoint without a selecting policy drops.</summary>
public enum EnforcementMode
{
    /// <summary>A direction is enforced once a policy selecting the endpoint has rules for it.</summary>
    Default,

    /// <summary>Both directions are enforced for every endpoint, with or without a policy.</summary>
    Always,

    /// <summary>Nothing is enforced, whatever the policies say.</summary>
    Never,
}

/// <summary>
/// Identities with a fixed meaning, Cilium's numbers. The datapath's twin of enum pal_identity
/// (Palisade.Datapath.Abi.ReservedIdentity) is checked against these by a unit test; policies/
/// cannot reference the datapath.
/// </summary>
public static class ReservedIdentities
{
    public const uint Any = 0, Host = 1, World = 2, Unmanaged = 3, Health = 4, Init = 5, RemoteNode = 6, KubeApiServer = 7;

    /// <summary>The first identity of CIDR prefixes (Cilium's local scope, 1 &lt;&lt; 24).</summary>
    public const uint FirstCidr = 1u << 24;

    /// <summary>Reserved identities with the reserved: label each carries, for selectors on reserved: labels.</summary>
    public static readonly IReadOnlyDictionary<uint, string> Names = new Dictionary<uint, string>
    {
        [Host] = "host", [World] = "world", [Unmanaged] = "unmanaged", [Health] = "health", [Init] = "init",
        [RemoteNode] = "remote-node", [KubeApiServer] = "kube-apiserver",
    };
}

/// <summary>A container port name of an endpoint and what it stands for.</summary>
public sealed record NamedPort(string Name, L4Protocol Protocol, int Port);

/// <summary>
/// A security identity the compiler may grant traffic to or from: its number, its labels
/// ("k8s:app" = "web", "k8s:io.kubernetes.pod.namespace" = "x", ...), and the named ports of the
/// endpoints that have it (egress rules on named ports resolve against the peer's), and their
/// addresses (a NetworkPolicy ipBlock selects pods by address).
/// </summary>
public sealed record KnownIdentity(uint Id, IReadOnlyDictionary<string, string> Labels, IReadOnlyList<NamedPort> NamedPorts, IReadOnlyList<System.Net.IPAddress>? Addresses = null);

/// <summary>A node and its labels, for fromNodes/toNodes and host policies (nodeSelector).</summary>
public sealed record KnownNode(string Name, IReadOnlyDictionary<string, string> Labels, bool IsLocal);

/// <summary>The endpoint compiled for: its identity labels, namespace and named ports; <see cref="IsHost"/> for the host endpoint (host policies).</summary>
public sealed record PolicySubjectEndpoint(string Name, string? Namespace, IReadOnlyDictionary<string, string> Labels, IReadOnlyList<NamedPort> NamedPorts, bool IsHost = false);

/// <summary>Audit mode (verdicts reported as AUDIT, nothing dropped) for whole namespaces or single policies.</summary>
public sealed record AuditSettings(IReadOnlySet<string> Namespaces, IReadOnlySet<PolicyRef> Policies)
{
    public static readonly AuditSettings None = new(new HashSet<string>(), new HashSet<PolicyRef>());
}

/// <summary>
/// Everything one compilation reads. <see cref="Policies"/> are all the policies of the node,
/// not only the ones selecting the endpoint: CIDR identities must be the same for every endpoint.
/// </summary>
public sealed record CompilationInput(
    IReadOnlyList<NormalizedPolicy> Policies,
    IReadOnlyList<KnownIdentity> Identities,
    IReadOnlyList<KnownNode> Nodes,
    EnforcementMode Mode,
    AuditSettings Audit);

/// <summary>One entry of an endpoint's policy map, in host byte order (the datapath writes the port in network order).</summary>
public sealed record PolicyMapEntry(uint Identity, PolicyDirection Direction, byte Protocol, ushort Port, byte L4Prefix, PolicyEntryFlags Flags, IReadOnlyList<uint> RuleRefs)
{
    /// <summary>The rule written to the map (pal_netpol_value.rule): the first of <see cref="RuleRefs"/>, every rule that gives this entry its verdict.</summary>
    public uint Rule => RuleRefs.Count > 0 ? RuleRefs[0] : 0;

    /// <summary>The key's prefixlen (struct pal_netpol_key).</summary>
    public uint KeyPrefixLength => (uint)PolicyMapSizes.PrefixFixed + L4Prefix;

    public bool IsDeny => (Flags & PolicyEntryFlags.Deny) != 0;

    public bool IsAudit => (Flags & PolicyEntryFlags.Audit) != 0;

    /// <summary>Whether a packet with this protocol and destination port falls under the entry's L4 prefix.</summary>
    public bool Covers(byte protocol, ushort port)
    {
        if (L4Prefix == 0)
        {
            return true;
        }
        if (protocol != Protocol)
        {
            return false;
        }
        var portBits = L4Prefix - (int)PolicyMapSizes.ProtoBits;
        return portBits <= 0 || (port >> (16 - portBits)) == (Port >> (16 - portBits));
    }

    /// <summary>Whether every packet this entry covers is also covered by <paramref name="wider"/> (same identity and direction assumed).</summary>
    public bool IsWithin(PolicyMapEntry wider) => wider.L4Prefix <= L4Prefix && wider.Covers(Protocol, Port);

    public override string ToString()
    {
        var l4 = L4Prefix == 0 ? "any" : L4Prefix == 8 ? $"proto {Protocol}"
            : $"proto {Protocol} port {Port.ToString(CultureInfo.InvariantCulture)}/{(L4Prefix - 8).ToString(CultureInfo.InvariantCulture)}";
        var what = IsDeny ? IsAudit ? "audit-deny" : "deny" : "allow";
        return $"{Direction.ToString().ToLowerInvariant()} id {Identity} {l4} {what} rule {Rule}";
    }
}

/// <summary>What a direction of the endpoint does, and whether policies selected it for that direction at all.</summary>
public sealed record DirectionPolicy(DirectionMode Mode, IReadOnlyList<RuleOrigin> EnabledBy);

/// <summary>What a rule became for this endpoint, or why it became less than written.</summary>
public sealed record RuleStatus(RuleOrigin Origin, int Entries, string? Note);

/// <summary>A CIDR prefix the ipcache must map to its CIDR identity for the entries to mean what they say.</summary>
public sealed record CidrIdentity(CidrPrefix Prefix, uint Identity);

/// <summary>
/// The compiled policy of one endpoint: per direction its mode, the map entries, the rule
/// table their <see cref="PolicyMapEntry.Rule"/> indexes, the CIDR identities the ipcache must
/// hold, and per policy the statuses of the parts that are not enforced as written.
/// </summary>
public sealed record EndpointPolicy(
    DirectionPolicy Ingress,
    DirectionPolicy Egress,
    IReadOnlyList<PolicyMapEntry> Entries,
    RuleTable Rules,
    IReadOnlyList<CidrIdentity> CidrIdentities,
    IReadOnlyList<RuleStatus> Statuses,
    IReadOnlyList<UnsupportedPart> Unsupported)
{
    public DirectionPolicy For(PolicyDirection direction) => direction == PolicyDirection.Ingress ? Ingress : Egress;
}
