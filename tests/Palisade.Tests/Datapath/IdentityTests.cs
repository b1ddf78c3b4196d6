using Palisade.Datapath.Identity;

namespace Palisade.Tests.Datapath;

public sealed class IdentityTests
{
    private static IReadOnlyList<string> Labels(string ns, params (string, string)[] labels) =>
        IdentityLabels.For(ns, labels.ToDictionary(l => l.Item1, l => l.Item2), IdentityLabels.DefaultNamespaceLabels(ns));

    [Fact]
    public void LabelsAreInCiliumsFormWithTheNamespaceNameByDefault()
    {
        var labels = Labels("shop", ("app", "web"));

        Assert.Equal(
        [
            "k8s:app=web",
            "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop",
            "k8s:io.kubernetes.pod.namespace=shop",
        ], labels);
    }

    [Fact]
    public void TheSameLabelsShareOneIdentityFrom256Up()
    {
        using var dir = new TempDirectory();
        var identities = IdentityAllocator.Open(dir.Sub("identities.json"));

        var web1 = identities.Acquire(Labels("shop", ("app", "web")));
        var web2 = identities.Acquire(Labels("shop", ("app", "web")));
        var db = identities.Acquire(Labels("shop", ("app", "db")));
        var otherNamespace = identities.Acquire(Labels("test", ("app", "web")));

        Assert.Equal(web1, web2);
        Assert.True(web1 >= 256);
        Assert.Equal(3, new[] { web1, db, otherNamespace }.Distinct().Count());
        Assert.All(new[] { web1, db, otherNamespace }, id => Assert.InRange(id, IdentityAllocator.First, IdentityAllocator.Last));
    }

    [Fact]
    public void IdentitiesSurviveARestartAndAdoptionKeepsTheNumber()
    {
        using var dir = new TempDirectory();
        var path = dir.Sub("identities.json");
        var before = IdentityAllocator.Open(path);
        var web = before.Acquire(Labels("shop", ("app", "web")));
        var db = before.Acquire(Labels("shop", ("app", "db")));

        var after = IdentityAllocator.Open(path);
        var adopted = after.Adopt(web, Labels("shop", ("app", "web")));
        after.CompleteRestore();
        var fresh = after.Acquire(Labels("shop", ("app", "cache")));

        Assert.Equal(web, adopted);
        Assert.Null(after.LabelsOf(db)); // no endpoint held it at restore
        Assert.NotEqual(web, fresh);
        Assert.Equal(web, IdentityAllocator.Open(path).Adopt(web, Labels("shop", ("app", "web"))));
    }

    [Fact]
    public void TheLastReleaseFreesTheNumber()
    {
        using var dir = new TempDirectory();
        var identities = IdentityAllocator.Open(dir.Sub("identities.json"));
        var id = identities.Acquire(Labels("shop", ("app", "web")));
        identities.Acquire(Labels("shop", ("app", "web")));

        identities.Release(id);
        Assert.NotNull(identities.LabelsOf(id));
        identities.Release(id);

        Assert.Null(identities.LabelsOf(id));
        Assert.Equal(0, identities.Count);
    }

    [Fact]
    public void ABrokenStateFileIsAClearError()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.Sub("identities.json"), "{not json");

        var e = Assert.Throws<InvalidDataException>(() => IdentityAllocator.Open(dir.Sub("identities.json")));

        Assert.Contains("is not valid JSON", e.Message, StringComparison.Ordinal);
    }
}
