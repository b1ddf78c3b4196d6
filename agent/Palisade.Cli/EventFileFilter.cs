using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Palisade.Exporters.Filters;

namespace Palisade.Cli;

/// <summary>
/// `palisade getevents` on an exported file (`cat events.json | palisade getevents -o compact`,
/// as tetra reads stdin): the same filters the agent applies to its stream, applied to the
/// exported JSON lines, and the include/exclude field lists applied to each event's body.
/// A line that is not an event is reported on stderr with its number and skipped.
/// </summary>
public sealed class EventFileFilter
{
    private readonly HashSet<string> _types;
    private readonly HashSet<string>? _namespaces;
    private readonly Regex[] _pods;
    private readonly Regex[] _binaries;
    private readonly HashSet<string> _policies;
    private readonly string[][] _include;
    private readonly string[][] _exclude;

    /// <param name="types">Event types as the API names them (PROCESS_EXEC, ...); empty: all.</param>
    /// <param name="namespaces">Pod namespaces; "" stands for host processes; empty: all.</param>
    public EventFileFilter(IEnumerable<string> types, IEnumerable<string> namespaces, IEnumerable<string> pods, IEnumerable<string> binaries,
        IEnumerable<string> policies, IEnumerable<string> include, IEnumerable<string> exclude)
    {
        _types = types.Select(t => t.ToLowerInvariant()).ToHashSet(StringComparer.Ordinal);
        var ns = namespaces.ToHashSet(StringComparer.Ordinal);
        _namespaces = ns.Count > 0 ? ns : null;
        // The export filters' regex builder: non-backtracking, so no line can make a match run away.
        _pods = pods.Select(p => FilterRegex.Create(p, RegexOptions.CultureInvariant)).ToArray();
        _binaries = binaries.Select(p => FilterRegex.Create(p, RegexOptions.CultureInvariant)).ToArray();
        _policies = policies.ToHashSet(StringComparer.Ordinal);
        _include = Paths(include);
        _exclude = Paths(exclude);
    }

    private static string[][] Paths(IEnumerable<string> fields) =>
        fields.SelectMany(f => f.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select(f => f.Split('.')).ToArray();

    /// <summary>The line to print for <paramref name="line"/>, or null when the filters drop it. Throws <see cref="JsonException"/> on a line that is no event.</summary>
    public JsonObject? Apply(string line)
    {
        // Duplicate names are refused while parsing: JsonObject would only find them later, with an ArgumentException.
        if (JsonNode.Parse(line, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) is not JsonObject root)
        {
            throw new JsonException("not a JSON object");
        }
        var (type, body) = root.Where(p => p.Value is JsonObject).Select(p => (p.Key, (JsonObject)p.Value!)).FirstOrDefault();
        if (body is null)
        {
            throw new JsonException("no event body (process_exec, process_kprobe, ...)");
        }
        if (_types.Count > 0 && !_types.Contains(type))
        {
            return null;
        }
        var process = body["process"] as JsonObject;
        var pod = process?["pod"] as JsonObject;
        var ns = Text(pod?["namespace"]);
        if (_namespaces is not null && !_namespaces.Contains(ns))
        {
            return null;
        }
        if (_pods.Length > 0 && !_pods.Any(r => r.IsMatch(Text(pod?["name"]))))
        {
            return null;
        }
        if (_binaries.Length > 0 && !_binaries.Any(r => r.IsMatch(Text(process?["binary"]))))
        {
            return null;
        }
        if (_policies.Count > 0 && !_policies.Contains(Text(body["policy_name"])))
        {
            return null;
        }
        if (_include.Length > 0)
        {
            var kept = new JsonObject();
            foreach (var path in _include)
            {
                Copy(body, kept, path, 0);
            }
            root[type] = kept;
        }
        foreach (var path in _exclude)
        {
            Remove(root[type] as JsonObject, path, 0);
        }
        return root;
    }

    /// <summary>A string field's value; "" when it is missing or not a string (a filter then does not match it).</summary>
    private static string Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";

    private static void Copy(JsonObject from, JsonObject to, string[] path, int i)
    {
        if (!from.TryGetPropertyValue(path[i], out var value) || value is null)
        {
            return;
        }
        if (i == path.Length - 1 || value is not JsonObject inner)
        {
            to[path[i]] = value.DeepClone();
            return;
        }
        if (to[path[i]] is not JsonObject target)
        {
            to[path[i]] = target = new JsonObject();
        }
        Copy(inner, target, path, i + 1);
    }

    private static void Remove(JsonObject? node, string[] path, int i)
    {
        if (node is null)
        {
            return;
        }
        if (i == path.Length - 1)
        {
            node.Remove(path[i]);
            return;
        }
        Remove(node[path[i]] as JsonObject, path, i + 1);
    }
}
