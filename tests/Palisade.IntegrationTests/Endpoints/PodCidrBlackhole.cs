using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Endpoints;

/// <summary>
/// Blackhole routes for the endpoint tests' pod ranges (10.214.0.0/16, fd00:214::/48), held
/// through <see cref="BlackholeRoute"/> (shared by every holder on the machine, the last one
/// removes them). Pod routes (/32, /128) are more specific, so pods reach each other while
/// nothing addressed to the range can leave the machine.
/// </summary>
internal static class PodCidrBlackhole
{
    public const string V4 = "10.214.0.0/16";
    public const string V6 = "fd00:214::/48";

    public readonly record struct Hold(string V4Marker, string V6Marker);

    public static Hold Acquire() => new(BlackholeRoute.Acquire(V4), BlackholeRoute.Acquire(V6));

    public static void Release(Hold hold)
    {
        BlackholeRoute.Release(hold.V4Marker, V4);
        BlackholeRoute.Release(hold.V6Marker, V6);
    }
}
