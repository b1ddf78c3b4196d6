using System.Text.Json;
using System.Text.Json.Nodes;
using Palisade.Events;

namespace Palisade.Exporters.Filters;

/// <summary>
/// Tetragon's --field-filters: keep (INCLUDE) or drop (EXCLUDE) fields of the event body,
/// named as dotted paths inside it ("process.binary", "parent.pod.name"), for the event
/// types in event_set (all when absent; the others when invert_event_set). node_name and
/// time always stay.
/// </summary>
public sealed class FieldFilter
{
    private readonly HashSet<EventKind>? _kinds;
    private readonly bool _invert;
    private readonly string[][] _paths;

    private FieldFilter(HashSet<EventKind>? kinds, bool invert, string[][] paths, bool include, string source)
    {
        _kinds = kinds;
        _invert = invert;
        _paths = paths;
        Include = include;
        Source = source;
    }

    public bool Include { get; }

    public string Source { get; }

    public static FieldFilter Parse(string json, string where)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new FilterException($"{where}: not valid JSON ({e.Message}). Fix: e.g. {{\"fields\":\"process.binary,process.pid\",\"action\":\"INCLUDE\"}}.");
        }
        using (doc)
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
                        kinds = [.. p.Value.EnumerateArray().Select(v => EventFilter.KindOf(v.GetString() ?? "") ?? throw new FilterException(
                            $"{where}: event_set: unknown event type {v.GetRawText()}."))];
                        break;
                    case "invert_event_set":
                        invert = p.Value.ValueKind == JsonValueKind.True;
                        break;
                    case "fields":
                        fields = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()
                            : throw new FilterException($"{where}: fields: must be a comma-separated string such as \"process.binary,process.pid\".");
                        break;
                    case "action":
                        include = p.Value.GetString() switch
                        {
                            "INCLUDE" => true,
                            "EXCLUDE" => false,
                            var other => throw new FilterException($"{where}: action: \"{other}\" is not INCLUDE or EXCLUDE."),
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
            return new FieldFilter(kinds, invert, paths, include, json.Trim());
        }
    }

    public static IReadOnlyList<FieldFilter> ParseList(string text, string where) => FilterLines.Parse(text, where, Parse);

    public bool AppliesTo(EventKind kind) => _kinds is null || _kinds.Contains(kind) != _invert;

    /// <summary>Filters the event body (the object under process_exec, process_kprobe, ...) in place.</summary>
    public void Apply(JsonObject body)
    {
        if (Include)
        {
            var kept = new JsonObject();
            foreach (var path in _paths)
            {
                Copy(body, kept, path, 0);
            }
            body.Clear();
            foreach (var (k, v) in kept.ToList())
            {
                kept.Remove(k);
                body[k] = v;
            }
        }
        else
        {
            foreach (var path in _paths)
            {
                Remove(body, path, 0);
            }
        }
    }

    private static void Copy(JsonObject from, JsonObject to, string[] path, int i)
    {
        if (!from.TryGetPropertyValue(path[i], out var node) || node is null)
        {
            return;
        }
        if (i == path.Length - 1)
        {
            to[path[i]] = node.DeepClone();
            return;
        }
        if (node is JsonObject child)
        {
            if (to[path[i]] is not JsonObject target)
            {
                target = new JsonObject();
                to[path[i]] = target;
            }
            Copy(child, target, path, i + 1);
        }
    }

    private static void Remove(JsonObject from, string[] path, int i)
    {
        if (i == path.Length - 1)
        {
            from.Remove(path[i]);
        }
        else if (from[path[i]] is JsonObject child)
        {
            Remove(child, path, i + 1);
        }
    }
}

/// <summary>
/// Tetragon's --redaction-filters: every capture group of a "redact" regex that matches a
/// process's arguments is replaced by "*****", for binaries matching binary_regex (all when
/// absent). Applies to the process, its parent and its ancestors in every sink.
/// </summary>
public sealed class Redactor
{
    public const string Mask = "*****";

    private readonly List<(System.Text.RegularExpressions.Regex? Binary, System.Text.RegularExpressions.Regex[] Redact)> _rules;
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<ProcessRecord, string> _cache = [];

    private Redactor(List<(System.Text.RegularExpressions.Regex?, System.Text.RegularExpressions.Regex[])> rules) => _rules = rules;

    public int Count => _rules.Count;

    public static Redactor Parse(string text, string where) => new(FilterLines.Parse(text, where, ParseRule));

    private static (System.Text.RegularExpressions.Regex?, System.Text.RegularExpressions.Regex[]) ParseRule(string line, string at)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            System.Text.RegularExpressions.Regex? binary = null;
            System.Text.RegularExpressions.Regex[] redact = [];
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "redact":
                        redact = [.. p.Value.EnumerateArray().Select(v => Compile(v.GetString() ?? "", $"{at}: redact"))];
                        foreach (var r in redact.Where(r => r.GetGroupNumbers().Length < 2))
                        {
                            throw new FilterException($"{at}: redact: \"{r}\" has no capture group, so nothing would be redacted. Fix: put the secret in parentheses, e.g. \"--password[= ](\\\\S+)\".");
                        }
                        break;
                    case "binary_regex":
                        binary = Compile(string.Join('|', p.Value.EnumerateArray().Select(v => $"(?:{v.GetString()})")), $"{at}: binary_regex");
                        break;
                    case "match":
                        throw new FilterException($"{at}: match: not supported (Tetragon deprecated it too). Fix: use binary_regex to choose binaries.");
                    default:
                        throw new FilterException($"{at}: {p.Name}: unknown redaction field. Allowed: redact, binary_regex.");
                }
            }
            if (redact.Length == 0)
            {
                throw new FilterException($"{at}: redact: missing. Fix: give regexes whose capture groups are secrets, e.g. {{\"redact\":[\"(?:--password|-p)[\\\\s=]+(\\\\S+)\"]}}.");
            }
            return (binary, redact);
        }
        catch (JsonException e)
        {
            throw new FilterException($"{at}: not valid JSON ({e.Message}).");
        }
    }

    private static System.Text.RegularExpressions.Regex Compile(string pattern, string field)
    {
        try
        {
            return new System.Text.RegularExpressions.Regex(pattern, System.Text.RegularExpressions.RegexOptions.Compiled, TimeSpan.FromMilliseconds(50));
        }
        catch (ArgumentException e)
        {
            throw new FilterException($"{field}: \"{pattern}\" is not a valid regular expression ({e.Message}).");
        }
    }

    /// <summary>The process's arguments with secrets masked (cached per process).</summary>
    public string Arguments(ProcessRecord p)
    {
        if (_rules.Count == 0 || p.Arguments.Length == 0)
        {
            return p.Arguments;
        }
        return _cache.GetValue(p, r => Redact(r.Binary, r.Arguments));
    }

    /// <summary>Masks every capture group of every matching rule.</summary>
    public string Redact(string binary, string arguments)
    {
        var result = arguments;
        foreach (var (bin, redact) in _rules)
        {
            if (bin is not null && !bin.IsMatch(binary))
            {
                continue;
            }
            foreach (var regex in redact)
            {
                try
                {
                    result = MaskGroups(regex, result);
                }
                catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
                {
                    // Too slow to decide: hide everything rather than leak.
                    return Mask;
                }
            }
        }
        return result;
    }

    private static string MaskGroups(System.Text.RegularExpressions.Regex regex, string input)
    {
        var spans = new List<(int Start, int Length)>();
        for (var m = regex.Match(input); m.Success; m = m.NextMatch())
        {
            for (var g = 1; g < m.Groups.Count; g++)
            {
                if (m.Groups[g].Success && m.Groups[g].Length > 0)
                {
                    spans.Add((m.Groups[g].Index, m.Groups[g].Length));
                }
            }
        }
        if (spans.Count == 0)
        {
            return input;
        }
        var sb = new System.Text.StringBuilder(input.Length);
        var at = 0;
        foreach (var (start, length) in spans.OrderBy(s => s.Start))
        {
            if (start < at)
            {
                continue; // nested group inside one already masked
            }
            sb.Append(input, at, start - at).Append(Mask);
            at = start + length;
        }
        return sb.Append(input, at, input.Length - at).ToString();
    }
}

/// <summary>
/// Tetragon's --export-rate-limit: at most N events per minute leave one sink, as a token
/// bucket refilled continuously; what is refused is counted and reported in a
/// rate_limit_info event once the limit lets up (at most once per <see cref="ReportEvery"/>).
/// </summary>
public sealed class RateLimiter(int perMinute, TimeProvider? time = null)
{
    public static readonly TimeSpan ReportEvery = TimeSpan.FromSeconds(5);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private double _tokens = perMinute;
    private long _last = (time ?? TimeProvider.System).GetTimestamp();
    private long _unreported;
    private long _lastReport;

    public int PerMinute { get; } = perMinute;

    /// <summary>Events refused so far.</summary>
    public long Dropped { get; private set; }

    public bool TryTake()
    {
        var now = _time.GetTimestamp();
        _tokens = Math.Min(PerMinute, _tokens + _time.GetElapsedTime(_last, now).TotalMinutes * PerMinute);
        _last = now;
        if (_tokens >= 1)
        {
            _tokens -= 1;
            return true;
        }
        Dropped++;
        _unreported++;
        return false;
    }

    /// <summary>Drops not yet reported, when a report is due (and resets them); 0 otherwise.</summary>
    public long TakeReport(bool force = false)
    {
        if (_unreported == 0)
        {
            return 0;
        }
        var now = _time.GetTimestamp();
        if (!force && _lastReport != 0 && _time.GetElapsedTime(_lastReport, now) < ReportEvery)
        {
            return 0;
        }
        _lastReport = now;
        var n = _unreported;
        _unreported = 0;
        return n;
    }
}
