namespace Palisade.Policies.Network.Compilation;

/// <summary>Splits a port range into the fewest (port, prefix bits) pairs that cover exactly it, as Cilium does for endPort.</summary>
public static class PortPrefixes
{
    /// <summary>The prefixes of <paramref name="first"/>..<paramref name="last"/>; bits 16 is one port, 0 every port.</summary>
    public static IEnumerable<(ushort Port, int Bits)> Split(int first, int last)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(last, 65535);
        var start = first;
        while (start <= last)
        {
            // The largest aligned block that starts at start and ends within the range.
            var size = start == 0 ? 1 << 16 : start & -start;
            while (start + size - 1 > last)
            {
                size >>= 1;
            }
            yield return ((ushort)start, 16 - System.Numerics.BitOperations.Log2((uint)size));
            start += size;
        }
    }
}
