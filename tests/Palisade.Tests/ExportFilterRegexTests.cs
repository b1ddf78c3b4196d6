using System.Text.RegularExpressions;
using Palisade.Exporters.Filters;

namespace Palisade.Tests;

public sealed class ExportFilterRegexTests
{
    [Fact]
    public void PatternsWithoutBacktrackingConstructsMatchInLinearTimeWithNoTimeout()
    {
        var regex = FilterRegex.Create("(a+)+$");
        Assert.True((regex.Options & RegexOptions.NonBacktracking) != 0);
        Assert.Equal(Regex.InfiniteMatchTimeout, regex.MatchTimeout);
        // The classic catastrophic-backtracking input: linear here, so it answers at once.
        Assert.DoesNotMatch(regex, new string('a', 5000) + "!");
    }

    [Fact]
    public void PatternsThatNeedBacktrackingKeepATimeoutThatALoadedNodeDoesNotHit()
    {
        var regex = FilterRegex.Create(@"(\w)\1");
        Assert.True((regex.Options & RegexOptions.NonBacktracking) == 0);
        Assert.Equal(FilterRegex.BacktrackingTimeout, regex.MatchTimeout);
        Assert.True(FilterRegex.BacktrackingTimeout >= TimeSpan.FromSeconds(1));
        Assert.Matches(regex, "book");
    }

    [Fact]
    public void AnInvalidPatternIsStillAnArgumentException()
    {
        Assert.ThrowsAny<ArgumentException>(() => FilterRegex.Create("(unclosed"));
    }
}
