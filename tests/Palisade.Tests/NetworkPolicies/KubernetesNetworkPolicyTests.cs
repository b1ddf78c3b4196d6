using Microsoft.Extensions.Logging.Abstractions;
using Palisade.Agent;
using Palisade.Agent.Configuration;
using Palisade.Agent.NetworkPolicy;
using Palisade.Kubernetes;
using Palisade.Tests.Datapath;
using Palisade.Tests.Shared;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy objects from the loopback API server (real list/watch) reach the engine, and leave it when deleted.</summary>
public sealed class KubernetesNetworkPolicyTests : IDisposable
{
    private readonly FakeKubeApiServer _api = new() { BookmarkEvery = TimeSpan.FromMilliseconds(200) };
    private readonly TempDirectory _dir = new();
    private readonly CancellationTokenSource _cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
    private readonly List<Task> _informers = [];

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

    private Informer<T, TList> Run<T, TList>(ResourceKind<T, TList> kind, IInformerHandler<T> handler)
        where T : class, k8s.IKubernetesObject<k8s.Models.V1ObjectMeta>
        where TList : class, k8s.IKubernetesObject<k8s.Models.V1ListMeta>, k8s.Models.IItems<T>
    {
        var client = Resources.Connect(_api.WriteKubeconfig(_dir.Path));
        var informer = new Informer<T, TList>(client, kind, handler, NullLogger.Instance)
        {
            BackoffInitial = TimeSpan.FromMilliseconds(50),
            BackoffMax = TimeSpan.FromMilliseconds(200),
            Resync = TimeSpan.Zero,
        };
        _informers.Add(Task.Run(() => informer.RunAsync(_cts.Token)));
        return informer;
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(condition(), what);
    }

    [Fact]
    public async Task TheClustersNetworkPoliciesOfTheThreeKindsReachTheEngineAndABadOneIsAStatus()
    {
        _api.Create("networking.k8s.io/v1/networkpolicies", FakeKubeApiServer.FromYaml("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: web, namespace: shop}
            spec:
              podSelector: {matchLabels: {app: web}}
              policyTypes: [Ingress]
              ingress:
              - from: [{podSelector: {matchLabels: {app: client}}}]
                ports: [{port: 80, protocol: TCP}, {port: http, protocol: TCP}]
            """));
        _api.Create("cilium.io/v2/ciliumnetworkpolicies", FakeKubeApiServer.FromYaml("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: multi, namespace: shop}
            specs:
            - endpointSelector: {matchLabels: {app: a}}
              ingress: [{fromEntities: [world]}]
            - endpointSelector: {matchLabels: {app: b}}
              egress: [{toEntities: [cluster]}]
            """));
        _api.Create("cilium.io/v2/ciliumclusterwidenetworkpolicies", FakeKubeApiServer.FromYaml("""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: {name: bad}
            spec:
              endpointSelector: {}
              ingress: [{fromEntities: [moon]}]
            """));
        var options = AgentConfiguration.Resolve([new SettingsLayer("flags", new Dictionary<string, string> { ["node-name"] = "node-1" })]);
        var service = new NetworkPolicyService(options, new DatapathService(options, new DatapathParts(), NullLogger<DatapathService>.Instance), new DatapathParts(), NullLogger<NetworkPolicyService>.Instance);
        var feed = new KubernetesNetworkPolicies(service);
        Run(Resources.NetworkPolicies, feed);
        Run(Resources.CiliumNetworkPolicies, feed.Cilium("CiliumNetworkPolicy"));
        Run(Resources.CiliumClusterwideNetworkPolicies, feed.Cilium("CiliumClusterwideNetworkPolicy"));

        await Eventually(() => service.Engine.SourceStatus().Count == 3, "the three objects reach the engine");
        var sources = service.Engine.SourceStatus().ToDictionary(s => s.Source);
        var web = sources["kubernetes:NetworkPolicy/shop/web"];
        Assert.True(web.Errors.Count == 0, string.Join("; ", web.Errors));
        Assert.Equal("kubernetes", web.Origin);
        var multi = sources["kubernetes:CiliumNetworkPolicy/shop/multi"];
        Assert.True(multi.Errors.Count == 0, string.Join("; ", multi.Errors));
        Assert.Equal(2, service.Engine.PolicyStatus().Count);
        var bad = sources["kubernetes:CiliumClusterwideNetworkPolicy/bad"];
        Assert.Contains(bad.Errors, e => e.Path.Contains("fromEntities", StringComparison.Ordinal) && e.Message.Contains("moon", StringComparison.Ordinal));

        _api.Delete("networking.k8s.io/v1/networkpolicies", "web", "shop");
        await Eventually(() => service.Engine.SourceStatus().Count == 2, "a deleted object leaves the engine");
        Assert.DoesNotContain(service.Engine.PolicyStatus(), p => p.Policy.Name == "web");
    }
}
