using System.Text.Json;
using System.Text.RegularExpressions;
using Palisade.Events;

namespace Palisade.Exporters.Filters;

/// <summary>A bad filter definition: the field, the value and how to fix it.</summary>
public sealed class FilterException(string message) : Exception(message);

/// <summary>Tetragon's filter-list format: one JSON object per non-empty line, each named "WHERE line N" in errors.</summary>
internal static class FilterLines
{
    public static List<T> Parse<T>(string text, string where, Func<string, string, T> parseOne)
    {
        var lines = text.Split('\n');
        var result = new List<T>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim().Length > 0)
            {
                result.Add(parseOne(lines[i], $"{where} line {i + 1}"));
            }
        }
        return result;
    }

    /// <summary>
    /// Parses one line as a JSON object, or throws a <see cref="FilterException"/> naming
    /// <paramref name="where"/> with <paramref name="example"/> as the fix. The caller disposes it.
    /// </summary>
    public static JsonDocument Object(string json, string where, string example)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new FilterException($"{where}: not valid JSON ({e.Message}). Fix: write one JSON object per line, e.g. {example}.");
        }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            var kind = doc.RootElement.ValueKind;
            doc.Dispose();
            throw new FilterException($"{where}: must be a JSON object, not {kind}. Fix: e.g. {example}.");
        }
        return doc;
    }

    /// <summary>The value as a list of strings, or a <see cref="FilterException"/> naming <paramref name="field"/>.</summary>
    public static string[] Strings(JsonElement value, string field, string example = "[\"value\"]")
    {
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String))
        {
            throw new FilterException($"{field}: must be a list of strings, not {value.GetRawText()}. Fix: e.g. {example}.");
        }
        return [.. value.EnumerateArray().Select(v => v.GetString()!)];
    }
}

/// <summary>
/// One export filter in Tetragon's JSON form (one object per line of --export-allowlist /
/// --export-denylist): the fields present are ANDed, the values of one field ORed.
/// An event matches when every field present matches.
/// </summary>
public sealed class EventFilter
{
    private static readonly Dictionary<string, EventKind> EventSetNames = new(StringComparer.Ordinal)
    {
        ["PROCESS_EXEC"] = EventKind.ProcessExec,
        ["PROCESS_EXIT"] = EventKind.ProcessExit,
        ["PROCESS_KPROBE"] = EventKind.ProcessKprobe,
        ["PROCESS_TRACEPOINT"] = EventKind.ProcessTracepoint,
        ["PROCESS_UPROBE"] = EventKind.ProcessUprobe,
        ["PROCESS_LSM"] = EventKind.ProcessLsm,
        // Palisade: network flows from the datapath (Hubble's shape).
        ["FLOW"] = EventKind.Flow,
    };

    /// <summary>The fields a filter may use, as Tetragon names them.</summary>
    public static readonly string[] Fields =
    [
        "event_set", "namespace", "binary_regex", "parent_binary_regex", "ancestor_binary_regex", "pod_regex",
        "container_name_regex", "labels", "arguments_regex", "policy_names", "pid", "pid_set", "health_check",
        "container_id", "namespace_regex", "parent_arguments_regex", "in_init_tree", "capabilities",
    ];

    private HashSet<EventKind>? _kinds;
    private bool? _healthCheck;
    private HashSet<string>? _namespaces;
    private Regex? _binary, _parentBinary, _ancestorBinary, _pod, _container, _arguments;
    private List<LabelTerm>? _labels;
    private HashSet<string>? _policies;
    private HashSet<uint>? _pids, _pidSet;
    private Regex? _containerId, _namespaceRegex, _parentArguments;
    private bool? _inInitTree;
    private List<(Func<CapabilitySets, ulong> Set, string Op, ulong Mask)>? _caps;

    public static EventKind? KindOf(string eventSetName) => EventSetNames.TryGetValue(eventSetName, out var k) ? k : null;

    /// <summary>Parses one filter object; <paramref name="where"/> names it in errors (e.g. "export-allowlist line 2").</summary>
    public static EventFilter Parse(string json, string where)
    {
        using (var doc = FilterLines.Object(json, where, "{\"event_set\":[\"PROCESS_EXEC\"]}"))
        {
            var filter = new EventFilter();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                filter.Set(p, where);
            }
            return filter;
        }
    }

    /// <summary>Parses a list: one filter per non-empty line (Tetragon's format), or a JSON array of filters.</summary>
    public static IReadOnlyList<EventFilter> ParseList(string text, string where)
    {
        var trimmed = text.Trim();
        if (trimmed.Length == 0)
        {
            return [];
        }
        if (trimmed.StartsWith('['))
        {
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(trimmed);
            }
            catch (JsonException e)
            {
                throw new FilterException($"{where}: not valid JSON ({e.Message}). Fix: a JSON array of filter objects, or one object per line, e.g. {{\"event_set\":[\"PROCESS_EXEC\"]}}.");
            }
            using (doc)
            {
                return [.. doc.RootElement.EnumerateArray().Select((e, i) => Parse(e.GetRawText(), $"{where}[{i}]"))];
            }
        }
        return FilterLines.Parse(text, where, Parse);
    }

    private void Set(JsonProperty p, string where)
    {
        var field = $"{where}: {p.Name}";
        switch (p.Name)
        {
            case "event_set":
                _kinds = [.. Strings(p, field).Select(s => KindOf(s) ?? throw new FilterException(
                    $"{field}: unknown event type \"{s}\". Allowed: {string.Join(", ", EventSetNames.Keys)}."))];
                break;
            case "namespace":
                _namespaces = [.. Strings(p, field)];
                break;
            case "binary_regex": _binary = Regexes(p, field); break;
            case "parent_binary_regex": _parentBinary = Regexes(p, field); break;
            case "ancestor_binary_regex": _ancestorBinary = Regexes(p, field); break;
            case "pod_regex": _pod = Regexes(p, field); break;
            case "container_name_regex": _container = Regexes(p, field); break;
            case "arguments_regex": _arguments = Regexes(p, field); break;
            case "labels":
                _labels = [.. Strings(p, field).Select(s => LabelTerm.TryParse(s, sources: false, out var error)
                    ?? throw new FilterException($"{field}: {error}."))];
                break;
            case "policy_names":
                _policies = [.. Strings(p, field)];
                break;
            case "pid":
                _pids = [.. Pids(p, field)];
                break;
            case "pid_set":
                _pidSet = [.. Pids(p, field)];
                break;
            case "health_check":
                // Tetragon's: true matches events whose process or parent may be an exec probe
                // of its container (maybe_exec_probe), false the others.
                if (p.Value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                {
                    throw new FilterException($"{field}: must be true or false, not {p.Value.GetRawText()}.");
                }
                _healthCheck = p.Value.GetBoolean();
                break;
            case "container_id": _containerId = Regexes(p, field); break;
            case "namespace_regex": _namespaceRegex = Regexes(p, field); break;
            case "parent_arguments_regex": _parentArguments = Regexes(p, field); break;
            case "in_init_tree":
                if (p.Value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                {
                    throw new FilterException($"{field}: must be true or false, not {p.Value.GetRawText()}.");
                }
                _inInitTree = p.Value.GetBoolean();
                break;
            case "capabilities":
                _caps = Capabilities(p.Value, field);
                break;
            default:
                throw new FilterException($"{field}: unknown filter field.{Palisade.Policies.Suggestions.For(p.Name, Fields)}");
        }
    }

    private static string[] Strings(JsonProperty p, string field) => FilterLines.Strings(p.Value, field);

    /// <summary>Tetragon's CapFilter: per set (permitted, effective, inheritable) any/all/exactly/none of capability names.</summary>
    private static List<(Func<CapabilitySets, ulong>, string, ulong)> Capabilities(JsonElement value, string field)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new FilterException($"{field}: must be an object such as {{\"effective\":{{\"any\":[\"CAP_SYS_ADMIN\"]}}}}, not {value.GetRawText()}.");
        }
        var result = new List<(Func<CapabilitySets, ulong>, string, ulong)>();
        foreach (var set in value.EnumerateObject())
        {
            Func<CapabilitySets, ulong> pick = set.Name switch
            {
                "permitted" => c => c.Permitted,
                "effective" => c => c.Effective,
                "inheritable" => c => c.Inheritable,
                _ => throw new FilterException($"{field}.{set.Name}: not a capability set. Allowed: permitted, effective, inheritable."),
            };
            if (set.Value.ValueKind != JsonValueKind.Object)
            {
                throw new FilterException($"{field}.{set.Name}: must be an object of any, all, exactly or none, not {set.Value.GetRawText()}.");
            }
            foreach (var op in set.Value.EnumerateObject())
            {
                if (op.Name is not ("any" or "all" or "exactly" or "none"))
                {
                    throw new FilterException($"{field}.{set.Name}.{op.Name}: not an operator. Allowed: any, all, exactly, none.");
                }
                ulong mask = 0;
                foreach (var name in FilterLines.Strings(op.Value, $"{field}.{set.Name}.{op.Name}"))
                {
                    var bit = TetragonJson.CapabilityBit(name);
                    if (bit < 0)
                    {
                        throw new FilterException($"{field}.{set.Name}.{op.Name}: \"{name}\" is not a capability. Fix: Tetragon's names, e.g. CAP_SYS_ADMIN, CAP_NET_RAW, DAC_OVERRIDE.");
                    }
                    mask |= 1UL << bit;
                }
                result.Add((pick, op.Name, mask));
            }
        }
        return result;
    }

    private static Regex Regexes(JsonProperty p, string field)
    {
        var patterns = Strings(p, field);
        foreach (var pattern in patterns)
        {
            try
            {
                _ = new Regex(pattern);
            }
            catch (ArgumentException e)
            {
                throw new FilterException($"{field}: \"{pattern}\" is not a valid regular expression ({e.Message}).");
            }
        }
        // One alternation, compiled once: events are matched on the export path. Patterns that
        // are valid alone can still break the alternation (an inline (?x) turns the closing
        // parenthesis into a comment), so the joined one is checked too.
        var joined = string.Join('|', patterns.Select(s => $"(?:{s})"));
        try
        {
            return FilterRegex.Create(joined, RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new FilterException($"{field}: the patterns cannot be combined into one regular expression ({e.Message}). Fix: drop inline options such as (?x) or give each pattern its own filter.");
        }
    }

    private static uint[] Pids(JsonProperty p, string field)
    {
        if (p.Value.ValueKind != JsonValueKind.Array || p.Value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.Number || !v.TryGetUInt32(out _)))
        {
            throw new FilterException($"{field}: must be a list of process ids, not {p.Value.GetRawText()}. Fix: e.g. [1234].");
        }
        return [.. p.Value.EnumerateArray().Select(v => v.GetUInt32())];
    }

    // Every field but event_set and policy_names is about the event's process.
    private bool NamesProcess => _namespaces is not null || _binary is not null || _parentBinary is not null || _ancestorBinary is not null
        || _pod is not null || _container is not null || _arguments is not null || _labels is not null || _pids is not null || _pidSet is not null
        || _containerId is not null || _namespaceRegex is not null || _parentArguments is not null || _inInitTree is not null || _caps is not null;

    /// <summary>
    /// True when every field present matches the event. A field about the process does not
    /// match an event without one (a flow no local process owns), whatever its value.
    /// </summary>
    public bool Matches(PalisadeEvent e)
    {
        if (_kinds is not null && !_kinds.Contains(e.Kind))
        {
            return false;
        }
        if (e.Process is not { } p)
        {
            return !NamesProcess && _policies is null && _healthCheck != true;
        }
        // Tetragon: the empty namespace "" names processes outside any pod (the host).
        if (_namespaces is not null && !_namespaces.Contains(p.Pod?.Namespace ?? string.Empty))
        {
            return false;
        }
        if (_binary is not null && !Safe(_binary, p.Binary))
        {
            return false;
        }
        if (_parentBinary is not null && !Safe(_parentBinary, (e.Parent ?? p.Parent)?.Binary))
        {
            return false;
        }
        if (_ancestorBinary is not null && !AncestorMatches(p))
        {
            return false;
        }
        if (_pod is not null && !Safe(_pod, p.Pod?.Name))
        {
            return false;
        }
        if (_container is not null && !Safe(_container, p.Pod?.Container?.Name))
        {
            return false;
        }
        if (_arguments is not null && !Safe(_arguments, p.Arguments))
        {
            return false;
        }
        if (_labels is not null && !_labels.All(l => l.Matches(p.Pod?.Labels)))
        {
            return false;
        }
        if (_policies is not null && (e is not ProcessPolicyEvent pe || !_policies.Contains(pe.PolicyName)))
        {
            return false;
        }
        if (_pids is not null && !_pids.Contains(p.Pid))
        {
            return false;
        }
        if (_healthCheck is { } health && ExecProbes.IsHealthCheck(p, e.Parent) != health)
        {
            return false;
        }
        if (_pidSet is not null && !InPidSet(p))
        {
            return false;
        }
        if (_containerId is not null && !Safe(_containerId, p.ContainerId))
        {
            return false;
        }
        if (_namespaceRegex is not null && !Safe(_namespaceRegex, p.Pod?.Namespace))
        {
            return false;
        }
        if (_parentArguments is not null && !Safe(_parentArguments, (e.Parent ?? p.Parent)?.Arguments))
        {
            return false;
        }
        if (_inInitTree is { } wanted && InitTree.Contains(p) != wanted)
        {
            return false;
        }
        if (_caps is not null && !_caps.All(c => c.Op switch
            {
                "any" => (c.Set(p.Capabilities) & c.Mask) != 0,
                "all" => (c.Set(p.Capabilities) & c.Mask) == c.Mask,
                "exactly" => c.Set(p.Capabilities) == c.Mask,
                _ => (c.Set(p.Capabilities) & c.Mask) == 0,
            }))
        {
            return false;
        }
        return true;
    }

    private bool AncestorMatches(ProcessRecord p)
    {
        for (var a = p.Parent; a is not null; a = a.Parent)
        {
            if (Safe(_ancestorBinary!, a.Binary))
            {
                return true;
            }
        }
        return false;
    }

    // pid_set: the process or any ancestor has one of the pids (Tetragon: "process tree").
    private bool InPidSet(ProcessRecord p)
    {
        for (var a = p; a is not null; a = a.Parent)
        {
            if (_pidSet!.Contains(a.Pid))
            {
                return true;
            }
        }
        return false;
    }

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

/// <summary>
/// Allow and deny lists as Tetragon applies them: an event is exported when it matches any
/// allow filter (or there are none) and no deny filter. Deny wins.
/// </summary>
public sealed class ExportFilter
{
    public static readonly ExportFilter All = new([], []);

    public ExportFilter(IReadOnlyList<EventFilter> allow, IReadOnlyList<EventFilter> deny)
    {
        Allow = allow;
        Deny = deny;
    }

    public IReadOnlyList<EventFilter> Allow { get; }

    public IReadOnlyList<EventFilter> Deny { get; }

    public bool Passes(PalisadeEvent e)
    {
        if (Allow.Count > 0)
        {
            var any = false;
            foreach (var f in Allow)
            {
                if (f.Matches(e))
                {
                    any = true;
                    break;
                }
            }
            if (!any)
            {
                return false;
            }
        }
        foreach (var f in Deny)
        {
            if (f.Matches(e))
            {
                return false;
            }
        }
        return true;
    }
}
