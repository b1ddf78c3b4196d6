using System.Runtime.InteropServices;
using Palisade.Abi;
using Palisade.Bpf.Abi;

namespace Palisade.Datapath.Abi;

// Twins of bpf/include/pal_net.h; the layout and enum tests compare each with the BTF of
// bpf/layout/layout.bpf.c.

/// <summary>Reserved security identities, Cilium's numbers (enum pal_identity).</summary>
[BpfEnum("pal_identity", "PAL_ID_")]
public enum ReservedIdentity : uint
{
    Unknown = 0,
    Host = 1,
    World = 2,
    Unmanaged = 3,
    Health = 4,
    Init = 5,
    RemoteNode = 6,
    KubeApiserver = 7,
    FirstLocal = 256,
}

/// <summary>Cilium's drop reasons the datapath emits (enum pal_drop_reason).</summary>
[BpfEnum("pal_drop_reason", "PAL_DROP_")]
public enum NetDropReason : uint
{
    InvalidSip = 132,
    /// <summary>POLICY_DENIED: no policy entry allows it (default deny).</summary>
    PolicyDenied = 133,
    Invalid = 134,
    WriteError = 141,
    /// <summary>POLICY_DENY: an explicit deny rule.</summary>
    PolicyDeny = 181,
}

/// <summary>Default map sizes and key constants (enum pal_net_sizes).</summary>
[BpfEnum("pal_net_sizes", "PAL_NET_")]
internal enum PalNetSizes
{
    Endpoints = 65536,
    Ipcache = 512000,
    Flows = 65536,
    SockOwners = 65536,
    AddrPrefix = 32,
    [BpfEnumerator("PAL_NET_CT")]
    Conntrack = 262144,
}

/// <summary>Address family of the map keys (enum pal_net_family).</summary>
[BpfEnum("pal_net_family", "PAL_AF_")]
internal enum PalNetFamily : byte
{
    Inet = 2,
    Inet6 = 10,
}

/// <summary>pal_endpoint_info.flags (enum pal_endpoint_flags).</summary>
[Flags]
[BpfEnum("pal_endpoint_flags", "PAL_EP_F_")]
internal enum PalEndpointFlags : uint
{
    Ipv4 = 1 << 0,
    Ipv6 = 1 << 1,
}

/// <summary>pal_ipcache_value.flags (enum pal_ipcache_flags).</summary>
[Flags]
[BpfEnum("pal_ipcache_flags", "PAL_IPC_F_")]
public enum IpcacheFlags : uint
{
    None = 0,
    RemoteNode = 1 << 0,
    Host = 1 << 1,
    [BpfEnumerator("PAL_IPC_F_LOCAL_EP")]
    LocalEndpoint = 1 << 2,
}

/// <summary>pal_flow_state.flags (enum pal_flow_state_flags).</summary>
[Flags]
[BpfEnum("pal_flow_state_flags", "PAL_FLOW_ST_")]
internal enum PalFlowStateFlags : ushort
{
    Reply = 1 << 0,
    Closed = 1 << 1,
}

/// <summary>Indexes of the per-CPU counters pal_net_stats (enum pal_net_stat).</summary>
[BpfEnum("pal_net_stat", "PAL_NET_STAT_")]
public enum DatapathCounter
{
    Forwarded = 0,
    Redirected = 1,
    ToStack = 2,
    PassedL2 = 3,
    DropInvalidSip = 4,
    DropInvalid = 5,
    DropWriteError = 6,
    FlowRecords = 7,
    FlowAggregated = 8,
    FlowCreated = 9,
    RingbufFull = 10,
    FlowTableFull = 11,
    UnknownL4 = 12,
    Fragment = 13,
    NoEndpoint = 14,
    PolicyDenied = 15,
    PolicyDeny = 16,
    PolicyAudit = 17,
    PolicyAllowed = 18,
    CtCreated = 19,
    CtFull = 20,
    CtReply = 21,
    CtEstablished = 22,
    CtRelated = 23,
    CtGcRemoved = 24,
    Count = 25,
}

/// <summary>pal_ct_entry.flags (enum pal_ct_flags).</summary>
[Flags]
[BpfEnum("pal_ct_flags", "PAL_CT_F_")]
internal enum PalCtFlags : ushort
{
    ReplySeen = 1 << 0,
    Closing = 1 << 1,
    Audit = 1 << 2,
}

/// <summary>Conntrack timeouts in seconds, Cilium's defaults (enum pal_ct_timeouts).</summary>
[BpfEnum("pal_ct_timeouts", "PAL_CT_")]
internal enum PalCtTimeouts
{
    TcpEstablishedS = 21600,
    TcpSynS = 60,
    TcpClosingS = 10,
    OtherS = 60,
}

/// <summary>Key of the conntrack table: the originator's 5-tuple (struct pal_ct_key).</summary>
[BpfStruct("pal_ct_key")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalCtKey
{
    public fixed uint Saddr[4];
    public fixed uint Daddr[4];
    public ushort Sport;
    public ushort Dport;
    public byte Proto;
    public byte Family;
    public fixed byte Pad[2];
}

/// <summary>Value of the conntrack table (struct pal_ct_entry).</summary>
[BpfStruct("pal_ct_entry")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalCtEntry
{
    public ulong ExpiresNs;
    public uint CreatedS;
    public ushort Flags;
    public ushort TcpFlags;
}

/// <summary>Key of pal_endpoints (struct pal_endpoint_key).</summary>
[BpfStruct("pal_endpoint_key")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalEndpointKey
{
    public fixed uint Addr[4];
    public byte Family;
    public fixed byte Pad[3];
}

/// <summary>A local endpoint as the tc programs see it (struct pal_endpoint_info).</summary>
[BpfStruct("pal_endpoint_info")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalEndpointInfo
{
    public uint EpId;
    public uint Ifindex;
    public uint Identity;
    public uint Netns;
    public fixed byte PodMac[6];
    public fixed byte HostMac[6];
    public uint Flags;
    public uint Ipv4;
    public fixed uint Ipv6[4];
    /// <summary>enum pal_netpol_mode of the endpoint's ingress.</summary>
    public byte IngressMode;
    public byte EgressMode;
    public fixed byte Pad[2];
}

/// <summary>Key of the ipcache LPM trie (struct pal_ipcache_key).</summary>
[BpfStruct("pal_ipcache_key")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalIpcacheKey
{
    public uint Prefixlen;
    public byte Family;
    public fixed byte Pad[3];
    public fixed uint Addr[4];
}

/// <summary>Value of the ipcache (struct pal_ipcache_value).</summary>
[BpfStruct("pal_ipcache_value")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalIpcacheValue
{
    public uint Identity;
    public uint Flags;
    public uint NodeIp;
    public uint Pad;
}

/// <summary>Key of the flow-aggregation table (struct pal_flow_key).</summary>
[BpfStruct("pal_flow_key")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PalFlowKey
{
    public fixed uint Saddr[4];
    public fixed uint Daddr[4];
    public ushort Sport;
    public ushort Dport;
    public byte Proto;
    public byte Family;
    public byte ObsPoint;
    public byte Pad;
    public uint EpId;
}

/// <summary>Value of the flow-aggregation table (struct pal_flow_state).</summary>
[BpfStruct("pal_flow_state")]
[StructLayout(LayoutKind.Sequential)]
internal struct PalFlowState
{
    public ulong LastReportNs;
    public ulong Packets;
    public ulong Bytes;
    public ushort TcpFlagsSeen;
    public ushort Flags;
    public uint LastDrop;
}
