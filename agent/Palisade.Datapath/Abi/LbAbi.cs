using System.Runtime.InteropServices;
using Palisade.Abi;
using Palisade.Bpf.Abi;

namespace Palisade.Datapath.Abi;

// Twins of bpf/include/pal_lb.h (the service maps of bpf/net/lb.bpf.c); the layout and enum
// tests compare each with the BTF of bpf/layout/layout.bpf.c.

/// <summary>Default map sizes (enum pal_lb_sizes).</summary>
[BpfEnum("pal_lb_sizes", "PAL_LB_")]
internal enum PalLbSizes
{
    Frontends = 65536,
    Backends = 65536,
    Slots = 262144,
    SockRevnat = 262144,
    Affinity = 65536,
    MaglevServices = 1024,
}

/// <summary>Flags of a frontend's master entry (enum pal_lb_flags).</summary>
[BpfEnum("pal_lb_flags", "PAL_LB_F_")]
[Flags]
internal enum PalLbFlags : byte
{
    None = 0,
    Maglev = 1 << 0,
    Affinity = 1 << 1,
    Nodeport = 1 << 2,
}

/// <summary>Flags of a backend (enum pal_lb_backend_flags).</summary>
[BpfEnum("pal_lb_backend_flags", "PAL_LB_BACKEND_F_")]
[Flags]
internal enum PalLbBackendFlags : byte
{
    None = 0,
    Terminating = 1 << 0,
}

/// <summary>Counters of pal_lb_stats (enum pal_lb_stat).</summary>
[BpfEnum("pal_lb_stat", "PAL_LB_STAT_")]
internal enum PalLbStat
{
    Translated = 0,
    NoBackend = 1,
    BackendMiss = 2,
    RevnatFull = 3,
    AffinityHit = 4,
    Reversed = 5,
    Count = 6,
}

/// <summary>struct pal_lb4_key: an IPv4 frontend (network order) and a slot (0: master).</summary>
[BpfStruct("pal_lb4_key")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalLb4Key
{
    public uint Address;
    public ushort Dport;
    public ushort BackendSlot;
    public byte Proto;
    public fixed byte Pad[3];
}

/// <summary>struct pal_lb6_key.</summary>
[BpfStruct("pal_lb6_key")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalLb6Key
{
    public fixed byte Address[16];
    public ushort Dport;
    public ushort BackendSlot;
    public byte Proto;
    public fixed byte Pad[3];
}

/// <summary>struct pal_lb_service: a master entry (slot 0) or a slot.</summary>
[BpfStruct("pal_lb_service")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalLbService
{
    public uint BackendId;
    public ushort Count;
    public ushort RevNatIndex;
    public byte Flags;
    public fixed byte Pad[3];
    public uint AffinityTimeout;
}

/// <summary>struct pal_lb4_backend.</summary>
[BpfStruct("pal_lb4_backend")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalLb4Backend
{
    public uint Address;
    public ushort Port;
    public byte Proto;
    public byte Flags;
}

/// <summary>struct pal_lb6_backend.</summary>
[BpfStruct("pal_lb6_backend")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalLb6Backend
{
    public fixed byte Address[16];
    public ushort Port;
    public byte Proto;
    public byte Flags;
}

/// <summary>struct pal_lb4_revnat: the frontend of a reverse-NAT index.</summary>
[BpfStruct("pal_lb4_revnat")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalLb4Revnat
{
    public uint Address;
    public ushort Port;
    public ushort Pad;
}

/// <summary>struct pal_lb6_revnat.</summary>
[BpfStruct("pal_lb6_revnat")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalLb6Revnat
{
    public fixed byte Address[16];
    public ushort Port;
    public ushort Pad;
}

/// <summary>struct pal_lb4_sock_key: (socket cookie, backend) of the socket reverse-NAT LRU.</summary>
[BpfStruct("pal_lb4_sock_key")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalLb4SockKey
{
    public ulong Cookie;
    public uint Address;
    public ushort Port;
    public ushort Pad;
}

/// <summary>struct pal_lb6_sock_key.</summary>
[BpfStruct("pal_lb6_sock_key")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalLb6SockKey
{
    public ulong Cookie;
    public fixed byte Address[16];
    public ushort Port;
    public ushort Pad;
    public uint Pad2;
}

/// <summary>struct pal_lb_sock_value.</summary>
[BpfStruct("pal_lb_sock_value")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalLbSockValue
{
    public ushort RevNatIndex;
    public ushort Pad;
    public uint BackendId;
}

/// <summary>struct pal_lb_affinity_key: (client netns cookie or socket cookie, frontend, kind).</summary>
[BpfStruct("pal_lb_affinity_key")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalLbAffinityKey
{
    public ulong Client;
    public ushort RevNatIndex;
    public byte Kind;
    public fixed byte Pad[5];
}

/// <summary>struct pal_lb_affinity_value.</summary>
[BpfStruct("pal_lb_affinity_value")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalLbAffinityValue
{
    public ulong LastUsed;
    public uint BackendId;
    public uint Pad;
}
