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
