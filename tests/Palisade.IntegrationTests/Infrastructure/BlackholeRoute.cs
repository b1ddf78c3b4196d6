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
    private static readonly string s_dir = "/run/palisade-tests/blackhole";
    private static readonly string s_lock = "/run/palisade-tests/blackhole.lock";

    /// <summary>Makes sure the route exists and registers a holder; returns the holder's marker.</summary>
    public static string Acquire()
    {
        using var _ = Lock();
        var marker = Path.Combine(s_dir, $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        if (!Exists())
        {
            Command.Check("ip", "route", "add", "blackhole", TestNetwork.TestCidr);
        }
        else if (!Directory.EnumerateFiles(s_dir).Any(IsLive))
        {
            // There before any test held it: not ours to remove.
            File.WriteAllText(Path.Combine(s_dir, "keep"), "");
        }
        File.WriteAllText(marker, "");
        return marker;
    }

    /// <summary>Drops a holder; the last holder removes the route.</summary>
    public static void Release(string marker)
    {
        using var _ = Lock();
        File.Delete(marker);
        if (!Directory.EnumerateFiles(s_dir).Any(IsLive) && Exists())
        {
            Command.Run("ip", "route", "del", "blackhole", TestNetwork.TestCidr);
        }
    }

    private static bool Exists() => Command.Check("ip", "route", "show", "type", "blackhole").Contains(TestNetwork.TestCidr, StringComparison.Ordinal);

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
        Directory.CreateDirectory(s_dir);
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
