namespace Palisade.Bpf;

/// <summary>What raising RLIMIT_MEMLOCK achieved: the soft limit now in force, and why it is not unlimited.</summary>
public sealed record MemlockResult(bool Unlimited, ulong LimitBytes, string? Error);

/// <summary>One filesystem the agent needs mounted.</summary>
public sealed record KernelMount(string Path, string FsType, bool WasMounted, bool MountedNow, string? Error);

/// <summary>
/// The kernel-facing set-up an eBPF agent needs before loading anything: bpffs, tracefs and
/// securityfs mounted, RLIMIT_MEMLOCK raised, the cgroup v2 hierarchy located.
/// </summary>
public static class KernelEnvironment
{
    private const ulong MsNoSuid = 2, MsNoDev = 4, MsNoExec = 8;

    /// <summary>Where each filesystem is expected, as on every mainstream distribution.</summary>
    public static readonly IReadOnlyList<(string Path, string FsType)> RequiredMounts =
    [
        ("/sys/fs/bpf", "bpf"),
        ("/sys/kernel/tracing", "tracefs"),
        ("/sys/kernel/security", "securityfs"),
    ];

    /// <summary>Mounts what is missing. Never throws: a failure is reported per mount so the caller decides.</summary>
    public static IReadOnlyList<KernelMount> EnsureMounts()
    {
        var mounted = ReadMountTable();
        var result = new List<KernelMount>();
        foreach (var (path, fsType) in RequiredMounts)
        {
            if (mounted.Any(m => m.MountPoint == path && m.FsType == fsType))
            {
                result.Add(new KernelMount(path, fsType, WasMounted: true, MountedNow: false, Error: null));
                continue;
            }
            if (!Directory.Exists(path))
            {
                result.Add(new KernelMount(path, fsType, false, false, $"mount point {path} does not exist"));
                continue;
            }
            var rc = Interop.Libc.Mount(fsType, path, fsType, MsNoSuid | MsNoDev | MsNoExec, 0);
            result.Add(rc == 0
                ? new KernelMount(path, fsType, false, true, null)
                : new KernelMount(path, fsType, false, false, Errnos.Describe(BpfException.LastErrno())));
        }
        return result;
    }

    /// <summary>
    /// Raises RLIMIT_MEMLOCK, which kernels before 5.11 charge BPF memory to: to infinity
    /// when allowed (CAP_SYS_RESOURCE), else the soft limit to the hard limit.
    /// </summary>
    public static unsafe MemlockResult RaiseMemlockLimit()
    {
        var limit = new Interop.Libc.RLimit { Current = Interop.Libc.RLIM_INFINITY, Max = Interop.Libc.RLIM_INFINITY };
        if (Interop.Libc.SetRlimit(Interop.Libc.RLIMIT_MEMLOCK, &limit) == 0)
        {
            return new MemlockResult(Unlimited: true, Interop.Libc.RLIM_INFINITY, null);
        }
        var error = Errnos.Describe(BpfException.LastErrno());
        Interop.Libc.RLimit current;
        if (Interop.Libc.GetRlimit(Interop.Libc.RLIMIT_MEMLOCK, &current) == 0 && current.Current < current.Max)
        {
            current.Current = current.Max;
            Interop.Libc.SetRlimit(Interop.Libc.RLIMIT_MEMLOCK, &current);
        }
        Interop.Libc.GetRlimit(Interop.Libc.RLIMIT_MEMLOCK, &current);
        return new MemlockResult(Unlimited: current.Current == Interop.Libc.RLIM_INFINITY, current.Current, error);
    }

    /// <summary>True when the kernel charges BPF memory to the memory cgroup rather than to RLIMIT_MEMLOCK (5.11 and later).</summary>
    public static bool BpfMemoryIsMemcgAccounted
    {
        get
        {
            var parts = KernelRelease.Split('.', '-');
            return parts.Length >= 2
                && int.TryParse(parts[0], System.Globalization.CultureInfo.InvariantCulture, out var major)
                && int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var minor)
                && (major > 5 || (major == 5 && minor >= 11));
        }
    }

    /// <summary>True when running as root (euid 0).</summary>
    public static bool IsRoot => Interop.Libc.GetEuid() == 0;

    /// <summary>The mount point of the cgroup v2 hierarchy (e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified), or null.</summary>
    public static string? Cgroup2Root()
    {
        var mounts = ReadMountTable().Where(m => m.FsType == "cgroup2").Select(m => m.MountPoint).ToList();
        // Prefer the conventional locations over container-private bind mounts.
        return mounts.FirstOrDefault(m => m == "/sys/fs/cgroup")
            ?? mounts.FirstOrDefault(m => m == "/sys/fs/cgroup/unified")
            ?? mounts.FirstOrDefault();
    }

    /// <summary>The kernel release (uname -r).</summary>
    public static string KernelRelease =>
        File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : Environment.OSVersion.VersionString;

    internal sealed record MountEntry(string MountPoint, string FsType);

    internal static List<MountEntry> ReadMountTable()
    {
        var entries = new List<MountEntry>();
        if (!File.Exists("/proc/self/mountinfo"))
        {
            return entries;
        }
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            var parts = line.Split(' ');
            var separator = Array.IndexOf(parts, "-");
            if (parts.Length > 4 && separator > 0 && separator + 1 < parts.Length)
            {
                entries.Add(new MountEntry(Unescape(parts[4]), parts[separator + 1]));
            }
        }
        return entries;
    }

    // mountinfo escapes space, tab, newline and backslash as octal.
    private static string Unescape(string path) =>
        path.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);
}
