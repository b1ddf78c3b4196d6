using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using Palisade.Bpf.Abi;
using Palisade.Cli.Observe;
using Palisade.Datapath;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Flows;
using Palisade.Events;
using Palisade.Exporters;

namespace Palisade.Fuzz;

/// <summary>
/// Recorded datapath flow records (struct pal_flow_event): a sequence of records, each a
/// little-endian u16 length then the record's bytes, fed in order to one <see cref="FlowDecoder"/>
/// that knows one pod, one process and one interface. Contract: every record is a flow or is
/// counted malformed (never an exception), and every flow exports as a Hubble JSON line that
/// `palisade observe` reads back as the same flow.
/// </summary>
public static unsafe class FlowRingRecords
{
    private static readonly DateTimeOffset Boot = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly Endpoint Pod = new()
    {
        Id = 7, ContainerId = "c7", IfName = "eth0", Netns = "/var/run/netns/c7", PodNamespace = "shop", PodName = "web-1",
        Labels = new Dictionary<string, string> { ["app"] = "web" }, NamespaceLabels = new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = "shop" },
        Identity = 40001, HostIfName = "lxc7", HostMac = new byte[6], PodMac = new byte[6], IPv4 = IPAddress.Parse("10.244.0.7"),
        IPv6 = IPAddress.Parse("fd00:10:244::7"),
    };

    public static void Run(byte[] input)
    {
        var flows = new List<PalisadeEvent>();
        var decoder = new FlowDecoder(new OnePod(), new OneProcess(), Boot, flows.Add, new OneInterface());
        var records = 0;
        var rest = input.AsSpan();
        while (rest.Length >= 2)
        {
            var length = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(rest), rest.Length - 2);
            decoder.OnRecord(rest.Slice(2, length));
            records++;
            rest = rest[(2 + length)..];
        }
        var stats = decoder.Stats;
        if (stats.Decoded + stats.Malformed != records || stats.Decoded != flows.Count)
        {
            throw new InvalidOperationException($"{records} records, but {stats.Decoded} decoded + {stats.Malformed} malformed, {flows.Count} published");
        }
        foreach (var e in flows)
        {
            var flow = (FlowEvent)e;
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
            {
                TetragonJson.Write(w, flow, "fuzz-node");
            }
            _ = CompactFormat.Format(flow, "fuzz-node", color: true);
            var line = System.Text.Encoding.UTF8.GetString(buffer.ToArray());
            var back = FlowJsonReader.Read(line) ?? throw new InvalidOperationException($"an exported flow did not read back: {line}");
            if (back.Flow.Verdict != flow.Verdict || back.Flow.TrafficDirection != flow.TrafficDirection || back.Flow.Uuid != flow.Uuid
                || back.Flow.IP?.Source != flow.IP?.Source || back.Flow.L4.Protocol != flow.L4.Protocol)
            {
                throw new InvalidOperationException($"an exported flow read back differently: {line}");
            }
            _ = FlowText.Compact(back, color: true);
            _ = FlowText.TableRow(back);
        }
    }

    public static IEnumerable<(string, byte[])> Seeds()
    {
        var syn = Tcp("10.244.0.7", 40000, "10.244.0.9", 80, PalFlowReport.First, PalFlowFlags.Owner);
        syn.SrcEp = 7;
        var synAck = Tcp("10.244.0.9", 80, "10.244.0.7", 40000, PalFlowReport.State | PalFlowReport.Reply, 0);
        synAck.TcpFlags = 0x12;
        var fin = Tcp("10.244.0.7", 40000, "10.244.0.9", 80, PalFlowReport.Close, PalFlowFlags.Owner);
        fin.TcpFlags = 0x11;
        fin.Packets = 12;
        fin.Bytes = 9000;
        var drop = Tcp("192.0.2.1", 5555, "10.244.0.7", 22, PalFlowReport.First | PalFlowReport.Drop, 0);
        drop.Verdict = (byte)PalFlowVerdict.Dropped;
        drop.Direction = (byte)PalFlowDirection.Ingress;
        drop.ObsPoint = (byte)PalFlowObs.ToEndpoint;
        drop.DropReason = 133;
        drop.SrcIdentity = 2;
        var udp6 = Tcp("fd00:10:244::7", 5353, "fd00:10:244::9", 53, PalFlowReport.First, PalFlowFlags.Ipv6);
        udp6.Proto = 17;
        var icmp = Tcp("10.244.0.7", 0, "10.244.0.1", 0, PalFlowReport.First, 0);
        icmp.Proto = 1;
        icmp.IcmpType = 8;
        var active = Tcp("10.244.0.7", 40000, "10.244.0.9", 80, PalFlowReport.Active, PalFlowFlags.Owner | PalFlowFlags.RemoteNode);
        active.Packets = 1000;
        yield return ("tcp-connection", Records(syn, synAck, fin));
        yield return ("drop", Records(drop));
        yield return ("udp6-icmp-active", Records(udp6, icmp, active));
        yield return ("short-and-unknown", [4, 0, 1, 2, 3, 4, .. Records(syn)[..40]]);
    }

    private static PalFlowEvent Tcp(string source, ushort sport, string destination, ushort dport, PalFlowReport report, PalFlowFlags flags)
    {
        var r = new PalFlowEvent
        {
            Hdr = new PalEventHeader { Type = (uint)PalEventType.Flow, Size = (uint)sizeof(PalFlowEvent), KtimeNs = 5_000_000_000 },
            Proto = 6, Sport = sport, Dport = dport, TcpFlags = 0x02,
            Verdict = (byte)PalFlowVerdict.Forwarded, Direction = (byte)PalFlowDirection.Egress, ObsPoint = (byte)PalFlowObs.FromEndpoint,
            Report = (uint)report, Flags = (uint)flags, Ifindex = 3, OwnerTgid = 4242, OwnerKtime = 99, Packets = 1, Bytes = 60,
        };
        var s = new Span<byte>(r.Saddr, 16);
        var d = new Span<byte>(r.Daddr, 16);
        IPAddress.Parse(source).TryWriteBytes(s, out _);
        IPAddress.Parse(destination).TryWriteBytes(d, out _);
        return r;
    }

    private static byte[] Records(params PalFlowEvent[] records)
    {
        var result = new List<byte>();
        foreach (var r in records)
        {
            var bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<PalFlowEvent>(in r)).ToArray();
            result.Add((byte)bytes.Length);
            result.Add((byte)(bytes.Length >> 8));
            result.AddRange(bytes);
        }
        return [.. result];
    }

    private sealed class OnePod : IEndpointDirectory
    {
        public Endpoint? ById(uint id) => id == Pod.Id ? Pod : null;

        public Endpoint? ByAddress(IPAddress address) => address.Equals(Pod.IPv4) || address.Equals(Pod.IPv6) ? Pod : null;

        public IReadOnlyCollection<Endpoint> All => [Pod];
    }

    private sealed class OneProcess : IFlowProcessResolver
    {
        private static readonly ProcessRecord Curl = new()
        {
            ExecId = "ZnV6ei1ub2RlOjk5OjQyNDI=", Pid = 4242, Ktime = 99, StartTime = Boot, Binary = "/usr/bin/curl", Arguments = "http://10.244.0.9/",
        };

        public ProcessRecord? Resolve(uint tgid, ulong ktime) => tgid == Curl.Pid && ktime == Curl.Ktime ? Curl : null;
    }

    private sealed class OneInterface : IInterfaceNames
    {
        public string? Name(uint index) => index == 3 ? "lxc7" : null;
    }
}
