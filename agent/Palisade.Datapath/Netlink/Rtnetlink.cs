using System.Net;
using System.Net.Sockets;
using static Palisade.Datapath.Netlink.NetlinkSocket;

namespace Palisade.Datapath.Netlink;

/// <summary>
/// The rtnetlink requests an endpoint needs (links, addresses, routes, neighbors), in the
/// namespace of the socket it wraps. Every refusal is a <see cref="NetlinkException"/> that
/// names the request, the object and the errno.
/// </summary>
public sealed class Rtnetlink : IDisposable
{
    private readonly NetlinkSocket _socket;

    private Rtnetlink(NetlinkSocket socket) => _socket = socket;

    /// <summary>Requests act in the calling thread's namespace (the agent's: the host).</summary>
    public static Rtnetlink OpenHost() => new(NetlinkSocket.Open());

    /// <summary>Requests act in the calling thread's namespace, named <paramref name="where"/> in messages.</summary>
    public static Rtnetlink OpenHere(string where) => new(NetlinkSocket.Open(where));

    private string Where => _socket.Where;

    /// <summary>
    /// Creates a veth pair, <paramref name="name"/> up (the peer stays down until <see cref="SetUp"/>): <paramref name="name"/> here, <paramref name="peerName"/> in the
    /// namespace of <paramref name="peerNetnsFd"/> (here when null), with the given MACs and MTU.
    /// </summary>
    public void CreateVeth(string name, byte[] mac, string peerName, byte[] peerMac, int? peerNetnsFd, int mtu)
    {
        var request = new NetlinkRequest(Rtm.NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
            .Struct(new IfInfoMsg { Flags = Rtm.IFF_UP, Change = Rtm.IFF_UP })
            .Attribute(Rtm.IFLA_IFNAME, name)
            .Attribute(Rtm.IFLA_ADDRESS, mac)
            .Attribute(Rtm.IFLA_MTU, (uint)mtu);
        var info = request.BeginNested(Rtm.IFLA_LINKINFO);
        request.Attribute(Rtm.IFLA_INFO_KIND, "veth");
        var data = request.BeginNested(Rtm.IFLA_INFO_DATA);
        var peer = request.BeginNested(Rtm.VETH_INFO_PEER);
        // The peer cannot be created up: the kernel opens it before the pair is linked (ENOTCONN). SetUp it after.
        request.Struct(new IfInfoMsg())
            .Attribute(Rtm.IFLA_IFNAME, peerName)
            .Attribute(Rtm.IFLA_ADDRESS, peerMac)
            .Attribute(Rtm.IFLA_MTU, (uint)mtu);
        if (peerNetnsFd is { } fd)
        {
            request.Attribute(Rtm.IFLA_NET_NS_FD, (uint)fd);
        }
        request.EndNested(peer).EndNested(data).EndNested(info);
        _socket.Execute(request, "RTM_NEWLINK create veth", $"{name} (peer {peerName}) in {Where}");
    }

    /// <summary>Sets a link up.</summary>
    public void SetUp(int index, string name)
    {
        var request = new NetlinkRequest(Rtm.NEWLINK, NLM_F_REQUEST | NLM_F_ACK)
            .Struct(new IfInfoMsg { Index = index, Flags = Rtm.IFF_UP, Change = Rtm.IFF_UP });
        _socket.Execute(request, "RTM_NEWLINK set up", $"{name} in {Where}");
    }

    /// <summary>Deletes a link (a veth takes its peer with it); false when there was none of that name.</summary>
    public bool DeleteLink(string name)
    {
        var request = new NetlinkRequest(Rtm.DELLINK, NLM_F_REQUEST | NLM_F_ACK)
            .Struct(new IfInfoMsg())
            .Attribute(Rtm.IFLA_IFNAME, name);
        try
        {
            _socket.Execute(request, "RTM_DELLINK", $"{name} in {Where}");
            return true;
        }
        catch (NetlinkException e) when (e.Errno is Errno.ENODEV or Errno.ENOENT)
        {
            return false;
        }
    }

    /// <summary>The link of that name; null when there is none.</summary>
    public LinkInfo? Link(string name)
    {
        var request = new NetlinkRequest(Rtm.GETLINK, NLM_F_REQUEST)
            .Struct(new IfInfoMsg())
            .Attribute(Rtm.IFLA_IFNAME, name);
        try
        {
            var replies = _socket.Dump(request, "RTM_GETLINK", $"{name} in {Where}");
            return replies.Count == 0 ? null : ParseLink(replies[0].Body);
        }
        catch (NetlinkException e) when (e.Errno is Errno.ENODEV or Errno.ENOENT)
        {
            return null;
        }
    }

    /// <summary>Adds an address; <paramref name="replace"/> makes an existing one no error.</summary>
    public void AddAddress(int index, IPAddress address, int prefixLength, bool replace, string device)
    {
        var flags = (ushort)(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL));
        var bytes = address.GetAddressBytes();
        // No duplicate address detection: the agent owns the address, so it must work at once (an
        // IPv6 address in "tentative" state cannot be used for ~1 s). No prefix route: routes are ours.
        var request = new NetlinkRequest(Rtm.NEWADDR, flags)
            .Struct(new IfAddrMsg { Family = Rtm.Family(address.AddressFamily), PrefixLength = (byte)prefixLength, Flags = Rtm.IFA_F_NODAD | Rtm.IFA_F_PERMANENT, Index = index })
            .Attribute(Rtm.IFA_LOCAL, bytes)
            .Attribute(Rtm.IFA_ADDRESS, bytes)
            .Attribute(Rtm.IFA_FLAGS, Rtm.IFA_F_NODAD | Rtm.IFA_F_PERMANENT | Rtm.IFA_F_NOPREFIXROUTE);
        _socket.Execute(request, "RTM_NEWADDR", $"{address}/{prefixLength} on {device} in {Where}");
    }

    /// <summary>Addresses of one family (or both when null).</summary>
    public List<AddressInfo> Addresses(AddressFamily? family = null)
    {
        var request = new NetlinkRequest(Rtm.GETADDR, NLM_F_REQUEST | NLM_F_DUMP)
            .Struct(new IfAddrMsg { Family = family is { } f ? Rtm.Family(f) : (byte)0 });
        var list = new List<AddressInfo>();
        foreach (var (type, body) in _socket.Dump(request, "RTM_GETADDR dump", Where))
        {
            if (type != Rtm.NEWADDR || body.Length < 8)
            {
                continue;
            }
            var message = System.Runtime.InteropServices.MemoryMarshal.Read<IfAddrMsg>(body);
            var attributes = NetlinkAttributes.Parse(body.AsSpan(8));
            if ((attributes.Bytes(Rtm.IFA_LOCAL) ?? attributes.Bytes(Rtm.IFA_ADDRESS)) is { } address)
            {
                list.Add(new AddressInfo(message.Index, new IPAddress(address), message.PrefixLength));
            }
        }
        return list;
    }

    /// <summary>
    /// Adds a route in the main table. With a gateway and <paramref name="onlink"/> the gateway
    /// needs no route of its own (the pod's default route); without a gateway the route is scope link.
    /// <paramref name="replace"/> makes an existing route to the same destination no error.
    /// </summary>
    public void AddRoute(IPNetwork destination, IPAddress? gateway, int outIndex, bool onlink, bool replace, string device)
    {
        var flags = (ushort)(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL));
        var request = new NetlinkRequest(Rtm.NEWROUTE, flags)
            .Struct(new RtMsg
            {
                Family = Rtm.Family(destination.BaseAddress.AddressFamily),
                DestinationLength = (byte)destination.PrefixLength,
                Table = Rtm.RT_TABLE_MAIN,
                Protocol = Rtm.RTPROT_STATIC,
                Scope = gateway is null ? Rtm.RT_SCOPE_LINK : Rtm.RT_SCOPE_UNIVERSE,
                Type = Rtm.RTN_UNICAST,
                Flags = onlink ? Rtm.RTNH_F_ONLINK : 0,
            });
        if (destination.PrefixLength > 0)
        {
            request.Attribute(Rtm.RTA_DST, destination.BaseAddress.GetAddressBytes());
        }
        if (gateway is not null)
        {
            request.Attribute(Rtm.RTA_GATEWAY, gateway.GetAddressBytes());
        }
        if (outIndex > 0)
        {
            request.Attribute(Rtm.RTA_OIF, (uint)outIndex);
        }
        _socket.Execute(request, "RTM_NEWROUTE", $"{destination}{(gateway is null ? "" : $" via {gateway}")} dev {device} in {Where}");
    }

    /// <summary>Deletes a route of the main table; false when there was none.</summary>
    public bool DeleteRoute(IPNetwork destination, int outIndex, string device)
    {
        var request = new NetlinkRequest(Rtm.DELROUTE, NLM_F_REQUEST | NLM_F_ACK)
            .Struct(new RtMsg
            {
                Family = Rtm.Family(destination.BaseAddress.AddressFamily),
                DestinationLength = (byte)destination.PrefixLength,
                Table = Rtm.RT_TABLE_MAIN,
                Scope = 0xff, // RT_SCOPE_NOWHERE: match any scope
            });
        if (destination.PrefixLength > 0)
        {
            request.Attribute(Rtm.RTA_DST, destination.BaseAddress.GetAddressBytes());
        }
        if (outIndex > 0)
        {
            request.Attribute(Rtm.RTA_OIF, (uint)outIndex);
        }
        try
        {
            _socket.Execute(request, "RTM_DELROUTE", $"{destination} dev {device} in {Where}");
            return true;
        }
        catch (NetlinkException e) when (e.Errno is Errno.ESRCH or Errno.ENOENT or Errno.ENODEV)
        {
            return false;
        }
    }

    /// <summary>Routes of the main table of one family.</summary>
    public List<RouteInfo> Routes(AddressFamily family)
    {
        var request = new NetlinkRequest(Rtm.GETROUTE, NLM_F_REQUEST | NLM_F_DUMP)
            .Struct(new RtMsg { Family = Rtm.Family(family) });
        var list = new List<RouteInfo>();
        foreach (var (type, body) in _socket.Dump(request, "RTM_GETROUTE dump", Where))
        {
            if (type != Rtm.NEWROUTE || body.Length < 12)
            {
                continue;
            }
            var message = System.Runtime.InteropServices.MemoryMarshal.Read<RtMsg>(body);
            var attributes = NetlinkAttributes.Parse(body.AsSpan(12));
            var table = attributes.UInt32(Rtm.RTA_TABLE) ?? message.Table;
            if (table != Rtm.RT_TABLE_MAIN)
            {
                continue;
            }
            var any = family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any;
            var destination = attributes.Bytes(Rtm.RTA_DST) is { } d ? new IPAddress(d) : any;
            list.Add(new RouteInfo(new IPNetwork(destination, message.DestinationLength),
                attributes.Bytes(Rtm.RTA_GATEWAY) is { } g ? new IPAddress(g) : null,
                (int)(attributes.UInt32(Rtm.RTA_OIF) ?? 0), message.Scope, message.Flags, message.Type));
        }
        return list;
    }

    /// <summary>Adds (or replaces) a permanent neighbor entry: <paramref name="address"/> is at <paramref name="mac"/> on the link.</summary>
    public void SetPermanentNeighbor(int index, IPAddress address, byte[] mac, string device)
    {
        var request = new NetlinkRequest(Rtm.NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
            .Struct(new NdMsg { Family = Rtm.Family(address.AddressFamily), Index = index, State = Rtm.NUD_PERMANENT })
            .Attribute(Rtm.NDA_DST, address.GetAddressBytes())
            .Attribute(Rtm.NDA_LLADDR, mac);
        _socket.Execute(request, "RTM_NEWNEIGH permanent", $"{address} lladdr {Mac.Format(mac)} dev {device} in {Where}");
    }

    /// <summary>Neighbor entries of one family.</summary>
    public List<NeighborInfo> Neighbors(AddressFamily family)
    {
        var request = new NetlinkRequest(Rtm.GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP)
            .Struct(new NdMsg { Family = Rtm.Family(family) });
        var list = new List<NeighborInfo>();
        foreach (var (type, body) in _socket.Dump(request, "RTM_GETNEIGH dump", Where))
        {
            if (type != Rtm.NEWNEIGH || body.Length < 12)
            {
                continue;
            }
            var message = System.Runtime.InteropServices.MemoryMarshal.Read<NdMsg>(body);
            var attributes = NetlinkAttributes.Parse(body.AsSpan(12));
            if (attributes.Bytes(Rtm.NDA_DST) is { } d)
            {
                list.Add(new NeighborInfo(message.Index, new IPAddress(d), attributes.Bytes(Rtm.NDA_LLADDR), message.State));
            }
        }
        return list;
    }

    private static LinkInfo ParseLink(byte[] body)
    {
        var message = System.Runtime.InteropServices.MemoryMarshal.Read<IfInfoMsg>(body);
        var attributes = NetlinkAttributes.Parse(body.AsSpan(16));
        return new LinkInfo(message.Index, attributes.String(Rtm.IFLA_IFNAME) ?? "", attributes.Bytes(Rtm.IFLA_ADDRESS) ?? [],
            message.Flags, (int)(attributes.UInt32(Rtm.IFLA_MTU) ?? 0), attributes.Nested(Rtm.IFLA_LINKINFO).String(Rtm.IFLA_INFO_KIND));
    }

    public void Dispose() => _socket.Dispose();
}

/// <summary>MAC addresses: random locally administered ones, and the aa:bb:cc:dd:ee:ff form.</summary>
public static class Mac
{
    /// <summary>A random unicast, locally administered MAC (the veth ends get these, so no read-back is needed).</summary>
    public static byte[] Random()
    {
        var mac = new byte[6];
        System.Security.Cryptography.RandomNumberGenerator.Fill(mac);
        mac[0] = (byte)((mac[0] & 0xfe) | 0x02);
        return mac;
    }

    public static string Format(ReadOnlySpan<byte> mac) => string.Join(':', mac.ToArray().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
}
