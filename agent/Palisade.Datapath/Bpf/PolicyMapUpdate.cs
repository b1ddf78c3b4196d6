using Palisade.Datapath.Abi;

namespace Palisade.Datapath.Bpf;

/// <summary>One write to an endpoint's live policy map: set <see cref="Key"/> to <see cref="Value"/>, or delete it.</summary>
public readonly record struct PolicyMapOp(bool Delete, PalNetpolKey Key, PalNetpolValue Value);

/// <summary>
/// Changes an endpoint's live policy map from one policy to the next in place, in an order in
/// which no packet is passed that neither the old nor the new policy passes; so a change of one
/// rule is one write, not a new map of every entry swapped in (a swap also makes the kernel wait
/// for an RCU grace period, ~15 ms here).
/// </summary>
/// <remarks>
/// <para>
/// The datapath (pal_netpol.h) looks up two keys per packet, a (its identity) and b (the
/// wildcard identity), and drops when either holds a drop entry (a deny without AUDIT), else
/// passes when either holds any entry, else falls to the direction's mode. While the writes run
/// each key holds its old or its new value (absent counts as a value), and the modes are the old
/// ones (they switch after the entries, see EndpointDatapath.SetPolicy).
/// </para>
/// <para>
/// The order: (1) every key whose new value is a drop, (2) every key whose new value passes,
/// (3) the deletions of keys whose old value passed, (4) the deletions of keys whose old value
/// dropped. Passing what both policies drop would need, for a packet, one key showing an old
/// value and the other a new one with neither a drop: with old dropping through b and new through
/// a, a's new drop is written in (1) before b's new non-drop in (2) or its deletion in (3)/(4);
/// with old dropping through b and new by default (a and b absent in new), a's old passing
/// value is deleted in (3) before b's old drop in (4); with old by default and new dropping
/// through a, a's drop (1) comes before b's pass (2). And while the modes stay, a packet both
/// policies pass through an entry is not dropped on the way: new passing entries are written (2)
/// before old ones are deleted (3). (A packet the new policy passes only by its mode, OFF or
/// AUDIT, may be dropped by the old ENFORCE mode until the modes switch, as with a swapped map.)
/// </para>
/// </remarks>
public static class PolicyMapUpdate
{
    /// <summary>Compares keys field by field (no padding: 4 + 4 + 1 + 1 + 2 bytes).</summary>
    public static readonly IEqualityComparer<PalNetpolKey> KeyComparer = new NetpolKeyComparer();

    /// <summary>The writes that turn <paramref name="current"/> into <paramref name="wanted"/>, in the safe order; unchanged entries are not written.</summary>
    public static List<PolicyMapOp> Plan(IReadOnlyDictionary<PalNetpolKey, PalNetpolValue> current, IReadOnlyDictionary<PalNetpolKey, PalNetpolValue> wanted)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(wanted);
        var drops = new List<PolicyMapOp>();
        var passes = new List<PolicyMapOp>();
        foreach (var (key, value) in wanted)
        {
            if (current.TryGetValue(key, out var before) && Same(before, value))
            {
                continue;
            }
            (Drops(value) ? drops : passes).Add(new PolicyMapOp(false, key, value));
        }
        var stalePasses = new List<PolicyMapOp>();
        var staleDrops = new List<PolicyMapOp>();
        foreach (var (key, value) in current)
        {
            if (!wanted.ContainsKey(key))
            {
                (Drops(value) ? staleDrops : stalePasses).Add(new PolicyMapOp(true, key, value));
            }
        }
        return [.. drops, .. passes, .. stalePasses, .. staleDrops];
    }

    /// <summary>A deny without AUDIT: the datapath drops on it whatever the other key holds.</summary>
    public static bool Drops(PalNetpolValue value) => (value.Flags & (NetpolKeys.FlagDeny | NetpolKeys.FlagAudit)) == NetpolKeys.FlagDeny;

    private static bool Same(PalNetpolValue a, PalNetpolValue b) =>
        a.Flags == b.Flags && a.L4Prefix == b.L4Prefix && a.ProxyPort == b.ProxyPort && a.Rule == b.Rule;

    private sealed class NetpolKeyComparer : IEqualityComparer<PalNetpolKey>
    {
        public bool Equals(PalNetpolKey x, PalNetpolKey y) =>
            x.Prefixlen == y.Prefixlen && x.Identity == y.Identity && x.Direction == y.Direction && x.Protocol == y.Protocol && x.Dport == y.Dport;

        public int GetHashCode(PalNetpolKey k) => HashCode.Combine(k.Prefixlen, k.Identity, k.Direction, k.Protocol, k.Dport);
    }
}
