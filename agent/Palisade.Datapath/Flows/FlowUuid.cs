namespace Palisade.Datapath.Flows;

/// <summary>
/// Flow UUIDs (random, version 4, as Hubble's are) without a system call each:
/// <see cref="Guid.NewGuid"/> reads the kernel's CSPRNG once per call, which at tens of
/// thousands of flows a second is a visible share of the agent's CPU. A flow's UUID names it,
/// it guards nothing, so a per-thread generator seeded from the CSPRNG is enough.
/// </summary>
public static class FlowUuid
{
    [ThreadStatic]
    private static Random? _random;

    /// <summary>A new random UUID in its canonical text form.</summary>
    public static string Next()
    {
        var random = _random ??= new Random(); // xoshiro256**, seeded from the OS's random source
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        bytes[7] = (byte)((bytes[7] & 0x0F) | 0x40); // version 4 (Guid's byte order: the 3rd group is little-endian)
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80); // RFC 4122 variant
        return new Guid(bytes).ToString();
    }
}
