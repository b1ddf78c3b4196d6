using System.Text.Json;
using System.Text.Json.Nodes;
using Palisade.Events;

namespace Palisade.Exporters.Filters;

/// <summary>
/// Tetragon's --field-filters: keep (INCLUDE) or drop (EXCLUDE) fields of the event body,
/// named as dotted paths inside it ("process.binary", "parent.pod.name"), for the event
/// types in event_set (all when absent; the others when invert_event_set). node_name and
/// time always stay. Encoders apply them while they write, through a <see cref="FieldMask"/>.
/// </summary>
public sealed class FieldFilter
{
    private readonly HashSet<EventKind>? _kinds;
    private readonly bool _invert;

    private FieldFilter(HashSet<EventKind>? kinds, bool invert, string[][] paths, bool include)
    {
        _kinds = kinds;
        _invert = invert;
        Paths = PathNode.From(paths);
        Include = include;
    }

    /// <summary>INCLUDE (keep only the paths) or EXCLUDE (drop them).</summary>
    public bool Include { get; }

    /// <summary>The dotted paths, as a tree of field names.</summary>
    public PathNode Paths { get; }

    public static FieldFilter Parse(string json, string where)
    {
        using (var doc = FilterLines.Object(json, where, "{\"fields\":\"process.binary,process.pid\",\"action\":\"INCLUDE\"}"))
        {
            HashSet<EventKind>? kinds = null;
            var invert = false;
            string? fields = null;
            var include = true;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "event_set":
                        kinds = [.. FilterLines.Strings(p.Value, $"{where}: event_set", "[\"PROCESS_EXEC\"]").Select(v => EventFilter.KindOf(v) ?? throw new FilterException(
                            $"{where}: event_set: unknown event type \"{v}\"."))];
                        break;
                    case "invert_event_set":
                        invert = p.Value.ValueKind switch
                        {
                            JsonValueKind.True => true,
                            JsonValueKind.False => false,
                            _ => throw new FilterException($"{where}: invert_event_set: must be true or false, not {p.Value.GetRawText()}."),
                        };
                        break;
                    case "fields":
                        fields = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()
                            : throw new FilterException($"{where}: fields: must be a comma-separated string such as \"process.binary,process.pid\".");
                        break;
                    case "action":
                        include = (p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : null) switch
                        {
                            "INCLUDE" => true,
                            "EXCLUDE" => false,
                            _ => throw new FilterException($"{where}: action: {p.Value.GetRawText()} is not \"INCLUDE\" or \"EXCLUDE\"."),
                        };
                        break;
                    default:
                        throw new FilterException($"{where}: {p.Name}: unknown field-filter field. Allowed: event_set, invert_event_set, fields, action.");
                }
            }
            if (string.IsNullOrWhiteSpace(fields))
            {
                throw new FilterException($"{where}: fields: missing. Fix: name the fields, e.g. \"fields\":\"process.binary,process.arguments\".");
            }
            var paths = fields.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(f => f.Split('.')).ToArray();
            return new FieldFilter(kinds, invert, paths, include);
        }
    }

    public static IReadOnlyList<FieldFilter> ParseList(string text, string where) => FilterLines.Parse(text, where, Parse);

    public bool AppliesTo(EventKind kind) => _kinds is null || _kinds.Contains(kind) != _invert;

    /// <summary>Filters a parsed event body (the object under process_exec, process_kprobe, ...) in place.</summary>
    public void Apply(JsonObject body) => FieldMask.Of(this).Apply(body);
}
