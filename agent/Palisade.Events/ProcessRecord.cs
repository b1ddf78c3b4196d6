namespace Palisade.Events;

/// <summary>User and group ids of a process at exec.</summary>
public readonly record struct Credentials(uint Uid, uint Gid, uint Euid, uint Egid, uint Suid, uint Sgid, uint Fsuid, uint Fsgid);

/// <summary>Capability sets as bit masks (bit n = capability n).</summary>
public readonly record struct CapabilitySets(ulong Permitted, ulong Effective, ulong Inheritable);

/// <summary>One namespace of a process: its inode number and whether it is the host's.</summary>
public readonly record struct NamespaceId(uint Inum, bool IsHost);

/// <summary>The namespaces of a process, in the order of <see cref="NamespaceKinds.Names"/>.</summary>
public sealed record Namespaces(NamespaceId[] Ids)
{
    public NamespaceId this[int kind] => Ids[kind];
}

/// <summary>Namespace kinds as Tetragon names them.</summary>
public static class NamespaceKinds
{
    public static readonly string[] Names = ["uts", "ipc", "mnt", "pid", "pid_for_children", "net", "time", "time_for_children", "cgroup", "user"];
}

/// <summary>Kubernetes context of a process; filled by the Kubernetes integration.</summary>
public sealed record PodInfo(
    string Namespace,
    string Name,
    string? Uid = null,
    IReadOnlyDictionary<string, string>? Labels = null,
    string? Workload = null,
    string? WorkloadKind = null,
    ContainerInfo? Container = null,
    IReadOnlyDictionary<string, string>? Annotations = null);

/// <summary>The container a process runs in. <paramref name="ExecProbes"/>: the commands of its exec liveness, readiness and startup probes.</summary>
public sealed record ContainerInfo(string Id, string? Name = null, string? ImageId = null, string? ImageName = null, DateTimeOffset? StartTime = null, uint? Pid = null,
    IReadOnlyList<IReadOnlyList<string>>? ExecProbes = null);

/// <summary>
/// Tetragon's maybe_exec_probe: the process may be one the kubelet runs for an exec probe of its
/// container, because its binary and arguments are a probe's command. The binary matches the
/// command's first word when they are equal, or when that word has no '/' and is the binary's
/// file name (the container resolved it through PATH). "Maybe": a user can run the same command.
/// </summary>
public static class ExecProbes
{
    public static bool MaybeProbe(ProcessRecord? p)
    {
        if (p?.Pod?.Container?.ExecProbes is not { Count: > 0 } probes)
        {
            return false;
        }
        foreach (var probe in probes)
        {
            if (probe.Count == 0)
            {
                continue;
            }
            var first = probe[0];
            var binary = first == p.Binary || (!first.Contains('/', StringComparison.Ordinal) && Path.GetFileName(p.Binary) == first);
            if (binary && string.Join(' ', probe.Skip(1)) == p.Arguments)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Tetragon's health_check filter: the event's process or its parent may be an exec probe.</summary>
    public static bool IsHealthCheck(ProcessRecord? process, ProcessRecord? parent) => MaybeProbe(process) || MaybeProbe(parent ?? process?.Parent);
}

/// <summary>
/// One exec identity: what ran, as whom, where, under which parent. Shared by every event
/// of the process; immutable once built except for the lifecycle fields the cache owns.
/// </summary>
public sealed class ProcessRecord
{
    public required string ExecId { get; init; }
    public required uint Pid { get; init; }
    /// <summary>The thread that exec'd (or was forked).</summary>
    public uint Tid { get; init; }
    /// <summary>Boot-time nanoseconds of the exec (or fork): with Pid, the identity.</summary>
    public required ulong Ktime { get; init; }
    public required DateTimeOffset StartTime { get; init; }
    public required string Binary { get; init; }
    /// <summary>For #! scripts: the interpreter that runs Binary.</summary>
    public string? Interpreter { get; init; }
    /// <summary>Arguments after argv[0], joined by spaces, an argument containing a space in quotes (Tetragon's form).</summary>
    public string Arguments { get; init; } = string.Empty;
    public string Cwd { get; init; } = string.Empty;
    public ProcessFlags Flags { get; init; }
    public Credentials Credentials { get; init; }
    public uint Auid { get; init; } = uint.MaxValue;
    /// <summary>Tetragon's user.name: the uid's name in the host's passwd file (username-metadata=unix, host namespaces only); null: not resolved.</summary>
    public string? UserName { get; init; }
    public CapabilitySets Capabilities { get; init; }
    public Namespaces? Namespaces { get; init; }
    /// <summary>Pid inside the process's own pid namespace.</summary>
    public uint NamespacePid { get; init; }
    public ulong CgroupId { get; init; }
    public string? ContainerId { get; init; }
    /// <summary>The pod uid in the process's cgroup path (a Kubernetes pod's container), whether or not the pod is known yet.</summary>
    public string? PodUid { get; init; }
    /// <summary>Set at exec; set later (once) by the Kubernetes integration when the pod was not known yet.</summary>
    public PodInfo? Pod { get; set; }
    public ulong ExeInode { get; init; }
    /// <summary>Owner of the executed file when it has the set-user-ID bit.</summary>
    public uint? SetuidUid { get; init; }
    public uint? SetgidGid { get; init; }

    public string? ParentExecId { get; init; }
    /// <summary>The parent's record while known; kept alive by this reference, so ancestry survives the cache.</summary>
    public ProcessRecord? Parent { get; init; }

    /// <summary>Live references the cache counts (the process itself while running, and each live child).</summary>
    public int RefCount;
    public DateTimeOffset? ExitTime { get; set; }
    /// <summary>Set by an exit whose image had lost its last link by then.</summary>
    public bool DeletedAtExit { get; set; }

    /// <summary>Tetragon's flags string.</summary>
    public string FlagsText => ProcessFlagNames.Format(Flags | (DeletedAtExit ? ProcessFlags.Deleted : 0), Cwd == "/");

    /// <summary>Up to <paramref name="max"/> ancestors beyond the parent, nearest first.</summary>
    public List<ProcessRecord> Ancestors(int max = 64)
    {
        var list = new List<ProcessRecord>();
        for (var p = Parent?.Parent; p is not null && list.Count < max; p = p.Parent)
        {
            list.Add(p);
        }
        return list;
    }

    public override string ToString() => $"{Pid} {Binary} {Arguments}";
}

/// <summary>
/// This node's labels, Tetragon's node_labels on every event: from the Kubernetes Node object,
/// replaced whole when it changes; empty without Kubernetes or until the Node is read. Kept in
/// key order (ordinal), as protojson writes a map, so writers need not sort them per event.
/// </summary>
public sealed class NodeLabels
{
    private static readonly IReadOnlyDictionary<string, string> None = new SortedDictionary<string, string>(StringComparer.Ordinal);
    private volatile IReadOnlyDictionary<string, string> _current = None;

    /// <summary>The labels in key order; setting copies them.</summary>
    public IReadOnlyDictionary<string, string> Current
    {
        get => _current;
        set => Set(value);
    }

    /// <summary>Replaces the labels with a sorted copy of <paramref name="labels"/> (null: none).</summary>
    public void Set(IEnumerable<KeyValuePair<string, string>>? labels)
    {
        var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in labels ?? [])
        {
            sorted[key] = value;
        }
        _current = sorted;
    }
}
