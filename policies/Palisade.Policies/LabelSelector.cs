namespace Palisade.Policies;

/// <summary>A Kubernetes label selector (matchLabels and matchExpressions), shared by tracing and network policies.</summary>
public sealed record LabelSelector(IReadOnlyDictionary<string, string> MatchLabels, IReadOnlyList<LabelRequirement> MatchExpressions)
{
    /// <summary>
    /// Kubernetes label-selector semantics: every matchLabels pair and every expression must
    /// hold; an empty selector selects everything.
    /// </summary>
    public bool Matches(IReadOnlyDictionary<string, string>? labels)
    {
        labels ??= EmptyLabels;
        foreach (var (key, value) in MatchLabels)
        {
            if (!labels.TryGetValue(key, out var v) || v != value)
            {
                return false;
            }
        }
        foreach (var r in MatchExpressions)
        {
            var has = labels.TryGetValue(r.Key, out var v);
            var ok = r.Operator switch
            {
                "In" => has && r.Values.Contains(v!),
                "NotIn" => !has || !r.Values.Contains(v!),
                "Exists" => has,
                "DoesNotExist" => !has,
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }

    private static readonly IReadOnlyDictionary<string, string> EmptyLabels = new Dictionary<string, string>();
}

public sealed record LabelRequirement(string Key, string Operator, IReadOnlyList<string> Values);
