using System.Net;
using System.Text.Json.Nodes;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Palisade.Agent;
using Palisade.Agent.Configuration;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;
using Palisade.Datapath.Identity;
using Palisade.Kubernetes;
using Palisade.Tests.Shared;

namespace Palisade.Tests.Datapath;

/// <summary>
/// Pod networking fed by the Kubernetes watchers, against the loopback API server (real
/// list/watch through KubernetesClient): this node's pod CIDRs from its Node, the other Nodes
/// as remote-node routes, endpoints' labels from their Pod and Namespace, and a label change
/// that moves an endpoint to another identity in place. No kernel: the endpoints run over fakes.
/// </summary>
public sealed class KubernetesPodNetworkingTests : IDisposable
{
    private const string Nodes = "v1/nodes";
    private const string Pods = "v1/pods";
    private const string Namespaces = "v1/namespaces";
    private const string ThisNode = "node-a";
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

    // ------------------------------------------------------------------ pod CIDRs from the Node

    [Theory]
    [InlineData("10.244.1.0/24")]
    [InlineData("fd00:244:1::/64")]
    [InlineData("10.244.1.0/24,fd00:244:1::/64")]
    public async Task ThisNodesPodCidrsComeFromItsNodesSpecPodCidrs(string podCidrs)
    {
        _api.Create(Nodes, Node(ThisNode, podCidrs.Split(','), addresses: ("InternalIP", "192.168.1.11")));
        var nodes = await WatchNodes();

        var cidrs = ClusterNetwork.PodCidrs(nodes.Own!, []);

        Assert.Equal(podCidrs.Split(',').Select(IPNetwork.Parse), cidrs);
    }

    /// <summary>The Pod's named ports, as NetworkPolicy resolves them: containers and sidecars (restartable init containers), TCP when no protocol is given, unnamed ports left out.</summary>
    [Fact]
    public void APodsNamedPortsComeFromItsContainersAndSidecars()
    {
        var pod = new V1Pod
        {
            Spec = new V1PodSpec
            {
                Containers =
                [
                    new V1Container { Name = "web", Ports = [new V1ContainerPort { ContainerPort = 8080, Name = "http" }, new V1ContainerPort { ContainerPort = 9000 }, new V1ContainerPort { ContainerPort = 53, Name = "dns", Protocol = "UDP" }] },
                    new V1Container { Name = "metrics", Ports = [new V1ContainerPort { ContainerPort = 9100, Name = "metrics", Protocol = "TCP" }] },
                ],
                InitContainers =
                [
                    new V1Container { Name = "proxy", RestartPolicy = "Always", Ports = [new V1ContainerPort { ContainerPort = 15001, Name = "proxy" }] },
                    new V1Container { Name = "setup", Ports = [new V1ContainerPort { ContainerPort = 7000, Name = "setup" }] },
                ],
            },
        };

        Assert.Equal(
            [new ContainerPort("http", "TCP", 8080), new ContainerPort("dns", "UDP", 53), new ContainerPort("metrics", "TCP", 9100), new ContainerPort("proxy", "TCP", 15001)],
            KubernetesService.ClusterPodLabels.NamedPortsOf(pod));
    }

    [Fact]
    public async Task AnOlderNodeWithOnlySpecPodCidrIsReadToo()
    {
        var node = Node(ThisNode, null, addresses: ("InternalIP", "192.168.1.11"));
        node["spec"]!["podCIDR"] = "10.244.7.0/24";
        _api.Create(Nodes, node);
        var nodes = await WatchNodes();

        Assert.Equal([IPNetwork.Parse("10.244.7.0/24")], ClusterNetwork.PodCidrs(nodes.Own!, []));
    }

    [Fact]
    public async Task ANodeWithoutPodCidrsLeavesPodNetworkingWaitingAndStatusSaysWhyAndTheFix()
    {
        _api.Create(Nodes, Node(ThisNode, null, addresses: ("InternalIP", "192.168.1.11")));
        var nodes = await WatchNodes();
        var service = Service(FromNodeOptions(), out _);
        await service.StartAsync(TestContext.Current.CancellationToken);
        Assert.StartsWith("waiting", service.State, StringComparison.Ordinal);

        service.NodesChanged(nodes);

        Assert.StartsWith("waiting", service.State, StringComparison.Ordinal);
        Assert.Contains($"Node {ThisNode} has no spec.podCIDRs", service.State, StringComparison.Ordinal);
        Assert.Contains("--allocate-node-cidrs", service.State, StringComparison.Ordinal);
        Assert.Contains("--pod-cidr", service.State, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.Sub("net.d/05-palisade.conflist")));
        await service.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task ANodeNameTheApiDoesNotKnowIsSaidInStatus()
    {
        _api.Create(Nodes, Node("someone-else", ["10.244.9.0/24"], addresses: ("InternalIP", "192.168.1.19")));
        var nodes = await WatchNodes();
        var service = Service(FromNodeOptions(), out _);
        await service.StartAsync(TestContext.Current.CancellationToken);

        service.NodesChanged(nodes);

        Assert.Contains($"no Node named {ThisNode}", service.State, StringComparison.Ordinal);
        Assert.Contains("node-name", service.State, StringComparison.Ordinal);
        await service.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task PodNetworkingStartsOnceTheNodeHasPodCidrsAndKeepsThemWhenTheyChange()
    {
        _api.Create(Nodes, Node(ThisNode, null, addresses: ("InternalIP", "192.168.1.11")));
        var nodes = await WatchNodes();
        var service = Service(FromNodeOptions(), out var log);
        nodes.Changed += () => service.NodesChanged(nodes);
        await service.StartAsync(TestContext.Current.CancellationToken);
        service.NodesChanged(nodes);
        Assert.StartsWith("waiting", service.State, StringComparison.Ordinal);

        _api.Update(Nodes, Node(ThisNode, ["10.214.5.0/24", "fd00:214:5::/64"], addresses: ("InternalIP", "192.168.1.11")));
        await Eventually(() => service.State != "starting" && !service.State.StartsWith("waiting", StringComparison.Ordinal), "pod networking started");
        await service.DeferredStart;

        Assert.Equal("running", service.State);
        Assert.True(File.Exists(_dir.Sub("net.d/05-palisade.conflist")));
        Assert.Equal([IPNetwork.Parse("10.214.5.0/24"), IPNetwork.Parse("fd00:214:5::/64")], service.PodCidrs);
        var endpoint = service.Endpoints!.Add(new NodeEndpoints.AddSpec(new AttachmentId("ctr-1", "eth0"), "/var/run/netns/x", "shop", "web-1",
            new Dictionary<string, string>()));
        Assert.Equal(IPAddress.Parse("10.214.5.2"), endpoint.IPv4);
        Assert.True(IPNetwork.Parse("fd00:214:5::/64").Contains(endpoint.IPv6!));

        _api.Update(Nodes, Node(ThisNode, ["10.214.6.0/24"], addresses: ("InternalIP", "192.168.1.11")));
        await Eventually(() => log.Messages.Any(m => m.Contains("not supported", StringComparison.Ordinal)), "the change is refused with a warning");

        Assert.Equal([IPNetwork.Parse("10.214.5.0/24"), IPNetwork.Parse("fd00:214:5::/64")], service.PodCidrs);
        Assert.Contains(log.Messages, m => m.Contains("10.214.6.0/24", StringComparison.Ordinal) && m.Contains("10.214.5.0/24", StringComparison.Ordinal));
        await service.StopAsync(TestContext.Current.CancellationToken);
        Assert.False(File.Exists(_dir.Sub("net.d/05-palisade.conflist")));
    }

    [Fact]
    public async Task AConfiguredPodCidrWinsAndAMismatchWithTheNodesIsAWarningNamingBoth()
    {
        _api.Create(Nodes, Node(ThisNode, ["10.244.2.0/24"], addresses: ("InternalIP", "192.168.1.11")));
        var nodes = await WatchNodes();
        var options = Options(("pod-cidr", "10.214.9.0/24"), ("kubernetes", "true"));
        var service = Service(options, out var log);

        service.NodesChanged(nodes);

        Assert.Equal([IPNetwork.Parse("10.214.9.0/24")], options.Datapath!.PodCidrs);
        var warning = Assert.Single(log.Messages, m => m.Contains("differs", StringComparison.Ordinal));
        Assert.Contains("10.214.9.0/24", warning, StringComparison.Ordinal);
        Assert.Contains("10.244.2.0/24", warning, StringComparison.Ordinal);
        Assert.Contains("configured pod-cidr is used", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void PodNetworkingTrueWithoutAPodCidrReadsTheNodeOnlyWithKubernetes()
    {
        Assert.True(Options(("pod-networking", "true"), ("kubernetes", "true")).Datapath!.PodCidrsFromNode);
        Assert.Null(Options(("kubernetes", "true")).Datapath); // auto: a runtime-security agent does not take over the node's CNI
        Assert.Null(Options(("pod-networking", "false"), ("pod-cidr", "10.214.9.0/24")).Datapath);
        var errors = Assert.Throws<AgentConfigurationException>(() => Options(("pod-networking", "true"), ("kubernetes", "false"))).Errors;
        Assert.Contains(errors, e => e.Contains("pod-networking", StringComparison.Ordinal) && e.Contains("spec.podCIDRs", StringComparison.Ordinal) && e.Contains("pod-cidr", StringComparison.Ordinal));
    }

    // ------------------------------------------------------------------ remote nodes

    [Fact]
    public async Task OtherNodesBecomeRemoteNodeRoutesAsTheyAreAddedUpdatedAndDeleted()
    {
        _api.Create(Nodes, Node(ThisNode, ["10.244.1.0/24"], addresses: ("InternalIP", "192.168.1.11")));
        _api.Create(Nodes, Node("node-b", ["10.244.2.0/24"], addresses: [("InternalIP", "192.168.1.12"), ("Hostname", "node-b")]));
        _api.Create(Nodes, Node("node-c", ["10.244.3.0/24", "fd00:244:3::/64"], addresses: [("InternalIP", "192.168.1.13"), ("InternalIP", "fd00::13")]));
        _api.Create(Nodes, Node("node-d", null, addresses: ("InternalIP", "192.168.1.14")));
        var nodes = await WatchNodes();
        var changes = 0;
        nodes.Changed += () => Interlocked.Increment(ref changes);

        Assert.Equal(["node-b@192.168.1.12=10.244.2.0/24", "node-c@192.168.1.13=10.244.3.0/24", "node-c/ipv6@fd00::13=fd00:244:3::/64"], Routes(nodes));

        _api.Update(Nodes, Node("node-b", ["10.244.2.0/24"], addresses: ("InternalIP", "192.168.1.22")));
        await Eventually(() => Routes(nodes).Contains("node-b@192.168.1.22=10.244.2.0/24"), "node-b's new address");
        _api.Update(Nodes, Node("node-d", ["10.244.4.0/24"], addresses: ("InternalIP", "192.168.1.14")));
        await Eventually(() => Routes(nodes).Contains("node-d@192.168.1.14=10.244.4.0/24"), "node-d got a pod CIDR");
        _api.Delete(Nodes, "node-c");
        await Eventually(() => !Routes(nodes).Any(r => r.StartsWith("node-c", StringComparison.Ordinal)), "node-c's routes gone");

        Assert.Equal(["node-b@192.168.1.22=10.244.2.0/24", "node-d@192.168.1.14=10.244.4.0/24"], Routes(nodes));
        Assert.Equal(3, Volatile.Read(ref changes));
    }

    [Fact]
    public async Task AStatusHeartbeatIsNoChangeForPodNetworking()
    {
        _api.Create(Nodes, Node("node-b", ["10.244.2.0/24"], addresses: ("InternalIP", "192.168.1.12")));
        var nodes = await WatchNodes();
        var changes = 0;
        nodes.Changed += () => Interlocked.Increment(ref changes);
        var beat = Node("node-b", ["10.244.2.0/24"], addresses: ("InternalIP", "192.168.1.12"));
        beat["status"]!["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = "True", ["lastHeartbeatTime"] = "2026-12-02T10:00:00Z" });
        _api.Update(Nodes, beat);
        _api.Update(Nodes, Node("node-b", ["10.244.2.0/24"], addresses: ("InternalIP", "192.168.1.99")));

        await Eventually(() => Volatile.Read(ref changes) > 0, "the address change");

        Assert.Equal(1, Volatile.Read(ref changes));
    }

    [Fact]
    public void ExternalIpIsTheFallbackAndAPodCidrWithoutAnAddressOfItsFamilyIsSaid()
    {
        var problems = new List<string>();

        var routes = ClusterNetwork.RemoteNodes(new NodeNetwork("node-e", ["10.244.5.0/24", "fd00:244:5::/64"], [], ["203.0.113.5"]), problems);

        Assert.Equal(["node-e@203.0.113.5=10.244.5.0/24"], routes.Select(ClusterNetwork.Describe));
        var problem = Assert.Single(problems);
        Assert.Contains("fd00:244:5::/64", problem, StringComparison.Ordinal);
        Assert.Contains("no IPv6 InternalIP or ExternalIP", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void StaticRemoteNodesAndTheApisMergeAndTheNodeWinsByName()
    {
        var configured = RemoteNodeRoutes.Parse("node-b@10.0.0.2=10.244.9.0/24;node-x@10.0.0.9=10.244.8.0/24", []);
        var notes = new List<string>();
        var problems = new List<string>();

        var merged = ClusterNetwork.Merge(configured,
            [new NodeNetwork("node-b", ["10.244.2.0/24"], ["192.168.1.12"], []), new NodeNetwork("node-z", ["10.244.1.128/25"], ["192.168.1.26"], [])],
            [IPNetwork.Parse("10.244.1.0/24")], notes, problems);

        Assert.Equal(["node-x@10.0.0.9=10.244.8.0/24", "node-b@192.168.1.12=10.244.2.0/24"], merged.Select(ClusterNetwork.Describe));
        var note = Assert.Single(notes);
        Assert.Contains("node-b@10.0.0.2=10.244.9.0/24", note, StringComparison.Ordinal);
        Assert.Contains("node-b@192.168.1.12=10.244.2.0/24", note, StringComparison.Ordinal);
        Assert.Contains(problems, p => p.Contains("node-z", StringComparison.Ordinal) && p.Contains("overlaps", StringComparison.Ordinal));
    }

    [Fact]
    public void NodeObjectsWithBadCidrsAndAddressesEndInProblemsNotExceptions()
    {
        foreach (var (name, bytes) in Palisade.Fuzz.FuzzTargets.All["node"].Seeds())
        {
            Assert.Null(Record.Exception(() => Palisade.Fuzz.FuzzTargets.All["node"].Run(bytes)));
            Assert.NotEmpty(name);
        }
        var problems = new List<string>();

        var cidrs = ClusterNetwork.PodCidrs(new NodeNetwork("node-d", ["10.244.4.1/24", "banana", "10.244.8.0/31", "10.244.0.0/16", "10.244.9.0/24"], [], []), problems);

        Assert.Equal([IPNetwork.Parse("10.244.0.0/16")], cidrs);
        Assert.Equal(2, problems.Count(p => p.Contains("is not a CIDR", StringComparison.Ordinal)));
        Assert.Contains(problems, p => p.Contains("10.244.8.0/31 is too small", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("second IPv4 CIDR 10.244.9.0/24", StringComparison.Ordinal));
    }

    // ------------------------------------------------------------------ labels from Pod and Namespace

    [Fact]
    public async Task AnEndpointTakesItsPodsLabelsAndItsNamespacesLabels()
    {
        _api.Create(Namespaces, Namespace("shop", ("team", "payments")));
        _api.Create(Pods, FakeKubeApiServer.Pod("shop", "web-1", ThisNode, new Dictionary<string, string> { ["app"] = "web", ["pod-template-hash"] = "5d8f" }));
        var (node, _) = await LabelledNode();

        var endpoint = node.Endpoints.Add(Spec("web-1", ("app", "from-cni-args")));

        Assert.Equal("web", endpoint.Labels["app"]);
        Assert.Equal("payments", endpoint.NamespaceLabels["team"]);
        Assert.Equal(
        [
            "k8s:app=web",
            "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop",
            "k8s:io.cilium.k8s.namespace.labels.team=payments",
            "k8s:io.kubernetes.pod.namespace=shop",
        ], node.Endpoints.Identities.LabelsOf(endpoint.Identity));
    }

    [Fact]
    public async Task BeforeThePodIsSeenCniArgsLabelsAreUsedAndThePodsReplaceThemWhenItArrives()
    {
        _api.Create(Namespaces, Namespace("shop"));
        var (node, _) = await LabelledNode();
        var added = node.Endpoints.Add(Spec("web-1", ("app", "from-cni-args")));
        Assert.Equal("from-cni-args", added.Labels["app"]);

        _api.Create(Pods, FakeKubeApiServer.Pod("shop", "web-1", ThisNode, new Dictionary<string, string> { ["app"] = "web" }));
        await Eventually(() => node.Endpoints.ById(added.Id)!.Labels.GetValueOrDefault("app") == "web", "the pod's labels reached the endpoint");

        var now = node.Endpoints.ById(added.Id)!;
        Assert.NotEqual(added.Identity, now.Identity);
        Assert.Contains("k8s:app=web", node.Endpoints.Identities.LabelsOf(now.Identity)!);
        Assert.Null(node.Endpoints.Identities.LabelsOf(added.Identity)); // nobody else held it
        Assert.Equal(now.Identity, node.Datapath.Installed[added.Id].Identity);
        Assert.Empty(node.Datapath.Removed);
    }

    [Fact]
    public async Task ALabelChangeMovesTheEndpointToAnotherIdentityWithoutRemovingIt()
    {
        _api.Create(Namespaces, Namespace("shop"));
        var web1 = _api.Create(Pods, FakeKubeApiServer.Pod("shop", "web-1", ThisNode, new Dictionary<string, string> { ["app"] = "web" }));
        _api.Create(Pods, FakeKubeApiServer.Pod("shop", "web-2", ThisNode, new Dictionary<string, string> { ["app"] = "web" }));
        var (node, relabels) = await LabelledNode();
        var first = node.Endpoints.Add(Spec("web-1"));
        var second = node.Endpoints.Add(Spec("web-2"));
        Assert.Equal(first.Identity, second.Identity);

        web1["metadata"]!["labels"]!["app"] = "api";
        _api.Update(Pods, web1);
        await Eventually(() => node.Endpoints.ById(first.Id)!.Labels["app"] == "api", "web-1's new label reached its endpoint");

        var moved = node.Endpoints.ById(first.Id)!;
        Assert.NotEqual(second.Identity, moved.Identity);
        Assert.Equal(second.Identity, node.Endpoints.ById(second.Id)!.Identity);
        Assert.Equal(first.IPv4, moved.IPv4);
        Assert.Equal(first.HostIfName, moved.HostIfName);
        Assert.Equal(2, node.Interfaces.Links.Count);
        Assert.Empty(node.Datapath.Removed);
        Assert.Equal(moved.Identity, node.Datapath.Installed[first.Id].Identity);
        Assert.Equal(moved.Identity, node.Endpoints.ByAddress(first.IPv4!)!.Identity);
        Assert.Equal([(first.Identity, moved.Identity)], relabels);

        web1["metadata"]!["labels"]!["app"] = "web";
        _api.Update(Pods, web1);
        await Eventually(() => node.Endpoints.ById(first.Id)!.Identity == second.Identity, "back to web's identity");
        Assert.Null(node.Endpoints.Identities.LabelsOf(moved.Identity)); // the api identity had no other holder
    }

    [Fact]
    public async Task ANamespaceLabelChangeMovesTheEndpointsOfThatNamespace()
    {
        var ns = _api.Create(Namespaces, Namespace("shop", ("env", "test")));
        _api.Create(Pods, FakeKubeApiServer.Pod("shop", "web-1", ThisNode, new Dictionary<string, string> { ["app"] = "web" }));
        var (node, _) = await LabelledNode();
        var endpoint = node.Endpoints.Add(Spec("web-1"));

        ns["metadata"]!["labels"]!["env"] = "prod";
        _api.Update(Namespaces, ns);
        await Eventually(() => node.Endpoints.ById(endpoint.Id)!.NamespaceLabels.GetValueOrDefault("env") == "prod", "the namespace's new label");

        var now = node.Endpoints.ById(endpoint.Id)!;
        Assert.NotEqual(endpoint.Identity, now.Identity);
        Assert.Contains("k8s:io.cilium.k8s.namespace.labels.env=prod", node.Endpoints.Identities.LabelsOf(now.Identity)!);
    }

    [Fact]
    public async Task APodWhoseNamespaceIsNotSeenYetGetsTheDefaultNamespaceLabelUntilItIs()
    {
        _api.Create(Pods, FakeKubeApiServer.Pod("shop", "web-1", ThisNode, new Dictionary<string, string> { ["app"] = "web" }));
        var (node, _) = await LabelledNode();
        var endpoint = node.Endpoints.Add(Spec("web-1"));
        Assert.Equal(IdentityLabels.DefaultNamespaceLabels("shop"), endpoint.NamespaceLabels);
        Assert.Equal("web", endpoint.Labels["app"]);

        _api.Create(Namespaces, Namespace("shop", ("team", "payments")));
        await Eventually(() => node.Endpoints.ById(endpoint.Id)!.NamespaceLabels.ContainsKey("team"), "the namespace's labels once it is seen");

        Assert.Contains("k8s:io.cilium.k8s.namespace.labels.team=payments", node.Endpoints.Identities.LabelsOf(node.Endpoints.ById(endpoint.Id)!.Identity)!);
    }

    [Fact]
    public void MovingAnIdentityHoldsTheNewOneAndFreesTheOldWhenItWasTheLastHold()
    {
        var identities = IdentityAllocator.Open(_dir.Sub("identities.json"));
        IReadOnlyList<string> Labels(string app) => IdentityLabels.For("shop", new Dictionary<string, string> { ["app"] = app }, IdentityLabels.DefaultNamespaceLabels("shop"));
        var web = identities.Acquire(Labels("web"));
        var web2 = identities.Acquire(Labels("web"));

        var api = identities.Move(web, Labels("api"));
        var same = identities.Move(api, Labels("api"));
        var back = identities.Move(api, Labels("web"));

        Assert.Equal(web, web2);
        Assert.NotEqual(web, api);
        Assert.Equal(api, same);
        Assert.Equal(web, back);
        Assert.Null(identities.LabelsOf(api));
        Assert.Equal(web, IdentityAllocator.Open(_dir.Sub("identities.json")).Adopt(web, Labels("web"))); // the move was saved
    }

    // ------------------------------------------------------------------ helpers

    private static JsonObject Node(string name, string[]? podCidrs, params (string Type, string Address)[] addresses)
    {
        var spec = new JsonObject();
        if (podCidrs is not null)
        {
            spec["podCIDR"] = podCidrs[0];
            spec["podCIDRs"] = new JsonArray([.. podCidrs.Select(c => (JsonNode)c)]);
        }
        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Node",
            ["metadata"] = new JsonObject { ["name"] = name },
            ["spec"] = spec,
            ["status"] = new JsonObject
            {
                ["addresses"] = new JsonArray([.. addresses.Select(a => (JsonNode)new JsonObject { ["type"] = a.Type, ["address"] = a.Address })]),
            },
        };
    }

    private static JsonObject Namespace(string name, params (string Key, string Value)[] labels)
    {
        var all = new JsonObject { ["kubernetes.io/metadata.name"] = name };
        foreach (var (key, value) in labels)
        {
            all[key] = value;
        }
        return new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = all } };
    }

    private static List<string> Routes(ClusterNodes nodes) =>
        [.. ClusterNetwork.Merge([], nodes.Others, [IPNetwork.Parse("10.244.1.0/24")], [], []).Select(ClusterNetwork.Describe)];

    private static NodeEndpoints.AddSpec Spec(string pod, params (string Key, string Value)[] cniLabels) =>
        new(new AttachmentId($"ctr-{pod}", "eth0"), $"/var/run/netns/{pod}", "shop", pod, cniLabels.ToDictionary(l => l.Key, l => l.Value));

    private Palisade.Kubernetes.Informer<T, TList> Run<T, TList>(ResourceKind<T, TList> kind, IInformerHandler<T> handler)
        where T : class, k8s.IKubernetesObject<V1ObjectMeta>
        where TList : class, k8s.IKubernetesObject<V1ListMeta>, IItems<T>
    {
        var client = Resources.Connect(_api.WriteKubeconfig(_dir.Path));
        var informer = new Palisade.Kubernetes.Informer<T, TList>(client, kind, handler, NullLogger.Instance)
        {
            BackoffInitial = TimeSpan.FromMilliseconds(50),
            BackoffMax = TimeSpan.FromMilliseconds(200),
            Resync = TimeSpan.Zero,
        };
        _informers.Add(Task.Run(() => informer.RunAsync(_cts.Token)));
        return informer;
    }

    private async Task<ClusterNodes> WatchNodes()
    {
        var nodes = new ClusterNodes(ThisNode);
        var informer = Run(Resources.Nodes, nodes);
        await informer.Synced.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        await Eventually(() => _api.OpenWatches > 0, "the node informer watches");
        return nodes;
    }

    /// <summary>Endpoints over fakes whose labels come from the Pod and Namespace informers, wired as the agent wires them.</summary>
    private async Task<(EndpointNode Node, List<(uint Before, uint After)> Relabels)> LabelledNode()
    {
        var pods = new PodCache();
        var namespaces = new NamespaceCache();
        var node = new EndpointNode(_dir);
        var relabels = new List<(uint, uint)>();
        node.Endpoints.PodLabels = new KubernetesService.ClusterPodLabels(pods, namespaces);
        node.Endpoints.Relabeled += (before, after) =>
        {
            lock (relabels)
            {
                relabels.Add((before.Identity, after.Identity));
            }
        };
        pods.LabelsChanged += (ns, name) => node.Endpoints.RefreshLabels(ns, name);
        namespaces.LabelsChanged += ns => node.Endpoints.RefreshLabels(ns, null);
        var podInformer = Run(Resources.PodsOnNode(ThisNode), pods);
        var namespaceInformer = Run(Resources.Namespaces, namespaces);
        await Task.WhenAll(podInformer.Synced, namespaceInformer.Synced).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        await Eventually(() => _api.OpenWatches >= 2, "both informers watch");
        return (node, relabels);
    }

    private AgentOptions FromNodeOptions() => Options(("pod-networking", "true"), ("kubernetes", "true"));

    private AgentOptions Options(params (string Key, string Value)[] values)
    {
        var settings = new Dictionary<string, string>
        {
            ["node-name"] = ThisNode,
            ["ipam-state-dir"] = _dir.Sub("ipam"),
            ["endpoint-state-dir"] = _dir.Sub("endpoints"),
            // These tests are about labels and Nodes; cluster-wide identities are ClusterIdentityTests'.
            ["identity-allocation-mode"] = "local",
            ["endpoint-socket"] = _dir.Sub("endpoint.sock"),
            ["cni-del-queue-dir"] = _dir.Sub("del-queue"),
            ["cni-conf-dir"] = _dir.Sub("net.d"),
        };
        foreach (var (key, value) in values)
        {
            settings[key] = value;
        }
        return AgentConfiguration.Resolve([new SettingsLayer("test", settings)]);
    }

    /// <summary>The service over fakes: no host device, no BPF, no netlink interfaces.</summary>
    private static DatapathService Service(AgentOptions options, out ListLogger<DatapathService> log)
    {
        log = new ListLogger<DatapathService>();
        return new DatapathService(options, new DatapathParts
        {
            EnsureHostDevice = (_, _) => { },
            Interfaces = () => new FakeInterfaces(),
            EndpointDatapath = () => new FakeDatapath(),
        }, log);
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(condition(), what);
    }

    /// <summary>Keeps every message logged, for tests that check what the agent says.</summary>
    private sealed class ListLogger<T> : ILogger<T>
    {
        private readonly List<string> _messages = [];

        public IReadOnlyList<string> Messages
        {
            get
            {
                lock (_messages)
                {
                    return [.. _messages];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_messages)
            {
                _messages.Add($"{logLevel}: {formatter(state, exception)}");
            }
        }
    }
}
