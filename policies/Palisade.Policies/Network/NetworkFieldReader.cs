using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Palisade.Policies.Network;

/// <summary>
/// The reading state of one document: the shared <see cref="NodeReader"/> for errors, plus the
/// warnings (accepted, but worth fixing) and the parts that are "not supported yet", and the
/// readers for the values both policy families share (selectors, CIDRs, label maps).
/// </summary>
internal sealed class NetworkFieldReader(NodeReader errors)
{
    public NodeReader R { get; } = errors;

    public List<PolicyError> Warnings { get; } = [];

    public List<UnsupportedPart> Unsupported { get; } = [];

    public static readonly string[] SelectorFields = ["matchLabels", "matchExpressions"];

    private static readonly string[] RequirementFields = ["key", "operator", "values"];

    public void Warn(string path, string message, YamlNode? node) =>
        Warnings.Add(new PolicyError(path, message, node is null ? 0 : (int)node.Start.Line, node is null ? 0 : (int)node.Start.Column));

    public void NotSupported(string path, string feature, UnsupportedEffect effect, string message) =>
        Unsupported.Add(new UnsupportedPart(path, feature, effect, message));

    public static bool IsQuoted(YamlNode? node) => node is YamlScalarNode { Style: ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted };

    public static bool IsNull(YamlNode? node) => node is null || node is YamlScalarNode { Value: null } || node is YamlScalarNode { Style: ScalarStyle.Plain, Value: "" or "~" or "null" };

    /// <summary>
    /// A label selector. Operators are matched case-insensitively with a warning, because
    /// Cilium's own examples write "in"; the API server refuses that spelling, so the warning
    /// says to fix it before applying the file with kubectl.
    /// </summary>
    public LabelSelector? Selector(YamlNode? node, string path)
    {
        if (IsNull(node))
        {
            return node is null ? null : new LabelSelector(new Dictionary<string, string>(), []);
        }
        var map = R.Mapping(node, path, SelectorFields);
        if (map is null)
        {
            return null;
        }
        var labels = LabelMap(NodeReader.Field(map, "matchLabels"), $"{path}.matchLabels", values: true);
        var expressions = List(map, path, "matchExpressions", (n, p) => Requirement(n, p));
        return new LabelSelector(labels, expressions);
    }

    private LabelRequirement? Requirement(YamlNode node, string p)
    {
        var m = R.Mapping(node, p, RequirementFields);
        if (m is null)
        {
            return null;
        }
        var key = R.String(m, p, "key", required: true);
        if (key is { Length: 0 })
        {
            R.Error($"{p}.key", "is empty. Fix: name the label the requirement tests, e.g. key: app.", NodeReader.Field(m, "key"));
        }
        var opText = R.String(m, p, "operator", required: true);
        string? op = null;
        if (opText is not null)
        {
            op = NetworkVocabulary.LabelOperators.FirstOrDefault(o => o == opText);
            var folded = NetworkVocabulary.LabelOperators.FirstOrDefault(o => string.Equals(o, opText, StringComparison.OrdinalIgnoreCase));
            if (op is null && folded is not null)
            {
                op = folded;
                Warn($"{p}.operator", $"\"{opText}\" is read as {folded}. The Kubernetes API server accepts only \"{folded}\": fix the spelling before applying the file with kubectl.", NodeReader.Field(m, "operator"));
            }
            else if (op is null)
            {
                R.Error($"{p}.operator", $"\"{opText}\" is not a label selector operator." + Suggestions.For(opText, NetworkVocabulary.LabelOperators), NodeReader.Field(m, "operator"));
            }
        }
        var values = R.Strings(m, p, "values");
        if (op is "In" or "NotIn" && values.Count == 0)
        {
            R.Error($"{p}.values", $"is required: operator {op} needs at least one value.", m);
        }
        if (op is "Exists" or "DoesNotExist" && values.Count > 0)
        {
            R.Error($"{p}.values", $"must be empty for operator {op}, which tests only whether the label is there. Fix: remove values, or use In/NotIn.", NodeReader.Field(m, "values"));
        }
        foreach (var v in values.Where(v => !NetworkVocabulary.IsLabelValue(v)))
        {
            R.Error($"{p}.values", $"\"{v}\" is not a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit.", NodeReader.Field(m, "values"));
        }
        return key is null || op is null ? null : new LabelRequirement(key, op, values);
    }

    /// <summary>A list of objects; an empty or null value is an empty list, as the API server reads it.</summary>
    public IReadOnlyList<T> List<T>(YamlMappingNode? map, string path, string name, Func<YamlNode, string, T?> read) where T : class =>
        IsNull(NodeReader.Field(map, name)) ? [] : R.List(map, path, name, read);

    /// <summary>A map of label keys to values; <paramref name="values"/> checks each value as Kubernetes checks label values.</summary>
    public Dictionary<string, string> LabelMap(YamlNode? node, string p, bool values)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (IsNull(node))
        {
            return result;
        }
        if (node is not YamlMappingNode map)
        {
            R.Error(p, $"must be a mapping of label keys to values, not {NodeReader.Describe(node!)}. Fix: write one \"key: value\" per line.", node);
            return result;
        }
        foreach (var (k, v) in map.Children)
        {
            var key = (k as YamlScalarNode)?.Value ?? "";
            if (key.Length == 0)
            {
                R.Error(p, "has an empty label key.", k);
                continue;
            }
            if (v is not YamlScalarNode scalar)
            {
                R.Error($"{p}.{key}", $"must be a single value, not {NodeReader.Describe(v)}.", v);
                continue;
            }
            var value = IsNull(scalar) && !IsQuoted(scalar) ? "" : scalar.Value ?? "";
            if (values && !NetworkVocabulary.IsLabelValue(value))
            {
                R.Error($"{p}.{key}", $"\"{value}\" is not a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit.", v);
            }
            result[key] = value;
        }
        return result;
    }

    /// <summary>A CIDR, cleared of host bits with a warning when it has some.</summary>
    public CidrPrefix? Cidr(string? text, string p, YamlNode? node, bool allowBareAddress)
    {
        if (text is null)
        {
            return null;
        }
        if (!NetworkVocabulary.TryParseCidr(text.Trim(), allowBareAddress, out var prefix, out var hostBits, out var why))
        {
            var example = allowBareAddress ? "10.0.0.0/8 or 192.0.2.1" : "10.0.0.0/8 or 2001:db8::/32";
            R.Error(p, $"\"{text}\" is not a CIDR: {why}. Fix: write an address and a prefix length, e.g. {example}.", node);
            return null;
        }
        if (hostBits)
        {
            Warn(p, $"\"{text}\" has bits set past its prefix length; it is read as {prefix}.", node);
        }
        return prefix;
    }

    /// <summary>A CIDR and its except list, each exception inside the CIDR and strictly smaller, as Kubernetes and Cilium require.</summary>
    public IpBlock? Block(YamlMappingNode map, string p, string cidrField, string exceptField, bool allowBareAddress)
    {
        var cidr = Cidr(R.String(map, p, cidrField, required: true), $"{p}.{cidrField}", NodeReader.Field(map, cidrField), allowBareAddress);
        var excepts = new List<CidrPrefix>();
        var exceptNodes = NodeReader.Field(map, exceptField) as YamlSequenceNode;
        var texts = R.Strings(map, p, exceptField);
        for (var i = 0; i < texts.Count; i++)
        {
            var at = $"{p}.{exceptField}[{i}]";
            var node = exceptNodes is not null && i < exceptNodes.Children.Count ? exceptNodes.Children[i] : null;
            if (Cidr(texts[i], at, node, allowBareAddress: false) is not { } e || cidr is not { } c)
            {
                continue;
            }
            if (!c.Contains(e) || e.Length == c.Length)
            {
                R.Error(at, $"{e} is not inside {c}, so it cannot be cut out of it. Fix: list only prefixes strictly inside {cidrField} (same address family, longer prefix).", node);
                continue;
            }
            excepts.Add(e);
        }
        return cidr is { } ok ? new IpBlock(p, ok, excepts) : null;
    }

    /// <summary>Unknown fields of metadata or the document itself: the API server drops them, so they are warnings.</summary>
    public void WarnUnknown(YamlMappingNode map, string path, IReadOnlyCollection<string> known, string? hint = null)
    {
        foreach (var key in map.Children.Keys)
        {
            var name = (key as YamlScalarNode)?.Value ?? "";
            if (!known.Contains(name) && !known.Any(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase)))
            {
                Warn(NodeReader.At(path, name), "unknown field, ignored (the Kubernetes API server drops it)." + (hint ?? Suggestions.For(name, known)), key);
            }
        }
    }
}
