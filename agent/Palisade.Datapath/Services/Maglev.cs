using System.Globalization;
using System.Text;

namespace Palisade.Datapath.Services;

/// <summary>One backend of a Maglev table: a name every node spells the same (e.g. <c>10.0.1.5:8080/TCP</c>) and its weight (0: not in the table).</summary>
public sealed record MaglevBackend(string Name, uint Weight = 1);

/// <summary>
/// The hash seed every node of a cluster shares, so every node builds the same table for the
/// same backends: as Cilium's <c>maglev-hash-seed</c>, 12 bytes written in base64, of which the
/// first four (little-endian) seed the hash.
/// </summary>
public readonly record struct MaglevSeed(uint Value)
{
    /// <summary>Cilium's default seed text.</summary>
    public const string DefaultText = "JLfvgnHc2kaSUFaI";

    public static MaglevSeed Default { get; } = Parse(DefaultText);

    /// <summary>Reads a seed; <see cref="ArgumentException"/> naming the value when it is not 12 bytes of base64.</summary>
    public static MaglevSeed Parse(string text)
    {
        var bytes = new byte[16];
        if (string.IsNullOrEmpty(text) || !Convert.TryFromBase64String(text, bytes, out var length) || length != 12)
        {
            throw new ArgumentException($"maglev hash seed \"{text}\" is not 12 bytes in base64 (16 characters). Fix: e.g. the output of `head -c12 /dev/urandom | base64`, the same on every node", nameof(text));
        }
        return new MaglevSeed(System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes));
    }
}

/// <summary>
/// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
/// Load Balancer", NSDI 2016, section 3.4), with Cilium's choices (pkg/maglev): a table whose size
/// is one of a few primes, each backend's permutation from two halves of a MurmurHash3 of its
/// name with a seed all nodes share, backends in name order so the input order does not matter,
/// and weights. A flow's hash picks an entry; each backend owns an almost equal share of the
/// entries (in proportion to its weight), and a backend that goes away takes little more than
/// its own entries with it, so established flows on the others keep their backend.
/// </summary>
public static class Maglev
{
    /// <summary>The table sizes Cilium allows (<c>bpf-lb-maglev-table-size</c>): primes, so every permutation visits every entry.</summary>
    public static readonly IReadOnlyList<int> Sizes = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];

    /// <summary>Cilium's default: good for up to ~160 backends per service at 1% imbalance.</summary>
    public const int DefaultSize = 16381;

    /// <summary>What is wrong with a table size; null when it is allowed.</summary>
    public static string? SizeProblem(int size) =>
        Sizes.Contains(size)
            ? null
            : $"maglev table size {size.ToString(CultureInfo.InvariantCulture)} is not allowed. Fix: one of the primes {string.Join(", ", Sizes)} (default {DefaultSize}); pick one at least 100 times the largest number of backends of a service";

    /// <summary>
    /// The lookup table: <paramref name="size"/> entries, each an index into
    /// <paramref name="backends"/>. Empty when no backend has a weight. Throws
    /// <see cref="ArgumentException"/> for a size that is not allowed, a backend without a name or
    /// named twice, or more backends than entries.
    /// </summary>
    public static int[] Build(IReadOnlyList<MaglevBackend> backends, int size = DefaultSize, MaglevSeed? seed = null)
    {
        ArgumentNullException.ThrowIfNull(backends);
        if (SizeProblem(size) is { } problem)
        {
            throw new ArgumentException(problem, nameof(size));
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var backend in backends)
        {
            if (string.IsNullOrEmpty(backend.Name))
            {
                throw new ArgumentException("a maglev backend has no name. Fix: name each by what every node sees the same, e.g. ADDRESS:PORT/PROTOCOL", nameof(backends));
            }
            if (!names.Add(backend.Name))
            {
                throw new ArgumentException($"maglev backend \"{backend.Name}\" is listed twice. Fix: one entry per backend, its weight saying how much traffic it takes", nameof(backends));
            }
        }
        // Name order, not input order: every node must build the same table from the same set.
        var active = Enumerable.Range(0, backends.Count).Where(i => backends[i].Weight > 0).OrderBy(i => backends[i].Name, StringComparer.Ordinal).ToArray();
        if (active.Length == 0)
        {
            return [];
        }
        if (active.Length > size)
        {
            throw new ArgumentException($"{active.Length} maglev backends do not fit a table of {size} entries. Fix: a larger table size, at least 100 times the number of backends", nameof(backends));
        }
        var m = (ulong)size;
        var hashSeed = (seed ?? MaglevSeed.Default).Value;
        var offset = new ulong[active.Length];
        var skip = new ulong[active.Length];
        for (var i = 0; i < active.Length; i++)
        {
            var (h1, h2) = Murmur3.Hash128(Encoding.UTF8.GetBytes(backends[active[i]].Name), hashSeed);
            offset[i] = h1 % m;
            skip[i] = (h2 % (m - 1)) + 1;
        }
        var table = new int[size];
        Array.Fill(table, -1);
        var next = new ulong[active.Length];
        var filled = new ulong[active.Length];
        // Whose turn: the backend furthest below its share (entries + 1) / weight, ties in name
        // order. With equal weights that is the paper's round robin; with weights each backend
        // ends with its share of the table to within one entry.
        var turns = new PriorityQueue<int, Turn>(active.Length, TurnOrder.Instance);
        for (var i = 0; i < active.Length; i++)
        {
            turns.Enqueue(i, new Turn(1, backends[active[i]].Weight, i));
        }
        for (var n = 0; n < size; n++)
        {
            var i = turns.Dequeue();
            var c = (offset[i] + (next[i] * skip[i])) % m;
            while (table[c] >= 0)
            {
                next[i]++;
                c = (offset[i] + (next[i] * skip[i])) % m;
            }
            table[c] = active[i];
            next[i]++;
            filled[i]++;
            turns.Enqueue(i, new Turn(filled[i] + 1, backends[active[i]].Weight, i));
        }
        return table;
    }

    private readonly record struct Turn(ulong Entries, uint Weight, int Order);

    private sealed class TurnOrder : IComparer<Turn>
    {
        public static readonly TurnOrder Instance = new();

        // a.Entries / a.Weight against b.Entries / b.Weight without division (entries fit 18 bits, weights 32).
        public int Compare(Turn a, Turn b)
        {
            var left = (UInt128)a.Entries * b.Weight;
            var right = (UInt128)b.Entries * a.Weight;
            return left != right ? left.CompareTo(right) : a.Order.CompareTo(b.Order);
        }
    }
}
