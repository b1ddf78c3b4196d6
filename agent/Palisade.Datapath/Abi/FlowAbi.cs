using System.Runtime.InteropServices;
using Palisade.Abi;
using Palisade.Bpf.Abi;

namespace Palisade.Datapath.Abi;

// Twins of bpf/include/pal_flow.h; the layout and enum tests compare each with the BTF of
// bpf/layout/layout.bpf.c.

/// <summary>Hubble's Verdict numbers (enum pal_flow_verdict).</summary>
[BpfEnum("pal_flow_verdict", "PAL_VERDICT_")]
internal enum PalFlowVerdict : byte
{
    Unknown = 0,
    Forwarded = 1,
    Dropped = 2,
    Error = 3,
    Audit = 4,
    Redirected = 5,
    Traced = 6,
    Translated = 7,
}

/// <summary>Hubble's TraceObservationPoint numbers (enum pal_flow_obs).</summary>
[BpfEnum("pal_flow_obs", "PAL_OBS_")]
internal enum PalFlowObs : byte
{
    Unknown = 0,
    ToHost = 2,
    ToStack = 3,
    FromEndpoint = 5,
    FromHost = 7,
    FromStack = 8,
    FromNetwork = 10,
    ToNetwork = 11,
    ToEndpoint = 101,
}

/// <summary>Hubble's TrafficDirection numbers (enum pal_flow_direction).</summary>
[BpfEnum("pal_flow_direction", "PAL_DIR_")]
internal enum PalFlowDirection : byte
{
    Unknown = 0,
    Ingress = 1,
    Egress = 2,
}

/// <summary>Why a flow record was written (enum pal_flow_report).</summary>
[Flags]
[BpfEnum("pal_flow_report", "PAL_REPORT_")]
internal enum PalFlowReport : uint
{
    First = 1 << 0,
    State = 1 << 1,
    Close = 1 << 2,
    Drop = 1 << 3,
    Reply = 1 << 4,
    Active = 1 << 5,
}

/// <summary>pal_flow_event.flags (enum pal_flow_flags).</summary>
[Flags]
[BpfEnum("pal_flow_flags", "PAL_FLOW_F_")]
internal enum PalFlowFlags : uint
{
    Ipv6 = 1 << 0,
    Owner = 1 << 1,
    RemoteNode = 1 << 2,
}

/// <summary>One flow record (struct pal_flow_event).</summary>
[BpfStruct("pal_flow_event")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalFlowEvent
{
    public PalEventHeader Hdr;
    public fixed uint Saddr[4];
    public fixed uint Daddr[4];
    public ushort Sport;
    public ushort Dport;
    public byte Proto;
    public byte Verdict;
    public byte ObsPoint;
    public byte Direction;
    public ushort TcpFlags;
    public byte IcmpType;
    public byte IcmpCode;
    public uint Report;
    public uint Flags;
    public uint DropReason;
    public uint Ifindex;
    public uint SrcEp;
    public uint DstEp;
    public uint SrcIdentity;
    public uint DstIdentity;
    public uint OwnerTgid;
    public ulong OwnerKtime;
    public ulong Packets;
    public ulong Bytes;
    public uint PolicyRule;
    public byte PolicyDir;
    public byte PolicyMatch;
    public fixed byte Pad[2];
}

/// <summary>How the network policy decided a flow (enum pal_flow_policy_match).</summary>
[BpfEnum("pal_flow_policy_match", "PAL_POLICY_")]
internal enum PalFlowPolicyMatch : byte
{
    None = 0,
    Rule = 1,
    Default = 2,
    CtReply = 3,
    CtEstablished = 4,
    CtRelated = 5,
}

/// <summary>Key of the socket-owner table (struct pal_sock_key).</summary>
[BpfStruct("pal_sock_key")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalSockKey
{
    public uint Netns;
    public ushort Port;
    public byte Proto;
    public byte Family;
}

/// <summary>Value of the socket-owner table (struct pal_sock_owner).</summary>
[BpfStruct("pal_sock_owner")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalSockOwner
{
    public uint Tgid;
    public uint Pad;
    public ulong Ktime;
    public ulong Cookie;
}

/// <summary>Counters of the socket-owner programs (enum pal_sock_stat, pal_sock_stats).</summary>
[BpfEnum("pal_sock_stat", "PAL_SOCK_STAT_")]
internal enum PalSockStat
{
    Owned = 0,
    Released = 1,
    TableFull = 2,
    ProcMiss = 3,
    Count = 4,
}
