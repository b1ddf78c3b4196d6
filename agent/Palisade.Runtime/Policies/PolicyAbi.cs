using System.Runtime.InteropServices;
using Palisade.Bpf.Abi;
using Palisade.Runtime.Abi;

namespace Palisade.Runtime.Policies;

// Twins of bpf/include/pal_policy.h; the layout test compares each with the object's BTF.
// Arrays of structs are byte buffers with typed span accessors (Marshal cannot lay out
// inline arrays of structs).

internal static class PolAbi
{
    public const int Words = 4;
    public const int Selectors = Words * 64;
    public const int Slots = 6;
    public const int Dims = 12;
    public const int Filters = 48;
    public const int Fids = 64;
    public const int Str = 252;
    public const int Points = 1024;
    public const int PerSyscall = 8;
    public const int Syscalls = 512;
    public const int Gids = 8192;
    public const int Policies = 1024;
    public const int Scopes = 65536;
    public const int OtherCount = 16;
    public const uint EventPolicy = 5;
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
    Count = PolAbi.OtherCount,
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

/// <summary>What the kernel did on a match (enum pal_pol_action).</summary>
[BpfEnum("pal_pol_action", "PAL_ACT_")]
internal enum PolAction : byte
{
    Post = 1,
    Sigkill = 2,
    Signal = 3,
    Override = 4,
    /// <summary>Enforcement suppressed: the policy is in monitor mode.</summary>
    Monitor = 5,
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
    public uint Pad;
    public ulong Ival;
    public PalPolSock Sock;
    public fixed byte S[PolAbi.Str + 4];

    public const byte Truncated = 1, Error = 2;
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
