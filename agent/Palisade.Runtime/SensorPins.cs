namespace Palisade.Runtime;

/// <summary>
/// Where sensors pin what must outlive the agent (--keep-sensors-on-exit):
/// ROOT/SENSOR/maps/MAP and ROOT/SENSOR/links/NAME on a bpffs. While these pins exist the
/// kernel keeps the programs attached and their maps alive, so policies keep acting while no
/// agent runs; the next agent adopts them.
/// </summary>
public static class SensorPins
{
    public const string DefaultDirectory = "/sys/fs/bpf/palisade";

    public static string Maps(string root, string sensor) => Path.Combine(root, sensor, "maps");

    public static string Links(string root, string sensor) => Path.Combine(root, sensor, "links");

    /// <summary>Creates the maps and links directories of <paramref name="sensor"/>.</summary>
    public static void Create(string root, string sensor)
    {
        Directory.CreateDirectory(Maps(root, sensor));
        Directory.CreateDirectory(Links(root, sensor));
    }

    /// <summary>
    /// Removes <paramref name="path"/> and every pin under it: unpinned links detach and
    /// unpinned maps go once nothing else holds them. Returns the number of pins removed.
    /// </summary>
    public static int Remove(string path)
    {
        if (!Directory.Exists(path))
        {
            return 0;
        }
        var pins = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Count();
        // Links first, so no program of an earlier run still runs once its maps are unpinned.
        foreach (var links in Directory.EnumerateDirectories(path, "links", SearchOption.AllDirectories).ToList())
        {
            Directory.Delete(links, recursive: true);
        }
        Directory.Delete(path, recursive: true);
        return pins;
    }
}
