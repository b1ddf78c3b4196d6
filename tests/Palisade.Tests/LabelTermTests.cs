using Palisade.Events;

namespace Palisade.Tests;

/// <summary>The one label-term syntax of export filters and `palisade observe -l`.</summary>
public sealed class LabelTermTests
{
    private static readonly Dictionary<string, string> Pod = new() { ["app"] = "web", ["tier"] = "front" };
    private static readonly string[] Flow = ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=x", "reserved:host"];

    [Theory]
    [InlineData("app=web", true)]
    [InlineData("app==web", true)]
    [InlineData(" app = web ", true)]
    [InlineData("app!=web", false)]
    [InlineData("app!=db", true)]
    [InlineData("role!=db", true)] // != holds when the key is absent, as in Kubernetes
    [InlineData("tier", true)]
    [InlineData("!tier", false)]
    [InlineData("!role", true)]
    public void PodLabelsWithoutSources(string text, bool matches) =>
        Assert.Equal(matches, LabelTerm.TryParse(text, sources: false, out _)!.Matches(Pod));

    [Theory]
    [InlineData("k8s:app=web", true)]
    [InlineData("any:app=web", true)]
    [InlineData("app=web", true)]
    [InlineData("reserved:app=web", false)]
    [InlineData("reserved:host", true)]
    [InlineData("!k8s:host", true)]
    [InlineData("io.kubernetes.pod.namespace!=x", false)]
    public void FlowLabelsWithSources(string text, bool matches) =>
        Assert.Equal(matches, LabelTerm.TryParse(text, sources: true, out _)!.Matches(Flow));

    [Theory]
    [InlineData("", "an empty requirement")]
    [InlineData("  ", "an empty requirement")]
    [InlineData("!", "has no label key")]
    [InlineData("=web", "has no label key")]
    public void BadTermsSayWhatIsWrongAndTheSyntax(string text, string expected)
    {
        Assert.Null(LabelTerm.TryParse(text, sources: true, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Contains(LabelTerm.Syntax, error, StringComparison.Ordinal);
    }
}
