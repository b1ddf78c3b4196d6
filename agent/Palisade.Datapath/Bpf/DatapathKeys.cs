using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Palisade.Datapath.Abi;

namespace Palisade.Datapath.Bpf;

/// <summary>Map keys and values of pal_net.h built from addresses and endpoints.</summary>
internal static unsafe class DatapathKeys
{
    public static PalEndpointKey EndpointKey(IPAddress address)
    {
        var key = default(PalEndpointKey);
        key.Family = (byte)Family(address);
        WriteAddress(address, new Span<byte>(key.Addr, 16));
        return key;
    }

    public static PalIpcacheKey IpcacheKey(IPNetwork prefix)
    {
        var key = default(PalIpcacheKey);
        key.Family = (byte)Family(prefix.BaseAddress);
        key.Prefixlen = (uint)((int)PalNetSizes.AddrPrefix + prefix.PrefixLength);
        WriteAddress(prefix.BaseAddress, new Span<byte>(key.Addr, 16));
        return key;
    }

    public static IPNetwork Host(IPAddress address) =>
        new(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);

    public static PalEndpointInfo EndpointInfo(Endpoint endpoint, int ifindex)
    {
        var info = new PalEndpointInfo
        {
            EpId = endpoint.Id,
            Ifindex = (uint)ifindex,
            Identity = endpoint.Identity,
            Netns = endpoint.NetnsInode,
        };
        endpoint.PodMac.CopyTo(new Span<byte>(info.PodMac, 6));
        endpoint.HostMac.CopyTo(new Span<byte>(info.HostMac, 6));
        if (endpoint.IPv4 is { } v4)
        {
            info.Flags |= (uint)PalEndpointFlags.Ipv4;
            info.Ipv4 = MemoryMarshal.Read<uint>(v4.GetAddressBytes());
        }
        if (endpoint.IPv6 is { } v6)
        {
            info.Flags |= (uint)PalEndpointFlags.Ipv6;
            v6.GetAddressBytes().CopyTo(new Span<byte>(info.Ipv6, 16));
        }
        return info;
    }

    /// <summary>An address of a flow record or key (IPv4 in the first word, network order).</summary>
    public static IPAddress Address(ReadOnlySpan<uint> words, bool ipv6) =>
        ipv6 ? new IPAddress(MemoryMarshal.AsBytes(words[..4])) : new IPAddress(MemoryMarshal.AsBytes(words[..1]));

    private static PalNetFamily Family(IPAddress address) => address.AddressFamily switch
    {
        AddressFamily.InterNetwork => PalNetFamily.Inet,
        AddressFamily.InterNetworkV6 => PalNetFamily.Inet6,
        _ => throw new ArgumentException($"Address {address} is neither IPv4 nor IPv6.", nameof(address)),
    };

    private static void WriteAddress(IPAddress address, Span<byte> destination)
    {
        destination.Clear();
        if (!address.TryWriteBytes(destination, out _))
        {
            throw new ArgumentException($"Address {address} does not fit a map key.", nameof(address));
        }
    }
}
