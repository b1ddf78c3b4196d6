using System.Text.Json;
using Google.Protobuf;
using Palisade.Events;
using Palisade.Exporters.Filters;
using T = Palisade.Api.Tetragon;
using FieldFilter = Palisade.Exporters.Filters.FieldFilter;

namespace Palisade.Agent.Api.Tetragon;

/// <summary>
/// The allow/deny lists of a Tetragon <c>GetEventsRequest</c>: at least one allow filter
/// matches (when there are any) and no deny filter does, Tetragon's rule. Each filter is its
/// proto-JSON handed to our export filter (<see cref="EventFilter"/>, the same code as
/// --export-allowlist). A field it does not know is refused, naming it, rather than silently
/// matching everything.
/// </summary>
public sealed class TetragonFilters
{
    private static readonly JsonFormatter ProtoNames = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true).WithFormatDefaultValues(false));

    private readonly IReadOnlyList<Clause> _allow;
    private readonly IReadOnlyList<Clause> _deny;

    private TetragonFilters(IReadOnlyList<Clause> allow, IReadOnlyList<Clause> deny)
    {
        _allow = allow;
        _deny = deny;
    }

    /// <summary>The lists of a request; a bad filter throws <see cref="FilterException"/> naming it (allow_list[0]: field ...).</summary>
    public static TetragonFilters Of(T.GetEventsRequest request) => new(
        [.. request.AllowList.Select((f, i) => Clause.Parse(f, $"allow_list[{i}]"))],
        [.. request.DenyList.Select((f, i) => Clause.Parse(f, $"deny_list[{i}]"))]);

    /// <summary>The field filters of a request as ours: Tetragon's FieldMask paths are our dotted paths.</summary>
    public static IReadOnlyList<FieldFilter> FieldFilters(T.GetEventsRequest request)
    {
        var result = new List<FieldFilter>();
        for (var i = 0; i < request.FieldFilters.Count; i++)
        {
            var f = request.FieldFilters[i];
            // Our parser reads the export's JSON form, where fields is one comma-separated
            // string; FieldMask's own JSON would turn the paths into lowerCamelCase.
            var json = new Dictionary<string, object>
            {
                ["fields"] = string.Join(',', f.Fields?.Paths ?? []),
                ["action"] = f.Action.ToString().ToUpperInvariant(),
            };
            if (f.EventSet.Count > 0)
            {
                json["event_set"] = f.EventSet.Select(EventTypeName).ToArray();
            }
            if (f.InvertEventSet is { } invert)
            {
                json["invert_event_set"] = invert;
            }
            result.Add(FieldFilter.Parse(JsonSerializer.Serialize(json), $"field_filters[{i}]"));
        }
        return result;
    }

    private static string EventTypeName(T.EventType type) =>
        T.FieldFilter.Descriptor.FindFieldByName("event_set").EnumType.FindValueByNumber((int)type)?.Name ?? ((int)type).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>True when the event passes the lists.</summary>
    public bool Passes(PalisadeEvent e)
    {
        if (_allow.Count > 0 && !_allow.Any(c => c.Matches(e)))
        {
            return false;
        }
        return !_deny.Any(c => c.Matches(e));
    }

    /// <summary>One filter: its fields ANDed, matched by the export filter (the same code as --export-allowlist).</summary>
    private sealed class Clause
    {
        private EventFilter _export = null!;

        public static Clause Parse(T.Filter filter, string where)
        {
            var exported = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            using (var doc = JsonDocument.Parse(ProtoNames.Format(filter)))
            {
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (!EventFilter.Fields.Contains(p.Name))
                    {
                        throw new FilterException($"{where}: {p.Name}: this filter field of Tetragon's is not supported by Palisade. " +
                            $"Supported: {string.Join(", ", EventFilter.Fields)}.");
                    }
                    exported[p.Name] = p.Value.Clone();
                }
            }
            return new Clause { _export = EventFilter.Parse(JsonSerializer.Serialize(exported), where) };
        }

        public bool Matches(PalisadeEvent e) => _export.Matches(e);
    }
}
