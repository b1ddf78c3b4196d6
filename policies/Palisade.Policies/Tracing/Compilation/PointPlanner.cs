using System.Text;

namespace Palisade.Policies.Tracing.Compilation;

/// <summary>How much one kernel point holds (the PAL_POL_* sizes of bpf/include/pal_policy.h).</summary>
public sealed record PointLimits(int Slots, int Selectors, int Dims, int Fids, int Filters, int Words);

/// <summary>One hook of one policy on a point, with the ids the engine gave it.</summary>
public sealed record PointMember(uint HookId, uint PolicyId, IReadOnlyDictionary<int, uint> Gids, CompiledHook Hook, HookTarget Target);

/// <summary>What a matching selector bit does (a pal_pol_sels value).</summary>
public sealed record SelectorEntry(int Bit, uint HookId, uint PolicyId, uint Gid, ushort Index, ActionFlags Actions, uint Signal, int Error, ulong RateNs, byte RateScope, byte SockSlot);

/// <summary>One LPM key of a point: the slot, the class and the bytes as the kernel compares them, with the selector bits it matches.</summary>
public sealed record StringEntry(byte Slot, StringClass Class, byte[] Bytes, ulong[] Mask)
{
    /// <summary>Identifies the key among a point's keys.</summary>
    public string Id => $"{Slot}/{(byte)Class}/{Convert.ToHexString(Bytes)}";
}

/// <summary>A string dimension: one (slot, class) lookup and the selectors that need a hit there.</summary>
public sealed record DimEntry(byte Slot, StringClass Class, bool Negate, bool Follow, ulong[] Constrained);

/// <summary>One integer filter entry; entries sharing a fid are ORed values.</summary>
public sealed record FilterEntry(byte Slot, SockField Field, FilterOp Op, bool Negate, byte Fid, byte Sel, ulong A, ulong B, ulong C, ulong D);

/// <summary>Everything the kernel needs for one point: its slot layout, selectors, LPM keys, dimensions and integer filters.</summary>
public sealed class PointLayout
{
    public required IReadOnlyList<SlotSource> Slots { get; init; }
    public required IReadOnlyList<SelectorEntry> Selectors { get; init; }
    public required IReadOnlyList<StringEntry> Strings { get; init; }
    public required IReadOnlyList<DimEntry> Dims { get; init; }
    public required IReadOnlyList<FilterEntry> Filters { get; init; }
    /// <summary>fid -> selector bit.</summary>
    public required byte[] FidSel { get; init; }
    /// <summary>Fids that need one passing entry (not negated).</summary>
    public ulong FidPositive { get; init; }
    /// <summary>Selector bits in use.</summary>
    public required ulong[] All { get; init; }
}

/// <summary>
/// Compiles the hooks that share one kernel point into the point's map entries: selector bits
/// in member order, one slot per distinct argument, one LPM key per distinct (slot, class,
/// value), integer filters. Pure: the engine writes the result as it is.
/// </summary>
public static class PointPlanner
{
    /// <exception cref="InvalidOperationException">The members need more than the point holds; the message names the limit.</exception>
    public static PointLayout Plan(HookTarget template, IReadOnlyList<PointMember> members, PointLimits limits)
    {
        var slots = new List<SlotSource>();
        var selectors = new List<SelectorEntry>();
        var strings = new Dictionary<string, StringEntry>(StringComparer.Ordinal);
        var dims = new List<DimEntry>();
        var filters = new List<FilterEntry>();
        var fidSel = new byte[limits.Fids];
        var all = new ulong[limits.Words];
        ulong fidPositive = 0;
        var fid = 0;
        var bit = 0;

        byte SlotOf(SlotSource src)
        {
            var i = slots.IndexOf(src);
            if (i < 0)
            {
                if (slots.Count >= limits.Slots)
                {
                    throw new InvalidOperationException($"{template.Describe()}: more than {limits.Slots} distinct arguments are used by the policies on this point");
                }
                slots.Add(src);
                i = slots.Count - 1;
            }
            return (byte)i;
        }

        foreach (var member in members)
        {
            var (hook, target) = (member.Hook, member.Target);
            // Every argument the hook reports is extracted, even when no selector tests it.
            foreach (var a in hook.Args)
            {
                if (target.Args.TryGetValue(a.Index, out var src))
                {
                    SlotOf(src);
                }
            }
            if (hook.ReturnArg is not null && target.Return is { } r)
            {
                SlotOf(r);
            }
            foreach (var sel in hook.Selectors)
            {
                if (bit >= limits.Selectors)
                {
                    throw new InvalidOperationException($"{template.Describe()}: more than {limits.Selectors} selectors on one point");
                }
                var b = (byte)bit++;
                all[b >> 6] |= 1UL << (b & 63);
                var a = sel.Actions;
                byte sockSlot = 0;
                if ((a.Flags & (ActionFlags.TrackSock | ActionFlags.UntrackSock)) != 0)
                {
                    // The compiler checked that every target has the socket.
                    sockSlot = SlotOf(a.SockArg == SelectorActions.ReturnSock ? target.Return!.Value : target.Args[(uint)a.SockArg]);
                }
                selectors.Add(new SelectorEntry(b, member.HookId, member.PolicyId, member.Gids[sel.Index], (ushort)sel.Index, a.Flags,
                    a.Signal, a.Error, a.RateLimitNs, a.RateScope, sockSlot));
                foreach (var m in sel.Strings)
                {
                    var slot = m.Ref.IsArg ? SlotOf(target.Args[(uint)m.Ref.ArgIndex]) : (byte)m.Ref.Pseudo;
                    var di = dims.FindIndex(d => d.Slot == slot && d.Class == m.Class && d.Negate == m.Negate && d.Follow == m.Follow);
                    if (di < 0)
                    {
                        if (dims.Count >= limits.Dims)
                        {
                            throw new InvalidOperationException($"{template.Describe()}: more than {limits.Dims} string conditions of different kinds on one point");
                        }
                        dims.Add(new DimEntry(slot, m.Class, m.Negate, m.Follow, new ulong[limits.Words]));
                        di = dims.Count - 1;
                    }
                    dims[di].Constrained[b >> 6] |= 1UL << (b & 63);
                    foreach (var v in m.Values)
                    {
                        var entry = new StringEntry(slot, m.Class, KeyBytes(v, m.Class), new ulong[limits.Words]);
                        if (!strings.TryGetValue(entry.Id, out var e))
                        {
                            strings[entry.Id] = e = entry;
                        }
                        e.Mask[b >> 6] |= 1UL << (b & 63);
                    }
                }
                foreach (var m in sel.Ints)
                {
                    var slot = m.Ref.IsArg ? SlotOf(target.Args[(uint)m.Ref.ArgIndex]) : (byte)m.Ref.Pseudo;
                    if (fid >= limits.Fids)
                    {
                        throw new InvalidOperationException($"{template.Describe()}: more than {limits.Fids} integer conditions on one point");
                    }
                    var f = (byte)fid++;
                    fidSel[f] = b;
                    if (!m.Negate)
                    {
                        fidPositive |= 1UL << f;
                    }
                    foreach (var t in m.Tests)
                    {
                        filters.Add(new FilterEntry(slot, m.Field, t.Op, m.Negate, f, b, t.A, t.B, t.C, t.D));
                    }
                }
            }
        }
        if (filters.Count > limits.Filters)
        {
            throw new InvalidOperationException($"{template.Describe()}: {filters.Count} integer values on one point; at most {limits.Filters} fit");
        }
        // Prefix and postfix: the LPM trie returns the longest match only, so each entry also
        // carries the selectors of every shorter entry that is a prefix of it.
        var values = strings.Values.ToList();
        foreach (var e in values.Where(e => e.Class != StringClass.Equal))
        {
            foreach (var shorter in values.Where(o => o.Class == e.Class && o.Slot == e.Slot && o.Bytes.Length < e.Bytes.Length && e.Bytes.AsSpan().StartsWith(o.Bytes)))
            {
                for (var w = 0; w < limits.Words; w++)
                {
                    e.Mask[w] |= shorter.Mask[w];
                }
            }
        }
        return new PointLayout
        {
            Slots = slots, Selectors = selectors, Strings = values, Dims = dims, Filters = filters, FidSel = fidSel, FidPositive = fidPositive, All = all,
        };
    }

    /// <summary>The bytes a value is keyed by: postfixes reversed (matched from the end), exact values with their NUL.</summary>
    public static byte[] KeyBytes(string value, StringClass cls)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        if (cls == StringClass.Postfix)
        {
            Array.Reverse(bytes);
        }
        return cls == StringClass.Equal ? [.. bytes, 0] : bytes;
    }
}
