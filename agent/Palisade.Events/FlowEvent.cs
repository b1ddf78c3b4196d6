namespace Palisade.Events;

/// <summary>
/// A network flow the datapath saw, in the shape of Hubble's <c>flow.Flow</c> (Cilium's
/// api/v1/flow/flow.proto): addresses, ports, endpoints, verdict. <see cref="PalisadeEvent.Process"/>
/// is the local process that owns the socket when there is one (our addition); traffic of a
/// pod that no local process handles has none.
/// </summary>
public sealed class FlowEvent : PalisadeEvent
{
    public override EventKind Kind => EventKind.Flow;
    /// <summary>Unique per flow event (Hubble's uuid).</summary>
    public required string Uuid { get; init; }
    public required FlowVerdict Verdict { get; init; }
    /// <summary>Why the datapath dropped it; only for <see cref="FlowVerdict.Dropped"/>.</summary>
    public DropReason DropReason { get; init; }
    /// <summary>Layer 3; null when the packet had no IP header we understood.</summary>
    public FlowIp? IP { get; init; }
    public FlowL4 L4 { get; init; }
    public FlowEndpoint? Source { get; init; }
    public FlowEndpoint? Destination { get; init; }
    public FlowType Type { get; init; } = FlowType.L3L4;
    /// <summary>Hubble's event_type: which monitor event the flow came from (drop, trace, policy verdict); null when not known.</summary>
    public FlowEventType? EventType { get; init; }
    public TrafficDirection TrafficDirection { get; init; }
    /// <summary>True for a packet in the reply direction of its connection; null when unknown.</summary>
    public bool? IsReply { get; init; }
    public TraceObservationPoint TraceObservationPoint { get; init; }
    /// <summary>The network interface the flow was observed on.</summary>
    public FlowInterface? Interface { get; init; }
    /// <summary>A one-line human description, as Hubble's Summary ("TCP Flags: SYN").</summary>
    public string? Summary { get; init; }
    /// <summary>The policy rule that decided the verdict (pal_flow_event.rule, the map entry's rule number); 0: none (no policy, or a default).</summary>
    public uint PolicyRule { get; init; }
    /// <summary>Whose policy decided: the local endpoint's ingress or egress; Unknown when no policy decided.</summary>
    public TrafficDirection PolicyDirection { get; init; }
    /// <summary>How the network policy decided (a rule, the default of the mode, conntrack).</summary>
    public FlowPolicyDecision PolicyDecision { get; init; }
}

/// <summary>The policy rule a flow's <see cref="FlowEvent.PolicyRule"/> stands for: the flow JSON's policy_match.</summary>
public sealed record FlowPolicyMatch(string Kind, string? Namespace, string Name, string File, string Rule);

/// <summary>
/// Hubble's four policy lists on a flow (flow.proto: egress_allowed_by = 21001,
/// ingress_allowed_by = 21002, egress_denied_by = 21004, ingress_denied_by = 21005), and which
/// one a flow's deciding rule goes in.
/// </summary>
public enum FlowPolicyList
{
    None = 0,
    EgressAllowedBy,
    IngressAllowedBy,
    EgressDeniedBy,
    IngressDeniedBy,
}

/// <summary>Puts a flow's deciding rule in Hubble's terms: the list it belongs in and the policy's labels.</summary>
public static class FlowPolicyLists
{
    /// <summary>
    /// The list a flow's rule belongs in: by whose policy decided (<see cref="FlowEvent.PolicyDirection"/>)
    /// and what the rule did. FORWARDED: the rule allowed it. DROPPED: a deny rule dropped it.
    /// AUDIT: a deny rule would have dropped it (an audited deny; an allow entry passes as FORWARDED
    /// in audit mode too). None without a rule (no policy, the mode's default, conntrack), or for
    /// another verdict.
    /// </summary>
    public static FlowPolicyList Of(FlowEvent f)
    {
        if (f.PolicyRule == 0)
        {
            return FlowPolicyList.None;
        }
        bool? denied = f.Verdict switch
        {
            FlowVerdict.Forwarded => false,
            FlowVerdict.Dropped or FlowVerdict.Audit => true,
            _ => null,
        };
        return (f.PolicyDirection, denied) switch
        {
            (TrafficDirection.Ingress, false) => FlowPolicyList.IngressAllowedBy,
            (TrafficDirection.Egress, false) => FlowPolicyList.EgressAllowedBy,
            (TrafficDirection.Ingress, true) => FlowPolicyList.IngressDeniedBy,
            (TrafficDirection.Egress, true) => FlowPolicyList.EgressDeniedBy,
            _ => FlowPolicyList.None,
        };
    }

    /// <summary>The list's JSON (proto) name; null for <see cref="FlowPolicyList.None"/>.</summary>
    public static string? JsonName(FlowPolicyList list) => list switch
    {
        FlowPolicyList.EgressAllowedBy => "egress_allowed_by",
        FlowPolicyList.IngressAllowedBy => "ingress_allowed_by",
        FlowPolicyList.EgressDeniedBy => "egress_denied_by",
        FlowPolicyList.IngressDeniedBy => "ingress_denied_by",
        _ => null,
    };

    /// <summary>
    /// The policy's labels as Cilium derives them for its policy repository (and so Hubble shows
    /// them): io.cilium.k8s.policy.derived-from, .name and, for a namespaced policy, .namespace,
    /// with the k8s source prefix. The uid label is left out: a policy from a file has none.
    /// </summary>
    public static IReadOnlyList<string> Labels(FlowPolicyMatch m) => m.Namespace is { Length: > 0 } ns
        ? [$"k8s:io.cilium.k8s.policy.derived-from={m.Kind}", $"k8s:io.cilium.k8s.policy.name={m.Name}", $"k8s:io.cilium.k8s.policy.namespace={ns}"]
        : [$"k8s:io.cilium.k8s.policy.derived-from={m.Kind}", $"k8s:io.cilium.k8s.policy.name={m.Name}"];
}

/// <summary>Turns a flow's rule number into the policy and rule it stands for (the agent's network-policy engine).</summary>
public interface IFlowPolicyResolver
{
    /// <summary>Null for 0 and numbers no rule has.</summary>
    FlowPolicyMatch? Resolve(uint rule);
}

/// <summary>How the network policy decided a flow (the datapath's enum pal_flow_policy_match).</summary>
public enum FlowPolicyDecision
{
    /// <summary>No policy applies to the endpoint(s) the packet met.</summary>
    None = 0,
    /// <summary>A policy map entry; <see cref="FlowEvent.PolicyRule"/> names it.</summary>
    Rule = 1,
    /// <summary>No entry matched: the direction's mode decided (enforce: POLICY_DENIED; audit: AUDIT).</summary>
    Default = 2,
    /// <summary>A reply of a tracked connection (conntrack).</summary>
    ConntrackReply = 3,
    /// <summary>A tracked connection, allowed when it started.</summary>
    ConntrackEstablished = 4,
    /// <summary>An ICMP error about a tracked connection.</summary>
    ConntrackRelated = 5,
}

/// <summary>
/// Hubble's CiliumEventType: the monitor message a flow came from, by Cilium's numbers
/// (pkg/monitor/api), which `hubble observe --type` selects on. For a drop the sub-type is
/// the drop reason; for a trace, the observation point as Cilium's trace notifications number it.
/// </summary>
public readonly record struct FlowEventType(int Type, int SubType = 0)
{
    /// <summary>MessageTypeDrop.</summary>
    public const int Drop = 1;
    /// <summary>MessageTypeTrace.</summary>
    public const int Trace = 4;
    /// <summary>MessageTypePolicyVerdict.</summary>
    public const int PolicyVerdict = 5;

    /// <summary>`hubble observe --type` name of a type number ("drop", "trace", "policy-verdict"); null for others.</summary>
    public static string? Name(int type) => type switch
    {
        Drop => "drop",
        Trace => "trace",
        PolicyVerdict => "policy-verdict",
        _ => null,
    };
}

/// <summary>Hubble's IP: addresses as text and the version.</summary>
public sealed record FlowIp(string Source, string Destination, IpVersion IpVersion);

/// <summary>The transport of a flow; which of Hubble's Layer4 oneof it is.</summary>
public enum L4Protocol
{
    None,
    Tcp,
    Udp,
    Icmpv4,
    Icmpv6,
}

/// <summary>TCP header flags, in Hubble's TCPFlags order.</summary>
[Flags]
public enum TcpFlags : ushort
{
    None = 0,
    Fin = 1 << 0,
    Syn = 1 << 1,
    Rst = 1 << 2,
    Psh = 1 << 3,
    Ack = 1 << 4,
    Urg = 1 << 5,
    Ece = 1 << 6,
    Cwr = 1 << 7,
    Ns = 1 << 8,
}

/// <summary>Hubble's Layer4: TCP or UDP ports (and TCP flags), or ICMP type and code. A value, so a flow costs no extra object for it.</summary>
public readonly record struct FlowL4(L4Protocol Protocol, ushort SourcePort, ushort DestinationPort, TcpFlags Flags = TcpFlags.None, byte IcmpType = 0, byte IcmpCode = 0)
{
    public static FlowL4 Tcp(ushort sourcePort, ushort destinationPort, TcpFlags flags) => new(L4Protocol.Tcp, sourcePort, destinationPort, flags);

    public static FlowL4 Udp(ushort sourcePort, ushort destinationPort) => new(L4Protocol.Udp, sourcePort, destinationPort);

    public static FlowL4 Icmpv4(byte type, byte code) => new(L4Protocol.Icmpv4, 0, 0, IcmpType: type, IcmpCode: code);

    public static FlowL4 Icmpv6(byte type, byte code) => new(L4Protocol.Icmpv6, 0, 0, IcmpType: type, IcmpCode: code);
}

/// <summary>Hubble's Endpoint: one side of a flow, as the datapath's endpoint and identity maps know it.</summary>
public sealed record FlowEndpoint
{
    /// <summary>The local endpoint id (0: not an endpoint of this node).</summary>
    public uint ID { get; init; }
    /// <summary>The security identity.</summary>
    public uint Identity { get; init; }
    public string? Namespace { get; init; }
    /// <summary>Labels in "source:key=value" form, e.g. "k8s:app=web".</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];
    public string? PodName { get; init; }
}

/// <summary>Hubble's NetworkInterface.</summary>
public sealed record FlowInterface(uint Index, string Name);

/// <summary>Hubble's Verdict.</summary>
public enum FlowVerdict
{
    Unknown = 0,
    Forwarded = 1,
    Dropped = 2,
    Error = 3,
    /// <summary>Policy audit mode: would have been dropped.</summary>
    Audit = 4,
    Redirected = 5,
    Traced = 6,
    Translated = 7,
}

/// <summary>Hubble's TrafficDirection, seen from the local endpoint.</summary>
public enum TrafficDirection
{
    Unknown = 0,
    Ingress = 1,
    Egress = 2,
}

/// <summary>Hubble's FlowType.</summary>
public enum FlowType
{
    Unknown = 0,
    L3L4 = 1,
    L7 = 2,
    Sock = 3,
}

/// <summary>Hubble's IPVersion.</summary>
public enum IpVersion
{
    NotUsed = 0,
    IPv4 = 1,
    IPv6 = 2,
}

/// <summary>Hubble's TraceObservationPoint: where on the path the datapath saw the packet.</summary>
public enum TraceObservationPoint
{
    Unknown = 0,
    ToProxy = 1,
    ToHost = 2,
    ToStack = 3,
    ToOverlay = 4,
    ToEndpoint = 101,
    FromEndpoint = 5,
    FromProxy = 6,
    FromHost = 7,
    FromStack = 8,
    FromOverlay = 9,
    FromNetwork = 10,
    ToNetwork = 11,
}

/// <summary>
/// Hubble's DropReason: the codes Cilium's datapath uses (bpf/lib/common.h), so a dashboard
/// keyed on them reads ours. <see cref="FlowNames.DropReason"/> gives the proto names.
/// </summary>
public enum DropReason : uint
{
    Unknown = 0,
    InvalidSourceMac = 130,
    InvalidDestinationMac = 131,
    InvalidSourceIp = 132,
    PolicyDenied = 133,
    InvalidPacketDropped = 134,
    CtTruncatedOrInvalidHeader = 135,
    CtMissingTcpAckFlag = 136,
    CtUnknownL4Protocol = 137,
    CtCannotCreateEntryFromPacket = 138,
    UnsupportedL3Protocol = 139,
    MissedTailCall = 140,
    ErrorWritingToPacket = 141,
    UnknownL4Protocol = 142,
    UnknownIcmpv4Code = 143,
    UnknownIcmpv4Type = 144,
    UnknownIcmpv6Code = 145,
    UnknownIcmpv6Type = 146,
    ErrorRetrievingTunnelKey = 147,
    ErrorRetrievingTunnelOptions = 148,
    InvalidGeneveOption = 149,
    UnknownL3TargetAddress = 150,
    StaleOrUnroutableIp = 151,
    NoMatchingLocalContainerFound = 152,
    ErrorWhileCorrectingL3Checksum = 153,
    ErrorWhileCorrectingL4Checksum = 154,
    CtMapInsertionFailed = 155,
    InvalidIpv6ExtensionHeader = 156,
    IpFragmentationNotSupported = 157,
    ServiceBackendNotFound = 158,
    NoTunnelOrEncapsulationEndpoint = 160,
    FailedToInsertIntoProxymap = 161,
    ReachedEdtRateLimitingDropHorizon = 162,
    UnknownConnectionTrackingState = 163,
    LocalHostIsUnreachable = 164,
    NoConfigurationAvailableToPerformPolicyDecision = 165,
    UnsupportedL2Protocol = 166,
    NoMappingForNatMasquerade = 167,
    UnsupportedProtocolForNatMasquerade = 168,
    FibLookupFailed = 169,
    EncapsulationTrafficIsProhibited = 170,
    InvalidIdentity = 171,
    UnknownSender = 172,
    NatNotNeeded = 173,
    IsAClusterIp = 174,
    FirstLogicalDatagramFragmentNotFound = 175,
    ForbiddenIcmpv6Message = 176,
    DeniedByLbSrcRangeCheck = 177,
    SocketLookupFailed = 178,
    SocketAssignFailed = 179,
    ProxyRedirectionNotSupportedForProtocol = 180,
    PolicyDeny = 181,
    VlanFiltered = 182,
    InvalidVni = 183,
    InvalidTcBuffer = 184,
    NoSid = 185,
    MissingSrv6State = 186,
    Nat46 = 187,
    Nat64 = 188,
    AuthRequired = 189,
    CtNoMapFound = 190,
    SnatNoMapFound = 191,
    InvalidClusterId = 192,
    UnsupportedProtocolForDsrEncap = 193,
    NoEgressGateway = 194,
    TtlExceeded = 196,
    NoNodeId = 197,
    DropHostNotReady = 202,
    DropEpNotReady = 203,
}
