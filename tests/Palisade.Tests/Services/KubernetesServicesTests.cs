using Microsoft.Extensions.Logging.Abstractions;
using Palisade.Agent;
using Palisade.Kubernetes;
using Palisade.Policies.Services;
using Palisade.Tests.Datapath;
using Palisade.Tests.Shared;

namespace Palisade.Tests.Services;

/// <summary>
/// kube-proxy-replacement's feed: Services and EndpointSlices from the loopback API server (real
/// list/watch) reach socket-LB as one set once both kinds have listed, follow changes and
/// deletes, and an object Palisade cannot serve is an error naming its field, not a lost set.
/// </summary>
public sealed class KubernetesServicesTests : IDisposable
{
    private readonly FakeKubeApiServer _api = new() { BookmarkEvery = TimeSpan.FromMilliseconds(200) };
    private readonly TempDirectory _dir = new();
    private readonly CancellationTokenSource _cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
    private readonly List<Task> _informers = [];
    private readonly Lock _gate = new();
    private readonly List<(IReadOnlyList<ServiceManifest> Services, IReadOnlyList<EndpointSliceManifest> Slices)> _sets = [];

    public void Dispose()
    {
        _cts.Cancel();
        try
        {
            Task.WaitAll([.. _informers], TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        _api.Dispose();
        _cts.Dispose();
        _dir.Dispose();
    }

    private (IReadOnlyList<ServiceManifest> Services, IReadOnlyList<EndpointSliceManifest> Slices)? Last
    {
        get
        {
            lock (_gate)
            {
                return _sets.Count == 0 ? null : _sets[^1];
            }
        }
    }

    private KubernetesServices Start()
    {
        var feed = new KubernetesServices((services, slices) =>
        {
            lock (_gate)
            {
                _sets.Add((services, slices));
            }
        });
        var client = Resources.Connect(_api.WriteKubeconfig(_dir.Path));
        foreach (var run in new Func<CancellationToken, Task>[]
        {
            new Informer<k8s.Models.V1Service, k8s.Models.V1ServiceList>(client, Resources.Services, feed.Services, NullLogger.Instance) { Resync = TimeSpan.Zero, BackoffInitial = TimeSpan.FromMilliseconds(50), BackoffMax = TimeSpan.FromMilliseconds(200) }.RunAsync,
            new Informer<k8s.Models.V1EndpointSlice, k8s.Models.V1EndpointSliceList>(client, Resources.EndpointSlices, feed.Slices, NullLogger.Instance) { Resync = TimeSpan.Zero, BackoffInitial = TimeSpan.FromMilliseconds(50), BackoffMax = TimeSpan.FromMilliseconds(200) }.RunAsync,
        })
        {
            _informers.Add(Task.Run(() => run(_cts.Token)));
        }
        return feed;
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(condition(), what);
    }

    private static System.Text.Json.Nodes.JsonObject Service(string name, string clusterIp, string annotations = "{}") => FakeKubeApiServer.FromYaml($$"""
        apiVersion: v1
        kind: Service
        metadata:
          name: {{name}}
          namespace: shop
          annotations: {{annotations}}
        spec:
          clusterIP: {{clusterIp}}
          clusterIPs: [{{clusterIp}}]
          ports: [{name: http, port: 80, targetPort: http, protocol: TCP}]
        """);

    private static System.Text.Json.Nodes.JsonObject Slice(string name, string service, params string[] addresses)
    {
        var endpoints = string.Concat(addresses.Select(a => $"\n- addresses: [{a}]\n  conditions: {{ready: true}}\n  nodeName: node-1"));
        return FakeKubeApiServer.FromYaml($$"""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: {{name}}
              namespace: shop
              labels: {kubernetes.io/service-name: {{service}} }
            addressType: IPv4
            ports: [{name: http, port: 8080, protocol: TCP}]
            endpoints:{{endpoints}}
            """);
    }

    [Fact]
    public async Task ServicesAndTheirSlicesArriveAsOneSetAndFollowChangesAndDeletes()
    {
        _api.Create("v1/services", Service("web", "10.96.0.10"));
        _api.Create("discovery.k8s.io/v1/endpointslices", Slice("web-abc", "web", "10.0.1.5", "10.0.2.7"));
        using var feed = Start();

        await Eventually(() => Last is { Services.Count: 1, Slices.Count: 1 }, "the listed Service and its slice are handed on together");
        var first = Last!.Value;
        Assert.Equal("web", first.Services[0].Name);
        Assert.Equal(2, first.Slices[0].Endpoints.Count);
        var frontends = ServiceCompiler.Compile(first.Services, first.Slices, new ServiceCompileOptions { NodeName = "node-1" }).Frontends;
        var frontend = Assert.Single(frontends);
        Assert.Equal("10.96.0.10:80/TCP", frontend.Key);
        Assert.Equal([8080, 8080], frontend.Backends.Select(b => (int)b.Port));
        Assert.True(feed.Synced);

        _api.Update("discovery.k8s.io/v1/endpointslices", Slice("web-abc", "web", "10.0.1.5"));
        await Eventually(() => Last is { Slices: [{ Endpoints.Count: 1 }] }, "a changed slice is handed on");

        _api.Delete("v1/services", "web", "shop");
        await Eventually(() => Last is { Services.Count: 0 }, "a deleted Service leaves the set");
    }

    [Fact]
    public async Task AnObjectPalisadeCannotServeIsAnErrorNamingItsFieldAndTheOthersStillServe()
    {
        _api.Create("v1/services", Service("web", "10.96.0.10"));
        _api.Create("v1/services", Service("odd", "10.96.0.11", "{service.cilium.io/lb-algorithm: fastest}"));
        _api.Create("discovery.k8s.io/v1/endpointslices", Slice("web-abc", "web", "10.0.1.5"));
        using var feed = Start();

        await Eventually(() => Last is { Services.Count: 1 }, "the good Service is served");
        Assert.Equal("web", Last!.Value.Services[0].Name);
        var error = Assert.Single(feed.Errors);
        Assert.Equal("Service shop/odd", error.Key);
        Assert.Contains("lb-algorithm", error.Value, StringComparison.Ordinal);
        Assert.Contains("fastest", error.Value, StringComparison.Ordinal);

        // Fixed in place: the error goes, the Service comes.
        _api.Update("v1/services", Service("odd", "10.96.0.11", "{service.cilium.io/lb-algorithm: maglev}"));
        await Eventually(() => Last is { Services.Count: 2 } && feed.Errors.Count == 0, "the fixed Service is served and its error is gone");
    }

    [Fact]
    public async Task NothingIsHandedOnBeforeBothKindsHaveListed()
    {
        _api.Create("v1/services", Service("web", "10.96.0.10"));
        _api.Create("discovery.k8s.io/v1/endpointslices", Slice("web-abc", "web", "10.0.1.5"));
        // The EndpointSlice list fails for now: a Service alone would be refused as having no endpoints.
        _api.Fault = (method, path) => path.Contains("endpointslices", StringComparison.Ordinal) ? 503 : null;
        using var feed = Start();

        await Eventually(() => _api.Requests.Any(r => r.Contains("/services", StringComparison.Ordinal)), "the Services are listed");
        await Task.Delay(300, TestContext.Current.CancellationToken);
        Assert.Null(Last);
        Assert.False(feed.Synced);

        _api.Fault = null;
        await Eventually(() => Last is { Services.Count: 1, Slices.Count: 1 }, "once the slices list, the whole set is handed on");
    }
}
