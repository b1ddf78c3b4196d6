using System.Buffers.Binary;
using Palisade.Datapath.Abi;

namespace Palisade.Datapath.Bpf;

/// <summary>Entries of an endpoint's policy LPM trie (struct pal_netpol_key/value of bpf/include/pal_netpol.h).</summary>
public static class NetpolKeys
{
    /// <summary>PAL_NETPOL_PREFIX_FIXED: the identity and direction bits every key gives (policies/ holds the enum's twin).</summary>
    private const uint PrefixFixed = 40;

    /// <summary>
    /// One entry: the key's prefixlen is the fixed bits plus <paramref name="l4Prefix"/> (protocol,
    /// then port bits), the port goes in network order; the value carries the flags, the same
    /// l4 prefix (the lookup ranks by it) and the rule number flows report.
    /// </summary>
    public static KeyValuePair<PalNetpolKey, PalNetpolValue> Entry(uint identity, byte direction, byte protocol, ushort portHostOrder, byte l4Prefix, byte flags, uint rule)
    {
        var key = new PalNetpolKey
        {
            Prefixlen = PrefixFixed + l4Prefix,
            Identity = identity,
            Direction = direction,
            Protocol = protocol,
            Dport = BinaryPrimitives.ReverseEndianness(portHostOrder),
        };
        if (!BitConverter.IsLittleEndian)
        {
            key.Dport = portHostOrder;
        }
        var value = new PalNetpolValue { Flags = flags, L4Prefix = l4Prefix, Rule = rule };
        return KeyValuePair.Create(key, value);
    }
}
