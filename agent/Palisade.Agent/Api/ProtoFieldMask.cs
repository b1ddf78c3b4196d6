using System.Collections;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Palisade.Exporters.Filters;

namespace Palisade.Agent.Api;

/// <summary>
/// Applies a field filter mask to a built API message, field by field through the message's
/// descriptor (proto field names are the JSON names the filters use): the message keeps
/// exactly what the JSON export of the same event keeps.
/// </summary>
public static class ProtoFieldMask
{
    public static void Apply(IMessage message, FieldMask mask)
    {
        foreach (var field in message.Descriptor.Fields.InDeclarationOrder())
        {
            var child = mask.Child(field.Name);
            if (ReferenceEquals(child, FieldMask.All))
            {
                continue;
            }
            if (ReferenceEquals(child, FieldMask.None))
            {
                field.Accessor.Clear(message);
            }
            else if (field.IsMap)
            {
                // A map is an object in JSON, so a path may name one of its keys.
                var map = (IDictionary)field.Accessor.GetValue(message);
                foreach (var key in map.Keys.Cast<object>().ToList())
                {
                    if (!child.Child(key.ToString() ?? "").KeepsValue)
                    {
                        map.Remove(key);
                    }
                }
            }
            else if (field.FieldType == FieldType.Message && !field.IsRepeated && !IsValue(field.MessageType))
            {
                if (field.Accessor.HasValue(message) && field.Accessor.GetValue(message) is IMessage inner)
                {
                    Apply(inner, child);
                }
            }
            else if (!child.KeepsValue)
            {
                field.Accessor.Clear(message); // a scalar, a list or a well-known value
            }
        }
    }

    // Timestamps and wrappers are single values in JSON, not objects a path goes into.
    private static bool IsValue(MessageDescriptor type) => type.File.Package == "google.protobuf";
}
