using System.Runtime.InteropServices;

namespace Palisade.Bpf;

/// <summary>
/// A map that belongs to no <see cref="BpfObject"/>: made with bpf_map_create (the inner maps
/// of a map-in-map, one per endpoint policy) or opened by id (an inner map read back from its
/// outer map). Disposing closes this fd only; a map referenced by an outer map lives on.
/// </summary>
public sealed unsafe class BpfMapFd : IDisposable
{
    /// <summary>BPF_F_NO_PREALLOC: entries allocated on update (required for LPM tries).</summary>
    public const uint NoPrealloc = 1;

    private readonly SafeFdHandle _fd;

    private BpfMapFd(int fd, string name)
    {
        _fd = new SafeFdHandle(fd);
        Name = name;
    }

    public string Name { get; }

    public int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
            return _fd.Fd;
        }
    }

    /// <summary>A new map (bpf_map_create); <paramref name="flags"/> are BPF_F_* map flags.</summary>
    public static BpfMapFd Create(BpfMapType type, string name, int keySize, int valueSize, int maxEntries, uint flags = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntries, 1);
        var opts = new Interop.Libbpf.BpfMapCreateOpts { Sz = (nuint)sizeof(Interop.Libbpf.BpfMapCreateOpts), MapFlags = flags };
        var fd = Interop.Libbpf.MapCreate((int)type, name, (uint)keySize, (uint)valueSize, (uint)maxEntries, &opts);
        if (fd < 0)
        {
            var errno = BpfException.LastErrno();
            throw new BpfException("create", $"{type} map {name} ({maxEntries} entries)", errno,
                errno == Errnos.ENOMEM ? "Not enough memory for the map (or the memlock limit)." : null);
        }
        return new BpfMapFd(fd, name);
    }

    /// <summary>The map with kernel id <paramref name="id"/> (what a lookup in a map-in-map returns to user space); null when it is gone.</summary>
    public static BpfMapFd? FromId(uint id)
    {
        var fd = Interop.Libbpf.MapGetFdById(id);
        if (fd < 0)
        {
            var errno = BpfException.LastErrno();
            return errno == Errnos.ENOENT ? null : throw new BpfException("open by id", $"map id {id}", errno);
        }
        return new BpfMapFd(fd, $"id {id}");
    }

    public void Update<TKey, TValue>(in TKey key, in TValue value, MapUpdateFlags flags = MapUpdateFlags.Any)
        where TKey : unmanaged where TValue : unmanaged
    {
        fixed (TKey* k = &key)
        fixed (TValue* v = &value)
        {
            if (Interop.Libbpf.MapUpdateElem(Fd, k, v, (ulong)flags) != 0)
            {
                throw new BpfException("update", $"map {Name}", BpfException.LastErrno());
            }
        }
    }

    /// <summary>Deletes the entry of <paramref name="key"/>; false when there was none.</summary>
    public bool Delete<TKey>(in TKey key) where TKey : unmanaged
    {
        fixed (TKey* k = &key)
        {
            if (Interop.Libbpf.MapDeleteElem(Fd, k) != 0)
            {
                var errno = BpfException.LastErrno();
                return errno == Errnos.ENOENT ? false : throw new BpfException("delete", $"map {Name}", errno);
            }
        }
        return true;
    }

    public bool TryLookup<TKey, TValue>(in TKey key, out TValue value) where TKey : unmanaged where TValue : unmanaged
    {
        TValue v;
        fixed (TKey* k = &key)
        {
            if (Interop.Libbpf.MapLookupElem(Fd, k, &v) != 0)
            {
                var errno = BpfException.LastErrno();
                value = default;
                return errno == Errnos.ENOENT ? false : throw new BpfException("lookup", $"map {Name}", errno);
            }
        }
        value = v;
        return true;
    }

    /// <summary>Every entry, by key iteration (for status and tests).</summary>
    public List<KeyValuePair<TKey, TValue>> ReadAll<TKey, TValue>() where TKey : unmanaged where TValue : unmanaged
    {
        var result = new List<KeyValuePair<TKey, TValue>>();
        TKey current = default, next = default;
        var rc = Interop.Libbpf.MapGetNextKey(Fd, null, &next);
        while (rc == 0)
        {
            if (TryLookup<TKey, TValue>(next, out var value))
            {
                result.Add(new(next, value));
            }
            current = next;
            rc = Interop.Libbpf.MapGetNextKey(Fd, &current, &next);
        }
        var errno = BpfException.LastErrno();
        return errno == Errnos.ENOENT ? result : throw new BpfException("iterate", $"map {Name}", errno);
    }

    /// <summary>Entries now in the map, by key iteration.</summary>
    public int CountEntries(int keySize)
    {
        var current = new byte[keySize];
        var next = new byte[keySize];
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
            return errno == Errnos.ENOENT ? count : throw new BpfException("count entries of", $"map {Name}", errno);
        }
    }

    public void Dispose() => _fd.Dispose();
}
