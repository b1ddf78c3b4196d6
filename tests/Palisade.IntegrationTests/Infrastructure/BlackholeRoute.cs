namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// The blackhole route for <see cref="TestNetwork.TestCidr"/> in the root namespace, shared by
/// every test network on the machine, including those of test runs in other clones at the
/// same time: each holder leaves a marker, and the last one to go removes the route. Without
/// this two runs race: both see no route and the second `ip route add` fails (File exists),
/// or one removes the route while the other's namespaces still exist.
/// </summary>
internal static class BlackholeRoute
{
    private static readonly string s_lock = "/run/palisade-tests/blackhole.lock";

    // One holder directory per CIDR; TestNetwork's keeps the original name.
    private static string HolderDir(string cidr) => cidr == TestNetwork.TestCidr
        ? "/run/palisade-tests/blackhole"
        : "/run/palisade-tests/blackhole-" + cidr.Replace('/', '_').Replace(':', '-');

    /// <summary>Makes sure the route exists and registers a holder; returns the holder's marker.</summary>
    public static string Acquire(string cidr = TestNetwork.TestCidr)
    {
        using var _ = Lock();
        var dir = HolderDir(cidr);
        Directory.CreateDirectory(dir);
        var marker = Path.Combine(dir, $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        if (!Exists(cidr))
        {
            Command.Check("ip", "route", "add", "blackhole", cidr);
        }
        else if (!Directory.EnumerateFiles(dir).Any(IsLive))
        {
            // There before any test held it: not ours to remove.
            File.WriteAllText(Path.Combine(dir, "keep"), "");
        }
        File.WriteAllText(marker, "");
        return marker;
    }

    /// <summary>Drops a holder; the last holder removes the route.</summary>
    public static void Release(string marker, string cidr = TestNetwork.TestCidr)
    {
        using var _ = Lock();
        File.Delete(marker);
        if (!Directory.EnumerateFiles(HolderDir(cidr)).Any(IsLive) && Exists(cidr))
        {
            Command.Run("ip", "route", "del", "blackhole", cidr);
        }
    }

    private static bool Exists(string cidr) =>
        Command.Check("ip", cidr.Contains(':', StringComparison.Ordinal) ? "-6" : "-4", "route", "show", "type", "blackhole")
            .Contains(cidr, StringComparison.Ordinal);

    // A marker counts while its test process lives (a crashed run leaves markers behind); "keep" always counts.
    private static bool IsLive(string marker)
    {
        var name = Path.GetFileName(marker);
        if (name == "keep")
        {
            return true;
        }
        var live = int.TryParse(name.Split('-')[0], System.Globalization.CultureInfo.InvariantCulture, out var pid) && Directory.Exists($"/proc/{pid}");
        if (!live)
        {
            File.Delete(marker);
        }
        return live;
    }

    // FileShare.None takes an exclusive flock on Unix: other test processes wait here, bounded.
    private static FileStream Lock()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(s_lock)!);
        FileStream? stream = null;
        var locked = Command.WaitUntil(() =>
        {
            try
            {
                stream = new FileStream(s_lock, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                return true;
            }
            catch (IOException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60));
        Assert.True(locked && stream is not null, $"{s_lock} stayed locked for 60 s by another test run");
        return stream!;
    }
}
