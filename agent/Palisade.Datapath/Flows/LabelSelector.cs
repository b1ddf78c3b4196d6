namespace Palisade.Datapath.Flows;

/// <summary>
/// A label selector over a flow endpoint's "source:key=value" labels, as `hubble observe -l`
/// takes it: requirements separated by commas, all of which must hold. "key=value" (or
/// "key==value"), "key!=value", "key" (exists), "!key" (absent). A key with a source
/// ("k8s:app") matches labels of that source only; without one, labels of any source.
/// </summary>
public sealed class LabelSelector
{
    private readonly List<Requirement> _requirements;

    private LabelSelector(List<Requirement> requirements) => _requirements = requirements;

    private enum Op
    {
        Equals,
        NotEquals,
        Exists,
        Absent,
    }

    private sealed record Requirement(string? Source, string Key, Op Op, string? Value);

    public static LabelSelector Parse(string text, string at)
    {
        var requirements = new List<Requirement>();
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (raw.Length == 0)
            {
                throw new FlowFilterException($"{at}: \"{text}\" has an empty requirement; use key=value, key!=value, key or !key, separated by commas.");
            }
            Requirement r;
            if (raw.StartsWith('!'))
            {
                r = Make(raw[1..], Op.Absent, null);
            }
            else if (raw.IndexOf("!=", StringComparison.Ordinal) is var ne and > 0)
            {
                r = Make(raw[..ne], Op.NotEquals, raw[(ne + 2)..]);
            }
            else if (raw.IndexOf('=') is var eq and > 0)
            {
                var value = raw[(eq + 1)..];
                r = Make(raw[..eq], Op.Equals, value.StartsWith('=') ? value[1..] : value);
            }
            else
            {
                r = Make(raw, Op.Exists, null);
            }
            if (r.Key.Length == 0)
            {
                throw new FlowFilterException($"{at}: \"{raw}\" has no label key.");
            }
            requirements.Add(r);
        }
        return new LabelSelector(requirements);

        static Requirement Make(string key, Op op, string? value)
        {
            var colon = key.IndexOf(':', StringComparison.Ordinal);
            return colon < 0 || key.StartsWith("any:", StringComparison.Ordinal) && colon == 3
                ? new Requirement(null, colon < 0 ? key : key[4..], op, value)
                : new Requirement(key[..colon], key[(colon + 1)..], op, value);
        }
    }

    public bool Matches(Palisade.Events.FlowEndpoint? endpoint)
    {
        var labels = endpoint?.Labels ?? [];
        foreach (var r in _requirements)
        {
            var found = false;
            var equal = false;
            foreach (var label in labels)
            {
                if (Split(label, r) is { } value)
                {
                    found = true;
                    equal |= string.Equals(value, r.Value, StringComparison.Ordinal);
                }
            }
            var ok = r.Op switch
            {
                Op.Exists => found,
                Op.Absent => !found,
                Op.Equals => equal,
                _ => !equal,
            };
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }

    // The value of `label` ("source:key=value") when its key (and source, if the requirement names one) is r's; else null.
    private static string? Split(string label, Requirement r)
    {
        var colon = label.IndexOf(':', StringComparison.Ordinal);
        var rest = colon < 0 ? label : label[(colon + 1)..];
        if (r.Source is { } source && (colon < 0 || !label.AsSpan(0, colon).SequenceEqual(source)))
        {
            return null;
        }
        var eq = rest.IndexOf('=', StringComparison.Ordinal);
        var key = eq < 0 ? rest : rest[..eq];
        return key == r.Key ? (eq < 0 ? "" : rest[(eq + 1)..]) : null;
    }
}
