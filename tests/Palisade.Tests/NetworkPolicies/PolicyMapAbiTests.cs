using System.Runtime.InteropServices;
using Palisade.Datapath.Abi;
using Palisade.Policies.Network.Compilation;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>The policy map's key and value twins have the layout of bpf/include/pal_netpol.h (the BTF test compares them too).</summary>
public sealed class PolicyMapAbiTests
{
    [Fact]
    public void TheKeyIsTwelveBytesWithTheLpmPrefixFirstAndThePortLast()
    {
        Assert.Equal(12, Marshal.SizeOf<PalNetpolKey>());
        Assert.Equal(0, (int)Marshal.OffsetOf<PalNetpolKey>(nameof(PalNetpolKey.Prefixlen)));
        Assert.Equal(4, (int)Marshal.OffsetOf<PalNetpolKey>(nameof(PalNetpolKey.Identity)));
        Assert.Equal(8, (int)Marshal.OffsetOf<PalNetpolKey>(nameof(PalNetpolKey.Direction)));
        Assert.Equal(9, (int)Marshal.OffsetOf<PalNetpolKey>(nameof(PalNetpolKey.Protocol)));
        Assert.Equal(10, (int)Marshal.OffsetOf<PalNetpolKey>(nameof(PalNetpolKey.Dport)));
        // The LPM data after prefixlen is exactly the full prefix.
        Assert.Equal((int)PolicyMapSizes.PrefixFull, 8 * (Marshal.SizeOf<PalNetpolKey>() - sizeof(uint)));
        Assert.Equal((int)PolicyMapSizes.PrefixFull, (int)PolicyMapSizes.PrefixFixed + (int)PolicyMapSizes.ProtoBits + (int)PolicyMapSizes.PortBits);
    }

    [Fact]
    public void TheValueIsEightBytesWithTheRuleReferenceLast()
    {
        Assert.Equal(8, Marshal.SizeOf<PalNetpolValue>());
        Assert.Equal(0, (int)Marshal.OffsetOf<PalNetpolValue>(nameof(PalNetpolValue.Flags)));
        Assert.Equal(1, (int)Marshal.OffsetOf<PalNetpolValue>(nameof(PalNetpolValue.L4Prefix)));
        Assert.Equal(2, (int)Marshal.OffsetOf<PalNetpolValue>(nameof(PalNetpolValue.ProxyPort)));
        Assert.Equal(4, (int)Marshal.OffsetOf<PalNetpolValue>(nameof(PalNetpolValue.Rule)));
    }

    [Fact]
    public void TheCompilersReservedIdentitiesAreTheDatapathsNumbers()
    {
        Assert.Equal((uint)ReservedIdentity.Host, ReservedIdentities.Host);
        Assert.Equal((uint)ReservedIdentity.World, ReservedIdentities.World);
        Assert.Equal((uint)ReservedIdentity.Unmanaged, ReservedIdentities.Unmanaged);
        Assert.Equal((uint)ReservedIdentity.Health, ReservedIdentities.Health);
        Assert.Equal((uint)ReservedIdentity.Init, ReservedIdentities.Init);
        Assert.Equal((uint)ReservedIdentity.RemoteNode, ReservedIdentities.RemoteNode);
        Assert.Equal((uint)ReservedIdentity.KubeApiserver, ReservedIdentities.KubeApiServer);
        Assert.Equal((uint)ReservedIdentity.Unknown, ReservedIdentities.Any);
    }

    [Theory]
    [InlineData(80, 80, "80/16")]
    [InlineData(80, 81, "80/15")]
    [InlineData(0, 65535, "0/0")]
    [InlineData(1, 65535, "1/16 2/15 4/14 8/13 16/12 32/11 64/10 128/9 256/8 512/7 1024/6 2048/5 4096/4 8192/3 16384/2 32768/1")]
    [InlineData(8000, 8010, "8000/13 8008/15 8010/16")]
    public void APortRangeBecomesTheFewestPrefixesThatCoverExactlyIt(int first, int last, string expected)
    {
        var prefixes = PortPrefixes.Split(first, last).ToList();

        Assert.Equal(expected, string.Join(" ", prefixes.Select(p => $"{p.Port}/{p.Bits}")));
        var covered = prefixes.SelectMany(p => Enumerable.Range(p.Port, 1 << (16 - p.Bits))).ToList();
        Assert.Equal(Enumerable.Range(first, last - first + 1), covered);
    }
}
