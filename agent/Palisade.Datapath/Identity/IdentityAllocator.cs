using System.Text.Json;
using System.Text.Json.Serialization;

namespace Palisade.Datapath.Identity;

/// <summary>
/// Node-local security identities: a set of labels gets a number from 256 up (below are
/// Cilium's reserved identities and room for more); the same labels always share one number
/// while an endpoint holds it. Numbers are persisted (one JSON file, written durably when
/// the set changes), so after a restart the endpoints' identities, and the BPF maps that
/// carry them, stay valid. The backend of a node that runs without the Kubernetes API
/// (identity-allocation-mode local); in a cluster the numbers come from the API instead.
/// </summary>
public sealed class IdentityAllocator : IIdentityBackend
{
    /// <summary>The first number handed out.</summary>
    public const uint First = 256;

    /// <summary>The last: identities are 16-bit in the cluster range.</summary>
    public const uint Last = 65535;

    private readonly Lock _sync = new();
    private readonly string _path;
    private readonly Dictionary<string, Entry> _byLabels = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, Entry> _byNumber = [];
    private uint _next = First;

    private IdentityAllocator(string path) => _path = path;

    /// <inheritdoc/>
    public event Action<uint, IReadOnlyList<string>?>? Changed;

    /// <summary>Opens the allocator whose state is the file <paramref name="path"/>; its identities count as unused until endpoints acquire them.</summary>
    public static IdentityAllocator Open(string path)
    {
        var allocator = new IdentityAllocator(path);
        StateFile.EnsureDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path))
        {
            StateDocument? document;
            try
            {
                document = JsonSerializer.Deserialize(File.ReadAllBytes(path), IdentityJson.Default.StateDocument);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"identity state {path} is not valid JSON ({e.Message}). Fix: move it away; identities are then allocated afresh, and endpoints get theirs again when they are re-added.", e);
            }
            foreach (var item in document?.Identities ?? [])
            {
                if (item.Id is < First or > Last || item.Labels is null)
                {
                    continue;
                }
                var entry = new Entry(item.Id, Key(item.Labels), item.Labels);
                if (!allocator._byNumber.ContainsKey(entry.Number) && allocator._byLabels.TryAdd(entry.Key, entry))
                {
                    allocator._byNumber[entry.Number] = entry;
                    allocator._next = Math.Max(allocator._next, entry.Number == Last ? First : entry.Number + 1);
                }
            }
            if (document?.Next is { } next and >= First and <= Last)
            {
                allocator._next = next;
            }
        }
        return allocator;
    }

    /// <summary>The identity of <paramref name="labels"/> (sorted, as <see cref="IdentityLabels.For"/> makes them), held once more.</summary>
    public uint Acquire(IReadOnlyList<string> labels)
    {
        var key = Key(labels);
        uint number;
        Entry entry;
        lock (_sync)
        {
            if (_byLabels.TryGetValue(key, out var known))
            {
                known.References++;
                return known.Number;
            }
            number = FreeNumber();
            entry = new Entry(number, key, [.. labels]) { References = 1 };
            _byLabels[key] = entry;
            _byNumber[number] = entry;
            _next = number == Last ? First : number + 1;
            Save();
        }
        Changed?.Invoke(number, entry.Labels);
        return number;
    }

    /// <summary>An endpoint found at start holds <paramref name="number"/> for <paramref name="labels"/>: hold it again (same number).</summary>
    public uint Adopt(uint number, IReadOnlyList<string> labels)
    {
        var key = Key(labels);
        lock (_sync)
        {
            if (_byNumber.TryGetValue(number, out var entry) && entry.Key == key)
            {
                entry.References++;
                return number;
            }
        }
        // The state file lost it or it changed hands: the endpoint gets the labels' current identity.
        return Acquire(labels);
    }

    /// <summary>
    /// An endpoint's labels changed (its Pod's, or its namespace's): it holds the identity of
    /// <paramref name="labels"/> instead of <paramref name="from"/>, in one step and one state
    /// write. Returns <paramref name="from"/> when the labels are that identity's already.
    /// </summary>
    public uint Move(uint from, IReadOnlyList<string> labels)
    {
        var key = Key(labels);
        Entry? added = null, freed = null;
        Entry target;
        lock (_sync)
        {
            _byNumber.TryGetValue(from, out var current);
            if (current is not null && current.Key == key)
            {
                return from;
            }
            if (!_byLabels.TryGetValue(key, out target!))
            {
                var number = FreeNumber();
                target = added = new Entry(number, key, [.. labels]);
                _byLabels[key] = target;
                _byNumber[number] = target;
                _next = number == Last ? First : number + 1;
            }
            target.References++;
            if (current is not null && --current.References <= 0)
            {
                _byNumber.Remove(current.Number);
                _byLabels.Remove(current.Key);
                freed = current;
            }
            if (added is not null || freed is not null)
            {
                Save();
            }
        }
        if (added is not null)
        {
            Changed?.Invoke(added.Number, added.Labels);
        }
        if (freed is not null)
        {
            Changed?.Invoke(freed.Number, null);
        }
        return target.Number;
    }

    /// <summary>Drops one hold of <paramref name="number"/>; the last one frees the number.</summary>
    public void Release(uint number)
    {
        lock (_sync)
        {
            if (!_byNumber.TryGetValue(number, out var entry) || --entry.References > 0)
            {
                return;
            }
            _byNumber.Remove(number);
            _byLabels.Remove(entry.Key);
            Save();
        }
        Changed?.Invoke(number, null);
    }

    /// <summary>After every endpoint was adopted at start: numbers no endpoint holds are freed.</summary>
    public void CompleteRestore()
    {
        List<Entry> unused;
        lock (_sync)
        {
            unused = [.. _byNumber.Values.Where(e => e.References <= 0)];
            foreach (var entry in unused)
            {
                _byNumber.Remove(entry.Number);
                _byLabels.Remove(entry.Key);
            }
            Save();
        }
        foreach (var entry in unused)
        {
            Changed?.Invoke(entry.Number, null);
        }
    }

    /// <summary>Every identity allocated on this node (standalone there are no others).</summary>
    public IReadOnlyDictionary<uint, IReadOnlyList<string>> Known()
    {
        lock (_sync)
        {
            return _byNumber.ToDictionary(kv => kv.Key, kv => kv.Value.Labels);
        }
    }

    /// <summary>The labels of an identity; null when it is not allocated.</summary>
    public IReadOnlyList<string>? LabelsOf(uint number)
    {
        lock (_sync)
        {
            return _byNumber.TryGetValue(number, out var entry) ? entry.Labels : null;
        }
    }

    /// <summary>How many identities are allocated.</summary>
    public int Count
    {
        get
        {
            lock (_sync)
            {
                return _byNumber.Count;
            }
        }
    }

    private uint FreeNumber()
    {
        if (_byNumber.Count > Last - First)
        {
            throw new InvalidOperationException($"every identity from {First} to {Last} is in use: {_byNumber.Count} distinct label sets on this node");
        }
        var candidate = _next;
        while (_byNumber.ContainsKey(candidate))
        {
            candidate = candidate == Last ? First : candidate + 1;
        }
        return candidate;
    }

    private void Save()
    {
        var document = new StateDocument
        {
            Next = _next,
            Identities = [.. _byNumber.Values.OrderBy(e => e.Number).Select(e => new StateIdentity { Id = e.Number, Labels = [.. e.Labels] })],
        };
        StateFile.Write(_path, JsonSerializer.SerializeToUtf8Bytes(document, IdentityJson.Default.StateDocument));
    }

    private static string Key(IEnumerable<string> labels) => string.Join('\n', labels.Order(StringComparer.Ordinal));

    private sealed class Entry(uint number, string key, IReadOnlyList<string> labels)
    {
        public uint Number { get; } = number;
        public string Key { get; } = key;
        public IReadOnlyList<string> Labels { get; } = labels;
        public int References { get; set; }
    }
}

internal sealed class StateDocument
{
    public uint Next { get; set; }

    public List<StateIdentity> Identities { get; set; } = [];
}

internal sealed class StateIdentity
{
    public uint Id { get; set; }

    public List<string>? Labels { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(StateDocument))]
internal sealed partial class IdentityJson : JsonSerializerContext;
