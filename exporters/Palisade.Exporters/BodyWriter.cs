using System.Text.Json;
using Palisade.Exporters.Filters;

namespace Palisade.Exporters;

/// <summary>
/// Writes an event body (what goes under process_exec, flow, ...) to a <see cref="Utf8JsonWriter"/>,
/// leaving out the fields a <see cref="FieldMask"/> drops as it goes: field filters cost one
/// check per field, not a second encoding. Without a mask every call goes straight through
/// and nothing is allocated.
/// </summary>
public readonly struct BodyWriter
{
    private readonly Utf8JsonWriter _w;
    private readonly MaskCursor? _mask;

    public BodyWriter(Utf8JsonWriter writer, FieldMask? mask = null)
    {
        _w = writer;
        _mask = mask is null ? null : new MaskCursor(mask);
    }

    private bool Keeps(string name) => _mask is null || _mask.Current.Child(name).KeepsValue;

    // Inside an array or a dropped object: values without a name follow their container.
    private bool KeepsElement => _mask is null || !ReferenceEquals(_mask.Current, FieldMask.None);

    public void WriteString(string name, string? value)
    {
        if (Keeps(name))
        {
            _w.WriteString(name, value);
        }
    }

    public void WriteString(string name, ReadOnlySpan<byte> utf8Value)
    {
        if (Keeps(name))
        {
            _w.WriteString(name, utf8Value);
        }
    }

    public void WriteNumber(string name, long value)
    {
        if (Keeps(name))
        {
            _w.WriteNumber(name, value);
        }
    }

    public void WriteNumber(string name, uint value)
    {
        if (Keeps(name))
        {
            _w.WriteNumber(name, value);
        }
    }

    public void WriteNumber(string name, int value)
    {
        if (Keeps(name))
        {
            _w.WriteNumber(name, value);
        }
    }

    public void WriteBoolean(string name, bool value)
    {
        if (Keeps(name))
        {
            _w.WriteBoolean(name, value);
        }
    }

    public void WriteBase64String(string name, ReadOnlySpan<byte> bytes)
    {
        if (Keeps(name))
        {
            _w.WriteBase64String(name, bytes);
        }
    }

    public void WriteStringValue(string value)
    {
        if (KeepsElement)
        {
            _w.WriteStringValue(value);
        }
    }

    public void WriteStartObject(string name)
    {
        if (_mask is null)
        {
            _w.WriteStartObject(name);
            return;
        }
        var child = _mask.Enter(_mask.Current.Child(name));
        if (!ReferenceEquals(child, FieldMask.None))
        {
            _w.WriteStartObject(name);
        }
    }

    /// <summary>An object inside an array.</summary>
    public void WriteStartObject()
    {
        if (KeepsElement)
        {
            _w.WriteStartObject();
        }
        _mask?.Enter(_mask.Current);
    }

    public void WriteStartArray(string name)
    {
        if (_mask is null)
        {
            _w.WriteStartArray(name);
            return;
        }
        var inside = _mask.Enter(_mask.Current.Child(name).ForArray);
        if (!ReferenceEquals(inside, FieldMask.None))
        {
            _w.WriteStartArray(name);
        }
    }

    public void WriteEndObject()
    {
        if (KeepsElement)
        {
            _w.WriteEndObject();
        }
        _mask?.Leave();
    }

    public void WriteEndArray()
    {
        if (KeepsElement)
        {
            _w.WriteEndArray();
        }
        _mask?.Leave();
    }

    /// <summary>Where the writer is in the mask: the current object's mask and those of the objects around it.</summary>
    private sealed class MaskCursor(FieldMask root)
    {
        private readonly Stack<FieldMask> _outer = new(8);

        public FieldMask Current { get; private set; } = root;

        public FieldMask Enter(FieldMask inner)
        {
            _outer.Push(Current);
            Current = inner;
            return inner;
        }

        public void Leave() => Current = _outer.Pop();
    }
}
