using Palisade.Datapath.Bpf;

namespace Palisade.Tests.Datapath;

public sealed class NetpolKeysTests
{
    [Fact]
    public void AFullPortEntryHasTheFixedPrefixPlus24AndThePortInNetworkOrder()
    {
        var (key, value) = NetpolKeys.Entry(1234, 1, 6, 80, 24, 0, 42);

        Assert.Equal(40u + 24u, key.Prefixlen);
        Assert.Equal(1234u, key.Identity);
        Assert.Equal(1, key.Direction);
        Assert.Equal(6, key.Protocol);
        Assert.Equal((ushort)0x5000, key.Dport); // 80 = 0x0050, big-endian in memory
        Assert.Equal(0, value.Flags);
        Assert.Equal(24, value.L4Prefix);
        Assert.Equal(0, value.ProxyPort);
        Assert.Equal(42u, value.Rule);
    }

    [Fact]
    public void ARangePrefixKeepsOnlyItsPortBitsAndWildcardsDropProtocolAndPort()
    {
        // 8000..8003: protocol (8) + 14 port bits; the low bits of 8002 do not belong in the key.
        var range = NetpolKeys.Entry(0, 0, 17, 8002, 22, 1, 5).Key;
        var anyPort = NetpolKeys.Entry(0, 0, 17, 53, 8, 0, 6).Key;
        var anyProtocol = NetpolKeys.Entry(7, 0, 6, 443, 0, 3, 7);

        Assert.Equal(62u, range.Prefixlen);
        Assert.Equal(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((ushort)8000), range.Dport);
        Assert.Equal(48u, anyPort.Prefixlen);
        Assert.Equal(17, anyPort.Protocol);
        Assert.Equal(0, anyPort.Dport);
        Assert.Equal(40u, anyProtocol.Key.Prefixlen);
        Assert.Equal(0, anyProtocol.Key.Protocol);
        Assert.Equal(0, anyProtocol.Key.Dport);
        Assert.Equal(3, anyProtocol.Value.Flags);
    }

    [Fact]
    public void AnIcmpTypeIsThePort()
    {
        var key = NetpolKeys.Entry(0, 0, 1, 8, 24, 0, 1).Key;

        Assert.Equal(1, key.Protocol);
        Assert.Equal((ushort)0x0800, key.Dport);
    }

    [Theory]
    [InlineData(2, 24, "direction")]
    [InlineData(0, 25, "l4Prefix")]
    public void OutOfRangeArgumentsAreNamed(byte direction, byte l4Prefix, string name)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => NetpolKeys.Entry(1, direction, 6, 80, l4Prefix, 0, 1));

        Assert.Equal(name, e.ParamName);
    }
}
