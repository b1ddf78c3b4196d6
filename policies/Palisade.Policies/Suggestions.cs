namespace Palisade.Policies;

/// <summary>"Did you mean" for misspelt field names and values, shared by policy and agent-setting validation.</summary>
public static class Suggestions
{
    /// <summary>" Did you mean \"X\"?" when one candidate is close, else the list of allowed values.</summary>
    public static string For(string given, IEnumerable<string> candidates)
    {
        var list = candidates.Distinct().ToList();
        var exact = list.FirstOrDefault(c => string.Equals(c, given, StringComparison.OrdinalIgnoreCase));
        if (exact is not null)
        {
            return $" Did you mean \"{exact}\"?";
        }
        var prefix = list.Where(c => c.Length >= 3 && given.StartsWith(c, StringComparison.OrdinalIgnoreCase)).MaxBy(c => c.Length);
        if (prefix is not null)
        {
            return $" Did you mean \"{prefix}\"?";
        }
        var best = list.Select(c => (c, d: Distance(c.ToLowerInvariant(), given.ToLowerInvariant()))).OrderBy(x => x.d).FirstOrDefault();
        if (best.c is not null && best.d <= Math.Max(2, given.Length / 3))
        {
            return $" Did you mean \"{best.c}\"?";
        }
        return $" Allowed: {string.Join(", ", list)}.";
    }

    public static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
