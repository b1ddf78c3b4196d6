using System.Collections.Frozen;

namespace Palisade.Events;

/// <summary>
/// The enum names of Cilium's flow.proto, as Hubble's JSON and Prometheus labels spell them
/// ("FORWARDED", "POLICY_DENIED", "L3_L4"). Constant strings: naming a flow allocates nothing.
/// </summary>
public static class FlowNames
{
    // Built once from the C# names (PolicyDenied -> POLICY_DENIED); the two proto names that
    // rule does not produce are spelled out.
    private static readonly FrozenDictionary<DropReason, string> DropReasons = Enum.GetValues<DropReason>()
        .ToFrozenDictionary(r => r, r => r switch
        {
            Events.DropReason.Unknown => "DROP_REASON_UNKNOWN",
            Events.DropReason.IsAClusterIp => "IS_A_CLUSTERIP",
            _ => UpperSnake(r.ToString()),
        });

    public static string Verdict(FlowVerdict v) => v switch
    {
        FlowVerdict.Forwarded => "FORWARDED",
        FlowVerdict.Dropped => "DROPPED",
        FlowVerdict.Error => "ERROR",
        FlowVerdict.Audit => "AUDIT",
        FlowVerdict.Redirected => "REDIRECTED",
        FlowVerdict.Traced => "TRACED",
        FlowVerdict.Translated => "TRANSLATED",
        _ => "VERDICT_UNKNOWN",
    };

    public static string Direction(TrafficDirection d) => d switch
    {
        TrafficDirection.Ingress => "INGRESS",
        TrafficDirection.Egress => "EGRESS",
        _ => "TRAFFIC_DIRECTION_UNKNOWN",
    };

    public static string Type(FlowType t) => t switch
    {
        FlowType.L3L4 => "L3_L4",
        FlowType.L7 => "L7",
        FlowType.Sock => "SOCK",
        _ => "UNKNOWN_TYPE",
    };

    public static string IpVersion(IpVersion v) => v switch
    {
        Events.IpVersion.IPv4 => "IPv4",
        Events.IpVersion.IPv6 => "IPv6",
        _ => "IP_NOT_USED",
    };

    public static string ObservationPoint(TraceObservationPoint p) => p switch
    {
        TraceObservationPoint.ToProxy => "TO_PROXY",
        TraceObservationPoint.ToHost => "TO_HOST",
        TraceObservationPoint.ToStack => "TO_STACK",
        TraceObservationPoint.ToOverlay => "TO_OVERLAY",
        TraceObservationPoint.ToEndpoint => "TO_ENDPOINT",
        TraceObservationPoint.FromEndpoint => "FROM_ENDPOINT",
        TraceObservationPoint.FromProxy => "FROM_PROXY",
        TraceObservationPoint.FromHost => "FROM_HOST",
        TraceObservationPoint.FromStack => "FROM_STACK",
        TraceObservationPoint.FromOverlay => "FROM_OVERLAY",
        TraceObservationPoint.FromNetwork => "FROM_NETWORK",
        TraceObservationPoint.ToNetwork => "TO_NETWORK",
        _ => "UNKNOWN_POINT",
    };

    /// <summary>The proto name of a drop reason; a code the table does not know comes out as its number.</summary>
    public static string DropReason(DropReason r) =>
        DropReasons.TryGetValue(r, out var name) ? name : ((uint)r).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Hubble's lower-case protocol name ("tcp", "icmpv4"), as its flow filters and metrics say it.</summary>
    public static string Protocol(L4Protocol p) => p switch
    {
        L4Protocol.Tcp => "tcp",
        L4Protocol.Udp => "udp",
        L4Protocol.Icmpv4 => "icmpv4",
        L4Protocol.Icmpv6 => "icmpv6",
        _ => "",
    };

    // A new word at an upper-case letter after a lower-case letter or a digit: L3L4 -> L3_L4, Icmpv4Code -> ICMPV4_CODE.
    private static string UpperSnake(string pascal)
    {
        var sb = new System.Text.StringBuilder(pascal.Length + 8);
        for (var i = 0; i < pascal.Length; i++)
        {
            var c = pascal[i];
            if (i > 0 && char.IsUpper(c) && (char.IsLower(pascal[i - 1]) || char.IsDigit(pascal[i - 1])))
            {
                sb.Append('_');
            }
            sb.Append(char.ToUpperInvariant(c));
        }
        return sb.ToString();
    }
}
