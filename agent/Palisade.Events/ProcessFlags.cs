using Palisade.Abi;

namespace Palisade.Events;

/// <summary>How a process identity was learnt and what is odd about it. Values equal PAL_EXEC_F_* in bpf/include/palisade.h.</summary>
[Flags]
[BpfEnum("pal_exec_flags", "PAL_EXEC_F_")]
public enum ProcessFlags : uint
{
    None = 0,
    /// <summary>Seen exec'ing ("execve").</summary>
    Exec = 1 << 0,
    /// <summary>Seen being forked; for an exec, the exec of a freshly forked child ("clone").</summary>
    Clone = 1 << 1,
    /// <summary>Read from /proc at agent start ("procFS").</summary>
    [BpfEnumerator("PAL_EXEC_F_PROCFS")]
    ProcFs = 1 << 2,
    /// <summary>Arguments cut at the configured maximum ("truncArgs").</summary>
    [BpfEnumerator("PAL_EXEC_F_TRUNC_ARGS")]
    TruncatedArgs = 1 << 3,
    /// <summary>A path deeper or longer than the kernel walk allows ("truncPath").</summary>
    [BpfEnumerator("PAL_EXEC_F_TRUNC_PATH")]
    TruncatedPath = 1 << 4,
    /// <summary>A #! script: Binary is the script, Interpreter the program that runs it.</summary>
    Script = 1 << 5,
    Setuid = 1 << 6,
    Setgid = 1 << 7,
    /// <summary>The executed file had no link left in the file system ("deleted").</summary>
    Deleted = 1 << 8,
    /// <summary>The arguments could not be read ("errorArgs").</summary>
    ErrorArgs = 1 << 9,
    /// <summary>The parent was not known when the process exec'd ("miss").</summary>
    ParentMiss = 1 << 10,
    /// <summary>The exec replaced an earlier image of the same process, which is its parent.</summary>
    Replaced = 1 << 11,
}

/// <summary>Renders flags as Tetragon's space-separated words.</summary>
public static class ProcessFlagNames
{
    /// <summary>Tetragon's order and spelling for the flags it shares with us, then ours.</summary>
    public static string Format(ProcessFlags flags, bool rootCwd)
    {
        Span<string?> words = new string?[10];
        var n = 0;
        if ((flags & ProcessFlags.Exec) != 0) words[n++] = "execve";
        if ((flags & ProcessFlags.ProcFs) != 0) words[n++] = "procFS";
        if ((flags & ProcessFlags.TruncatedArgs) != 0) words[n++] = "truncArgs";
        if ((flags & ProcessFlags.ParentMiss) != 0) words[n++] = "miss";
        if ((flags & ProcessFlags.ErrorArgs) != 0) words[n++] = "errorArgs";
        if (rootCwd) words[n++] = "rootcwd";
        if ((flags & ProcessFlags.Clone) != 0) words[n++] = "clone";
        if ((flags & ProcessFlags.TruncatedPath) != 0) words[n++] = "truncPath";
        if ((flags & ProcessFlags.Deleted) != 0) words[n++] = "deleted";
        return n == 0 ? string.Empty : string.Join(' ', words[..n].ToArray());
    }
}
