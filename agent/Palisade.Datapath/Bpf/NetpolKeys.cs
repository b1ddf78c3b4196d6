using System.Buffers.Binary;
using Palisade.Datapath.Abi;

namespace Palisade.Datapath.Bpf;

/// <summary>
/// Entries of an endpoint's policy map (bpf/include/pal_netpol.h) built from host-order
/// numbers. The constants repeat enums pal_netpol_sizes, pal_netpol_mode and pal_netpol_flags
/// (their checked twins are in policies/ PolicyMapAbi.cs, which the datapath does not reference).
/// </summary>
public static class NetpolKeys
{
    /// <summary>PAL_NETPOL_PREFIX_FIXED: identity and direction bits, always given.</summary>
    public const int PrefixFixed = 40;

    /// <summary>PAL_NETPOL_PREFIX_FULL - PAL_NETPOL_PREFIX_FIXED: bits of protocol and port.</summary>
    public const int MaxL4Prefix = 24;

    /// <summary>PAL_NETPOL_ENTRIES: the most entries one endpoint's map takes.</summary>
    public const int MaxEntries = 16384;

    /// <summary>PAL_NETPOL_ENFORCE (enum pal_netpol_mode): a packet no entry matches is dropped.</summary>
    public const byte ModeEnforce = 1;

    /// <summary>PAL_NETPOL_F_DENY and PAL_NETPOL_F_AUDIT (enum pal_netpol_flags).</summary>
    public const byte FlagDeny = 1, FlagAudit = 2;

    /// <summary>
    /// One entry: <paramref name="direction"/> 0 ingress, 1 egress; <paramref name="l4Prefix"/>
    /// the bits of protocol (8) and port (16) the key gives (0: any protocol; 8: any port;
    /// 24: one port; between: a port range prefix); <paramref name="flags"/> enum pal_netpol_flags;
    /// <paramref name="rule"/> the rule number reported in flows. ICMP: the type as the port.
    /// </summary>
    public static KeyValuePair<PalNetpolKey, PalNetpolValue> Entry(uint identity, byte direction, byte protocol, ushort portHostOrder, byte l4Prefix, byte flags, uint rule)
    {
        if (direction > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(direction), direction, "direction must be 0 (ingress) or 1 (egress).");
        }
        if (l4Prefix > MaxL4Prefix)
        {
            throw new ArgumentOutOfRangeException(nameof(l4Prefix), l4Prefix, $"l4Prefix counts protocol and port bits: 0..{MaxL4Prefix}.");
        }
        var key = new PalNetpolKey
        {
            Prefixlen = (uint)(PrefixFixed + l4Prefix),
            Identity = identity,
            Direction = direction,
            Protocol = l4Prefix >= 8 ? protocol : (byte)0,
            Dport = BinaryPrimitives.ReverseEndianness(Mask(portHostOrder, l4Prefix)),
        };
        return new(key, new PalNetpolValue { Flags = flags, L4Prefix = l4Prefix, Rule = rule });
    }

    /// <summary>The port bits the prefix keeps (an LPM key's bits past its prefix must not matter; zero them).</summary>
    private static ushort Mask(ushort port, byte l4Prefix)
    {
        var portBits = Math.Max(0, l4Prefix - 8);
        return portBits == 0 ? (ushort)0 : (ushort)(port & (ushort)(0xffff << (16 - portBits)));
    }
}
