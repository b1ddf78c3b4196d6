using System.Net;
using System.Runtime.InteropServices;
using Palisade.Bpf.Abi;
using Palisade.Datapath;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Flows;
using Palisade.Events;

namespace Palisade.Tests.Flows;

/// <summary>Hand-built pal_flow_event records and the test doubles the decoder reads from.</summary>
internal static class FlowRecords
{
    public static readonly DateTimeOffset Boot = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    public static unsafe PalFlowEvent Tcp(string source, ushort sport, string destination, ushort dport, TcpFlags flags = TcpFlags.Syn)
    {
        var r = new PalFlowEvent
        {
            Hdr = new PalEventHeader { Type = (uint)PalEventType.Flow, Size = (uint)sizeof(PalFlowEvent), KtimeNs = 5_000_000_000 },
            Proto = 6,
            Sport = sport,
            Dport = dport,
            TcpFlags = (ushort)flags,
            Verdict = (byte)PalFlowVerdict.Forwarded,
            Direction = (byte)PalFlowDirection.Egress,
            ObsPoint = (byte)PalFlowObs.FromEndpoint,
            Report = (uint)PalFlowReport.First,
            Packets = 1,
            Bytes = 60,
        };
        SetAddresses(ref r, IPAddress.Parse(source), IPAddress.Parse(destination));
        return r;
    }

    public static unsafe void SetAddresses(ref PalFlowEvent r, IPAddress source, IPAddress destination)
    {
        var v6 = source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        r.Flags = v6 ? r.Flags | (uint)PalFlowFlags.Ipv6 : r.Flags & ~(uint)PalFlowFlags.Ipv6;
        fixed (uint* s = r.Saddr)
        fixed (uint* d = r.Daddr)
        {
            var sb = new Span<byte>(s, 16);
            var db = new Span<byte>(d, 16);
            sb.Clear();
            db.Clear();
            source.TryWriteBytes(sb, out _);
            destination.TryWriteBytes(db, out _);
        }
    }

    public static byte[] Bytes(PalFlowEvent r)
    {
        var bytes = new byte[Marshal.SizeOf<PalFlowEvent>()];
        MemoryMarshal.Write(bytes, in r);
        return bytes;
    }

    public static Endpoint Pod(uint id, string ns, string name, string ip, uint identity, params (string Key, string Value)[] labels) => new()
    {
        Id = id,
        ContainerId = $"c{id}",
        IfName = "eth0",
        Netns = $"/var/run/netns/c{id}",
        PodNamespace = ns,
        PodName = name,
        Labels = labels.ToDictionary(l => l.Key, l => l.Value),
        NamespaceLabels = new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = ns },
        Identity = identity,
        HostIfName = $"lxc{id}",
        HostMac = new byte[6],
        PodMac = new byte[6],
        IPv4 = IPAddress.Parse(ip),
    };

    public static ProcessRecord Curl(uint pid = 4242, ulong ktime = 123456789) => new()
    {
        ExecId = $"exec-{pid}-{ktime}", Pid = pid, Ktime = ktime, StartTime = Boot,
        Binary = "/usr/bin/curl", Arguments = "http://10.244.0.9/",
    };
}

/// <summary>Endpoints the test names.</summary>
internal sealed class FakeEndpoints(params Endpoint[] endpoints) : IEndpointDirectory
{
    public List<Endpoint> Items { get; } = [.. endpoints];

    public Endpoint? ById(uint id) => Items.FirstOrDefault(e => e.Id == id);

    public Endpoint? ByAddress(IPAddress address) => Items.FirstOrDefault(e => address.Equals(e.IPv4) || address.Equals(e.IPv6));

    public IReadOnlyCollection<Endpoint> All => Items;
}

/// <summary>Processes the test names, by (tgid, ktime); every lookup is recorded.</summary>
internal sealed class FakeProcesses(params ProcessRecord[] processes) : IFlowProcessResolver
{
    public List<(uint, ulong)> Lookups { get; } = [];

    public ProcessRecord? Resolve(uint tgid, ulong ktime)
    {
        Lookups.Add((tgid, ktime));
        return processes.FirstOrDefault(p => p.Pid == tgid && p.Ktime == ktime);
    }
}

internal sealed class FakeInterfaces(Dictionary<uint, string> names) : IInterfaceNames
{
    public int Calls { get; private set; }

    public string? Name(uint index)
    {
        Calls++;
        return names.TryGetValue(index, out var n) ? n : null;
    }
}
