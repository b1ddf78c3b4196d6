using System.Text.RegularExpressions;

namespace Palisade.Exporters.Filters;

/// <summary>
/// Regular expressions of filters and redaction rules, which run on the export path for every
/// event. Matching is linear-time (<see cref="RegexOptions.NonBacktracking"/>) wherever the
/// pattern allows it, so a match never times out however loaded the node is; only patterns
/// that need backtracking (backreferences, lookarounds, atomic groups) fall back to the
/// backtracking engine, with a timeout that guards against catastrophic patterns.
/// </summary>
public static class FilterRegex
{
    /// <summary>
    /// Limit for the backtracking fallback: long enough that a preempted thread on a busy node
    /// does not hit it (50 ms did, at load average 30), short enough to stop a runaway pattern.
    /// </summary>
    public static readonly TimeSpan BacktrackingTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Builds the regex; throws <see cref="ArgumentException"/> for an invalid pattern, as <see cref="Regex"/> does.</summary>
    public static Regex Create(string pattern, RegexOptions options = RegexOptions.None)
    {
        try
        {
            return new Regex(pattern, options | RegexOptions.NonBacktracking);
        }
        catch (NotSupportedException)
        {
            return new Regex(pattern, options | RegexOptions.Compiled, BacktrackingTimeout);
        }
    }
}
