using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>Hand-built Ethernet frames for BPF_PROG_RUN: IPv4/IPv6 with TCP, UDP or ICMP echo, valid checksums.</summary>
internal static class Frames
{
    public const byte Tcp = 6, Udp = 17, Icmp = 1, Icmpv6 = 58;
    public const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10;

    public static byte[] TcpFrame(byte[] srcMac, byte[] dstMac, IPAddress src, IPAddress dst, ushort sport, ushort dport, byte flags, int payload = 0)
    {
        var l4 = new byte[20 + payload];
        BinaryPrimitives.WriteUInt16BigEndian(l4, sport);
        BinaryPrimitives.WriteUInt16BigEndian(l4.AsSpan(2), dport);
        l4[12] = 5 << 4;
        l4[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(l4.AsSpan(14), 65535);
        return Build(srcMac, dstMac, src, dst, Tcp, l4);
    }

    public static byte[] UdpFrame(byte[] srcMac, byte[] dstMac, IPAddress src, IPAddress dst, ushort sport, ushort dport, int payload = 8)
    {
        var l4 = new byte[8 + payload];
        BinaryPrimitives.WriteUInt16BigEndian(l4, sport);
        BinaryPrimitives.WriteUInt16BigEndian(l4.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt16BigEndian(l4.AsSpan(4), (ushort)l4.Length);
        return Build(srcMac, dstMac, src, dst, Udp, l4);
    }

    public static byte[] EchoRequest(byte[] srcMac, byte[] dstMac, IPAddress src, IPAddress dst, ushort id)
    {
        var v6 = src.AddressFamily == AddressFamily.InterNetworkV6;
        var l4 = new byte[16];
        l4[0] = v6 ? (byte)128 : (byte)8;
        BinaryPrimitives.WriteUInt16BigEndian(l4.AsSpan(4), id);
        return Build(srcMac, dstMac, src, dst, v6 ? Icmpv6 : Icmp, l4);
    }

    public static byte[] EchoReply(byte[] srcMac, byte[] dstMac, IPAddress src, IPAddress dst, ushort id)
    {
        var v6 = src.AddressFamily == AddressFamily.InterNetworkV6;
        var l4 = new byte[16];
        l4[0] = v6 ? (byte)129 : (byte)0;
        BinaryPrimitives.WriteUInt16BigEndian(l4.AsSpan(4), id);
        return Build(srcMac, dstMac, src, dst, v6 ? Icmpv6 : Icmp, l4);
    }

    /// <summary>An ICMP error (destination unreachable: v4 type 3, v6 type 1, unless given) quoting the IP header and 8 L4 bytes of <paramref name="about"/> (a frame).</summary>
    public static byte[] IcmpError(byte[] srcMac, byte[] dstMac, IPAddress src, IPAddress dst, byte[] about, byte? type = null)
    {
        var v6 = src.AddressFamily == AddressFamily.InterNetworkV6;
        var quoted = about.AsSpan(L3, (v6 ? 40 : 20) + 8);
        var l4 = new byte[8 + quoted.Length];
        l4[0] = type ?? (v6 ? (byte)1 : (byte)3);
        l4[1] = v6 ? (byte)4 : (byte)3; // port unreachable
        quoted.CopyTo(l4.AsSpan(8));
        return Build(srcMac, dstMac, src, dst, v6 ? Icmpv6 : Icmp, l4);
    }

    /// <summary>Offset of the IP header in every frame here.</summary>
    public const int L3 = 14;

    private static byte[] Build(byte[] srcMac, byte[] dstMac, IPAddress src, IPAddress dst, byte proto, byte[] l4)
    {
        var v6 = src.AddressFamily == AddressFamily.InterNetworkV6;
        var l3Len = v6 ? 40 : 20;
        // The kernel's test run wants at least an Ethernet header plus a little; pad small frames.
        var frame = new byte[Math.Max(L3 + l3Len + l4.Length, 64)];
        dstMac.CopyTo(frame, 0);
        srcMac.CopyTo(frame, 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), v6 ? (ushort)0x86DD : (ushort)0x0800);
        var ip = frame.AsSpan(L3, l3Len);
        if (v6)
        {
            ip[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)l4.Length);
            ip[6] = proto;
            ip[7] = 64;
            src.GetAddressBytes().CopyTo(ip[8..]);
            dst.GetAddressBytes().CopyTo(ip[24..]);
        }
        else
        {
            ip[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + l4.Length));
            ip[8] = 64;
            ip[9] = proto;
            src.GetAddressBytes().CopyTo(ip[12..]);
            dst.GetAddressBytes().CopyTo(ip[16..]);
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum(ip));
        }
        l4.CopyTo(frame, L3 + l3Len);
        return frame;
    }

    /// <summary>The Internet checksum of <paramref name="data"/> (0 when a header with its checksum in place is valid).</summary>
    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        }
        if ((data.Length & 1) != 0)
        {
            sum += (uint)data[^1] << 8;
        }
        while (sum >> 16 != 0)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return (ushort)~sum;
    }

    /// <summary>A struct __sk_buff prefix with ifindex set (the device a tc egress program runs on; it must exist: 1, lo, does).</summary>
    public static byte[] SkbEgressContext(int ifindex)
    {
        var ctx = new byte[44];
        BinaryPrimitives.WriteInt32LittleEndian(ctx.AsSpan(40), ifindex);
        return ctx;
    }

    /// <summary>The leading bytes of a struct __sk_buff with ingress_ifindex set (what BPF_PROG_RUN lets a test choose).</summary>
    public static byte[] SkbContext(int ingressIfindex)
    {
        var ctx = new byte[44]; // up to and including __sk_buff.ifindex
        BinaryPrimitives.WriteInt32LittleEndian(ctx.AsSpan(36), ingressIfindex);
        return ctx;
    }
}
