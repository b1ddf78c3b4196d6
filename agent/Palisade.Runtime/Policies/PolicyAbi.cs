using System.Runtime.InteropServices;
using Palisade.Abi;
using Palisade.Bpf.Abi;
using Palisade.Runtime.Abi;

namespace Palisade.Runtime.Policies;

// Twins of bpf/include/pal_policy.h; the layout test compares each with the object's BTF.
// Arrays of structs are byte buffers with typed span accessors (Marshal cannot lay out
// inline arrays of structs).

/// <summary>The engine's sizes (enum pal_pol_sizes); <see cref="PolAbi"/> has them as ints.</summary>
[BpfEnum("pal_pol_sizes", "PAL_POL_")]
internal enum PolSize
{
    Words = 4,
    Selectors = Words * 64,
    Slots = 6,
    Dims = 12,
    Filters = 48,
    Fids = 64,
    Str = 252,
    Strbuf = 512,
    Points = 1024,
    PerSyscall = 8,
    Syscalls = 512,
    Gids = 8192,
    Policies = 1024,
    Scopes = 65536,
}

internal static class PolAbi
{
    public const int Words = (int)PolSize.Words;
    public const int Selectors = (int)PolSize.Selectors;
    public const int Slots = (int)PolSize.Slots;
    public const int Dims = (int)PolSize.Dims;
    public const int Filters = (int)PolSize.Filters;
    public const int Fids = (int)PolSize.Fids;
    public const int Str = (int)PolSize.Str;
    public const int Points = (int)PolSize.Points;
    public const int PerSyscall = (int)PolSize.PerSyscall;
    public const int Syscalls = (int)PolSize.Syscalls;
    public const int Gids = (int)PolSize.Gids;
    public const int Policies = (int)PolSize.Policies;
    public const int Scopes = (int)PolSize.Scopes;
    public const int OtherCount = (int)PalPolOtherKey.Count;
}

/// <summary>What the kernel did about a match (enum pal_pol_action, pal_pol_event.action).</summary>
[BpfEnum("pal_pol_action", "PAL_ACT_")]
internal enum PalPolAction : byte
{
    Post = 1,
    Sigkill = 2,
    Signal = 3,
    Override = 4,
    /// <summary>Enforcement suppressed: the policy is in monitor mode.</summary>
    Monitor = 5,
}

/// <summary>Per-CPU counters of the policy engine (enum pal_pol_stat).</summary>
[BpfEnum("pal_pol_stat", "PAL_POL_STAT_")]
internal enum PalPolStat
{
    Eval, Match, Lost, PathTrunc, Count,
}

/// <summary>Flags of a syscall's point list (enum pal_pol_sysent_flags, pal_pol_sysent.flags).</summary>
[Flags]
[BpfEnum("pal_pol_sysent_flags", "PAL_SE_")]
internal enum PalPolSysentFlags : byte
{
    None = 0,
    /// <summary>Deliver the signals a cgroup hook left for this thread.</summary>
    Pending = 1,
}

/// <summary>Flags of an extracted value (enum pal_pol_value_flags, pal_pol_value.flags).</summary>
[Flags]
[BpfEnum("pal_pol_value_flags", "PAL_V_")]
internal enum PalPolValueFlags : byte
{
    None = 0,
    /// <summary>A string longer than the engine keeps.</summary>
    Trunc = 1,
    /// <summary>The value could not be read.</summary>
    Error = 2,
}

[BpfStruct("pal_pol_slotdef")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalPolSlotdef
{
    public byte Kind;
    public byte Src;
    public byte SizeSrc;
    public byte Pad;
    public uint Cval;
}

[BpfStruct("pal_pol_dim")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalPolDim
{
    public byte Slot;
    public byte Class;
    public byte Negate;
    public byte Follow;
    public uint Pad;
    public fixed ulong Constrained[PolAbi.Words];
}

[BpfStruct("pal_pol_filter")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalPolFilter
{
    public byte Slot;
    public byte Field;
    public byte Op;
    public byte Negate;
    public byte Fid;
    public byte Sel;
    public ushort Pad;
    public uint Pad2;
    public ulong A, B, C, D;
}

[BpfStruct("pal_pol_point")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalPolPoint
{
    public fixed ulong All[PolAbi.Words];
    public ulong FidPositive;
    public ulong GateMask;
    public fixed byte Slots[PolAbi.Slots * 8];
    public fixed byte Dims[PolAbi.Dims * 40];
    public fixed byte Filters[PolAbi.Filters * 48];
    public fixed byte FidSel[PolAbi.Fids];
    public ushort Id;
    public byte Ndims;
    public byte Nfilters;
    public byte Flags;
    public byte GateSrc;
    public ushort Pad;

    public Span<PalPolSlotdef> SlotSpan => MemoryMarshal.Cast<byte, PalPolSlotdef>(MemoryMarshal.CreateSpan(ref Slots[0], PolAbi.Slots * 8));
    public Span<PalPolDim> DimSpan => MemoryMarshal.Cast<byte, PalPolDim>(MemoryMarshal.CreateSpan(ref Dims[0], PolAbi.Dims * 40));
    public Span<PalPolFilter> FilterSpan => MemoryMarshal.Cast<byte, PalPolFilter>(MemoryMarshal.CreateSpan(ref Filters[0], PolAbi.Filters * 48));
}

[BpfStruct("pal_pol_selector")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalPolSelector
{
    public uint HookId;
    public uint PolicyId;
    public uint Gid;
    public ushort Index;
    public ushort Actions;
    public uint Signal;
    public int Error;
    public ulong RateNs;
    public byte RateScope;
    public byte SockSlot;
    public fixed byte Pad[6];
}

[BpfStruct("pal_pol_state")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalPolState
{
    public uint Enabled;
    public uint Monitor;
    public uint Scoped;
    public uint Pad;
}

[BpfStruct("pal_pol_scope_key")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalPolScopeKey
{
    public ulong CgroupId;
    public uint PolicyId;
    public uint Pad;
}

/// <summary>The pal_pol_other entry that lists the points of each place other than a syscall.</summary>
[BpfEnum("pal_pol_other_key", "PAL_O_")]
internal enum PalPolOtherKey
{
    Exec = 0,
    Connect = 1,
    SockState = 2,
    CapCapable = 3,
    NetDevQueue = 4,
    NetDevXmit = 5,
    KfreeSkb = 6,
    SkbIngress = 7,
    SkbEgress = 8,
    Count = 16,
}

[BpfStruct("pal_pol_sysent")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalPolSysent
{
    public fixed ushort Points[PolAbi.PerSyscall];
    public byte N;
    public byte Flags;
    public ushort Pad;
    public uint Pad2;
}

[BpfStruct("pal_pol_strkey")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalPolStrkey
{
    public uint Prefixlen;
    public ushort Point;
    public byte Slot;
    public byte Class;
    public fixed byte S[PolAbi.Str];
}

[BpfStruct("pal_pol_mask")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalPolMask
{
    public fixed ulong W[PolAbi.Words];
}

/// <summary>Credentials as the shared task reader writes them (struct pal_task_creds), in a policy value's string.</summary>
[BpfStruct("pal_task_creds")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalTaskCreds
{
    public uint Uid, Gid, Euid, Egid, Suid, Sgid, Fsuid, Fsgid;
    public uint Securebits;
    public uint UserNs;
    public ulong CapPermitted;
    public ulong CapEffective;
    public ulong CapInheritable;
}

[BpfStruct("pal_pol_counters")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalPolCounters
{
    public ulong Matched;
    public ulong Posted;
    public ulong Killed;
    public ulong Signalled;
    public ulong Overridden;
    public ulong Monitored;
    public ulong RateLimited;
    public ulong Lost;
}

[BpfStruct("pal_pol_sock")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalPolSock
{
    public ushort Family;
    public ushort Type;
    public ushort Protocol;
    public ushort Sport;
    public ushort Dport;
    public byte State;
    public byte Pad;
    public uint Pad2;
    public fixed byte Saddr[16];
    public fixed byte Daddr[16];
    public ulong Cookie;
}

[BpfStruct("pal_pol_value")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalPolValue
{
    public byte Kind;
    public byte Flags;
    public ushort Len;
    public uint Mode;
    public ulong Ival;
    public PalPolSock Sock;
    public fixed byte S[PolAbi.Str + 4];

    public const byte Truncated = (byte)PalPolValueFlags.Trunc, Error = (byte)PalPolValueFlags.Error;
}

[BpfStruct("pal_pol_event")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalPolEvent
{
    public PalEventHeader Hdr;
    public uint HookId;
    public uint PolicyId;
    public ushort Selector;
    public byte Action;
    public byte Nslots;
    public uint Signal;
    public long Ret;
    public uint Syscall;
    public uint Point;
    public ulong ProcKtime;
    public fixed byte Values[PolAbi.Slots * 328];
}
