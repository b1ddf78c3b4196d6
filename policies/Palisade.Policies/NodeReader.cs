using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Palisade.Policies;

/// <summary>
/// Reads a YAML mapping field by field, remembering the path and position of each value,
/// and collects every problem instead of stopping at the first one.
/// </summary>
internal sealed class NodeReader
{
    private readonly List<PolicyError> _errors;

    public NodeReader(List<PolicyError> errors) => _errors = errors;

    public IReadOnlyList<PolicyError> Errors => _errors;

    public void Error(string path, string message, YamlNode? node = null) =>
        _errors.Add(new PolicyError(path, message, node is null ? 0 : (int)node.Start.Line, node is null ? 0 : (int)node.Start.Column));

    /// <summary>The node as a mapping whose keys are all in <paramref name="known"/>; unknown keys are errors with a suggestion.</summary>
    public YamlMappingNode? Mapping(YamlNode? node, string path, IReadOnlyCollection<string> known)
    {
        if (node is null)
        {
            return null;
        }
        if (node is not YamlMappingNode map)
        {
            Error(path, $"must be a mapping (fields such as {string.Join(", ", known.Take(3))}), not {Describe(node)}.", node);
            return null;
        }
        foreach (var key in map.Children.Keys)
        {
            var name = (key as YamlScalarNode)?.Value ?? "";
            if (!known.Contains(name))
            {
                Error(At(path, name), "unknown field." + Suggestions.For(name, known), key);
            }
        }
        return map;
    }

    /// <summary>The path of field <paramref name="name"/> under <paramref name="path"/> ("" is the document itself).</summary>
    public static string At(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    /// <summary>
    /// The value of key <paramref name="name"/>, found by comparing the keys' text: a mapping
    /// has a handful of keys, and a lookup by a new YamlScalarNode allocated and hashed a node
    /// per field read, most of the cost of reading a large policy.
    /// </summary>
    public static YamlNode? Field(YamlMappingNode? map, string name)
    {
        if (map is null)
        {
            return null;
        }
        foreach (var (key, value) in map.Children)
        {
            if (key is YamlScalarNode scalar && string.Equals(scalar.Value, name, StringComparison.Ordinal))
            {
                return value;
            }
        }
        return null;
    }

    public string? String(YamlMappingNode? map, string path, string name, bool required = false)
    {
        var node = Field(map, name);
        if (node is null || node is YamlScalarNode { Value: null })
        {
            if (required)
            {
                Error(At(path, name), "is required.", map);
            }
            return null;
        }
        if (node is not YamlScalarNode scalar)
        {
            Error(At(path, name), $"must be a single value, not {Describe(node)}.", node);
            return null;
        }
        return scalar.Value;
    }

    public bool Bool(YamlMappingNode? map, string path, string name)
    {
        var text = String(map, path, name);
        if (text is null)
        {
            return false;
        }
        if (bool.TryParse(text, out var value))
        {
            return value;
        }
        Error(At(path, name), $"\"{text}\" is not a boolean. Use true or false.", Field(map, name));
        return false;
    }

    public uint? UInt(YamlMappingNode? map, string path, string name, bool required = false)
    {
        var text = String(map, path, name, required);
        if (text is null)
        {
            return null;
        }
        if (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }
        Error(At(path, name), $"\"{text}\" is not a non-negative whole number.", Field(map, name));
        return null;
    }

    public int? Int(YamlMappingNode? map, string path, string name)
    {
        var text = String(map, path, name);
        if (text is null)
        {
            return null;
        }
        if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }
        Error(At(path, name), $"\"{text}\" is not a whole number.", Field(map, name));
        return null;
    }

    /// <summary>A list of scalars (numbers are read as their text).</summary>
    public IReadOnlyList<string> Strings(YamlMappingNode? map, string path, string name)
    {
        var node = Field(map, name);
        if (node is null || node is YamlScalarNode { Value: null })
        {
            return [];
        }
        if (node is not YamlSequenceNode seq)
        {
            Error(At(path, name), $"must be a list, not {Describe(node)}. Write it as [a, b] or one \"- a\" per line.", node);
            return [];
        }
        var result = new List<string>(seq.Children.Count);
        for (var i = 0; i < seq.Children.Count; i++)
        {
            if (seq.Children[i] is YamlScalarNode { Value: { } v })
            {
                result.Add(v);
            }
            else
            {
                Error($"{At(path, name)}[{i}]", $"must be a single value, not {Describe(seq.Children[i])}.", seq.Children[i]);
            }
        }
        return result;
    }

    /// <summary>A list of objects, each read by <paramref name="read"/> with its own path.</summary>
    public IReadOnlyList<T> List<T>(YamlMappingNode? map, string path, string name, Func<YamlNode, string, T?> read) where T : class
    {
        var node = Field(map, name);
        if (node is null || node is YamlScalarNode { Value: null })
        {
            return [];
        }
        if (node is not YamlSequenceNode seq)
        {
            Error(At(path, name), $"must be a list, not {Describe(node)}.", node);
            return [];
        }
        var result = new List<T>(seq.Children.Count);
        for (var i = 0; i < seq.Children.Count; i++)
        {
            if (read(seq.Children[i], $"{At(path, name)}[{i}]") is { } item)
            {
                result.Add(item);
            }
        }
        return result;
    }

    public static string Describe(YamlNode node) => node switch
    {
        YamlSequenceNode => "a list",
        YamlMappingNode => "a mapping",
        YamlScalarNode s => $"the value \"{s.Value}\"",
        _ => "that",
    };
}
