using Palisade.Events;

namespace Palisade.Datapath.Flows;

/// <summary>
/// Hubble's one-line summary of a flow's L4 ("TCP Flags: SYN, ACK", "UDP", "ICMPv4 EchoRequest"),
/// built once per distinct value: flows share the strings.
/// </summary>
public static class FlowSummary
{
    private static readonly string?[] TcpSummaries = new string?[512];

    // gopacket's ICMPv4/ICMPv6 type names, which Hubble's summaries use.
    private static readonly Dictionary<byte, string> Icmpv4Types = new()
    {
        [0] = "EchoReply", [3] = "DestinationUnreachable", [4] = "SourceQuench", [5] = "Redirect", [8] = "EchoRequest",
        [9] = "RouterAdvertisement", [10] = "RouterSolicitation", [11] = "TimeExceeded", [12] = "ParameterProblem",
        [13] = "TimestampRequest", [14] = "TimestampReply", [15] = "InfoRequest", [16] = "InfoReply",
        [17] = "AddressMaskRequest", [18] = "AddressMaskReply",
    };

    private static readonly Dictionary<byte, string> Icmpv6Types = new()
    {
        [1] = "DestinationUnreachable", [2] = "PacketTooBig", [3] = "TimeExceeded", [4] = "ParameterProblem",
        [128] = "EchoRequest", [129] = "EchoReply", [133] = "RouterSolicitation", [134] = "RouterAdvertisement",
        [135] = "NeighborSolicitation", [136] = "NeighborAdvertisement", [137] = "Redirect",
    };

    private static readonly Dictionary<(bool, byte), string> IcmpSummaries = BuildIcmp();

    public static string? Of(FlowL4 l4) => l4.Protocol switch
    {
        L4Protocol.Tcp => Tcp(l4.Flags),
        L4Protocol.Udp => "UDP",
        L4Protocol.Icmpv4 => Icmp(false, l4.IcmpType),
        L4Protocol.Icmpv6 => Icmp(true, l4.IcmpType),
        _ => null,
    };

    private static string Tcp(TcpFlags flags)
    {
        var index = (int)flags & 0x1ff;
        // A race only builds the same string twice.
        return TcpSummaries[index] ??= "TCP Flags: " + string.Join(", ", FlagNames.Where((_, bit) => (index & (1 << bit)) != 0));
    }

    // TCPFlags' field order in flow.proto.
    private static readonly string[] FlagNames = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"];

    private static string Icmp(bool v6, byte type) =>
        IcmpSummaries.TryGetValue((v6, type), out var s) ? s : $"{(v6 ? "ICMPv6" : "ICMPv4")} {type}";

    private static Dictionary<(bool, byte), string> BuildIcmp()
    {
        var all = new Dictionary<(bool, byte), string>();
        foreach (var (type, name) in Icmpv4Types)
        {
            all[(false, type)] = "ICMPv4 " + name;
        }
        foreach (var (type, name) in Icmpv6Types)
        {
            all[(true, type)] = "ICMPv6 " + name;
        }
        return all;
    }
}
