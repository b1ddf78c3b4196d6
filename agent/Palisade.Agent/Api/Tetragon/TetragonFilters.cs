using System.Text.Json;
using System.Text.RegularExpressions;
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
/// --export-allowlist) for the fields it knows; the few it does not yet know are matched here.
/// A field neither knows is refused, naming it, rather than silently matching everything.
/// </summary>
public sealed class TetragonFilters
{
    private static readonly JsonFormatter ProtoNames = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true).WithFormatDefaultValues(false));

    /// <summary>The fields of Tetragon's Filter matched here when the export filter does not know them.</summary>
    private static readonly string[] LocalFields = ["container_id", "namespace_regex", "parent_arguments_regex", "in_init_tree"];

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

    /// <summary>One filter: its fields ANDed, those ours knows matched by ours.</summary>
    private sealed class Clause
    {
        private EventFilter _export = null!;
        private Regex? _containerId, _namespace, _parentArguments;
        private bool? _inInitTree;

        public static Clause Parse(T.Filter filter, string where)
        {
            var clause = new Clause();
            var exported = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            using (var doc = JsonDocument.Parse(ProtoNames.Format(filter)))
            {
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (EventFilter.Fields.Contains(p.Name))
                    {
                        exported[p.Name] = p.Value.Clone();
                        continue;
                    }
                    var field = $"{where}: {p.Name}";
                    switch (p.Name)
                    {
                        case "container_id": clause._containerId = Regexes(p.Value, field); break;
                        case "namespace_regex": clause._namespace = Regexes(p.Value, field); break;
                        case "parent_arguments_regex": clause._parentArguments = Regexes(p.Value, field); break;
                        case "in_init_tree": clause._inInitTree = p.Value.GetBoolean(); break;
                        default:
                            throw new FilterException($"{field}: this filter field of Tetragon's is not supported by Palisade. " +
                                $"Supported: {string.Join(", ", EventFilter.Fields.Concat(LocalFields).Distinct())}.");
                    }
                }
            }
            clause._export = EventFilter.Parse(JsonSerializer.Serialize(exported), where);
            return clause;
        }

        private static Regex Regexes(JsonElement value, string field)
        {
            if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String))
            {
                throw new FilterException($"{field}: must be a list of regular expressions.");
            }
            var patterns = value.EnumerateArray().Select(v => v.GetString()!).ToList();
            try
            {
                return new Regex(string.Join('|', patterns.Select(s => $"(?:{s})")), RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(50));
            }
            catch (ArgumentException e)
            {
                throw new FilterException($"{field}: {string.Join(", ", patterns.Select(p => $"\"{p}\""))} is not a valid regular expression ({e.Message}).");
            }
        }

        public bool Matches(PalisadeEvent e)
        {
            if (!_export.Matches(e))
            {
                return false;
            }
            if (_containerId is null && _namespace is null && _parentArguments is null && _inInitTree is null)
            {
                return true;
            }
            // Like the export filter: a field about the process matches no event without one.
            if (e.Process is not { } p)
            {
                return false;
            }
            if (_containerId is not null && !Safe(_containerId, p.ContainerId))
            {
                return false;
            }
            if (_namespace is not null && !Safe(_namespace, p.Pod?.Namespace))
            {
                return false;
            }
            if (_parentArguments is not null && !Safe(_parentArguments, (e.Parent ?? p.Parent)?.Arguments))
            {
                return false;
            }
            return _inInitTree is not { } wanted || InitTree.Contains(p) == wanted;
        }

        // A pattern that takes too long on one value does not match it (and never stalls the stream).
        private static bool Safe(Regex regex, string? value)
        {
            if (value is null)
            {
                return false;
            }
            try
            {
                return regex.IsMatch(value);
            }
            catch (RegexMatchTimeoutException)
            {
                return false;
            }
        }
    }
}

/// <summary>
/// Tetragon's in_init_tree: a containerized process descended from its container's init
/// (pid 1 in the container's pid namespace) without leaving the container, which a process
/// started by `kubectl exec` or nsenter is not (its parent is the runtime, on the host).
/// </summary>
public static class InitTree
{
    public static bool Contains(ProcessRecord process)
    {
        if (process.ContainerId is not { } container)
        {
            return false;
        }
        var depth = 0;
        for (ProcessRecord? p = process; p is not null && depth < 256; p = p.Parent, depth++)
        {
            if (!string.Equals(p.ContainerId, container, StringComparison.Ordinal))
            {
                return false;
            }
            if (p.NamespacePid == 1)
            {
                return true;
            }
        }
        return false;
    }
}
