using k8s;
using k8s.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Bpf;
using Palisade.Events;
using Palisade.Kubernetes;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Runtime.Policies;

namespace Palisade.Agent;

/// <summary>
/// The Kubernetes integration (--kubernetes): informers for TracingPolicy,
/// TracingPolicyNamespaced, this node's pods and Node, and Namespaces (with pod networking:
/// every Node, for pod CIDRs and routes, and Pod and Namespace labels for endpoints); the pod cache that
/// gives events their pod (with the hold-back gate for pods not seen yet); the controller
/// that applies policies to the engine with their pod scope; the status reporter.
/// A failure to reach the API server never stops the agent: informers retry with backoff
/// and the status endpoint says what is wrong.
/// </summary>
internal sealed partial class KubernetesService(AgentOptions options, PolicyService policies, EventHub hub, PodCache pods, DatapathService datapath, ILoggerFactory logs,
    ILogger<KubernetesService> logger, NetworkPolicy.NetworkPolicyService? networkPolicies = null, ServiceLbService? serviceLb = null) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private PodContextGate? _gate;
    private PolicyController? _controller;
    private KubernetesServices? _services;

    /// <summary>How the Kubernetes integration runs; null when it is off or not started.</summary>
    public KubernetesStatus? Status { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Kubernetes)
        {
            return Task.CompletedTask;
        }
        IKubernetes client;
        try
        {
            client = Resources.Connect(options.Kubeconfig);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or k8s.Exceptions.KubeConfigException)
        {
            LogNoClient(logger, e.Message);
            datapath.KubernetesUnavailable($"cannot build an API client: {e.Message}");
            policies.Engine?.CompleteRestore(); // no cluster policies will come back: restore with the directory's
            Status = new KubernetesStatus($"not connected: {e.Message}", [], pods, null, null);
            return Task.CompletedTask;
        }
        _gate = new PodContextGate(hub, pods, options.KubernetesPodWait);
        hub.SetGate(_gate);

        var informerLog = logs.CreateLogger("Palisade.Kubernetes.Informer");
        var podInformer = new Informer<V1Pod, V1PodList>(client, Resources.PodsOnNode(options.NodeName), pods, informerLog) { Resync = options.KubernetesResync };
        var namespaceCache = new NamespaceCache();
        var namespaces = new Informer<V1Namespace, V1NamespaceList>(client, Resources.Namespaces, namespaceCache, informerLog) { Resync = TimeSpan.Zero };
        var informers = new List<(string Name, InformerStats Stats)> { (podInformer.Name, podInformer.Stats), (namespaces.Name, namespaces.Stats) };
        if (options.Datapath is not null)
        {
            // Pod networking: endpoints take their Pod's and Namespace's labels, the other
            // Nodes are routed, and this node's pod CIDRs may come from its Node.
            datapath.UsePodLabels(new ClusterPodLabels(pods, namespaceCache));
            pods.LabelsChanged += (ns, name) => datapath.PodLabelsChanged(ns, name);
            namespaceCache.LabelsChanged += ns => datapath.PodLabelsChanged(ns, null);
            var clusterNodes = new ClusterNodes(options.NodeName);
            clusterNodes.Changed += () => datapath.NodesChanged(clusterNodes);
            var nodes = new Informer<V1Node, V1NodeList>(client, Resources.Nodes, clusterNodes, informerLog) { Resync = options.KubernetesResync };
            informers.Add((nodes.Name, nodes.Stats));
            Run(nodes.RunAsync);
        }
        Run(podInformer.RunAsync);
        Run(namespaces.RunAsync);
        if (networkPolicies is not null)
        {
            // The cluster's network policies, beside --network-policy-dir's files.
            var feed = new NetworkPolicy.KubernetesNetworkPolicies(networkPolicies);
            var k8sPolicies = new Informer<V1NetworkPolicy, V1NetworkPolicyList>(client, Resources.NetworkPolicies, feed, informerLog) { Resync = options.KubernetesResync };
            var cnps = new Informer<CustomObject, CustomObjectList>(client, Resources.CiliumNetworkPolicies, feed.Cilium("CiliumNetworkPolicy"), informerLog) { Resync = options.KubernetesResync };
            var ccnps = new Informer<CustomObject, CustomObjectList>(client, Resources.CiliumClusterwideNetworkPolicies, feed.Cilium("CiliumClusterwideNetworkPolicy"), informerLog) { Resync = options.KubernetesResync };
            informers.Add((k8sPolicies.Name, k8sPolicies.Stats));
            informers.Add((cnps.Name, cnps.Stats));
            informers.Add((ccnps.Name, ccnps.Stats));
            Run(k8sPolicies.RunAsync);
            Run(cnps.RunAsync);
            Run(ccnps.RunAsync);
        }
        if (serviceLb is { Enabled: true } && options.Services is { FromKubernetes: true })
        {
            // kube-proxy-replacement: the cluster's Services and EndpointSlices, beside --service-dir's files.
            _services = new KubernetesServices(serviceLb.SetKubernetesObjects);
            serviceLb.UseKubernetesErrors(() => _services.Errors);
            var services = new Informer<V1Service, V1ServiceList>(client, Resources.Services, _services.Services, informerLog) { Resync = options.KubernetesResync };
            var slices = new Informer<V1EndpointSlice, V1EndpointSliceList>(client, Resources.EndpointSlices, _services.Slices, informerLog) { Resync = options.KubernetesResync };
            informers.Add((services.Name, services.Stats));
            informers.Add((slices.Name, slices.Stats));
            Run(services.RunAsync);
            Run(slices.RunAsync);
        }

        // This node's Node: its labels go on every event (node_labels) and, with the policy
        // engine, decide which policies' nodeSelector matches this node.
        List<IInformerHandler<V1Node>> nodeHandlers = [new EventNodeLabels(options.NodeLabels)];
        StatusReporter? reporter = null;
        if (policies.Engine is { } engine)
        {
            reporter = new StatusReporter(client, options.NodeName, logs.CreateLogger<StatusReporter>());
            Run(reporter.RunAsync);
            _controller = new PolicyController(new EngineSink(engine), pods, KernelEnvironment.Cgroup2Root(), reporter.Enqueue, logs.CreateLogger<PolicyController>());
            // Pinned sensors (--keep-sensors-on-exit): the earlier run's entries of policies
            // that are gone are cleared only once the cluster's policies are all back.
            _controller.PoliciesSynced += engine.CompleteRestore;
            nodeHandlers.Add(_controller.NodeHandler);
            var clusterPolicies = new Informer<CustomObject, CustomObjectList>(client, Resources.TracingPolicies, _controller.HandlerFor("TracingPolicy"), informerLog)
            { Resync = options.KubernetesResync };
            var namespacedPolicies = new Informer<CustomObject, CustomObjectList>(client, Resources.TracingPoliciesNamespaced,
                _controller.HandlerFor(TracingPolicy.NamespacedKind), informerLog) { Resync = options.KubernetesResync };
            informers.Add((clusterPolicies.Name, clusterPolicies.Stats));
            informers.Add((namespacedPolicies.Name, namespacedPolicies.Stats));
            Run(clusterPolicies.RunAsync);
            Run(namespacedPolicies.RunAsync);
        }
        else
        {
            LogNoEngine(logger);
        }
        var node = new Informer<V1Node, V1NodeList>(client, Resources.Node(options.NodeName), new FanOut<V1Node>(nodeHandlers), informerLog) { Resync = TimeSpan.Zero };
        informers.Add((node.Name, node.Stats));
        Run(node.RunAsync);
        Status = new KubernetesStatus("connected", informers, pods, _gate, reporter);
        LogStarted(logger, options.Kubeconfig ?? "in-cluster service account", options.NodeName);
        return Task.CompletedTask;
    }

    private void Run(Func<CancellationToken, Task> loop) => _loops.Add(Task.Run(() => loop(_stop.Token)));

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
        }
        Dispose();
    }

    public void Dispose()
    {
        hub.SetGate(null);
        _gate?.Dispose(); // whatever it still holds goes out
        _gate = null;
        _controller?.Dispose();
        _services?.Dispose();
        _stop.Dispose();
    }

    /// <summary>The engine as the controller sees it.</summary>
    private sealed class EngineSink(TracingPolicyEngine engine) : IPolicySink
    {
        public PolicyStatus Apply(TracingPolicy policy, string source, IReadOnlyCollection<ulong> scope) => engine.Apply(policy, source, scope);

        public bool Delete(string key) => engine.Delete(key);

        public bool SetScope(string key, IReadOnlyCollection<ulong> scope) => engine.SetScope(key, scope);
    }

    /// <summary>Endpoints' labels from the cluster: the Pod's labels and its Namespace's (unknown while the Namespace is not seen: an endpoint keeps what it has, a new one the default namespace label).</summary>
    internal sealed class ClusterPodLabels(PodCache pods, NamespaceCache namespaces) : Palisade.Datapath.Endpoints.IPodLabelSource
    {
        public Palisade.Datapath.Endpoints.PodLabels? Find(string podNamespace, string podName) =>
            pods.ByName(podNamespace, podName) is { } pod
                ? new Palisade.Datapath.Endpoints.PodLabels(
                    pod.Metadata.Labels is { } labels ? new Dictionary<string, string>(labels, StringComparer.Ordinal) : new Dictionary<string, string>(StringComparer.Ordinal),
                    namespaces.LabelsOf(podNamespace),
                    NamedPortsOf(pod))
                : null;

        /// <summary>The named ports of the pod's containers (and of its restartable init containers, Kubernetes' sidecars), as NetworkPolicy resolves them.</summary>
        internal static List<Palisade.Datapath.ContainerPort> NamedPortsOf(k8s.Models.V1Pod pod) =>
            [.. (pod.Spec?.Containers ?? [])
                .Concat((pod.Spec?.InitContainers ?? []).Where(c => c.RestartPolicy == "Always"))
                .SelectMany(c => c.Ports ?? [])
                .Where(p => !string.IsNullOrEmpty(p.Name) && p.ContainerPort is > 0 and <= 65535)
                .Select(p => new Palisade.Datapath.ContainerPort(p.Name, string.IsNullOrEmpty(p.Protocol) ? "TCP" : p.Protocol.ToUpperInvariant(), p.ContainerPort))
                .Distinct()];
    }

    /// <summary>Keeps <see cref="NodeLabels"/> (node_labels on events) equal to this node's Node labels.</summary>
    private sealed class EventNodeLabels(NodeLabels labels) : IInformerHandler<V1Node>
    {
        public void OnUpsert(V1Node obj, V1Node? old) => labels.Set(obj.Metadata?.Labels);

        public void OnDelete(V1Node obj) => labels.Set(null);

        public void OnSynced()
        {
        }
    }

    /// <summary>One informer, several handlers, each told in order.</summary>
    private sealed class FanOut<T>(IReadOnlyList<IInformerHandler<T>> handlers) : IInformerHandler<T>
    {
        public void OnUpsert(T obj, T? old)
        {
            foreach (var h in handlers)
            {
                h.OnUpsert(obj, old);
            }
        }

        public void OnDelete(T obj)
        {
            foreach (var h in handlers)
            {
                h.OnDelete(obj);
            }
        }

        public void OnSynced()
        {
            foreach (var h in handlers)
            {
                h.OnSynced();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Kubernetes integration off: cannot build an API client: {Reason}")]
    private static partial void LogNoClient(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "TracingPolicy engine not running: Kubernetes policies are not watched (pods still are, for event context)")]
    private static partial void LogNoEngine(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Kubernetes integration started ({Credentials}, node {Node})")]
    private static partial void LogStarted(ILogger logger, string credentials, string node);
}

/// <summary>What /v1/status says about the Kubernetes integration.</summary>
internal sealed record KubernetesStatus(string State, IReadOnlyList<(string Name, InformerStats Stats)> Informers, PodCache Pods, PodContextGate? Gate, StatusReporter? Reporter);
