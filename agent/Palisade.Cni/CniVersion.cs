namespace Palisade.Cni;

/// <summary>The CNI spec versions the plugin speaks, and the comparisons the spec's commands need.</summary>
internal static class CniVersion
{
    public const string Latest = "1.1.0";

    /// <summary>What VERSION reports; results are converted to each.</summary>
    public static readonly string[] Supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    public static bool IsSupported(string version) => Array.IndexOf(Supported, version) >= 0;

    /// <summary>MAJOR.MINOR.PATCH of a version string, or null when it is not one.</summary>
    public static (int Major, int Minor, int Patch)? Parse(string version)
    {
        var parts = version.Split('.');
        if (parts.Length != 3)
        {
            return null;
        }
        Span<int> numbers = stackalloc int[3];
        for (var i = 0; i < 3; i++)
        {
            if (parts[i].Length is 0 or > 6 || !parts[i].All(char.IsAsciiDigit) || !int.TryParse(parts[i], out numbers[i]))
            {
                return null;
            }
        }
        return (numbers[0], numbers[1], numbers[2]);
    }

    /// <summary>Whether <paramref name="version"/> is at least <paramref name="minimum"/>; both must parse.</summary>
    public static bool AtLeast(string version, string minimum) => Parse(version)!.Value.CompareTo(Parse(minimum)!.Value) >= 0;

    /// <summary>Results before 1.0.0 carry an IP version per address and no interface MTU.</summary>
    public static bool IsLegacyResult(string version) => !AtLeast(version, "1.0.0");
}
