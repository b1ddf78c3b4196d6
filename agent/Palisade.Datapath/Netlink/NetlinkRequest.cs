using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Palisade.Datapath.Netlink;

/// <summary>
/// Builds one netlink message: the 16-byte header, the family's fixed header, then
/// attributes (type-length-value, 4-byte aligned, nestable). The length is written last.
/// </summary>
internal sealed class NetlinkRequest
{
    private byte[] _buffer = new byte[256];
    private int _length = Header.Size;

    public NetlinkRequest(ushort type, ushort flags)
    {
        Type = type;
        Flags = flags;
    }

    public ushort Type { get; }

    public ushort Flags { get; }

    /// <summary>Appends a fixed header (ifinfomsg, rtmsg, ...), padded to 4 bytes.</summary>
    public NetlinkRequest Struct<T>(in T value) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value));
        Append(bytes);
        Pad();
        return this;
    }

    public NetlinkRequest Attribute(ushort type, ReadOnlySpan<byte> value)
    {
        Ensure(4 + value.Length + 3);
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(_length), (ushort)(4 + value.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(_length + 2), type);
        _length += 4;
        Append(value);
        Pad();
        return this;
    }

    public NetlinkRequest Attribute(ushort type, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        return Attribute(type, bytes);
    }

    public NetlinkRequest Attribute(ushort type, byte value) => Attribute(type, [value]);

    /// <summary>A NUL-terminated string attribute (interface names, link kinds).</summary>
    public NetlinkRequest Attribute(ushort type, string value)
    {
        Span<byte> bytes = stackalloc byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, bytes);
        bytes[^1] = 0;
        return Attribute(type, bytes);
    }

    /// <summary>Opens a nested attribute; returns where it starts, for <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type)
    {
        Ensure(4);
        var start = _length;
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(_length + 2), type);
        _length += 4;
        return start;
    }

    public NetlinkRequest EndNested(int start)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(start), (ushort)(_length - start));
        return this;
    }

    /// <summary>The finished message with sequence number <paramref name="sequence"/>.</summary>
    public ReadOnlySpan<byte> Finish(uint sequence)
    {
        var header = new Header { Length = (uint)_length, Type = Type, Flags = Flags, Sequence = sequence };
        MemoryMarshal.Write(_buffer.AsSpan(), in header);
        return _buffer.AsSpan(0, _length);
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    private void Pad()
    {
        var aligned = (_length + 3) & ~3;
        Ensure(aligned - _length);
        _buffer.AsSpan(_length, aligned - _length).Clear();
        _length = aligned;
    }

    private void Ensure(int more)
    {
        if (_length + more > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + more));
        }
    }

    /// <summary>struct nlmsghdr.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Header
    {
        public const int Size = 16;
        public uint Length;
        public ushort Type;
        public ushort Flags;
        public uint Sequence;
        public uint Port;
    }
}

/// <summary>The attributes of one netlink message or nest, by type (the last of a type wins).</summary>
internal readonly struct NetlinkAttributes
{
    private readonly Dictionary<ushort, byte[]> _values;

    private NetlinkAttributes(Dictionary<ushort, byte[]> values) => _values = values;

    public static NetlinkAttributes Parse(ReadOnlySpan<byte> data)
    {
        var values = new Dictionary<ushort, byte[]>();
        while (data.Length >= 4)
        {
            var length = BinaryPrimitives.ReadUInt16LittleEndian(data);
            var type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(data[2..]) & 0x3fff); // drop NLA_F_NESTED / NLA_F_NET_BYTEORDER
            if (length < 4 || length > data.Length)
            {
                break;
            }
            values[type] = data[4..length].ToArray();
            var aligned = (length + 3) & ~3;
            data = aligned >= data.Length ? [] : data[aligned..];
        }
        return new NetlinkAttributes(values);
    }

    public byte[]? Bytes(ushort type) => _values is not null && _values.TryGetValue(type, out var v) ? v : null;

    public uint? UInt32(ushort type) => Bytes(type) is { Length: >= 4 } v ? BinaryPrimitives.ReadUInt32LittleEndian(v) : null;

    public string? String(ushort type) => Bytes(type) is { } v ? Encoding.UTF8.GetString(v).TrimEnd('\0') : null;

    public NetlinkAttributes Nested(ushort type) => Parse(Bytes(type) ?? []);
}
