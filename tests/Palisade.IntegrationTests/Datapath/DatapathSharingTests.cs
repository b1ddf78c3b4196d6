using System.Net;
using Palisade.Bpf.Probe;
using Palisade.Datapath;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Bpf;
using Palisade.Datapath.Sockets;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>What the datapath shares with other objects (the sensor's ring buffer, the socket-owner table, its pins), and how it refuses bad input.</summary>
public sealed class DatapathSharingTests
{
    private static readonly byte[] PodMacA = [0x02, 0, 0, 0, 0x0c, 0x02], HostMacA = [0x02, 0, 0, 0, 0x0c, 0x01];
    private static readonly byte[] PodMacB = [0x02, 0, 0, 0, 0x0d, 0x02], HostMacB = [0x02, 0, 0, 0, 0x0d, 0x01];
    private const int IfA = 900021, IfB = 900022;

    private static Endpoint Pod(uint id, int ifindex, byte[] podMac, byte[] hostMac, string v4) => new()
    {
        Id = id,
        ContainerId = $"share-{id}",
        IfName = "eth0",
        Netns = "/var/run/netns/none",
        NetnsInode = 4026540000 + id,
        HostIfName = $"palshare{id}",
        HostIfIndex = ifindex,
        HostMac = hostMac,
        PodMac = podMac,
        IPv4 = IPAddress.Parse(v4),
        Identity = 3000 + id,
    };

    [Fact]
    public void FlowRecordsGoOnTheProcessSensorsRingBufferWhenItIsShared()
    {
        Kernel.Require(KernelFeature.Tc);
        using var sensor = new SensorHarness(startReader: false);
        using var datapath = EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null, EventRing = sensor.Sensor.EventMap });
        using var flows = new FlowRecords(sensor.Sensor.EventMap, background: false);
        var a = Pod(31, IfA, PodMacA, HostMacA, "10.213.9.2");
        datapath.WriteEntries(a, IfA);

        var frame = Frames.UdpFrame(PodMacA, HostMacA, a.IPv4!, IPAddress.Parse("192.0.2.7"), 5353, 53);
        datapath.Object.Program("pal_from_endpoint").TestRun(frame, Frames.SkbContext(IfA), frame.Length + 64);

        var record = Assert.Single(flows.Take());
        Assert.Equal(a.Id, record.SrcEp);
        Assert.Equal((ushort)53, record.Dport);
    }

    [Fact]
    public void TheSocketOwnerTableNamesTheProcessOfEachSideOfALocalConnection()
    {
        Kernel.Require(KernelFeature.Tc);
        // The first object stands in for bpf/net/sock.bpf.c, which owns the table.
        using var owner = EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null });
        using var datapath = EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null, SocketOwners = owner.SocketOwners });
        using var flows = new FlowRecords(datapath.EventRing, background: false);
        var a = Pod(41, IfA, PodMacA, HostMacA, "10.213.9.2");
        var b = Pod(42, IfB, PodMacB, HostMacB, "10.213.9.3");
        datapath.WriteEntries(a, IfA);
        datapath.WriteEntries(b, IfB);
        var table = owner.SocketOwners.Typed<PalSockKey, PalSockOwner>();
        table.Update(new PalSockKey { Netns = a.NetnsInode, Port = 43000, Proto = Frames.Tcp, Family = SocketKey.Inet }, new PalSockOwner { Tgid = 1111, Ktime = 11 });
        table.Update(new PalSockKey { Netns = b.NetnsInode, Port = 8443, Proto = Frames.Tcp, Family = SocketKey.Inet6 }, new PalSockOwner { Tgid = 2222, Ktime = 22 });

        var frame = Frames.TcpFrame(PodMacA, HostMacA, a.IPv4!, b.IPv4!, 43000, 8443, Frames.Syn);
        datapath.Object.Program("pal_from_endpoint").TestRun(frame, Frames.SkbContext(IfA), frame.Length + 64);

        var records = flows.Take();
        Assert.Equal(2, records.Count);
        Assert.All(records, r => Assert.True((r.Flags & (uint)PalFlowFlags.Owner) != 0, $"flags {r.Flags}"));
        var sender = records.Single(r => r.ObsPoint == (byte)PalFlowObs.FromEndpoint);
        var receiver = records.Single(r => r.ObsPoint == (byte)PalFlowObs.ToEndpoint);
        Assert.Equal((1111u, 11UL), (sender.OwnerTgid, sender.OwnerKtime));
        Assert.Equal((2222u, 22UL), (receiver.OwnerTgid, receiver.OwnerKtime));
    }

    [Fact]
    public void AFullFlowTableEvictsAndCountsWhatItEvicted()
    {
        Kernel.Require(KernelFeature.Tc);
        using var datapath = EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null, FlowEntries = 1024 });
        var a = Pod(61, IfA, PodMacA, HostMacA, "10.213.9.2");
        datapath.WriteEntries(a, IfA);
        var program = datapath.Object.Program("pal_from_endpoint");
        var world = IPAddress.Parse("192.0.2.8");

        for (var port = 0; port < 3000; port++)
        {
            var frame = Frames.UdpFrame(PodMacA, HostMacA, a.IPv4!, world, (ushort)(10000 + port), 53);
            program.TestRun(frame, Frames.SkbContext(IfA), frame.Length + 64);
        }

        var (entries, capacity, evicted) = datapath.FlowTableUsage();
        Assert.Equal(1024, capacity);
        Assert.True(entries <= capacity, $"{entries} entries in a table of {capacity}");
        Assert.Equal(3000UL, (ulong)entries + evicted);
        Assert.Equal(3000UL, datapath.Counters()[DatapathCounter.FlowCreated]);
    }

    [Fact]
    public void PinsOfADifferentSizeAreRefusedWithTheFix()
    {
        Kernel.Require(KernelFeature.Tc);
        var root = $"/sys/fs/bpf/palisade-test-{Guid.NewGuid():N}";
        var pins = Path.Combine(root, "net");
        try
        {
            EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = pins }).Dispose();

            var error = Assert.Throws<InvalidOperationException>(() =>
                EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = pins, FlowEntries = 4096 }));

            Assert.Contains(pins, error.Message, StringComparison.Ordinal);
            Assert.Contains("rm -r", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    [Fact]
    public void AnEndpointWithoutAddressOrWithAShortMacIsRefusedByName()
    {
        Kernel.Require(KernelFeature.Tc);
        using var datapath = EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null });
        var good = Pod(51, IfA, PodMacA, HostMacA, "10.213.9.2");

        var noAddress = Assert.Throws<ArgumentException>(() => datapath.Install(good with { IPv4 = null }));
        var shortMac = Assert.Throws<ArgumentException>(() => datapath.Install(good with { PodMac = [1, 2, 3] }));
        var badId = Assert.Throws<ArgumentException>(() => datapath.Install(good with { Id = 70000 }));

        Assert.Contains("neither IPv4 nor IPv6", noAddress.Message, StringComparison.Ordinal);
        Assert.Contains("PodMac must be 6 bytes", shortMac.Message, StringComparison.Ordinal);
        Assert.Contains("Endpoint.Id 70000", badId.Message, StringComparison.Ordinal);
    }
}
