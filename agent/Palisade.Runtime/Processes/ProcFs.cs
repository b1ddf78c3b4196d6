using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Palisade.Runtime.Processes;

/// <summary>What /proc says about one process that was running when the agent started.</summary>
public sealed record ProcSnapshot(
    uint Pid, uint ParentPid, ulong StartBootNs, string Binary, byte[] Argv, string Cwd,
    uint[] Uids, uint[] Gids, ulong CapInheritable, ulong CapPermitted, ulong CapEffective,
    uint Auid, uint NamespacePid, uint[] Namespaces, string? CgroupLeaf, string? CgroupParent, ulong CgroupId);

/// <summary>
/// Reads running processes from /proc at start-up so events about them have full context
/// (Tetragon's "procFS" flag). Parsing is separate from reading so it is unit-tested.
/// </summary>
public static partial class ProcFs
{
    // USER_HZ: the unit of /proc/<pid>/stat start times on every architecture Linux ships.
    private const ulong ClockTicksPerSecond = 100;
    private const uint PfKthread = 0x00200000;

    /// <summary>Every user-space process, parents before children. Processes that vanish mid-read are skipped.</summary>
    public static List<ProcSnapshot> Scan(string procRoot, string? cgroupRoot)
    {
        var list = new List<ProcSnapshot>();
        foreach (var dir in Directory.EnumerateDirectories(procRoot))
        {
            if (!uint.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }
            try
            {
                if (Read(dir, pid, cgroupRoot) is { } snapshot)
                {
                    list.Add(snapshot);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Exited while we read it.
            }
        }
        list.Sort((a, b) => a.StartBootNs != b.StartBootNs ? a.StartBootNs.CompareTo(b.StartBootNs) : a.Pid.CompareTo(b.Pid));
        return list;
    }

    private static ProcSnapshot? Read(string dir, uint pid, string? cgroupRoot)
    {
        var stat = ParseStat(File.ReadAllText(Path.Combine(dir, "stat")));
        if ((stat.Flags & PfKthread) != 0)
        {
            return null; // kernel threads run no binary
        }
        var status = ParseStatus(File.ReadAllLines(Path.Combine(dir, "status")));
        var exe = ReadExe(dir);
        var cwd = ReadLink(Path.Combine(dir, "cwd")) ?? string.Empty;
        var argv = File.ReadAllBytes(Path.Combine(dir, "cmdline"));
        var auid = uint.TryParse(ReadOrEmpty(Path.Combine(dir, "loginuid")).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var a) ? a : uint.MaxValue;
        var namespaces = ReadNamespaces(dir);
        var cgroupPath = ParseCgroupV2Path(ReadOrEmpty(Path.Combine(dir, "cgroup")));
        string? leaf = null, parent = null;
        ulong cgroupId = 0;
        if (cgroupPath is not null)
        {
            var parts = cgroupPath.Split('/', StringSplitOptions.RemoveEmptyEntries);
            leaf = parts.Length > 0 ? parts[^1] : null;
            parent = parts.Length > 1 ? parts[^2] : null;
            if (cgroupRoot is not null)
            {
                cgroupId = InodeOf(cgroupRoot + cgroupPath);
            }
        }
        return new ProcSnapshot(pid, stat.ParentPid, stat.StartTicks * (1_000_000_000UL / ClockTicksPerSecond), exe, argv, StripDeleted(cwd),
            status.Uids, status.Gids, status.CapInh, status.CapPrm, status.CapEff, auid, status.NsPid, namespaces, leaf, parent, cgroupId);
    }

    /// <summary>The fields of /proc/pid/stat we use. The command name may hold spaces and parentheses, so fields count from the last ')'.</summary>
    public static (uint ParentPid, uint Flags, ulong StartTicks) ParseStat(string stat)
    {
        var close = stat.LastIndexOf(')');
        var fields = stat[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state): ppid is field 4, flags 9, starttime 22.
        return (uint.Parse(fields[1], CultureInfo.InvariantCulture), uint.Parse(fields[6], CultureInfo.InvariantCulture),
            ulong.Parse(fields[19], CultureInfo.InvariantCulture));
    }

    public sealed record StatusFields(uint[] Uids, uint[] Gids, ulong CapInh, ulong CapPrm, ulong CapEff, uint NsPid);

    /// <summary>Uid/Gid (real, effective, saved, fs), capability sets and the innermost NSpid from /proc/pid/status.</summary>
    public static StatusFields ParseStatus(IEnumerable<string> lines)
    {
        uint[] uids = [0, 0, 0, 0], gids = [0, 0, 0, 0];
        ulong inh = 0, prm = 0, eff = 0;
        uint nspid = 0;
        foreach (var line in lines)
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                continue;
            }
            var value = line[(colon + 1)..].Trim();
            switch (line[..colon])
            {
                case "Uid": uids = Ids(value); break;
                case "Gid": gids = Ids(value); break;
                case "CapInh": inh = ulong.Parse(value, NumberStyles.HexNumber, CultureInfo.InvariantCulture); break;
                case "CapPrm": prm = ulong.Parse(value, NumberStyles.HexNumber, CultureInfo.InvariantCulture); break;
                case "CapEff": eff = ulong.Parse(value, NumberStyles.HexNumber, CultureInfo.InvariantCulture); break;
                case "NSpid": nspid = uint.Parse(value.Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries)[^1], CultureInfo.InvariantCulture); break;
            }
        }
        return new StatusFields(uids, gids, inh, prm, eff, nspid);

        static uint[] Ids(string v) => [.. v.Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries).Take(4).Select(s => uint.Parse(s, CultureInfo.InvariantCulture))];
    }

    /// <summary>The cgroup v2 path ("0::/path" line) of /proc/pid/cgroup, or null.</summary>
    public static string? ParseCgroupV2Path(string cgroupFile)
    {
        foreach (var line in cgroupFile.Split('\n'))
        {
            if (line.StartsWith("0::", StringComparison.Ordinal))
            {
                return line[3..].Trim();
            }
        }
        return null;
    }

    /// <summary>The namespace inode numbers of a process, in <see cref="Abi.NamespaceSlot"/> order.</summary>
    public static uint[] ReadNamespaces(string procDir)
    {
        var names = Palisade.Events.NamespaceKinds.Names;
        var result = new uint[names.Length];
        for (var i = 0; i < names.Length; i++)
        {
            // "net:[4026531840]"
            var link = ReadLink(Path.Combine(procDir, "ns", names[i]));
            var open = link?.IndexOf('[', StringComparison.Ordinal) ?? -1;
            if (link is not null && open >= 0 && uint.TryParse(link.AsSpan(open + 1, link.Length - open - 2), NumberStyles.None, CultureInfo.InvariantCulture, out var inum))
            {
                result[i] = inum;
            }
        }
        return result;
    }

    /// <summary>
    /// The host's namespaces, by which a process's namespace is_host: pid 1's, as Tetragon reads
    /// them. Where pid 1's are hidden (a hardened /proc, a sandbox that keeps pid 1 from every
    /// other process) the kernel's initial namespaces stand in: uts, ipc, user, pid, cgroup and
    /// time have fixed inode numbers (include/linux/proc_ns.h, PROC_*_INIT_INO), and mnt and net,
    /// which have none, are taken from this process, which then runs in the host's (a node agent
    /// always does, or pid 1 is visible to it).
    /// </summary>
    public static uint[] ReadHostNamespaces(string procRoot)
    {
        var host = ReadNamespaces(Path.Combine(procRoot, "1"));
        if (host.Any(inum => inum != 0))
        {
            return host;
        }
        var self = ReadNamespaces(Path.Combine(procRoot, "self"));
        var names = Palisade.Events.NamespaceKinds.Names;
        for (var i = 0; i < names.Length; i++)
        {
            host[i] = names[i] switch
            {
                "uts" => 0xEFFFFFFE,
                "ipc" => 0xEFFFFFFF,
                "user" => 0xEFFFFFFD,
                "pid" or "pid_for_children" => 0xEFFFFFFC,
                "cgroup" => 0xEFFFFFFB,
                "time" or "time_for_children" => 0xEFFFFFFA,
                _ => self[i],
            };
        }
        return host;
    }

    /// <summary>The executable of the process at <paramref name="procDir"/> (" (deleted)" removed), empty when unreadable.</summary>
    public static string ReadExe(string procDir) => StripDeleted(ReadLink(Path.Combine(procDir, "exe")) ?? string.Empty);

    private static string StripDeleted(string path) =>
        path.EndsWith(" (deleted)", StringComparison.Ordinal) ? path[..^" (deleted)".Length] : path;

    private static string? ReadLink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    /// <summary>The inode number of a path: for a cgroup v2 directory, its cgroup id.</summary>
    public static unsafe ulong InodeOf(string path)
    {
        var buffer = stackalloc byte[256]; // struct stat is 144 bytes on x86-64 and 128 on arm64
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            return Stat(p, buffer) == 0 ? *(ulong*)(buffer + 8) : 0; // st_ino follows the 8-byte st_dev on both
        }
    }

    [LibraryImport("libc", EntryPoint = "stat")]
    private static unsafe partial int Stat(byte* path, byte* buffer);
}
