namespace Palisade.Events;

/// <summary>What an event is about, for filters and routing.</summary>
public enum EventKind
{
    ProcessExec,
    ProcessExit,
}

/// <summary>An event for export: what happened, when, and the process it happened to.</summary>
public abstract class PalisadeEvent
{
    public required DateTimeOffset Time { get; init; }
    public required ProcessRecord Process { get; init; }
    public ProcessRecord? Parent { get; init; }
    public abstract EventKind Kind { get; }
}

/// <summary>A process started a new program.</summary>
public sealed class ProcessExecEvent : PalisadeEvent
{
    public override EventKind Kind => EventKind.ProcessExec;
    /// <summary>Ancestors beyond the parent, nearest first; null unless ancestors are enabled.</summary>
    public IReadOnlyList<ProcessRecord>? Ancestors { get; init; }
}

/// <summary>A process ended.</summary>
public sealed class ProcessExitEvent : PalisadeEvent
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
