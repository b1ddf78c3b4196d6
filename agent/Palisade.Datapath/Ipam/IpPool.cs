using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Palisade.Datapath.Ipam;

/// <summary>
/// The addresses of one pod CIDR: the first usable one is the gateway (on the host), the
/// others go to pods. IPv4 keeps the network and broadcast addresses out; IPv6 the
/// subnet-router anycast address. Not thread-safe: <see cref="NodeIpam"/> locks around it.
/// </summary>
public sealed class IpPool
{
    private readonly UInt128 _base;
    private readonly UInt128 _first;
    private readonly UInt128 _last;
    private readonly HashSet<UInt128> _used = [];
    private UInt128 _cursor;

    public IpPool(IPNetwork cidr)
    {
        var v6 = cidr.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6;
        var bits = v6 ? 128 : 32;
        // The gateway and at least one pod address, plus the network (and IPv4 broadcast) address.
        var maxPrefix = v6 ? 126 : 30;
        if (cidr.PrefixLength > maxPrefix)
        {
            throw new ArgumentException($"pod CIDR {cidr} is too small: use at most a /{maxPrefix} (a /24 holds 253 pods)", nameof(cidr));
        }
        Cidr = cidr;
        _base = ToNumber(cidr.BaseAddress);
        var size = UInt128.One << (bits - cidr.PrefixLength);
        Gateway = ToAddress(_base + 1, v6);
        _first = _base + 2;
        _last = v6 ? _base + (size - 1) : _base + (size - 2);
        _cursor = _first;
    }

    public IPNetwork Cidr { get; }

    /// <summary>The first usable address: the pods' default gateway, held by the host.</summary>
    public IPAddress Gateway { get; }

    public AddressFamily Family => Cidr.BaseAddress.AddressFamily;

    /// <summary>How many pod addresses the pool has.</summary>
    public UInt128 Capacity => _last - _first + 1;

    public int Used => _used.Count;

    /// <summary>Moves the cursor past <paramref name="address"/>: after a restart, allocation goes on after the highest address held.</summary>
    internal void ContinueAfter(IPAddress address)
    {
        if (Contains(address))
        {
            var n = ToNumber(address);
            _cursor = n == _last ? _first : n + 1;
        }
    }

    /// <summary>Reserves the next free address after the last one handed out (so a released address is not reused at once).</summary>
    public IPAddress? TryReserve()
    {
        if ((UInt128)_used.Count >= Capacity)
        {
            return null;
        }
        var candidate = _cursor;
        while (_used.Contains(candidate))
        {
            candidate = candidate == _last ? _first : candidate + 1;
        }
        _used.Add(candidate);
        _cursor = candidate == _last ? _first : candidate + 1;
        return ToAddress(candidate, Family == AddressFamily.InterNetworkV6);
    }

    /// <summary>Marks a known address used (loading persisted state); false when it is not a pod address of this pool.</summary>
    public bool Reserve(IPAddress address)
    {
        if (!Contains(address))
        {
            return false;
        }
        return _used.Add(ToNumber(address));
    }

    public void Release(IPAddress address)
    {
        if (Contains(address))
        {
            _used.Remove(ToNumber(address));
        }
    }

    /// <summary>Whether <paramref name="address"/> is one of the pool's pod addresses (not the gateway).</summary>
    public bool Contains(IPAddress address)
    {
        if (address.AddressFamily != Family || !Cidr.Contains(address))
        {
            return false;
        }
        var n = ToNumber(address);
        return n >= _first && n <= _last;
    }

    /// <summary>The address as a number, for ordering.</summary>
    internal static UInt128 Number(IPAddress address) => ToNumber(address);

    private static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        return written == 4 ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    private static IPAddress ToAddress(UInt128 n, bool v6)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (!v6)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)n);
            return new IPAddress(bytes[..4]);
        }
        BinaryPrimitives.WriteUInt128BigEndian(bytes, n);
        return new IPAddress(bytes);
    }
}
