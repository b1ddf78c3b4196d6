using System.Text.Json.Nodes;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Palisade.Kubernetes;
using Palisade.Tests.Shared;
using Xunit;

namespace Palisade.Tests;

/// <summary>
/// The informer against the loopback API server (real list/watch protocol through
/// KubernetesClient): every change arrives once and in order, across dropped watches and
/// across 410 Gone.
/// </summary>
public sealed class KubernetesInformerTests : IDisposable
{
    private const string Pods = "v1/pods";
    private readonly FakeKubeApiServer _api = new() { BookmarkEvery = TimeSpan.FromMilliseconds(200) };
    private readonly string _dir = Directory.CreateTempSubdirectory("palisade-k8s-").FullName;
    private readonly CancellationTokenSource _cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

    public void Dispose()
    {
        _cts.Cancel();
        _api.Dispose();
        _cts.Dispose();
        Directory.Delete(_dir, true);
    }

    /// <summary>Records what the informer delivers, as "ADD ns/name@rv", "UPD ...", "DEL ...".</summary>
    private sealed class Recorder : IInformerHandler<V1Pod>
    {
        private readonly Lock _gate = new();
        private readonly List<string> _log = [];

        public int Synced;

        public IReadOnlyList<string> Log
        {
            get
            {
                lock (_gate)
                {
                    return [.. _log];
                }
            }
        }

        public void OnUpsert(V1Pod obj, V1Pod? old)
        {
            lock (_gate)
            {
                _log.Add($"{(old is null ? "ADD" : "UPD")} {obj.Metadata.Name}={obj.Metadata.Labels?["v"]}");
            }
        }

        public void OnDelete(V1Pod obj)
        {
            lock (_gate)
            {
                _log.Add($"DEL {obj.Metadata.Name}");
            }
        }

        public void OnSynced() => Interlocked.Increment(ref Synced);
    }

    private (Informer<V1Pod, V1PodList> Informer, Recorder Handler, Task Run) Start(int pageSize = 500)
    {
        var client = Resources.Connect(_api.WriteKubeconfig(_dir));
        var handler = new Recorder();
        var informer = new Informer<V1Pod, V1PodList>(client, Resources.PodsOnNode("node-a"), handler, NullLogger.Instance)
        {
            PageSize = pageSize,
            BackoffInitial = TimeSpan.FromMilliseconds(50),
            BackoffMax = TimeSpan.FromMilliseconds(200),
        };
        return (informer, handler, Task.Run(() => informer.RunAsync(_cts.Token)));
    }

    private static JsonObject Pod(string name, string v, string node = "node-a") =>
        FakeKubeApiServer.Pod("default", name, node, new Dictionary<string, string> { ["v"] = v });

    private static async Task Eventually(Func<bool> condition, string what)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(condition(), what);
    }

    private async Task WaitForWatch()
    {
        await Eventually(() => _api.OpenWatches > 0, "the informer opened a watch");
    }

    [Fact]
    public async Task ListsPagedThenWatchesChangesInOrderOnlyForItsNode()
    {
        for (var i = 0; i < 5; i++)
        {
            _api.Create(Pods, Pod($"p{i}", "1"));
        }
        _api.Create(Pods, Pod("elsewhere", "1", node: "node-b"));
        var (informer, handler, _) = Start(pageSize: 2);
        await informer.Synced.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(["ADD p0=1", "ADD p1=1", "ADD p2=1", "ADD p3=1", "ADD p4=1"], handler.Log.Order().ToList());
        Assert.Equal(1, handler.Synced);
        Assert.Equal(3, informer.Stats.Lists); // pages of 2, 2, 1 through continue tokens
        Assert.Contains(_api.Requests, r => r.Contains("fieldSelector=spec.nodeName%3Dnode-a", StringComparison.Ordinal));

        await WaitForWatch();
        _api.Update(Pods, Pod("p1", "2"));
        _api.Delete(Pods, "p2", "default");
        _api.Create(Pods, Pod("p5", "1"));
        _api.Create(Pods, Pod("other", "1", node: "node-b"));
        await Eventually(() => handler.Log.Count == 8, "three changes delivered");
        Assert.Equal(["UPD p1=2", "DEL p2", "ADD p5=1"], handler.Log.Skip(5).ToList());
        Assert.Equal(5, informer.Snapshot().Count);
    }

    [Fact]
    public async Task ADroppedWatchResumesFromItsResourceVersionWithoutLossOrDuplicates()
    {
        _api.Create(Pods, Pod("a", "1"));
        var (informer, handler, _) = Start();
        await informer.Synced.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await WaitForWatch();
        _api.Update(Pods, Pod("a", "2"));
        await Eventually(() => handler.Log.Count == 2, "first update");

        // The connection drops; changes happen before the informer is back.
        _api.DropWatches();
        _api.Update(Pods, Pod("a", "3"));
        _api.Create(Pods, Pod("b", "1"));
        await Eventually(() => handler.Log.Count == 4, "changes made while disconnected");
        await Task.Delay(500, TestContext.Current.CancellationToken);
        Assert.Equal(["ADD a=1", "UPD a=2", "UPD a=3", "ADD b=1"], handler.Log);
        Assert.Equal(1, informer.Stats.Lists); // resumed, not relisted
        Assert.True(informer.Stats.Watches >= 2);
        Assert.Contains(_api.Requests, r => r.Contains("watch=true", StringComparison.Ordinal) && r.Contains("resourceVersion=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task GoneRelistsAndDeliversExactlyTheDifference()
    {
        _api.Create(Pods, Pod("keep", "1"));
        _api.Create(Pods, Pod("change", "1"));
        _api.Create(Pods, Pod("remove", "1"));
        var (informer, handler, _) = Start();
        await informer.Synced.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await WaitForWatch();

        // While the watch is down, history is compacted past our resourceVersion: 410.
        _api.ChangeUnseen(() =>
        {
            _api.Update(Pods, Pod("change", "2"));
            _api.Delete(Pods, "remove", "default");
            _api.Create(Pods, Pod("new", "1"));
        });
        await Eventually(() => informer.Stats.Relists >= 1 && handler.Log.Count == 6, "relist after 410");
        await Task.Delay(500, TestContext.Current.CancellationToken);
        var after = handler.Log.Skip(3).ToList();
        Assert.Equal(["ADD new=1", "DEL remove", "UPD change=2"], after.Order().ToList());
        Assert.Equal(1, handler.Synced);
        Assert.Equal(["change", "keep", "new"], informer.Snapshot().Select(p => p.Metadata.Name).Order().ToList());

        // And it watches again from the new list: a later change arrives once.
        await WaitForWatch();
        _api.Update(Pods, Pod("keep", "2"));
        await Eventually(() => handler.Log.Count == 7, "change after relist");
        Assert.Equal("UPD keep=2", handler.Log[^1]);
    }

    [Fact]
    public async Task BookmarksAdvanceTheResourceVersion()
    {
        var (informer, _, _) = Start();
        await informer.Synced.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        _api.Create("v1/namespaces", new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = "x" } });
        await Eventually(() => informer.Stats.Bookmarks > 0 && informer.Stats.ResourceVersion == _api.ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "a bookmark carried the newer resourceVersion");
        Assert.Contains(_api.Requests, r => r.Contains("allowWatchBookmarks=true", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AHandlerThatThrowsLosesNeitherTheInformerNorOtherObjects()
    {
        var client = Resources.Connect(_api.WriteKubeconfig(_dir));
        var handler = new Recorder();
        var informer = new Informer<V1Pod, V1PodList>(client, Resources.PodsOnNode("node-a"),
            new Throwing(handler), NullLogger.Instance) { BackoffInitial = TimeSpan.FromMilliseconds(50), BackoffMax = TimeSpan.FromMilliseconds(100) };
        _api.Create(Pods, Pod("a", "1"));
        _api.Create(Pods, Pod("boom", "1"));
        _api.Create(Pods, Pod("c", "1"));
        _ = Task.Run(() => informer.RunAsync(_cts.Token), TestContext.Current.CancellationToken);
        await informer.Synced.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(["ADD a=1", "ADD c=1"], handler.Log.Order().ToList());
        Assert.True(informer.Stats.Errors >= 1);
    }

    private sealed class Throwing(Recorder inner) : IInformerHandler<V1Pod>
    {
        public void OnUpsert(V1Pod obj, V1Pod? old)
        {
            if (obj.Metadata.Name == "boom")
            {
                throw new InvalidOperationException("handler bug");
            }
            inner.OnUpsert(obj, old);
        }

        public void OnDelete(V1Pod obj) => inner.OnDelete(obj);

        public void OnSynced() => inner.OnSynced();
    }

    private sealed class Collect<T> : IInformerHandler<T> where T : class, k8s.IKubernetesObject<V1ObjectMeta>
    {
        public readonly System.Collections.Concurrent.ConcurrentQueue<string> Names = new();

        public void OnUpsert(T obj, T? old) => Names.Enqueue(obj.Metadata.Name);

        public void OnDelete(T obj)
        {
        }

        public void OnSynced()
        {
        }
    }

    /// <summary>Lists one existing object of a kind, then watches a second one arrive.</summary>
    private async Task ListsAndWatches<T, TList>(ResourceKind<T, TList> kind, string collection, string apiVersion, string objectKind, string? ns)
        where T : class, k8s.IKubernetesObject<V1ObjectMeta>
        where TList : class, k8s.IKubernetesObject<V1ListMeta>, k8s.Models.IItems<T>
    {
        JsonObject Make(string name)
        {
            var meta = new JsonObject { ["name"] = name };
            if (ns is not null)
            {
                meta["namespace"] = ns;
            }
            return new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = objectKind, ["metadata"] = meta, ["spec"] = new JsonObject() };
        }
        _api.Create(collection, Make("first"));
        var handler = new Collect<T>();
        var informer = new Informer<T, TList>(Resources.Connect(_api.WriteKubeconfig(_dir)), kind, handler, NullLogger.Instance);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
        var run = Task.Run(() => informer.RunAsync(stop.Token), TestContext.Current.CancellationToken);
        await informer.Synced.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await Eventually(() => _api.OpenWatches > 0, $"{kind.Name} watched");
        _api.Create(collection, Make("second"));
        await Eventually(() => handler.Names.Count == 2, $"{kind.Name}: the watched object arrived");
        Assert.Equal(["first", "second"], handler.Names);
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task TheDatapathKindsListAndWatchToo()
    {
        await ListsAndWatches(Resources.Services, "v1/services", "v1", "Service", "default");
        await ListsAndWatches(Resources.EndpointSlices, "discovery.k8s.io/v1/endpointslices", "discovery.k8s.io/v1", "EndpointSlice", "default");
        await ListsAndWatches(Resources.NetworkPolicies, "networking.k8s.io/v1/networkpolicies", "networking.k8s.io/v1", "NetworkPolicy", "default");
        await ListsAndWatches(Resources.CiliumNetworkPolicies, "cilium.io/v2/ciliumnetworkpolicies", "cilium.io/v2", "CiliumNetworkPolicy", "default");
        await ListsAndWatches(Resources.CiliumClusterwideNetworkPolicies, "cilium.io/v2/ciliumclusterwidenetworkpolicies", "cilium.io/v2", "CiliumClusterwideNetworkPolicy", null);
        await ListsAndWatches(Resources.Namespaces, "v1/namespaces", "v1", "Namespace", null);
        await ListsAndWatches(Resources.TracingPoliciesNamespaced, "cilium.io/v1alpha1/tracingpoliciesnamespaced", "cilium.io/v1alpha1", "TracingPolicyNamespaced", "team-a");
    }

    [Fact]
    public void AMissingKubeconfigSaysWhatToDo()
    {
        var e = Assert.Throws<FileNotFoundException>(() => Resources.Connect("/nonexistent/kubeconfig"));
        Assert.Contains("/nonexistent/kubeconfig", e.Message, StringComparison.Ordinal);
        Assert.Contains("in-cluster", e.Message, StringComparison.Ordinal);
    }
}
