using System.Net;
using Palisade.Bpf;
using Palisade.Bpf.Probe;
using Palisade.Datapath;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Bpf;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>
/// The tc programs of bpf/net/endpoint.bpf.c run by BPF_PROG_RUN on hand-built frames: two
/// endpoints whose host veths are made-up ifindexes, no namespaces, no traffic.
/// </summary>
public sealed unsafe class EndpointProgramTests : IDisposable
{
    private const uint TcActOk = 0, TcActShot = 2, TcActRedirect = 7;
    private const int IfA = 900011, IfB = 900012;

    private static readonly byte[] PodMacA = [0x02, 0, 0, 0, 0x0a, 0x02], HostMacA = [0x02, 0, 0, 0, 0x0a, 0x01];
    private static readonly byte[] PodMacB = [0x02, 0, 0, 0, 0x0b, 0x02], HostMacB = [0x02, 0, 0, 0, 0x0b, 0x01];

    private readonly EndpointDatapath _datapath;
    private readonly FlowRecords _flows;
    private readonly Endpoint _a;
    private readonly Endpoint _b;

    public EndpointProgramTests()
    {
        Kernel.Require(KernelFeature.Tc);
        _datapath = EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null });
        _flows = new FlowRecords(_datapath.EventRing, background: false);
        _a = Pod(11, "a", IfA, PodMacA, HostMacA, "10.213.7.2", "fd00:213::7:2", identity: 1001);
        _b = Pod(12, "b", IfB, PodMacB, HostMacB, "10.213.7.3", "fd00:213::7:3", identity: 1002);
        _datapath.WriteEntries(_a, IfA);
        _datapath.WriteEntries(_b, IfB);
    }

    public void Dispose()
    {
        _flows.Dispose();
        _datapath.Dispose();
    }

    private static Endpoint Pod(uint id, string name, int ifindex, byte[] podMac, byte[] hostMac, string v4, string v6, uint identity) => new()
    {
        Id = id,
        ContainerId = "test-" + name,
        IfName = "eth0",
        Netns = "/var/run/netns/none",
        NetnsInode = 4026530000 + id,
        HostIfName = "palprog" + name,
        HostIfIndex = ifindex,
        HostMac = hostMac,
        PodMac = podMac,
        IPv4 = IPAddress.Parse(v4),
        IPv6 = IPAddress.Parse(v6),
        Identity = identity,
    };

    private static IPAddress Addr(Endpoint ep, bool v6) => v6 ? ep.IPv6! : ep.IPv4!;

    private BpfTestRunResult FromEndpoint(byte[] frame, int ifindex) =>
        _datapath.Object.Program("pal_from_endpoint").TestRun(frame, Frames.SkbContext(ifindex), outputSize: frame.Length + 64);

    private ulong Counter(DatapathCounter counter) => _datapath.Counters()[counter];

    private static IPAddress Src(PalFlowEvent e) => DatapathKeys.Address(new ReadOnlySpan<uint>(e.Saddr, 4), (e.Flags & (uint)PalFlowFlags.Ipv6) != 0);

    private static IPAddress Dst(PalFlowEvent e) => DatapathKeys.Address(new ReadOnlySpan<uint>(e.Daddr, 4), (e.Flags & (uint)PalFlowFlags.Ipv6) != 0);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ASpoofedSourceIsDroppedWithInvalidSourceIpAndADropRecord(bool v6)
    {
        var spoofed = IPAddress.Parse(v6 ? "fd00:213::66:66" : "10.213.66.66");
        var frame = Frames.UdpFrame(PodMacA, HostMacA, spoofed, Addr(_b, v6), 5000, 53);

        var result = FromEndpoint(frame, IfA);

        Assert.Equal(TcActShot, result.ReturnValue);
        Assert.Equal(1UL, Counter(DatapathCounter.DropInvalidSip));
        var record = Assert.Single(_flows.Take());
        Assert.Equal((byte)PalFlowVerdict.Dropped, record.Verdict);
        Assert.Equal((uint)NetDropReason.InvalidSip, record.DropReason);
        Assert.Equal(132u, record.DropReason);
        Assert.True((record.Report & (uint)PalFlowReport.Drop) != 0, $"report {record.Report}");
        Assert.Equal(spoofed, Src(record));
        Assert.Equal(_a.Id, record.SrcEp);
        Assert.Equal((uint)IfA, record.Ifindex);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ALocalDestinationIsRedirectedWithTheMacsOfItsVethAndOneRecordPerSide(bool v6)
    {
        var frame = Frames.TcpFrame(PodMacA, HostMacA, Addr(_a, v6), Addr(_b, v6), 40000, 80, Frames.Syn);

        var result = FromEndpoint(frame, IfA);

        Assert.Equal(TcActRedirect, result.ReturnValue);
        var output = result.Output;
        Assert.Equal(PodMacB, output[..6]);
        Assert.Equal(HostMacB, output[6..12]);
        if (v6)
        {
            Assert.Equal(63, output[Frames.L3 + 7]);
        }
        else
        {
            Assert.Equal(63, output[Frames.L3 + 8]);
            Assert.Equal(0, Frames.Checksum(output.AsSpan(Frames.L3, 20)));
        }
        Assert.Equal(frame[Frames.L3..(Frames.L3 + 7)], output[Frames.L3..(Frames.L3 + 7)]);
        Assert.Equal(1UL, Counter(DatapathCounter.Redirected));

        var records = _flows.Take();
        Assert.Equal(2, records.Count);
        var egress = Assert.Single(records, r => r.ObsPoint == (byte)PalFlowObs.FromEndpoint);
        var ingress = Assert.Single(records, r => r.ObsPoint == (byte)PalFlowObs.ToEndpoint);
        foreach (var r in records)
        {
            Assert.Equal((byte)PalFlowVerdict.Forwarded, r.Verdict);
            Assert.Equal(_a.Id, r.SrcEp);
            Assert.Equal(_b.Id, r.DstEp);
            Assert.Equal(1001u, r.SrcIdentity);
            Assert.Equal(1002u, r.DstIdentity);
            Assert.Equal(Addr(_a, v6), Src(r));
            Assert.Equal(Addr(_b, v6), Dst(r));
            Assert.Equal((ushort)40000, r.Sport);
            Assert.Equal((ushort)80, r.Dport);
            Assert.Equal(v6, (r.Flags & (uint)PalFlowFlags.Ipv6) != 0);
            Assert.Equal((uint)PalFlowReport.First, r.Report);
        }
        Assert.Equal((byte)PalFlowDirection.Egress, egress.Direction);
        Assert.Equal((uint)IfA, egress.Ifindex);
        Assert.Equal((byte)PalFlowDirection.Ingress, ingress.Direction);
        Assert.Equal((uint)IfB, ingress.Ifindex);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ADestinationThatIsNoLocalEndpointGoesToTheHostStackUnchanged(bool v6)
    {
        var world = IPAddress.Parse(v6 ? "2001:db8::1" : "192.0.2.1");
        var gateway = IPAddress.Parse(v6 ? "fd00:213::1" : "10.213.0.1");
        var remotePod = IPAddress.Parse(v6 ? "fd00:214::5" : "10.214.0.5");
        _datapath.SetHostAddresses([gateway]);
        _datapath.UpsertRemoteNode(new RemoteNode("node-2", IPAddress.Parse("192.0.2.200"),
            [IPNetwork.Parse(v6 ? "fd00:214::/64" : "10.214.0.0/24")]));

        var results = new[] { world, gateway, remotePod }
            .Select(dst => (dst, frame: Frames.EchoRequest(PodMacA, HostMacA, Addr(_a, v6), dst, 7)))
            .Select(x => (x.dst, x.frame, result: FromEndpoint(x.frame, IfA)))
            .ToList();

        foreach (var (_, frame, result) in results)
        {
            Assert.Equal(TcActOk, result.ReturnValue);
            Assert.Equal(frame, result.Output);
        }
        Assert.Equal(3UL, Counter(DatapathCounter.ToStack));
        var records = _flows.Take();
        Assert.Equal(3, records.Count);
        Assert.All(records, r =>
        {
            Assert.Equal((byte)PalFlowObs.ToStack, r.ObsPoint);
            Assert.Equal((byte)PalFlowDirection.Egress, r.Direction);
            Assert.Equal(0u, r.DstEp);
            Assert.Equal((byte)(v6 ? 128 : 8), r.IcmpType);
        });
        Assert.Equal((uint)ReservedIdentity.World, records.Single(r => Dst(r).Equals(world)).DstIdentity);
        Assert.Equal((uint)ReservedIdentity.Host, records.Single(r => Dst(r).Equals(gateway)).DstIdentity);
        var remote = records.Single(r => Dst(r).Equals(remotePod));
        Assert.True((remote.Flags & (uint)PalFlowFlags.RemoteNode) != 0, $"flags {remote.Flags}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AConnectionIsReportedOnItsFirstPacketNewFlagsAndCloseAndCountedBetween(bool v6)
    {
        var a = Addr(_a, v6);
        var b = Addr(_b, v6);
        var world = IPAddress.Parse(v6 ? "2001:db8::9" : "192.0.2.9");

        FromEndpoint(Frames.TcpFrame(PodMacA, HostMacA, a, world, 41000, 443, Frames.Syn), IfA);
        var first = Assert.Single(_flows.Take());
        for (var i = 0; i < 3; i++)
        {
            FromEndpoint(Frames.TcpFrame(PodMacA, HostMacA, a, world, 41000, 443, Frames.Ack, payload: 100), IfA);
        }
        var quiet = _flows.Take();
        FromEndpoint(Frames.TcpFrame(PodMacA, HostMacA, a, world, 41000, 443, (byte)(Frames.Fin | Frames.Ack)), IfA);
        var close = Assert.Single(_flows.Take());
        // The reply direction of a local connection: B answers A's SYN.
        FromEndpoint(Frames.TcpFrame(PodMacA, HostMacA, a, b, 42000, 8080, Frames.Syn), IfA);
        _flows.Take();
        FromEndpoint(Frames.TcpFrame(PodMacB, HostMacB, b, a, 8080, 42000, (byte)(Frames.Syn | Frames.Ack)), IfB);
        var replies = _flows.Take();

        Assert.Equal((uint)PalFlowReport.First, first.Report);
        Assert.Equal(1UL, first.Packets);
        Assert.Empty(quiet);
        Assert.Equal(3UL, Counter(DatapathCounter.FlowAggregated));
        Assert.Equal((uint)(PalFlowReport.State | PalFlowReport.Close), close.Report);
        Assert.Equal(4UL, close.Packets);
        Assert.True(close.Bytes > first.Bytes * 3, $"{close.Bytes} bytes for 3 packets with payload and a FIN");
        Assert.Equal(2, replies.Count);
        Assert.All(replies, r =>
        {
            Assert.True((r.Report & (uint)PalFlowReport.Reply) != 0, $"report {r.Report}");
            Assert.Equal(_b.Id, r.SrcEp);
        });
        // At B the reply leaves B on a connection B accepted (ingress); at A it arrives on one A made (egress).
        Assert.Equal((byte)PalFlowDirection.Ingress, replies.Single(r => r.ObsPoint == (byte)PalFlowObs.FromEndpoint).Direction);
        Assert.Equal((byte)PalFlowDirection.Egress, replies.Single(r => r.ObsPoint == (byte)PalFlowObs.ToEndpoint).Direction);
    }

    [Fact]
    public void AConnectionWithNothingNewIsReportedAgainOnceTheReportIntervalPassed()
    {
        using var datapath = EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null, ReportInterval = TimeSpan.FromMilliseconds(200) });
        using var flows = new FlowRecords(datapath.EventRing, background: false);
        datapath.WriteEntries(_a, IfA);
        var world = IPAddress.Parse("192.0.2.9");
        void Send(byte flags, int payload = 0) =>
            datapath.Object.Program("pal_from_endpoint").TestRun(Frames.TcpFrame(PodMacA, HostMacA, _a.IPv4!, world, 41001, 443, flags, payload: payload), Frames.SkbContext(IfA), outputSize: 256);

        Send(Frames.Syn);
        Send(Frames.Ack, payload: 100);
        var early = flows.Take();
        // Past the interval (waited for, not timed): the next packet carries a periodic report.
        Thread.Sleep(TimeSpan.FromMilliseconds(300));
        Send(Frames.Ack, payload: 100);
        var late = flows.Take();
        Send(Frames.Ack, payload: 100);
        var after = flows.Take();

        Assert.Equal((uint)PalFlowReport.First, Assert.Single(early).Report);
        var active = Assert.Single(late);
        Assert.Equal((uint)PalFlowReport.Active, active.Report);
        Assert.Equal(2UL, active.Packets);
        Assert.Empty(after);
    }

    [Fact]
    public void WithFlowRecordsOffNothingIsWrittenAndPacketsStillForward()
    {
        using var datapath = EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null, FlowRecords = false });
        using var flows = new FlowRecords(datapath.EventRing, background: false);
        datapath.WriteEntries(_a, IfA);
        datapath.WriteEntries(_b, IfB);

        var run = datapath.Object.Program("pal_from_endpoint").TestRun(
            Frames.TcpFrame(PodMacA, HostMacA, _a.IPv4!, _b.IPv4!, 41002, 80, Frames.Syn), Frames.SkbContext(IfA), outputSize: 256);

        Assert.Equal(TcActRedirect, run.ReturnValue); // forwarded to B as before
        Assert.Empty(flows.Take());
        Assert.Equal(1UL, datapath.Counters()[DatapathCounter.Redirected]);
    }

    [Fact]
    public void ArpAndNeighbourDiscoveryPassWithoutARecord()
    {
        var arp = new byte[64];
        HostMacA.CopyTo(arp, 0);
        PodMacA.CopyTo(arp, 6);
        arp[12] = 0x08;
        arp[13] = 0x06;
        var solicitation = Frames.EchoRequest(PodMacA, HostMacA, _a.IPv6!, IPAddress.Parse("ff02::1:ff00:1"), 0);
        solicitation[Frames.L3 + 40] = 135; // ICMPv6 neighbour solicitation

        Assert.Equal(TcActOk, FromEndpoint(arp, IfA).ReturnValue);
        Assert.Equal(TcActOk, FromEndpoint(solicitation, IfA).ReturnValue);

        Assert.Equal(2UL, Counter(DatapathCounter.PassedL2));
        Assert.Empty(_flows.Take());
    }

    [Fact]
    public void AnIpHeaderShorterThanItsMinimumIsDroppedAsInvalid()
    {
        // BPF_PROG_RUN refuses frames shorter than an IP header, so the header lies about its length.
        var frame = Frames.UdpFrame(PodMacA, HostMacA, _a.IPv4!, _b.IPv4!, 1, 2);
        frame[Frames.L3] = 0x44; // IHL 4: 16 bytes, below the 20 every IPv4 header has

        Assert.Equal(TcActShot, FromEndpoint(frame, IfA).ReturnValue);

        Assert.Equal(1UL, Counter(DatapathCounter.DropInvalid));
        Assert.Equal((uint)NetDropReason.Invalid, Assert.Single(_flows.Take()).DropReason);
    }

    [Fact]
    public void APacketOnADeviceThatIsNoEndpointsPassesUntouched()
    {
        var frame = Frames.UdpFrame(PodMacA, HostMacA, _a.IPv4!, _b.IPv4!, 1, 2);

        var result = FromEndpoint(frame, 900099);

        Assert.Equal(TcActOk, result.ReturnValue);
        Assert.Equal(frame, result.Output);
        Assert.Equal(1UL, Counter(DatapathCounter.NoEndpoint));
    }
}
