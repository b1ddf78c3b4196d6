using System.Runtime.InteropServices;

namespace Palisade.Bpf;

/// <summary>Kernel map types we name (values of enum bpf_map_type).</summary>
public enum BpfMapType
{
    Unspecified = 0, Hash = 1, Array = 2, ProgArray = 3, PerfEventArray = 4, PercpuHash = 5, PercpuArray = 6,
    StackTrace = 7, CgroupArray = 8, LruHash = 9, LruPercpuHash = 10, LpmTrie = 11, ArrayOfMaps = 12,
    HashOfMaps = 13, Devmap = 14, Sockmap = 15, Cpumap = 16, Xskmap = 17, Sockhash = 18, CgroupStorage = 19,
    ReuseportSockarray = 20, PercpuCgroupStorage = 21, Queue = 22, Stack = 23, SkStorage = 24,
    DevmapHash = 25, StructOps = 26, Ringbuf = 27, InodeStorage = 28, TaskStorage = 29, BloomFilter = 30,
    UserRingbuf = 31, CgrpStorage = 32,
}

/// <summary>Flags of bpf_map_update_elem.</summary>
public enum MapUpdateFlags : ulong
{
    /// <summary>Create or replace.</summary>
    Any = 0,
    /// <summary>Create only; fails with EEXIST when the key is there.</summary>
    NoExist = 1,
    /// <summary>Replace only; fails with ENOENT when the key is missing.</summary>
    Exist = 2,
}

/// <summary>A map of a <see cref="BpfObject"/>. Size it before load; read and write it after, through <see cref="Typed{TKey,TValue}"/>.</summary>
public sealed unsafe class BpfMap
{
    private readonly BpfObject _owner;

    internal BpfMap(BpfObject owner, nint pointer)
    {
        _owner = owner;
        Pointer = pointer;
        Name = Marshal.PtrToStringUTF8((nint)Interop.Libbpf.MapName(pointer)) ?? "?";
    }

    internal nint Pointer { get; }

    public string Name { get; }

    public BpfObject Object => _owner;

    public BpfMapType Type => (BpfMapType)Interop.Libbpf.MapType(Pointer);

    public int KeySize => (int)Interop.Libbpf.MapKeySize(Pointer);

    /// <summary>Bytes of a value; settable before load (e.g. a table whose length is a setting).</summary>
    public int ValueSize
    {
        get => (int)Interop.Libbpf.MapValueSize(Pointer);
        set
        {
            _owner.ThrowIfDisposed();
            if (Interop.Libbpf.MapSetValueSize(Pointer, (uint)value) != 0)
            {
                throw new BpfException("set value_size", $"map {Name} of object {_owner.Name}", BpfException.LastErrno(),
                    "Value sizes can only change before Load().");
            }
        }
    }

    /// <summary>Capacity; settable before load (for ring buffers: bytes, a power of two multiple of the page size).</summary>
    public int MaxEntries
    {
        get => (int)Interop.Libbpf.MapMaxEntries(Pointer);
        set
        {
            _owner.ThrowIfDisposed();
            if (Interop.Libbpf.MapSetMaxEntries(Pointer, (uint)value) != 0)
            {
                throw new BpfException("set max_entries", $"map {Name} of object {_owner.Name}", BpfException.LastErrno(),
                    "Map sizes can only change before Load().");
            }
        }
    }

    /// <summary>The map's fd once loaded; negative before.</summary>
    public int Fd
    {
        get
        {
            _owner.ThrowIfDisposed();
            return Interop.Libbpf.MapFd(Pointer);
        }
    }

    /// <summary>Pins the map at <paramref name="path"/> on load and reuses a compatible map already pinned there. Set before load.</summary>
    public void SetPinPath(string? path)
    {
        if (Interop.Libbpf.MapSetPinPath(Pointer, path) != 0)
        {
            throw new BpfException("set pin path", $"map {Name}", BpfException.LastErrno());
        }
    }

    /// <summary>Makes this (not yet loaded) map share <paramref name="other"/>, a loaded map of another object with the same definition.</summary>
    public void ReuseFrom(BpfMap other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (Interop.Libbpf.MapReuseFd(Pointer, other.Fd) != 0)
        {
            throw new BpfException("reuse map", $"map {Name} from {other.Name}", BpfException.LastErrno(), "Reuse must happen before Load() and the definitions must match.");
        }
    }

    /// <summary>Removes the map's pin (the map lives on while referenced).</summary>
    public void Unpin()
    {
        if (Interop.Libbpf.MapUnpin(Pointer, null) != 0)
        {
            throw new BpfException("unpin", $"map {Name}", BpfException.LastErrno());
        }
    }

    /// <summary>A typed view; the struct sizes must equal the map's key and value sizes.</summary>
    /// <summary>True for map types whose entries come and go (hashes, LRU, LPM tries), where a fill level means something; arrays are always full.</summary>
    public bool HasVariableEntries => Type is BpfMapType.Hash or BpfMapType.LruHash or BpfMapType.PercpuHash or BpfMapType.LruPercpuHash
        or BpfMapType.LpmTrie or BpfMapType.HashOfMaps or BpfMapType.DevmapHash or BpfMapType.Sockhash;

    /// <summary>Entries now in the map, by key iteration (one syscall per entry: for metrics, not hot paths).</summary>
    public int CountEntries()
    {
        var size = KeySize;
        var current = new byte[size];
        var next = new byte[size];
        var count = 0;
        fixed (byte* c = current, n = next)
        {
            var rc = Interop.Libbpf.MapGetNextKey(Fd, null, n);
            while (rc == 0)
            {
                count++;
                next.CopyTo(current, 0);
                rc = Interop.Libbpf.MapGetNextKey(Fd, c, n);
            }
            var errno = BpfException.LastErrno();
            return errno == Errnos.ENOENT ? count : throw new BpfException("count entries of", Describe(), errno);
        }
    }

    public BpfMap<TKey, TValue> Typed<TKey, TValue>() where TKey : unmanaged where TValue : unmanaged
    {
        CheckSize<TKey>("key", KeySize);
        CheckSize<TValue>("value", ValueSize);
        return new BpfMap<TKey, TValue>(this);
    }

    /// <summary>A typed view of a per-CPU map: one value per possible CPU.</summary>
    public BpfPerCpuMap<TKey, TValue> PerCpu<TKey, TValue>() where TKey : unmanaged where TValue : unmanaged
    {
        if (Type is not (BpfMapType.PercpuArray or BpfMapType.PercpuHash or BpfMapType.LruPercpuHash))
        {
            throw new InvalidOperationException($"Map {Name} is a {Type} map, not a per-CPU one.");
        }
        CheckSize<TKey>("key", KeySize);
        CheckSize<TValue>("value", ValueSize);
        return new BpfPerCpuMap<TKey, TValue>(this);
    }

    /// <summary>
    /// Writes a value given as bytes (for values whose length is set at load, e.g. an array of
    /// a configured size); <paramref name="value"/> must be exactly <see cref="ValueSize"/> bytes.
    /// </summary>
    public void UpdateBytes<TKey>(in TKey key, ReadOnlySpan<byte> value, MapUpdateFlags flags = MapUpdateFlags.Any) where TKey : unmanaged
    {
        CheckSize<TKey>("key", KeySize);
        if (value.Length != ValueSize)
        {
            throw new ArgumentException($"a value of {value.Length} bytes for {Describe()}, whose values are {ValueSize} bytes", nameof(value));
        }
        fixed (TKey* k = &key)
        fixed (byte* v = value)
        {
            if (Interop.Libbpf.MapUpdateElem(Fd, k, v, (ulong)flags) != 0)
            {
                var errno = BpfException.LastErrno();
                throw new BpfException("update", Describe(), errno, errno == Errnos.E2BIG ? $"The map is full ({MaxEntries} entries)." : null);
            }
        }
    }

    /// <summary>Deletes the entry of <paramref name="key"/> whatever its value's type; false when it was not there.</summary>
    public bool DeleteKey<TKey>(in TKey key) where TKey : unmanaged
    {
        CheckSize<TKey>("key", KeySize);
        fixed (TKey* k = &key)
        {
            if (Interop.Libbpf.MapDeleteElem(Fd, k) != 0)
            {
                var errno = BpfException.LastErrno();
                return errno == Errnos.ENOENT ? false : throw new BpfException("delete", Describe(), errno);
            }
        }
        return true;
    }

    internal string Describe() => $"map {Name} of object {_owner.Name}";

    private void CheckSize<T>(string what, int expected) where T : unmanaged
    {
        if (sizeof(T) != expected)
        {
            throw new ArgumentException(
                $"{typeof(T).Name} is {sizeof(T)} bytes but the {what} of {Describe()} is {expected} bytes. " +
                "Fix: make the C# struct match the C definition in bpf/include.");
        }
    }
}

/// <summary>Typed access to a map whose keys and values are fixed-layout structs.</summary>
public sealed unsafe class BpfMap<TKey, TValue> where TKey : unmanaged where TValue : unmanaged
{
    private readonly BpfMap _map;

    internal BpfMap(BpfMap map) => _map = map;

    public BpfMap Map => _map;

    public bool TryLookup(in TKey key, out TValue value)
    {
        TValue v;
        fixed (TKey* k = &key)
        {
            if (Interop.Libbpf.MapLookupElem(_map.Fd, k, &v) != 0)
            {
                var errno = BpfException.LastErrno();
                if (errno == Errnos.ENOENT)
                {
                    value = default;
                    return false;
                }
                throw new BpfException("lookup", _map.Describe(), errno);
            }
        }
        value = v;
        return true;
    }

    public TValue Lookup(in TKey key) =>
        TryLookup(key, out var value) ? value : throw new KeyNotFoundException($"Key not found in {_map.Describe()}.");

    public void Update(in TKey key, in TValue value, MapUpdateFlags flags = MapUpdateFlags.Any)
    {
        fixed (TKey* k = &key)
        fixed (TValue* v = &value)
        {
            if (Interop.Libbpf.MapUpdateElem(_map.Fd, k, v, (ulong)flags) != 0)
            {
                var errno = BpfException.LastErrno();
                throw new BpfException("update", _map.Describe(), errno,
                    errno == Errnos.E2BIG ? $"The map is full ({_map.MaxEntries} entries)." : null);
            }
        }
    }

    /// <summary>Deletes <paramref name="key"/>; false when it was not there.</summary>
    public bool Delete(in TKey key)
    {
        fixed (TKey* k = &key)
        {
            if (Interop.Libbpf.MapDeleteElem(_map.Fd, k) != 0)
            {
                var errno = BpfException.LastErrno();
                return errno == Errnos.ENOENT ? false : throw new BpfException("delete", _map.Describe(), errno);
            }
        }
        return true;
    }

    /// <summary>Every key, by bpf_map_get_next_key. Keys deleted meanwhile may be skipped, as the kernel defines.</summary>
    public List<TKey> Keys()
    {
        var keys = new List<TKey>();
        TKey current = default, next = default;
        var first = true;
        while (true)
        {
            var rc = first
                ? Interop.Libbpf.MapGetNextKey(_map.Fd, null, &next)
                : Interop.Libbpf.MapGetNextKey(_map.Fd, &current, &next);
            if (rc != 0)
            {
                var errno = BpfException.LastErrno();
                return errno == Errnos.ENOENT ? keys : throw new BpfException("iterate", _map.Describe(), errno);
            }
            keys.Add(next);
            current = next;
            first = false;
        }
    }

    /// <summary>
    /// Every entry. Uses BPF_MAP_LOOKUP_BATCH (one syscall per batch) where the map type has
    /// it, else key iteration plus lookups.
    /// </summary>
    public List<KeyValuePair<TKey, TValue>> ReadAll(int batchSize = 256)
    {
        var result = new List<KeyValuePair<TKey, TValue>>();
        if (TryReadBatched(result, batchSize))
        {
            return result;
        }
        result.Clear();
        foreach (var key in Keys())
        {
            if (TryLookup(key, out var value))
            {
                result.Add(new(key, value));
            }
        }
        return result;
    }

    /// <summary>Writes many entries with one BPF_MAP_UPDATE_BATCH, or one update each where batching is missing.</summary>
    public void UpdateBatch(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values, MapUpdateFlags flags = MapUpdateFlags.Any)
    {
        if (keys.Length != values.Length)
        {
            throw new ArgumentException($"{keys.Length} keys but {values.Length} values.", nameof(values));
        }
        if (keys.IsEmpty)
        {
            return;
        }
        fixed (TKey* k = keys)
        fixed (TValue* v = values)
        {
            var count = (uint)keys.Length;
            var opts = new Interop.Libbpf.BpfMapBatchOpts { Sz = (nuint)sizeof(Interop.Libbpf.BpfMapBatchOpts), ElemFlags = (ulong)flags };
            if (Interop.Libbpf.MapUpdateBatch(_map.Fd, k, v, &count, &opts) == 0)
            {
                return;
            }
            var errno = BpfException.LastErrno();
            if (errno is not (Errnos.EINVAL or Errnos.ENOTSUPP or Errnos.EOPNOTSUPP) || count != 0)
            {
                throw new BpfException("update batch", _map.Describe(), errno, $"{count} of {keys.Length} entries were written.");
            }
        }
        for (var i = 0; i < keys.Length; i++)
        {
            Update(keys[i], values[i], flags);
        }
    }

    private bool TryReadBatched(List<KeyValuePair<TKey, TValue>> result, int batchSize)
    {
        var keys = new TKey[batchSize];
        var values = new TValue[batchSize];
        // The batch cursor is a bucket index for hash maps and a key for arrays; 8 bytes or the key size covers both.
        var cursorSize = Math.Max(sizeof(TKey), 8);
        var inBatch = stackalloc byte[cursorSize];
        var outBatch = stackalloc byte[cursorSize];
        var first = true;
        fixed (TKey* k = keys)
        fixed (TValue* v = values)
        {
            while (true)
            {
                var count = (uint)batchSize;
                var opts = new Interop.Libbpf.BpfMapBatchOpts { Sz = (nuint)sizeof(Interop.Libbpf.BpfMapBatchOpts) };
                var rc = Interop.Libbpf.MapLookupBatch(_map.Fd, first ? null : inBatch, outBatch, k, v, &count, &opts);
                var errno = rc == 0 ? 0 : BpfException.LastErrno();
                if (rc != 0 && errno != Errnos.ENOENT)
                {
                    if (first && errno is Errnos.EINVAL or Errnos.ENOTSUPP or Errnos.EOPNOTSUPP)
                    {
                        return false;
                    }
                    throw new BpfException("lookup batch", _map.Describe(), errno);
                }
                for (var i = 0; i < count; i++)
                {
                    result.Add(new(keys[i], values[i]));
                }
                if (errno == Errnos.ENOENT)
                {
                    return true;
                }
                Buffer.MemoryCopy(outBatch, inBatch, cursorSize, cursorSize);
                first = false;
            }
        }
    }
}

/// <summary>Typed access to a per-CPU map: each lookup yields one value per possible CPU.</summary>
public sealed unsafe class BpfPerCpuMap<TKey, TValue> where TKey : unmanaged where TValue : unmanaged
{
    private readonly BpfMap _map;
    private readonly int _stride;

    internal BpfPerCpuMap(BpfMap map)
    {
        _map = map;
        // The kernel lays per-CPU values out 8-byte aligned.
        _stride = (sizeof(TValue) + 7) & ~7;
    }

    /// <summary>CPUs the kernel may bring online; the length of every value array.</summary>
    public static int PossibleCpus => Interop.Libbpf.NumPossibleCpus();

    public BpfMap Map => _map;

    public bool TryLookup(in TKey key, out TValue[] values)
    {
        var cpus = PossibleCpus;
        var buffer = new byte[_stride * cpus];
        fixed (TKey* k = &key)
        fixed (byte* b = buffer)
        {
            if (Interop.Libbpf.MapLookupElem(_map.Fd, k, b) != 0)
            {
                var errno = BpfException.LastErrno();
                values = [];
                return errno == Errnos.ENOENT ? false : throw new BpfException("lookup", _map.Describe(), errno);
            }
            values = new TValue[cpus];
            for (var cpu = 0; cpu < cpus; cpu++)
            {
                values[cpu] = *(TValue*)(b + cpu * _stride);
            }
        }
        return true;
    }

    /// <summary>Writes <paramref name="values"/> (one per possible CPU).</summary>
    public void Update(in TKey key, ReadOnlySpan<TValue> values, MapUpdateFlags flags = MapUpdateFlags.Any)
    {
        var cpus = PossibleCpus;
        if (values.Length != cpus)
        {
            throw new ArgumentException($"{_map.Describe()} needs one value per possible CPU ({cpus}), got {values.Length}.", nameof(values));
        }
        var buffer = new byte[_stride * cpus];
        fixed (TKey* k = &key)
        fixed (byte* b = buffer)
        {
            for (var cpu = 0; cpu < cpus; cpu++)
            {
                *(TValue*)(b + cpu * _stride) = values[cpu];
            }
            if (Interop.Libbpf.MapUpdateElem(_map.Fd, k, b, (ulong)flags) != 0)
            {
                throw new BpfException("update", _map.Describe(), BpfException.LastErrno());
            }
        }
    }
}
