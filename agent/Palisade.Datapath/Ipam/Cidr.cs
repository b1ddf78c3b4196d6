using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Palisade.Datapath.Ipam;

/// <summary>Strict CIDR parsing for settings: ADDRESS/BITS with every host bit zero (10.244.1.5/24 is refused, naming 10.244.1.0/24).</summary>
public static class Cidr
{
    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="problem"/> says why.</summary>
    public static bool TryParse(string text, out IPNetwork network, out string? problem)
    {
        network = default;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var address)
            || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var bits)
            || bits > (address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
        {
            problem = "it is not ADDRESS/PREFIX-LENGTH";
            return false;
        }
        var masked = Mask(address, bits);
        if (!masked.Equals(address))
        {
            problem = $"its host bits are not zero: the network is {masked}/{bits}";
            return false;
        }
        network = new IPNetwork(masked, bits);
        problem = null;
        return true;
    }

    private static IPAddress Mask(IPAddress address, int bits)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(bits - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        return new IPAddress(bytes);
    }
}
