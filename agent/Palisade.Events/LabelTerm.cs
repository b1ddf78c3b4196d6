namespace Palisade.Events;

/// <summary>How a <see cref="LabelTerm"/> tests a label.</summary>
public enum LabelTermOp
{
    Equals,
    NotEquals,
    Exists,
    Absent,
}

/// <summary>
/// One term of the label selectors users type on the command line and in export filters
/// (`hubble observe -l`, `tetra getevents --pod-labels`, our `labels` filter field), not Kubernetes' matchExpressions (Palisade.Policies.LabelRequirement):
/// "key=value" (or "key==value"), "key!=value", "key" (the key exists) and "!key" (it does not).
/// "key!=value" also holds when the key is absent, as Kubernetes' != does. Where labels carry a
/// source ("k8s:app=web", as Cilium writes them), a key may name one: "k8s:app" matches labels
/// of that source only, "any:app" or "app" labels of every source.
/// </summary>
public sealed record LabelTerm(string? Source, string Key, LabelTermOp Op, string? Value)
{
    /// <summary>The syntax, for error messages.</summary>
    public const string Syntax = "key=value, key!=value, key or !key";

    /// <summary>
    /// Parses one term; null with <paramref name="error"/> (what is wrong, without the field's
    /// name) when it is not one. <paramref name="sources"/>: a "source:" prefix names a source.
    /// </summary>
    public static LabelTerm? TryParse(string text, bool sources, out string? error)
    {
        var t = text.Trim();
        error = null;
        LabelTerm r;
        if (t.Length == 0)
        {
            error = $"an empty requirement; write {Syntax}";
            return null;
        }
        if (t[0] == '=' || t.StartsWith("!=", StringComparison.Ordinal))
        {
            error = $"\"{t}\" has no label key; write {Syntax}";
            return null;
        }
        if (t.IndexOf("!=", StringComparison.Ordinal) is var ne and > 0)
        {
            r = Make(t[..ne], LabelTermOp.NotEquals, t[(ne + 2)..].Trim());
        }
        else if (t.IndexOf('=', StringComparison.Ordinal) is var eq and > 0)
        {
            var value = t[(eq + 1)..];
            r = Make(t[..eq], LabelTermOp.Equals, (value.StartsWith('=') ? value[1..] : value).Trim());
        }
        else if (t[0] == '!')
        {
            r = Make(t[1..], LabelTermOp.Absent, null);
        }
        else
        {
            r = Make(t, LabelTermOp.Exists, null);
        }
        if (r.Key.Length == 0)
        {
            error = $"\"{t}\" has no label key; write {Syntax}";
            return null;
        }
        return r;

        LabelTerm Make(string key, LabelTermOp op, string? value)
        {
            key = key.Trim();
            var colon = sources ? key.IndexOf(':', StringComparison.Ordinal) : -1;
            if (colon < 0)
            {
                return new LabelTerm(null, key, op, value);
            }
            var source = key[..colon];
            return new LabelTerm(source == "any" ? null : source, key[(colon + 1)..], op, value);
        }
    }

    /// <summary>Whether labels without sources (a pod's labels) satisfy this requirement.</summary>
    public bool Matches(IReadOnlyDictionary<string, string>? labels)
    {
        string? value = null;
        var found = labels is not null && labels.TryGetValue(Key, out value);
        return Holds(found, found && string.Equals(value, Value, StringComparison.Ordinal));
    }

    /// <summary>Whether labels written "source:key=value" (a flow endpoint's) satisfy this requirement.</summary>
    public bool Matches(IEnumerable<string>? labels)
    {
        var found = false;
        var equal = false;
        foreach (var label in labels ?? [])
        {
            if (ValueOf(label) is { } value)
            {
                found = true;
                equal |= string.Equals(value, Value, StringComparison.Ordinal);
            }
        }
        return Holds(found, equal);
    }

    private bool Holds(bool found, bool equal) => Op switch
    {
        LabelTermOp.Exists => found,
        LabelTermOp.Absent => !found,
        LabelTermOp.Equals => equal,
        _ => !equal,
    };

    // The value of `label` ("source:key=value") when its key (and source, if this names one) is ours; else null.
    private string? ValueOf(string label)
    {
        var colon = label.IndexOf(':', StringComparison.Ordinal);
        var rest = colon < 0 ? label : label[(colon + 1)..];
        if (Source is { } source && (colon < 0 || !label.AsSpan(0, colon).SequenceEqual(source)))
        {
            return null;
        }
        var eq = rest.IndexOf('=', StringComparison.Ordinal);
        var key = eq < 0 ? rest : rest[..eq];
        return key == Key ? (eq < 0 ? "" : rest[(eq + 1)..]) : null;
    }
}
