using System.Globalization;
using Palisade.Events;

namespace Palisade.Runtime.Processes;

/// <summary>
/// Tetragon's username-metadata=unix: the name of a process's uid from the host's passwd file,
/// for processes in the host's mount and user namespaces only (a container's uid means
/// something else in its own /etc/passwd, so it gets no name rather than a wrong one).
/// The file is reread when its modification time or size changes, at most once a second;
/// a missing or unreadable file gives no names, never an error on the event path.
/// </summary>
public sealed class UserNames
{
    private readonly string[] _candidates;
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private Dictionary<uint, string> _names = [];
    private (DateTime Mtime, long Size, string? Path) _loaded;
    private long _checkedAt = long.MinValue;

    /// <param name="procRoot">The host's /proc: the host's passwd file is read through pid 1's root first.</param>
    /// <param name="passwd">A passwd file to read instead (tests); null: {procRoot}/1/root/etc/passwd, then /etc/passwd.</param>
    public UserNames(string procRoot, string? passwd = null, TimeProvider? time = null)
    {
        _candidates = passwd is not null ? [passwd] : [Path.Combine(procRoot, "1", "root", "etc", "passwd"), "/etc/passwd"];
        _time = time ?? TimeProvider.System;
    }

    /// <summary>How many times the file was (re)read; for tests and status.</summary>
    public int Loads { get; private set; }

    /// <summary>The name for <paramref name="uid"/> of a process in <paramref name="namespaces"/>; null outside the host's mount or user namespace, or for a uid the file does not name.</summary>
    public string? For(uint uid, Namespaces? namespaces)
    {
        if (namespaces is null || !namespaces[Mnt].IsHost || !namespaces[User].IsHost)
        {
            return null;
        }
        lock (_gate)
        {
            Refresh();
            return _names.GetValueOrDefault(uid);
        }
    }

    private static readonly int Mnt = Array.IndexOf(NamespaceKinds.Names, "mnt");
    private static readonly int User = Array.IndexOf(NamespaceKinds.Names, "user");

    private void Refresh()
    {
        var now = _time.GetTimestamp();
        if (_checkedAt != long.MinValue && _time.GetElapsedTime(_checkedAt, now) < TimeSpan.FromSeconds(1))
        {
            return;
        }
        _checkedAt = now;
        foreach (var path in _candidates)
        {
            try
            {
                var info = new FileInfo(path);
                if (!info.Exists)
                {
                    continue;
                }
                if (_loaded.Path == path && _loaded.Mtime == info.LastWriteTimeUtc && _loaded.Size == info.Length)
                {
                    return;
                }
                _names = Parse(File.ReadAllText(path));
                _loaded = (info.LastWriteTimeUtc, info.Length, path);
                Loads++;
                return;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Try the next; with none readable there are no names.
            }
        }
        _names = [];
        _loaded = default;
    }

    /// <summary>
    /// uid -> name from passwd(5) text: name:password:uid:gid:gecos:home:shell. Lines that are
    /// blank, comments, NIS entries (+/-) or have no numeric uid are skipped; the first name of
    /// a uid wins, as getpwuid(3) returns it.
    /// </summary>
    public static Dictionary<uint, string> Parse(string text)
    {
        var names = new Dictionary<uint, string>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line[0] is '#' or '+' or '-')
            {
                continue;
            }
            var fields = line.Split(':');
            if (fields.Length < 3 || fields[0].Length == 0 ||
                !uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var uid))
            {
                continue;
            }
            names.TryAdd(uid, fields[0]);
        }
        return names;
    }
}
