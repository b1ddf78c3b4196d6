namespace Palisade.Events;

/// <summary>What an event is about, for filters and routing.</summary>
public enum EventKind
{
    ProcessExec,
    ProcessExit,
    ProcessKprobe,
    ProcessTracepoint,
    ProcessUprobe,
    ProcessLsm,
    /// <summary>A network flow seen by the datapath (<see cref="FlowEvent"/>).</summary>
    Flow,
}

/// <summary>
/// An event for export: what happened and when, and the process it happened to when there
/// is one. Process events always name their process; a flow names the local process that
/// owns its socket when there is one, and nothing for traffic of a pod no local process
/// handles. Filters, encoders and metrics treat a missing process as "no process", never as
/// an error.
/// </summary>
public abstract class PalisadeEvent
{
    public required DateTimeOffset Time { get; init; }
    /// <summary>The process the event is about; null for a flow no local process owns.</summary>
    public ProcessRecord? Process { get; init; }
    /// <summary>The process's parent, when it was seen.</summary>
    public ProcessRecord? Parent { get; init; }
    public abstract EventKind Kind { get; }
}

/// <summary>An event about a process, which it always names.</summary>
public abstract class ProcessEvent : PalisadeEvent
{
    /// <summary>The process the event is about (the base's <see cref="PalisadeEvent.Process"/>, never null here).</summary>
    public new required ProcessRecord Process
    {
        get => base.Process!;
        init => base.Process = value;
    }
}

/// <summary>A process started a new program.</summary>
public sealed class ProcessExecEvent : ProcessEvent
{
    public override EventKind Kind => EventKind.ProcessExec;
    /// <summary>Ancestors beyond the parent, nearest first; null unless ancestors are enabled.</summary>
    public IReadOnlyList<ProcessRecord>? Ancestors { get; init; }
}

/// <summary>A process ended.</summary>
public sealed class ProcessExitEvent : ProcessEvent
{
    public override EventKind Kind => EventKind.ProcessExit;
    /// <summary>Signal name (e.g. "SIGKILL") when a signal ended it.</summary>
    public string? Signal { get; init; }
    /// <summary>Exit status when it exited by itself.</summary>
    public uint Status { get; init; }
    /// <summary>The last thread to exit.</summary>
    public uint Tid { get; init; }
    public IReadOnlyList<ProcessRecord>? Ancestors { get; init; }
}

/// <summary>One typed argument of a policy event; <see cref="Type"/> is Tetragon's JSON key (int_arg, file_arg, sock_arg, ...).</summary>
public sealed record PolicyArgValue(string Type, string? Label)
{
    public long Int { get; init; }
    public string? Text { get; init; }
    public byte[]? Bytes { get; init; }
    public SockValue? Sock { get; init; }
    public CredValue? Cred { get; init; }
    /// <summary>Struct-like arguments (bpf_attr_arg, bpf_map_arg, perf_event_arg): field name -> string or number, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, object>>? Object { get; init; }
    public bool Truncated { get; init; }
    /// <summary>For file, path and linux_binprm arguments: the inode's i_mode (file type and permission bits); 0: not known.</summary>
    public uint Mode { get; init; }
}

/// <summary>Tetragon's file and path argument fields: <c>permission</c> and <c>flags</c>.</summary>
public static class FileArgText
{
    /// <summary>Tetragon's flags of a path that could not be resolved whole (pkg/reader/path: unresolvedPathComponents).</summary>
    public const string UnresolvedPathComponents = "unresolvedPathComponents";

    /// <summary>The path flags Tetragon writes: <see cref="UnresolvedPathComponents"/> when the path is cut short, else empty.</summary>
    public static string Flags(bool truncated) => truncated ? UnresolvedPathComponents : "";

    /// <summary>
    /// The mode as `ls -l` writes it, as Tetragon's permission field does: the type letter (b, c, d,
    /// p, l, -, s; none for an unknown type), then rwx for user, group and other, with setuid and
    /// setgid as s (S when not executable) and sticky as t (T). Empty for 0 (not known).
    /// </summary>
    public static string Permission(uint mode)
    {
        if (mode == 0)
        {
            return "";
        }
        Span<char> text = stackalloc char[10];
        var n = 0;
        var type = (mode & 0xF000) switch
        {
            0x6000 => 'b',
            0x2000 => 'c',
            0x4000 => 'd',
            0x1000 => 'p',
            0xA000 => 'l',
            0x8000 => '-',
            0xC000 => 's',
            _ => '\0',
        };
        if (type != '\0')
        {
            text[n++] = type;
        }
        void Triplet(Span<char> t, ref int i, uint bits, bool special, char set)
        {
            t[i++] = (bits & 4) != 0 ? 'r' : '-';
            t[i++] = (bits & 2) != 0 ? 'w' : '-';
            t[i++] = special ? ((bits & 1) != 0 ? set : char.ToUpperInvariant(set)) : (bits & 1) != 0 ? 'x' : '-';
        }
        Triplet(text, ref n, (mode >> 6) & 7, (mode & 0x800) != 0, 's');
        Triplet(text, ref n, (mode >> 3) & 7, (mode & 0x400) != 0, 's');
        Triplet(text, ref n, mode & 7, (mode & 0x200) != 0, 't');
        return new string(text[..n]);
    }
}

/// <summary>A socket argument; <see cref="Cookie"/> is the kernel socket's address, Tetragon's sock_arg.cookie (0: none).</summary>
public sealed record SockValue(string Family, string Type, string Protocol, string SAddr, string DAddr, uint SPort, uint DPort, string State, ulong Cookie = 0);

public sealed record CredValue(Credentials Ids, uint Securebits, CapabilitySets Caps, uint UserNs);

/// <summary>A TracingPolicy selector matched (process_kprobe, process_tracepoint, process_lsm, process_uprobe).</summary>
public sealed class ProcessPolicyEvent : ProcessEvent
{
    public required EventKind HookKind { get; init; }
    public override EventKind Kind => HookKind;
    /// <summary>The function as the policy named it, also when the hook is emulated.</summary>
    public required string FunctionName { get; init; }
    public string? Subsystem { get; init; }
    public string? EventName { get; init; }
    public required IReadOnlyList<PolicyArgValue> Args { get; init; }
    public PolicyArgValue? Return { get; init; }
    /// <summary>KPROBE_ACTION_POST, KPROBE_ACTION_SIGKILL, ...</summary>
    public required string Action { get; init; }
    public required string PolicyName { get; init; }
    public string? Message { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>Enforcement the policy asked for but did not do because it is in monitor mode.</summary>
    public bool Monitored { get; init; }
    /// <summary>Ancestors beyond the parent, nearest first; null unless enable-ancestors lists this hook's type.</summary>
    public IReadOnlyList<ProcessRecord>? Ancestors { get; init; }
}
