using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Endpoints;

/// <summary>
/// Blackhole routes for the endpoint tests' pod ranges (10.214.0.0/16, fd00:214::/48) in the
/// host namespace, shared by every holder on the machine (other test runs too): each holder
/// leaves a marker, the last one removes the routes. Pod routes (/32, /128) are more specific,
/// so pods reach each other while nothing addressed to the range can leave the machine.
/// </summary>
internal static class PodCidrBlackhole
{
    public const string V4 = "10.214.0.0/16";
    public const string V6 = "fd00:214::/48";

    private const string MarkerDirectory = "/run/palisade-tests/blackhole-endpoints";
    private const string LockFile = "/run/palisade-tests/blackhole-endpoints.lock";

    public static string Acquire()
    {
        using var _ = Lock();
        Command.Check("ip", "route", "replace", "blackhole", V4);
        Command.Check("ip", "-6", "route", "replace", "blackhole", V6);
        var marker = Path.Combine(MarkerDirectory, $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        File.WriteAllText(marker, "");
        return marker;
    }

    public static void Release(string marker)
    {
        using var _ = Lock();
        File.Delete(marker);
        if (!Directory.EnumerateFiles(MarkerDirectory).Any(IsLive))
        {
            Command.Run("ip", "route", "del", "blackhole", V4);
            Command.Run("ip", "-6", "route", "del", "blackhole", V6);
        }
    }

    // A marker counts while its process lives; a crashed run's markers are cleaned here.
    private static bool IsLive(string marker)
    {
        var live = int.TryParse(Path.GetFileName(marker).Split('-')[0], System.Globalization.CultureInfo.InvariantCulture, out var pid) && Directory.Exists($"/proc/{pid}");
        if (!live)
        {
            File.Delete(marker);
        }
        return live;
    }

    private static FileStream Lock()
    {
        Directory.CreateDirectory(MarkerDirectory);
        FileStream? stream = null;
        var locked = Command.WaitUntil(() =>
        {
            try
            {
                stream = new FileStream(LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                return true;
            }
            catch (IOException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60));
        Assert.True(locked && stream is not null, $"{LockFile} stayed locked for 60 s by another test run");
        return stream!;
    }
}
