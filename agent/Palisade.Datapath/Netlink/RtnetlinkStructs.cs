using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Palisade.Datapath.Netlink;

/// <summary>rtnetlink numbers from linux/rtnetlink.h, if_link.h, if_addr.h, neighbour.h and veth.h.</summary>
internal static class Rtm
{
    public const ushort NEWLINK = 16, DELLINK = 17, GETLINK = 18, NEWADDR = 20, DELADDR = 21, GETADDR = 22,
        NEWROUTE = 24, DELROUTE = 25, GETROUTE = 26, NEWNEIGH = 28, DELNEIGH = 29, GETNEIGH = 30;

    public const ushort IFLA_ADDRESS = 1, IFLA_IFNAME = 3, IFLA_MTU = 4, IFLA_LINKINFO = 18, IFLA_NET_NS_FD = 28;
    public const ushort IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2, VETH_INFO_PEER = 1;
    public const ushort IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_FLAGS = 8;
    public const ushort RTA_DST = 1, RTA_OIF = 4, RTA_GATEWAY = 5, RTA_TABLE = 15;
    public const ushort NDA_DST = 1, NDA_LLADDR = 2;

    public const uint IFF_UP = 0x1;
    public const byte IFA_F_NODAD = 0x02, IFA_F_PERMANENT = 0x80;
    public const uint IFA_F_NOPREFIXROUTE = 0x200;
    public const byte RT_TABLE_MAIN = 254, RTPROT_BOOT = 3, RTPROT_STATIC = 4, RTN_UNICAST = 1;
    public const byte RT_SCOPE_UNIVERSE = 0, RT_SCOPE_LINK = 253;
    public const uint RTNH_F_ONLINK = 4;
    public const ushort NUD_PERMANENT = 0x80;

    public static byte Family(AddressFamily family) => family == AddressFamily.InterNetworkV6 ? (byte)10 : (byte)2;

    public static AddressFamily FromFamily(byte family) => family == 10 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
}

/// <summary>struct ifinfomsg.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IfInfoMsg
{
    public byte Family;
    public byte Pad;
    public ushort Type;
    public int Index;
    public uint Flags;
    public uint Change;
}

/// <summary>struct ifaddrmsg.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IfAddrMsg
{
    public byte Family;
    public byte PrefixLength;
    public byte Flags;
    public byte Scope;
    public int Index;
}

/// <summary>struct rtmsg.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct RtMsg
{
    public byte Family;
    public byte DestinationLength;
    public byte SourceLength;
    public byte Tos;
    public byte Table;
    public byte Protocol;
    public byte Scope;
    public byte Type;
    public uint Flags;
}

/// <summary>struct ndmsg.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NdMsg
{
    public byte Family;
    public byte Pad1;
    public ushort Pad2;
    public int Index;
    public ushort State;
    public byte Flags;
    public byte Type;
}

/// <summary>A network interface as RTM_GETLINK reports it.</summary>
public sealed record LinkInfo(int Index, string Name, byte[] Mac, uint Flags, int Mtu, string? Kind)
{
    /// <summary>Administratively up (IFF_UP).</summary>
    public bool IsUp => (Flags & Rtm.IFF_UP) != 0;
}

/// <summary>An interface address as RTM_GETADDR reports it.</summary>
public sealed record AddressInfo(int Index, IPAddress Address, int PrefixLength);

/// <summary>A route of the main table as RTM_GETROUTE reports it.</summary>
public sealed record RouteInfo(IPNetwork Destination, IPAddress? Gateway, int OutIndex, byte Scope, uint Flags, byte Type);

/// <summary>A neighbor (ARP/NDP) entry as RTM_GETNEIGH reports it.</summary>
public sealed record NeighborInfo(int Index, IPAddress Address, byte[]? Mac, ushort State)
{
    public bool IsPermanent => (State & Rtm.NUD_PERMANENT) != 0;
}
