using System.Runtime.InteropServices;
using Palisade.Abi;
using Palisade.Bpf.Abi;

namespace Palisade.Runtime.Abi;

/// <summary>Per-CPU counters of the process sensor (enum pal_stat).</summary>
[BpfEnum("pal_stat", "PAL_STAT_")]
public enum ProcessStat
{
    LostExec, LostExit, LostFork, ProcMapFull, Exec, Exit, Fork, Count,
}

/// <summary>Namespace slots (enum pal_ns).</summary>
[BpfEnum("pal_ns", "PAL_NS_")]
public enum NamespaceSlot
{
    Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User, Count,
}

/// <summary>Sizes of the exec record (enum pal_exec_sizes).</summary>
[BpfEnum("pal_exec_sizes", "PAL_")]
public enum ExecSizes
{
    /// <summary>Bytes of the variable data area; a power of two so the kernel can mask offsets.</summary>
    ExecData = 16384,
    /// <summary>Bytes past the data area the verifier needs to accept the last write.</summary>
    ExecDataSlack = 4352,
    CgroupName = 128,
}

/// <summary>The process table's value, keyed by tgid (struct pal_proc): one entry per live process, for every sensor.</summary>
[BpfStruct("pal_proc")]
[StructLayout(LayoutKind.Sequential)]
public unsafe struct PalProc
{
    /// <summary>Bytes of Bin (PAL_PROC_BIN).</summary>
    public const int BinSize = 252;

    public ulong Ktime;
    public ulong ParentKtime;
    public uint ParentPid;
    public uint Flags;
    public ulong CapEff;
    public fixed uint Ns[(int)NamespaceSlot.Count];
    public uint Nspid;
    public uint Ppid;
    public ushort BinLen;
    public ushort Pad;
    public fixed byte Bin[BinSize];

    /// <summary>The entry of a process found in /proc at start-up.</summary>
    public static PalProc FromProcFs(ulong ktime, ulong parentKtime, uint parentPid, ulong capEffective, ReadOnlySpan<uint> namespaces, uint nspid, string binary)
    {
        var proc = new PalProc { Ktime = ktime, ParentKtime = parentKtime, ParentPid = parentPid, Ppid = parentPid, Flags = (uint)Palisade.Events.ProcessFlags.ProcFs, CapEff = capEffective, Nspid = nspid };
        for (var i = 0; i < namespaces.Length && i < (int)NamespaceSlot.Count; i++)
        {
            proc.Ns[i] = namespaces[i];
        }
        var bytes = System.Text.Encoding.UTF8.GetBytes(binary);
        var n = Math.Min(bytes.Length, BinSize - 1);
        bytes.AsSpan(0, n).CopyTo(new Span<byte>(proc.Bin, BinSize));
        proc.BinLen = (ushort)n;
        return proc;
    }
}

/// <summary>One exec as the kernel reports it (struct pal_exec_event); strings live in Data.</summary>
[BpfStruct("pal_exec_event")]
[StructLayout(LayoutKind.Sequential)]
public unsafe struct PalExecEvent
{
    public const int DataSize = (int)ExecSizes.ExecData + (int)ExecSizes.ExecDataSlack;
    public const int CgroupNameSize = (int)ExecSizes.CgroupName;
    public const int NamespaceCount = (int)NamespaceSlot.Count;

    public PalEventHeader Hdr;
    public ulong ParentKtime;
    public ulong PrevKtime;
    public ulong ExeInode;
    public ulong CapPermitted;
    public ulong CapEffective;
    public ulong CapInheritable;
    public uint ParentPid;
    public uint Flags;
    public uint Uid, Gid, Euid, Egid, Suid, Sgid, Fsuid, Fsgid;
    public uint Auid;
    public uint Nspid;
    public uint ExeUid;
    public uint ExeGid;
    public fixed uint Ns[NamespaceCount];
    public ushort ExeLen;
    public ushort CwdLen;
    public ushort FilenameLen;
    public ushort ArgsLen;
    public ushort ExeDepth;
    public ushort CwdDepth;
    public fixed byte CgroupName[CgroupNameSize];
    public fixed byte CgroupParentName[CgroupNameSize];
    public fixed byte Data[DataSize];

    /// <summary>Bytes before Data: the smallest valid record.</summary>
    public static int FixedSize => (int)Marshal.OffsetOf<PalExecEvent>(nameof(Data));
}

/// <summary>A new process (struct pal_fork_event).</summary>
[BpfStruct("pal_fork_event")]
[StructLayout(LayoutKind.Sequential)]
public struct PalForkEvent
{
    public PalEventHeader Hdr;
    public ulong ParentKtime;
    public uint ParentPid;
    public uint Pad;
}

/// <summary>A process's last thread left (struct pal_exit_event).</summary>
[BpfStruct("pal_exit_event")]
[StructLayout(LayoutKind.Sequential)]
public struct PalExitEvent
{
    public PalEventHeader Hdr;
    public ulong Ktime;
    public uint ExitCode;
    public uint Flags;
}
