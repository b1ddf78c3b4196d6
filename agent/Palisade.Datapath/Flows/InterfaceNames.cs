using System.Collections.Concurrent;
using System.Globalization;

namespace Palisade.Datapath.Flows;

/// <summary>Names network interfaces by index, for a flow's "interface".</summary>
public interface IInterfaceNames
{
    /// <summary>The name of interface <paramref name="index"/> in the agent's namespace, or null when there is none.</summary>
    string? Name(uint index);
}

/// <summary>
/// Interface names of the agent's network namespace, read from /sys/class/net and cached:
/// a flow names its interface without a system call. A miss rereads the directory (a new
/// veth), at most once per <see cref="RescanInterval"/>, so a flood of flows on an unknown
/// index cannot turn into a flood of directory scans.
/// </summary>
public sealed class SysfsInterfaceNames(TimeProvider time, string sysClassNet = "/sys/class/net") : IInterfaceNames
{
    /// <summary>A veth made by an ADD is named within one rescan; 1 s keeps the scan cost negligible.</summary>
    public static readonly TimeSpan RescanInterval = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<uint, string> _names = new();
    private long _lastScan = long.MinValue;

    public string? Name(uint index)
    {
        if (index == 0)
        {
            return null;
        }
        if (_names.TryGetValue(index, out var name))
        {
            return name;
        }
        var now = time.GetTimestamp();
        var last = Interlocked.Read(ref _lastScan);
        if (last != long.MinValue && time.GetElapsedTime(last, now) < RescanInterval)
        {
            return null;
        }
        if (Interlocked.CompareExchange(ref _lastScan, now, last) == last)
        {
            Scan();
        }
        return _names.TryGetValue(index, out name) ? name : null;
    }

    private void Scan()
    {
        if (!Directory.Exists(sysClassNet))
        {
            return;
        }
        var seen = new Dictionary<uint, string>();
        foreach (var dir in Directory.EnumerateFileSystemEntries(sysClassNet))
        {
            try
            {
                if (uint.TryParse(File.ReadAllText(Path.Combine(dir, "ifindex")).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                {
                    seen[index] = Path.GetFileName(dir);
                }
            }
            catch (IOException)
            {
                // The interface went while we read it.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        // Indexes of deleted interfaces go, so a reused index gets its new name.
        foreach (var index in _names.Keys)
        {
            if (!seen.ContainsKey(index))
            {
                _names.TryRemove(index, out _);
            }
        }
        foreach (var (index, name) in seen)
        {
            _names[index] = name;
        }
    }
}
