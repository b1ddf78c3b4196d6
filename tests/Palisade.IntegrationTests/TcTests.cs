using Palisade.Bpf;
using Palisade.Bpf.Probe;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

public sealed class TcTests
{
    private static ulong Sum(BpfObject obj, uint key)
    {
        Assert.True(obj.Map("tc_counts").PerCpu<uint, ulong>().TryLookup(key, out var perCpu));
        return perCpu.Aggregate(0UL, (a, b) => a + b);
    }

    [Fact]
    public void ATcProgramOnAVethInATestNamespaceSeesThePings()
    {
        Kernel.Require(KernelFeature.Tc);
        using var network = new TestNetwork();
        using var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "tc_count.bpf.o");
        obj.Load();
        using var attachment = obj.Program("tc_count").AttachTc(network.InterfaceB, TcDirection.Ingress, TestNetwork.NetnsPath(network.NamespaceB));

        var ping = network.PingBFromA(3);

        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr);
        Assert.True(Sum(obj, 0) >= 3, $"the program counted {Sum(obj, 0)} packets for 3 pings");
        Assert.True(Sum(obj, 1) >= 3 * 84, "3 ICMP echo requests are at least 84 bytes each");
        var filters = Command.Check("ip", "netns", "exec", network.NamespaceB, "tc", "filter", "show", "dev", network.InterfaceB, "ingress");
        Assert.Contains("tc_count", filters, StringComparison.Ordinal);
    }

    [Fact]
    public void DetachingRemovesTheFilterAndTheQdiscItCreated()
    {
        Kernel.Require(KernelFeature.Tc);
        using var network = new TestNetwork();
        using var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "tc_count.bpf.o");
        obj.Load();
        var attachment = obj.Program("tc_count").AttachTc(network.InterfaceB, TcDirection.Ingress, TestNetwork.NetnsPath(network.NamespaceB));

        attachment.Dispose();

        var qdiscs = Command.Check("ip", "netns", "exec", network.NamespaceB, "tc", "qdisc", "show", "dev", network.InterfaceB);
        Assert.DoesNotContain("clsact", qdiscs, StringComparison.Ordinal);
        network.PingBFromA(1);
        Assert.Equal(0UL, Sum(obj, 0));
    }

    [Fact]
    public void BpfProgRunCountsAHandBuiltFrameAndPassesIt()
    {
        Kernel.Require(KernelFeature.Tc);
        using var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "tc_count.bpf.o");
        obj.Load();
        // Ethernet (14) + IPv4 header (20) + 30 bytes of payload, enough for the kernel's minimum.
        var frame = new byte[64];
        frame[12] = 0x08; // ethertype IPv4
        frame[14] = 0x45; // version 4, IHL 5

        var result = obj.Program("tc_count").TestRun(frame, outputSize: 128);

        Assert.Equal(0u, result.ReturnValue); // TC_ACT_OK
        Assert.Equal(1UL, Sum(obj, 0));
        Assert.Equal(64UL, Sum(obj, 1));
        Assert.Equal(frame, result.Output);
    }
}
