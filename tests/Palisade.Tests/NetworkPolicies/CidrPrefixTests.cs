using System.Net;
using Palisade.Policies.Network;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>Prefix containment, which the compiler's CIDR peers, excepts and ipBlock pod matching all rest on.</summary>
public sealed class CidrPrefixTests
{
    private static CidrPrefix P(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        return new CidrPrefix(IPAddress.Parse(text[..slash]), int.Parse(text[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("10.0.0.0/8", "10.1.2.0/24", true)]
    [InlineData("10.0.0.0/8", "10.0.0.0/8", true)]
    [InlineData("10.0.0.0/8", "11.0.0.0/8", false)]
    [InlineData("10.1.2.0/24", "10.0.0.0/8", false)]
    [InlineData("10.1.0.0/17", "10.1.127.255/32", true)]
    [InlineData("10.1.0.0/17", "10.1.128.0/32", false)]
    [InlineData("0.0.0.0/0", "255.255.255.255/32", true)]
    [InlineData("0.0.0.0/0", "::/0", false)]
    [InlineData("::/0", "fd00::1/128", true)]
    [InlineData("fd00::/8", "fd12:3456::/32", true)]
    [InlineData("fd00::/8", "fe80::/10", false)]
    [InlineData("192.168.1.1/32", "192.168.1.1/32", true)]
    [InlineData("192.168.1.1/32", "192.168.1.2/32", false)]
    public void AContainsBOnlyWhenBIsOfTheSameFamilyNoShorterAndUnderAsPrefix(string a, string b, bool expected) =>
        Assert.Equal(expected, P(a).Contains(P(b)));

    [Fact]
    public void FirstAndLastAreThePrefixsBoundsAsNumbers()
    {
        Assert.Equal((UInt128)0x0A010000, P("10.1.0.0/16").First);
        Assert.Equal((UInt128)0x0A01FFFF, P("10.1.0.0/16").Last);
        Assert.Equal((UInt128)uint.MaxValue, P("0.0.0.0/0").Last);
        Assert.Equal(UInt128.MaxValue, P("::/0").Last);
        Assert.Equal(P("fd00::1/128").First, P("fd00::1/128").Last);
    }
}
