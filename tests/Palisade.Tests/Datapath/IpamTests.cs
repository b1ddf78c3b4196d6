using System.Net;
using Palisade.Datapath;
using Palisade.Datapath.Ipam;

namespace Palisade.Tests.Datapath;

public sealed class IpamTests
{
    private static readonly IPNetwork V4 = IPNetwork.Parse("10.214.7.0/24");
    private static readonly IPNetwork V6 = IPNetwork.Parse("fd00:214::/64");

    private static AttachmentId Pod(int n) => new($"container-{n}", "eth0");

    [Fact]
    public void TheGatewayIsTheFirstAddressAndPodsGetTheNextOnes()
    {
        using var dir = new TempDirectory();
        var ipam = NodeIpam.Open([V4, V6], dir.Path);

        var first = ipam.Allocate(Pod(1));
        var second = ipam.Allocate(Pod(2));

        Assert.Equal(IPAddress.Parse("10.214.7.1"), ipam.IPv4!.Gateway);
        Assert.Equal(IPAddress.Parse("fd00:214::1"), ipam.IPv6!.Gateway);
        Assert.Equal(IPAddress.Parse("10.214.7.2"), first.IPv4);
        Assert.Equal(IPAddress.Parse("fd00:214::2"), first.IPv6);
        Assert.Equal(IPAddress.Parse("10.214.7.3"), second.IPv4);
        Assert.Equal(IPAddress.Parse("fd00:214::3"), second.IPv6);
        Assert.Equal((UInt128)253, ipam.IPv4.Capacity);
    }

    [Fact]
    public void TheSameAttachmentGetsTheSameAddressesBack()
    {
        using var dir = new TempDirectory();
        var ipam = NodeIpam.Open([V4], dir.Path);

        Assert.Equal(ipam.Allocate(Pod(1)), ipam.Allocate(Pod(1)));
        Assert.Single(ipam.Allocations);
    }

    [Fact]
    public void AllocationsSurviveARestart()
    {
        using var dir = new TempDirectory();
        var before = NodeIpam.Open([V4, V6], dir.Path);
        var a = before.Allocate(Pod(1));
        var b = before.Allocate(Pod(2));
        before.Release(Pod(1));

        var after = NodeIpam.Open([V4, V6], dir.Path);
        var c = after.Allocate(Pod(3));

        Assert.Null(after.Find(Pod(1)));
        Assert.Equal(b, after.Find(Pod(2)));
        Assert.NotEqual(b.IPv4, c.IPv4);
        Assert.NotEqual(b.IPv6, c.IPv6);
        Assert.Equal("container-2\neth0\n", File.ReadAllText(System.IO.Path.Combine(dir.Path, b.IPv4!.ToString())));
        Assert.False(File.Exists(System.IO.Path.Combine(dir.Path, a.IPv4!.ToString())));
    }

    [Fact]
    public void FiftyConcurrentAllocationsGetDistinctAddresses()
    {
        using var dir = new TempDirectory();
        var ipam = NodeIpam.Open([V4, V6], dir.Path);

        var results = new IpAllocation[50];
        Parallel.For(0, 50, new ParallelOptions { MaxDegreeOfParallelism = 50 }, i => results[i] = ipam.Allocate(Pod(i)));

        Assert.Equal(50, results.Select(r => r.IPv4).Distinct().Count());
        Assert.Equal(50, results.Select(r => r.IPv6).Distinct().Count());
        Assert.Equal(50, NodeIpam.Open([V4, V6], dir.Path).Allocations.Count);
    }

    [Fact]
    public void AnExhaustedPoolSaysWhichAndWhatToDo()
    {
        using var dir = new TempDirectory();
        var ipam = NodeIpam.Open([IPNetwork.Parse("10.214.9.0/30")], dir.Path);
        ipam.Allocate(Pod(1));

        var e = Assert.Throws<IpamException>(() => ipam.Allocate(Pod(2)));

        Assert.Contains("IPv4 pod CIDR 10.214.9.0/30 is exhausted: all 1 pod addresses are allocated", e.Message, StringComparison.Ordinal);
        Assert.Contains("Fix:", e.Message, StringComparison.Ordinal);
        Assert.Single(ipam.Allocations);
    }

    [Fact]
    public void AFullIPv6PoolReleasesTheIPv4AddressItTook()
    {
        using var dir = new TempDirectory();
        var ipam = NodeIpam.Open([V4, IPNetwork.Parse("fd00:214::/126")], dir.Path);
        ipam.Allocate(Pod(1));
        ipam.Allocate(Pod(2));

        Assert.Throws<IpamException>(() => ipam.Allocate(Pod(3)));

        Assert.Equal(2, ipam.IPv4!.Used);
    }

    [Fact]
    public void AReleasedAddressIsNotHandedOutAgainAtOnce()
    {
        using var dir = new TempDirectory();
        var ipam = NodeIpam.Open([V4], dir.Path);
        var first = ipam.Allocate(Pod(1)).IPv4;
        ipam.Release(Pod(1));

        Assert.NotEqual(first, ipam.Allocate(Pod(2)).IPv4);
    }

    [Fact]
    public void GcReleasesTheAddressesOfAttachmentsThatAreGone()
    {
        using var dir = new TempDirectory();
        var ipam = NodeIpam.Open([V4], dir.Path);
        ipam.Allocate(Pod(1));
        ipam.Allocate(Pod(2));
        ipam.Allocate(Pod(3));

        var released = ipam.ReleaseUnowned(owner => owner == Pod(2));

        Assert.Equal([Pod(1), Pod(3)], released.OrderBy(o => o.ContainerId));
        Assert.Equal(Pod(2), Assert.Single(NodeIpam.Open([V4], dir.Path).Allocations).Key);
    }

    [Fact]
    public void StateOutsideTheCurrentPodCidrIsIgnoredAndReported()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(System.IO.Path.Combine(dir.Path, "10.99.0.5"), "old\neth0\n");
        File.WriteAllText(System.IO.Path.Combine(dir.Path, "garbage"), "x");

        var ipam = NodeIpam.Open([V4], dir.Path);

        Assert.Empty(ipam.Allocations);
        Assert.Equal(2, ipam.Ignored.Count);
        Assert.Contains(ipam.Ignored, i => i.Contains("10.99.0.5 is outside the pod CIDRs 10.214.7.0/24", StringComparison.Ordinal));
    }

    [Fact]
    public void ATooSmallPodCidrIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new IpPool(IPNetwork.Parse("10.214.0.0/31")));

        Assert.Contains("too small", e.Message, StringComparison.Ordinal);
    }
}
