using System.Collections;
using System.Collections.Concurrent;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Filters;
using T = Palisade.Api.Tetragon;

namespace Palisade.Agent.Api.Tetragon;

/// <summary>
/// Tetragon's <c>GetEventsResponse</c> for one event. The event is built once, by
/// <see cref="EventMessages"/>, into our palisade.v1 message (whose field names are Tetragon's:
/// a test holds that), field masks applied there; this then copies it field by field, by
/// name, into the tetragon message, where the names are the same and only the numbers differ.
/// One mapping from events to fields, so the two APIs and the JSON export cannot disagree.
/// Fields Tetragon has no twin for (our <c>interpreter</c>) are left out; values whose type
/// differs are converted (a capability or action name to Tetragon's enum, a struct argument to
/// its typed message).
/// </summary>
public static class TetragonMessages
{
    private static readonly JsonParser Lenient = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

    // Source field -> target field, found once per pair of message types.
    private static readonly ConcurrentDictionary<(MessageDescriptor, MessageDescriptor), (FieldDescriptor From, FieldDescriptor To)[]> Pairs = new();

    // Tetragon's CapabilitiesType values are the kernel's bit numbers; its names are not always
    // ours (it writes DAC_OVERRIDE without CAP_), so names go through the bit number.
    private static readonly Dictionary<string, int> CapabilityBits = Enumerable.Range(0, 64)
        .Select(b => (Name: TetragonJson.CapabilityName(b), Bit: b))
        .GroupBy(x => x.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Bit, StringComparer.Ordinal);

    /// <summary>True for the event kinds Tetragon's API has a message for (flows are ours alone).</summary>
    public static bool Serves(EventKind kind) => kind is not EventKind.Flow;

    /// <summary>The tetragon message for one event, masks applied; <see cref="NotSupportedException"/> when there is none.</summary>
    public static T.GetEventsResponse ToMessage(PalisadeEvent e, string nodeName, TetragonJsonOptions options, FieldMasks fields)
    {
        if (!Serves(e.Kind))
        {
            throw new NotSupportedException($"Tetragon's API has no message for {e.Kind} events; palisade.v1 streams them.");
        }
        return FromPalisade(EventMessages.ToMessage(e, nodeName, options, fields));
    }

    /// <summary>Copies one palisade.v1 response into Tetragon's, by field name.</summary>
    public static T.GetEventsResponse FromPalisade(Palisade.Api.V1.GetEventsResponse source)
    {
        var target = new T.GetEventsResponse();
        Copy(source, target);
        return target;
    }

    private static void Copy(IMessage source, IMessage target)
    {
        foreach (var (from, to) in Pairs.GetOrAdd((source.Descriptor, target.Descriptor), static k => Pair(k.Item1, k.Item2)))
        {
            if (from.IsMap)
            {
                var map = (IDictionary)from.Accessor.GetValue(source);
                var into = (IDictionary)to.Accessor.GetValue(target);
                foreach (DictionaryEntry entry in map)
                {
                    into[entry.Key] = entry.Value;
                }
            }
            else if (from.IsRepeated)
            {
                var list = (IList)from.Accessor.GetValue(source);
                var into = (IList)to.Accessor.GetValue(target);
                foreach (var item in list)
                {
                    if (Convert(from, to, item) is { } value)
                    {
                        into.Add(value);
                    }
                }
            }
            else if (IsSet(from, source))
            {
                if (Convert(from, to, from.Accessor.GetValue(source)) is { } value)
                {
                    to.Accessor.SetValue(target, value);
                }
            }
        }
    }

    private static (FieldDescriptor, FieldDescriptor)[] Pair(MessageDescriptor source, MessageDescriptor target) =>
        [.. source.Fields.InFieldNumberOrder()
            .Select(f => (f, target.FindFieldByName(f.Name)))
            .Where(p => p.Item2 is not null && p.f.IsRepeated == p.Item2.IsRepeated && p.f.IsMap == p.Item2.IsMap)
            .Select(p => (p.f, p.Item2!))];

    // Proto3 scalars outside a oneof have no presence: their default means "not set".
    private static bool IsSet(FieldDescriptor f, IMessage m)
    {
        if (f.HasPresence)
        {
            return f.Accessor.HasValue(m);
        }
        return f.Accessor.GetValue(m) switch
        {
            string s => s.Length > 0,
            ByteString b => b.Length > 0,
            bool b => b,
            int i => i != 0,
            uint u => u != 0,
            long l => l != 0,
            ulong ul => ul != 0,
            double d => d != 0,
            float fl => fl != 0,
            System.Enum en => System.Convert.ToInt32(en, System.Globalization.CultureInfo.InvariantCulture) != 0,
            _ => true,
        };
    }

    /// <summary>One value of <paramref name="from"/> as a value of <paramref name="to"/>; null when it has no equivalent.</summary>
    private static object? Convert(FieldDescriptor from, FieldDescriptor to, object value)
    {
        if (to.FieldType == FieldType.Message)
        {
            var target = to.MessageType;
            if (from.FieldType != FieldType.Message)
            {
                return null;
            }
            if (target.File.Package == "google.protobuf")
            {
                // Timestamps and wrappers are the same types on both sides; a wrapper's value
                // comes unwrapped (uint, bool, ...) and is set as it is.
                return from.MessageType.FullName != target.FullName ? null
                    : value is IMessage m ? target.Parser.ParseFrom(m.ToByteString()) : value;
            }
            if (value is Struct fields)
            {
                // Our bpf_attr_arg and friends are free-form; Tetragon's are typed messages
                // whose field names are the struct's keys.
                return Lenient.Parse(JsonFormatter.Default.Format(fields), target);
            }
            var message = target.Parser.ParseFrom(ByteString.Empty);
            Copy((IMessage)value, message);
            return message;
        }
        if (to.FieldType == FieldType.Enum)
        {
            var name = value switch
            {
                string s => s,
                System.Enum => from.EnumType.FindValueByNumber((int)value)?.Name,
                _ => null,
            };
            if (name is null)
            {
                return null;
            }
            var number = to.EnumType.FindValueByName(name)?.Number
                ?? (to.EnumType.FullName == "tetragon.CapabilitiesType" && CapabilityBits.TryGetValue(name, out var bit) ? bit : (int?)null);
            return number is { } n ? System.Enum.ToObject(to.EnumType.ClrType, n) : null;
        }
        if (from.FieldType == FieldType.Enum)
        {
            return to.FieldType == FieldType.String ? from.EnumType.FindValueByNumber((int)value)?.Name : null;
        }
        if (from.FieldType == FieldType.Message || (value is string && to.FieldType != FieldType.String))
        {
            return null;
        }
        try
        {
            return Scalar(to.FieldType, value);
        }
        catch (OverflowException)
        {
            return null; // a value out of the target's range is left out rather than wrapped
        }
    }

    private static object? Scalar(FieldType type, object value) =>
        type switch
        {
            FieldType.String => value as string,
            FieldType.Bytes => value as ByteString,
            FieldType.Bool => value as bool?,
            FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => System.Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture),
            FieldType.UInt32 or FieldType.Fixed32 => System.Convert.ToUInt32(value, System.Globalization.CultureInfo.InvariantCulture),
            FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => System.Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture),
            FieldType.UInt64 or FieldType.Fixed64 => System.Convert.ToUInt64(value, System.Globalization.CultureInfo.InvariantCulture),
            FieldType.Double => System.Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture),
            FieldType.Float => System.Convert.ToSingle(value, System.Globalization.CultureInfo.InvariantCulture),
            _ => null,
        };
}
