using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Palisade.Agent;
using Palisade.Cni.Api;
using Palisade.Datapath.Endpoints;
using Palisade.Datapath.Identity;
using Palisade.Kubernetes;
using Palisade.Kubernetes.Identities;
using Palisade.Tests.Datapath;
using Palisade.Tests.Shared;

namespace Palisade.Tests;

/// <summary>
/// Cluster-wide identities through the loopback API server, with two "agents" (two allocators,
/// each with its own client and watch) sharing one cluster: they agree on numbers, skip numbers
/// others hold, adopt after a restart, collect what nobody uses, and fail retryably when the API does.
/// </summary>
public sealed class ClusterIdentityTests : IDisposable
{
    private const string Identities = $"{IdentityObject.Group}/{IdentityObject.Version}/{IdentityObject.Plural}";

    private static readonly ClusterIdentityOptions Fast = new()
    {
        AllocationTimeout = TimeSpan.FromSeconds(5),
        RequestTimeout = TimeSpan.FromSeconds(2),
        BackoffInitial = TimeSpan.FromMilliseconds(20),
        BackoffMax = TimeSpan.FromMilliseconds(200),
    };

    private readonly FakeKubeApiServer _api = new() { BookmarkEvery = TimeSpan.FromMilliseconds(200) };
    private readonly string _dir = Directory.CreateTempSubdirectory("palisade-ids-").FullName;
    private readonly List<CancellationTokenSource> _agents = [];

    public void Dispose()
    {
        foreach (var agent in _agents)
        {
            agent.Cancel();
            agent.Dispose();
        }
        _api.Dispose();
        Directory.Delete(_dir, true);
    }

    private static IReadOnlyList<string> Labels(string ns, params (string Key, string Value)[] labels) =>
        IdentityLabels.For(ns, labels.ToDictionary(l => l.Key, l => l.Value), IdentityLabels.DefaultNamespaceLabels(ns));

    /// <summary>An agent's allocator, its watch running (heartbeat and GC are called by the tests); stopped by <paramref name="stop"/>.</summary>
    private ClusterIdentityAllocator Agent(string node, out CancellationTokenSource stop, TimeProvider? time = null, ClusterIdentityOptions? options = null)
    {
        stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        _agents.Add(stop);
        var client = Resources.Connect(_api.WriteKubeconfig(_dir));
        var allocator = new ClusterIdentityAllocator(client, node, options ?? Fast, time ?? TimeProvider.System, NullLogger.Instance);
        var token = stop.Token;
        _ = Task.Run(() => allocator.Informer.RunAsync(token), token);
        return allocator;
    }

    private ClusterIdentityAllocator Agent(string node, TimeProvider? time = null, ClusterIdentityOptions? options = null) => Agent(node, out _, time, options);

    private static async Task Synced(params ClusterIdentityAllocator[] agents) =>
        await Task.WhenAll(agents.Select(a => a.Synced)).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

    private static JsonObject IdentityObjectFor(uint id, IReadOnlyList<string> labels, DateTimeOffset lastUsed)
    {
        var security = new JsonObject();
        foreach (var label in labels)
        {
            var eq = label.IndexOf('=', StringComparison.Ordinal);
            security[label[..eq]] = label[(eq + 1)..];
        }
        return new JsonObject
        {
            ["apiVersion"] = IdentityObject.ApiVersion,
            ["kind"] = IdentityObject.Kind,
            ["metadata"] = new JsonObject
            {
                ["name"] = id.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["annotations"] = new JsonObject { [IdentityObject.LastUsedAnnotation] = IdentityObject.Stamp(lastUsed) },
            },
            ["security-labels"] = security,
        };
    }

    private static IReadOnlyList<string> SecurityLabelsOf(JsonObject obj) =>
        [.. obj["security-labels"]!.AsObject().Select(kv => $"{kv.Key}={kv.Value!.GetValue<string>()}").Order(StringComparer.Ordinal)];

    private static async Task Eventually(Func<bool> condition, string what)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(condition(), what);
    }

    [Fact]
    public async Task TwoAgentsAllocatingTheSameLabelsAtOnceGetTheSameNumber()
    {
        var a = Agent("node-a");
        var b = Agent("node-b");
        await Synced(a, b);
        var sets = Enumerable.Range(0, 12).Select(i => Labels("shop", ("app", $"svc-{i}"))).ToList();

        var results = await Task.WhenAll(sets.Select(async labels =>
        {
            var both = await Task.WhenAll(Task.Run(() => a.AcquireAsync(labels, TestContext.Current.CancellationToken)), Task.Run(() => b.AcquireAsync(labels, TestContext.Current.CancellationToken)));
            return (Labels: labels, A: both[0], B: both[1]);
        }));

        Assert.All(results, r => Assert.Equal(r.A, r.B));
        Assert.Equal(sets.Count, results.Select(r => r.A).Distinct().Count());
        Assert.All(results, r => Assert.InRange(r.A, 256u, 65535u));
        var stored = _api.All(Identities);
        Assert.Equal(sets.Count, stored.Count); // no duplicates: each label set has exactly one object
        foreach (var (labels, id, _) in results)
        {
            var obj = Assert.Single(stored, o => o["metadata"]!["name"]!.GetValue<string>() == id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(labels, SecurityLabelsOf(obj));
            Assert.Equal(labels.First(l => l.StartsWith("k8s:app=", StringComparison.Ordinal))[8..], obj["metadata"]!["labels"]!["app"]!.GetValue<string>()); // kubectl get -l app=...
        }
    }

    [Fact]
    public async Task DifferentLabelsGetDifferentNumbersAndTheSameLabelsAreHeldAgain()
    {
        var a = Agent("node-a");
        await Synced(a);

        var web = await a.AcquireAsync(Labels("shop", ("app", "web")), TestContext.Current.CancellationToken);
        var db = await a.AcquireAsync(Labels("shop", ("app", "db")), TestContext.Current.CancellationToken);
        var otherNamespace = await a.AcquireAsync(Labels("bank", ("app", "web")), TestContext.Current.CancellationToken);
        var webAgain = await a.AcquireAsync(Labels("shop", ("app", "web")), TestContext.Current.CancellationToken);

        Assert.Equal(3, new[] { web, db, otherNamespace }.Distinct().Count());
        Assert.Equal(web, webAgain);
        Assert.Equal(2, a.Holds()[web]);
        Assert.Equal(3, _api.All(Identities).Count);
        Assert.Equal(3, a.Created);
    }

    [Fact]
    public async Task AnIdentityAnotherNodeMadeReachesThisNodesSnapshotAndEvents()
    {
        var a = Agent("node-a");
        var b = Agent("node-b");
        await Synced(a, b);
        var seen = new List<(uint, IReadOnlyList<string>?)>();
        b.Changed += (id, labels) =>
        {
            lock (seen)
            {
                seen.Add((id, labels));
            }
        };
        var labels = Labels("shop", ("app", "web"));

        var id = await a.AcquireAsync(labels, TestContext.Current.CancellationToken);

        await Eventually(() => b.Known().ContainsKey(id), "node-b learns node-a's identity through its watch");
        Assert.Equal(labels, b.Known()[id]);
        Assert.Equal(labels, b.LabelsOf(id));
        Assert.Equal(0, b.HeldCount);
        // The event follows the cache update on the informer's thread: wait for it rather than race it.
        await Eventually(() =>
        {
            lock (seen)
            {
                return seen.Any(s => s.Item1 == id && s.Item2!.SequenceEqual(labels));
            }
        }, "node-b's Changed event names the new identity and its labels");
    }

    [Fact]
    public async Task ANumberAnotherAgentGaveToOtherLabelsIsSkipped()
    {
        var a = Agent("node-a");
        await Synced(a);
        var labels = Labels("shop", ("app", "web"));
        var other = Labels("shop", ("app", "db"));
        var contested = a.FirstCandidate(labels);
        // Another agent took the number this one tries first, and this agent's watch has not shown it yet.
        _api.CreateUnseen(Identities, IdentityObjectFor(contested, other, DateTimeOffset.UtcNow));

        var id = await a.AcquireAsync(labels, TestContext.Current.CancellationToken);

        Assert.NotEqual(contested, id);
        Assert.Equal(1, a.Conflicts);
        Assert.Equal(other, SecurityLabelsOf(_api.Get(Identities, contested.ToString(System.Globalization.CultureInfo.InvariantCulture))!));
        Assert.Equal(labels, SecurityLabelsOf(_api.Get(Identities, id.ToString(System.Globalization.CultureInfo.InvariantCulture))!));
        Assert.Equal(other, a.LabelsOf(contested)); // learnt from the 409: never tried again
    }

    [Fact]
    public async Task ACreateThatLosesTheRaceToTheSameLabelsAdoptsTheWinner()
    {
        var a = Agent("node-a");
        await Synced(a);
        var labels = Labels("shop", ("app", "web"));
        var winner = a.FirstCandidate(labels);
        _api.CreateUnseen(Identities, IdentityObjectFor(winner, labels, DateTimeOffset.UtcNow));

        var id = await a.AcquireAsync(labels, TestContext.Current.CancellationToken);

        Assert.Equal(winner, id);
        Assert.Equal(0, a.Created);
        Assert.Equal(1, a.Conflicts);
        Assert.Single(_api.All(Identities));
    }

    [Fact]
    public async Task ARestartedAgentAdoptsTheIdentitiesItsEndpointsHold()
    {
        var first = Agent("node-a", out var stopFirst);
        await Synced(first);
        var web = Labels("shop", ("app", "web"));
        var db = Labels("shop", ("app", "db"));
        var webId = await first.AcquireAsync(web, TestContext.Current.CancellationToken);
        var dbId = await first.AcquireAsync(db, TestContext.Current.CancellationToken);
        await stopFirst.CancelAsync();
        // While the agent was down: db's object was deleted (by hand, or collected), and nobody has db's labels.
        _api.Delete(Identities, dbId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var objectsBefore = _api.All(Identities).Count;

        var second = Agent("node-a");
        var adoptedWeb = await second.AdoptAsync(webId, web, TestContext.Current.CancellationToken);
        var adoptedDb = await second.AdoptAsync(dbId, db, TestContext.Current.CancellationToken);

        Assert.Equal(webId, adoptedWeb);
        Assert.Equal(dbId, adoptedDb); // created again with the same number: the endpoint's datapath entries stay valid
        Assert.Equal(objectsBefore + 1, _api.All(Identities).Count);
        Assert.Equal(db, SecurityLabelsOf(_api.Get(Identities, dbId.ToString(System.Globalization.CultureInfo.InvariantCulture))!));
        Assert.Equal(2, second.HeldCount);
    }

    [Fact]
    public async Task AnEndpointWhoseNumberWentToOtherLabelsIsGivenAnotherOnRestart()
    {
        var a = Agent("node-a");
        await Synced(a);
        var web = Labels("shop", ("app", "web"));
        var db = Labels("shop", ("app", "db"));
        var dbId = await a.AcquireAsync(db, TestContext.Current.CancellationToken);

        var restored = await a.AdoptAsync(dbId, web, TestContext.Current.CancellationToken); // the record says web held dbId: the cluster disagrees

        Assert.NotEqual(dbId, restored);
        Assert.Equal(web, a.LabelsOf(restored));
        Assert.Equal(db, a.LabelsOf(dbId));
    }

    [Fact]
    public async Task GarbageCollectionDeletesIdentitiesUnusedForTheHeartbeatTimeoutAndKeepsUsedOnes()
    {
        var time = new ManualTime(DateTimeOffset.UtcNow);
        var options = Fast with { HeartbeatTimeout = TimeSpan.FromMinutes(30) };
        var a = Agent("node-a", time, options);
        var b = Agent("node-b", time, options);
        await Synced(a, b);
        var used = await a.AcquireAsync(Labels("shop", ("app", "web")), TestContext.Current.CancellationToken);
        var unused = await a.AcquireAsync(Labels("shop", ("app", "old")), TestContext.Current.CancellationToken);
        a.Release(unused);
        var name = (uint id) => id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await Eventually(() => b.Known().ContainsKey(used) && b.Known().ContainsKey(unused), "node-b sees both");

        var early = await b.CollectAsync(TestContext.Current.CancellationToken);
        Assert.Equal(0, early); // both were used a moment ago

        time.Advance(TimeSpan.FromMinutes(31));
        Assert.Equal(0, await a.HeartbeatAsync(TestContext.Current.CancellationToken)); // node-a still holds "web": its last-used time is refreshed
        var refreshed = IdentityObject.Stamp(time.GetUtcNow());
        await Eventually(() => _api.Get(Identities, name(used))?["metadata"]?["annotations"]?[IdentityObject.LastUsedAnnotation]?.GetValue<string>() == refreshed, "the refresh is stored");
        await Eventually(() => b.Known().ContainsKey(used) && Informed(b, used, refreshed), "node-b sees the refresh");
        var deleted = await b.CollectAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, deleted);
        Assert.Null(_api.Get(Identities, name(unused)));
        Assert.NotNull(_api.Get(Identities, name(used)));
        await Eventually(() => !a.Known().ContainsKey(unused), "node-a hears of the deletion");
    }

    private static bool Informed(ClusterIdentityAllocator agent, uint id, string stamp) =>
        agent.Informer.Get(id.ToString(System.Globalization.CultureInfo.InvariantCulture))?.Metadata.Annotations?.TryGetValue(IdentityObject.LastUsedAnnotation, out var s) == true && s == stamp;

    [Fact]
    public async Task ACollectorWithAStaleViewDoesNotDeleteAnIdentityRefreshedMeanwhile()
    {
        var time = new ManualTime(DateTimeOffset.UtcNow);
        var a = Agent("node-a", time);
        await Synced(a);
        var labels = Labels("shop", ("app", "web"));
        var id = await a.AcquireAsync(labels, TestContext.Current.CancellationToken);
        a.Release(id);
        var name = id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await Eventually(() => a.Informer.Get(name) is not null, "watched");
        time.Advance(TimeSpan.FromMinutes(31));
        // Another node uses it again: its refresh lands after this node last saw the object.
        var obj = _api.Get(Identities, name)!;
        obj["metadata"]!["annotations"]![IdentityObject.LastUsedAnnotation] = IdentityObject.Stamp(time.GetUtcNow());
        var seenVersion = a.Informer.Get(name)!.Metadata.ResourceVersion;
        _api.CreateUnseen(Identities, obj); // a new resourceVersion this node's watch has not delivered

        var deleted = await a.CollectAsync(TestContext.Current.CancellationToken);

        Assert.NotEqual(seenVersion, _api.Get(Identities, name)!["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.Equal(0, deleted); // the delete's resourceVersion precondition failed: 409, nothing deleted
        Assert.NotNull(_api.Get(Identities, name));
    }

    [Theory]
    [InlineData(503, "503")]
    [InlineData(403, "ClusterRole needs get, list, watch, create, patch and delete")]
    [InlineData(FakeKubeApiServer.Stall, "no answer within")]
    public async Task WhenTheApiFailsAllocationFailsRetryablyAndNamesWhy(int status, string expected)
    {
        // Only the stall case needs a short request timeout; the others answer at once, and a short
        // one would let a loaded machine turn their status into "no answer".
        var requestTimeout = status == FakeKubeApiServer.Stall ? TimeSpan.FromMilliseconds(500) : TimeSpan.FromSeconds(10);
        var a = Agent("node-a", options: Fast with { AllocationTimeout = TimeSpan.FromSeconds(1.5), RequestTimeout = requestTimeout });
        await Synced(a);
        _api.Fault = (method, path) => method == "POST" && path.Contains(IdentityObject.Plural, StringComparison.Ordinal) ? status : null;

        var e = await Assert.ThrowsAsync<IdentityAllocationException>(() => a.AcquireAsync(Labels("shop", ("app", "web")), TestContext.Current.CancellationToken));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains("gave up after", e.Message, StringComparison.Ordinal);
        Assert.Empty(_api.All(Identities));
        Assert.Equal(0, a.HeldCount);
        _api.Fault = null;
        var id = await a.AcquireAsync(Labels("shop", ("app", "web")), TestContext.Current.CancellationToken); // the API is back: allocation works again
        Assert.True(id >= 256);
    }

    [Fact]
    public async Task AnAddWhileTheIdentityApiIsDownAnswersTryAgainLaterAndLeavesNothingBehind()
    {
        var a = Agent("node-a", options: Fast with { AllocationTimeout = TimeSpan.FromSeconds(3), RequestTimeout = TimeSpan.FromSeconds(1) });
        await Synced(a);
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir, identities: new ClusterIdentityBackend(a));
        _api.Fault = (_, path) => path.Contains(IdentityObject.Plural, StringComparison.Ordinal) ? 503 : null;
        var add = new AddRequest { Attachment = new Attachment { ContainerId = "c1", Ifname = "eth0" }, Netns = "/var/run/netns/test", NetworkName = "palisade", CniVersion = "1.1.0" };
        add.Args["K8S_POD_NAMESPACE"] = "shop";
        add.Labels["app"] = "web";

        var response = node.Api.Handle(new Request { Add = add });

        Assert.Equal(ErrorCodes.TryAgainLater, response.Error.Code);
        Assert.Contains("no security identity", response.Error.Msg, StringComparison.Ordinal);
        Assert.Contains("503", response.Error.Msg, StringComparison.Ordinal);
        Assert.Empty(node.Ipam.Allocations);
        Assert.Empty(node.Interfaces.Links);
        Assert.Empty(node.Endpoints.All);
    }

    [Fact]
    public async Task AnAgentThatStartsWithTheApiDownKeepsItsEndpointsNumbersAndConfirmsThemLater()
    {
        var labels = Labels("shop", ("app", "web"));
        _api.Fault = (_, path) => path.Contains(IdentityObject.Plural, StringComparison.Ordinal) ? 503 : null;
        var a = Agent("node-a", options: Fast with { AllocationTimeout = TimeSpan.FromMilliseconds(500) });

        var other = Labels("shop", ("app", "db"));

        var kept = await a.AdoptAsync(4242, labels, TestContext.Current.CancellationToken);
        var keptToo = await a.AdoptAsync(4243, other, TestContext.Current.CancellationToken); // does not wait again

        Assert.Equal(4242u, kept);
        Assert.Equal(4243u, keptToo);
        Assert.False(a.Synced.IsCompleted);
        Assert.Empty(_api.All(Identities));
        _api.Fault = null;
        await Synced(a);
        Assert.Equal(0, await a.HeartbeatAsync(TestContext.Current.CancellationToken));
        Assert.Equal(labels, SecurityLabelsOf(_api.Get(Identities, "4242")!));
        Assert.Equal(other, SecurityLabelsOf(_api.Get(Identities, "4243")!));
    }

    [Fact]
    public void IdentityObjectsAreReadOrRefusedWithAReason()
    {
        static IdentityResource Parse(string json) => k8s.KubernetesJson.Deserialize<IdentityResource>(json);

        var good = IdentityObject.From(Parse("""{"metadata":{"name":"300","resourceVersion":"7","annotations":{"palisade.io/last-used":"2026-12-01T10:00:00Z"}},"security-labels":{"k8s:app":"web","k8s:io.kubernetes.pod.namespace":"shop"}}"""), 256, 65535, out var none);
        Assert.Null(none);
        Assert.Equal(300u, good!.Id);
        Assert.Equal(["k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"], good.Labels);
        Assert.Equal("7", good.ResourceVersion);
        Assert.Equal(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero), good.LastUsed);

        foreach (var (json, reason) in new[]
        {
            ("""{"metadata":{"name":"0300"},"security-labels":{"k8s:a":"b"}}""", "not an identity number"),
            ("""{"metadata":{"name":"web"},"security-labels":{"k8s:a":"b"}}""", "not an identity number"),
            ("""{"metadata":{"name":"70000"},"security-labels":{"k8s:a":"b"}}""", "outside the cluster range 256 to 65535"),
            ("""{"metadata":{"name":"300"}}""", "security-labels is missing"),
            ("""{"metadata":{"name":"300"},"security-labels":{"k8s:a":1}}""", "is Number, not a string"),
            ("""{"metadata":{"name":"300"},"security-labels":{"app":"web"}}""", "not SOURCE:KEY"),
        })
        {
            Assert.Null(IdentityObject.From(Parse(json), 256, 65535, out var problem));
            Assert.Contains(reason, problem, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void OptionsOutsideTheClusterRangeAreRefused()
    {
        Assert.Contains("reaches 2^24", new ClusterIdentityOptions { Last = 1u << 24 }.Problem(), StringComparison.Ordinal);
        Assert.Contains("below 256", new ClusterIdentityOptions { First = 7 }.Problem(), StringComparison.Ordinal);
        Assert.Null(new ClusterIdentityOptions().Problem());
    }
}
