using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;
using Palisade.Datapath.Identity;
using Palisade.Datapath.Ipam;
using Palisade.Kubernetes;

namespace Palisade.Agent;

/// <summary>
/// The kernel-facing parts pod networking is built from. The agent uses the BPF datapath
/// (<see cref="KernelDatapath"/>); the defaults here route endpoints with the kernel's routes
/// alone, which tests of the host use where no BPF program is wanted.
/// </summary>
public sealed record DatapathParts
{
    /// <summary>Makes the endpoint datapath (programs and maps per endpoint), once, at start.</summary>
    public Func<IEndpointDatapath> EndpointDatapath { get; init; } = () => new KernelRoutesOnly();

    /// <summary>Makes the node datapath (remote-node entries), once, at start.</summary>
    public Func<INodeDatapath> NodeDatapath { get; init; } = () => new KernelRoutesOnly();

    /// <summary>Makes the server of the endpoint socket.</summary>
    public Func<IEndpointApiHost> ApiHost { get; init; } = () => new EndpointSocket();

    /// <summary>The netlink side of endpoints; tests of the host swap it.</summary>
    public Func<IEndpointInterfaces> Interfaces { get; init; } = () => new VethInterfaces();

    /// <summary>Creates the host device with the gateways (netlink); tests that run no kernel part swap it.</summary>
    public Action<string, IReadOnlyList<IPAddress>> EnsureHostDevice { get; init; } = (name, gateways) => HostDevice.Ensure(name, gateways);

    /// <summary>The datapath's network-policy side, once pod networking runs; null: policies are validated and reported, not enforced.</summary>
    public Func<IPolicyDatapath?> PolicyDatapath { get; init; } = () => null;

    /// <summary>The Kubernetes client of identity-allocation-mode crd; null: built from kubeconfig or the pod's service account. Tests swap it.</summary>
    public Func<k8s.IKubernetes>? KubernetesClient { get; init; }

    /// <summary>Tells the datapath which addresses are this node's (the gateways): traffic to them is the host identity.</summary>
    public Action<IReadOnlyList<System.Net.IPAddress>> HostAddresses { get; init; } = _ => { };
}

/// <summary>
/// Pod networking in the agent, when it is on (otherwise it does nothing, so the
/// runtime-security agent runs as before): creates the host device with the gateways,
/// opens IPAM and identities, restores the endpoints of the last run, replays queued DELs,
/// routes to the other nodes, serves the endpoint socket and, last, writes the CNI conflist
/// so runtimes start using the network only once ADD can succeed. A clean stop removes the
/// conflist and the socket; endpoints, routes and the host device stay (pods keep working).
/// With Kubernetes the same code is fed by the watchers: the pod CIDRs come from this node's
/// Node when none is configured (start waits for them), the other Nodes become remote-node
/// routes, and endpoints take their Pod's and Namespace's labels.
/// </summary>
internal sealed partial class DatapathService(AgentOptions options, DatapathParts parts, ILogger<DatapathService> logger) : IHostedService, IAsyncDisposable
{
    private readonly Lock _sync = new();
    private readonly Lock _routesGate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<string> _said = new(StringComparer.Ordinal);
    private IEndpointApiHost? _host;
    private volatile string _state = "off";
    private Task _deferredStart = Task.CompletedTask;
    private Task _identities = Task.CompletedTask;
    private IReadOnlyList<IPNetwork> _cidrs = [];
    private IReadOnlyList<NodeNetwork> _apiNodes = [];
    private IPodLabelSource? _podLabels;
    private bool _stopping;

    /// <summary>The endpoints of this node; null when pod networking is off or did not start.</summary>
    public NodeEndpoints? Endpoints { get; private set; }

    public RemoteNodeRoutes? RemoteNodes { get; private set; }

    public RestoreReport? Restored { get; private set; }

    /// <summary>The cluster-wide identity allocator; null in identity-allocation-mode local.</summary>
    public Palisade.Kubernetes.Identities.ClusterIdentityAllocator? ClusterIdentities { get; private set; }

    /// <summary>"off", "waiting: WHY" (for the Node's pod CIDRs), "starting", "running", "failed: WHY" or "stopped".</summary>
    public string State => _state;

    /// <summary>The pod CIDRs in use; empty before pod networking runs.</summary>
    public IReadOnlyList<IPNetwork> PodCidrs => _cidrs;

    /// <summary>Completes when a start that waited for the Node's pod CIDRs is over (tests).</summary>
    public Task DeferredStart => _deferredStart;

    /// <summary>Where the conflist was written; null before.</summary>
    public string? ConflistPath { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Datapath is not { } config)
        {
            return;
        }
        if (config.PodCidrsFromNode)
        {
            _state = $"waiting: for the pod CIDRs of Node {options.NodeName} (spec.podCIDRs), as no {DatapathSettings.PodCidr.Key} is set; the Kubernetes API has not answered yet";
            LogWaiting(logger, options.NodeName);
            return;
        }
        await StartNetworkingAsync(config, config.PodCidrs, cancellationToken).ConfigureAwait(false);
    }

    private async Task StartNetworkingAsync(DatapathOptions config, IReadOnlyList<IPNetwork> cidrs, CancellationToken cancellationToken)
    {
        _state = "starting";
        try
        {
            var ipam = NodeIpam.Open(cidrs, config.IpamStateDir);
            foreach (var ignored in ipam.Ignored)
            {
                LogIpamIgnored(logger, ignored);
            }
            parts.EnsureHostDevice(config.HostDevice, [.. ipam.Pools.Select(p => p.Gateway)]);
            parts.HostAddresses([.. ipam.Pools.Select(p => p.Gateway)]);
            var endpoints = new NodeEndpoints(new NodeEndpointsOptions
            {
                Ipam = ipam,
                Identities = OpenIdentities(config),
                Registry = new EndpointRegistry(Path.Combine(config.EndpointStateDir, "registry")),
                Interfaces = parts.Interfaces(),
                Datapath = parts.EndpointDatapath(),
                DelQueueDirectory = config.DelQueueDir,
                DefaultMtu = config.Mtu,
            });
            endpoints.Relabeled += (before, after) => LogRelabeled(logger, after.Id, after.PodNamespace, after.PodName, before.Identity, after.Identity);
            endpoints.RelabelFailed += problem => LogRelabelFailed(logger, problem);
            var restored = endpoints.Restore();
            Restored = restored;
            LogRestored(logger, restored.Adopted.Count, restored.Dropped.Count, restored.Replayed.Count, restored.LeakedAddresses.Count);
            foreach (var line in restored.Dropped.Concat(restored.Replayed.Select(r => $"queued DEL replayed: {r}")))
            {
                LogRestoreDetail(logger, line);
            }
            foreach (var problem in restored.Problems)
            {
                LogRestoreProblem(logger, problem);
            }
            var remote = new RemoteNodeRoutes(parts.NodeDatapath());
            _cidrs = cidrs;
            lock (_routesGate)
            {
                RemoteNodes = remote;
                bool fromApi;
                lock (_sync)
                {
                    fromApi = _apiNodes.Count > 0;
                }
                try
                {
                    remote.Apply(MergedRemoteNodes(config));
                }
                catch (InvalidOperationException e) when (fromApi)
                {
                    // With Nodes from the API one unroutable Node must not keep this node's pods off
                    // the network: said, and retried on the next change of the Nodes. Standalone, a
                    // refused --remote-nodes entry fails the start, so a wrong address is seen at once.
                    LogRoutesFailed(logger, e.Message);
                }
            }
            var host = parts.ApiHost();
            await host.StartAsync(config.EndpointSocket, new LoggedEndpointApi(new EndpointApi(endpoints), logger), cancellationToken).ConfigureAwait(false);
            _host = host;
            lock (_sync)
            {
                endpoints.PodLabels = _podLabels;
                Endpoints = endpoints;
            }
            if (_podLabels is not null)
            {
                // Endpoints restored with the labels of the last run: their pods may have changed meanwhile.
                foreach (var ns in endpoints.All.Select(e => e.PodNamespace).OfType<string>().Distinct(StringComparer.Ordinal))
                {
                    endpoints.RefreshLabels(ns, null);
                }
            }
            ConflistPath = CniConflist.Write(config.CniConfDir, config.EndpointSocket, config.DelQueueDir, config.CniVersion);
            _state = "running";
            LogStarted(logger, string.Join(", ", cidrs), config.PodCidrsFromNode ? $"Node {options.NodeName}'s spec.podCIDRs" : DatapathSettings.PodCidr.Key,
                config.HostDevice, config.EndpointSocket, ConflistPath, remote.Nodes.Count);
        }
#pragma warning disable CA1031 // pod networking failing must not take runtime security down with it: the state says why
        catch (Exception e) when (e is not OperationCanceledException)
#pragma warning restore CA1031
        {
            _state = $"failed: {e.Message}";
            LogFailed(logger, e.Message);
        }
    }

    /// <summary>
    /// The identity backend: this node's file, or the Kubernetes API (whose watch, heartbeat and
    /// garbage collection then run until the agent stops). Endpoints restored next wait at most
    /// the allocator's timeout for the first list of identities; without it they keep their numbers.
    /// </summary>
    private IIdentityBackend OpenIdentities(DatapathOptions config)
    {
        if (config.IdentityAllocation == IdentityAllocationMode.Local)
        {
            return IdentityAllocator.Open(Path.Combine(config.EndpointStateDir, "identities.json"));
        }
        var client = parts.KubernetesClient?.Invoke() ?? Resources.Connect(options.Kubeconfig);
        var allocator = new Palisade.Kubernetes.Identities.ClusterIdentityAllocator(client, options.NodeName, new Palisade.Kubernetes.Identities.ClusterIdentityOptions
        {
            GcInterval = config.IdentityGcInterval,
            HeartbeatTimeout = config.IdentityHeartbeatTimeout,
        }, TimeProvider.System, logger);
        ClusterIdentities = allocator;
        _identities = Task.Run(() => allocator.RunAsync(_stop.Token));
        LogClusterIdentities(logger, options.NodeName);
        return new ClusterIdentityBackend(allocator);
    }

    /// <summary>
    /// The Kubernetes side's Node informer saw a change: this node's pod CIDRs start pod
    /// networking when it waits for them (or are compared with the configured ones), and the
    /// other Nodes' routes are brought up to date. Runs on the informer's thread.
    /// </summary>
    public void NodesChanged(ClusterNodes nodes)
    {
        if (options.Datapath is not { } config || !nodes.IsSynced)
        {
            return;
        }
        var own = nodes.Own;
        lock (_sync)
        {
            if (_stopping)
            {
                return;
            }
            _apiNodes = nodes.Others;
            var problems = new List<string>();
            var fromNode = own is null ? [] : ClusterNetwork.PodCidrs(own, problems);
            foreach (var problem in problems)
            {
                SayOnce(problem, () => LogNodeProblem(logger, problem));
            }
            if (config.PodCidrsFromNode && _state.StartsWith("waiting", StringComparison.Ordinal))
            {
                if (own is null)
                {
                    _state = $"waiting: the Kubernetes API has no Node named {options.NodeName}, so this node's pod CIDRs are unknown. Fix: check {AgentSettings.NodeName.Key} (or NODE_NAME) names this node's Node object";
                    SayOnce(_state, () => LogStillWaiting(logger, _state));
                    return;
                }
                if (fromNode.Count == 0)
                {
                    _state = "waiting: " + ClusterNetwork.MissingPodCidrs(options.NodeName);
                    SayOnce(_state, () => LogStillWaiting(logger, _state));
                    return;
                }
                LogNodeCidrs(logger, options.NodeName, string.Join(", ", fromNode));
                _state = "starting";
                _deferredStart = Task.Run(() => StartNetworkingAsync(config, fromNode, _stop.Token));
                return;
            }
            var inUse = config.PodCidrsFromNode ? _cidrs : config.PodCidrs;
            if (inUse.Count > 0 && fromNode.Count > 0 && !ClusterNetwork.SameCidrs(inUse, fromNode))
            {
                var key = $"cidrs {string.Join(",", fromNode)}";
                if (config.PodCidrsFromNode)
                {
                    SayOnce(key, () => LogNodeCidrsChanged(logger, options.NodeName, string.Join(", ", fromNode), string.Join(", ", inUse)));
                }
                else
                {
                    SayOnce(key, () => LogConfiguredCidrsDiffer(logger, string.Join(", ", inUse), options.NodeName, string.Join(", ", fromNode)));
                }
            }
        }
        ApplyRemoteNodes(config);
    }

    /// <summary>The Kubernetes API cannot be used: a start waiting for the Node's pod CIDRs says why.</summary>
    public void KubernetesUnavailable(string reason)
    {
        lock (_sync)
        {
            if (_state.StartsWith("waiting", StringComparison.Ordinal))
            {
                _state = $"waiting: for the pod CIDRs of Node {options.NodeName}, but the Kubernetes API cannot be used ({reason}). Fix: make it reachable, or set {DatapathSettings.PodCidr.Key}";
            }
        }
    }

    /// <summary>From now on endpoints take their labels from the cluster's Pod and Namespace objects.</summary>
    public void UsePodLabels(IPodLabelSource source)
    {
        lock (_sync)
        {
            _podLabels = source;
            Endpoints?.PodLabels = source;
        }
    }

    /// <summary>A pod's labels changed (or its namespace's, with <paramref name="podName"/> null): its endpoints follow.</summary>
    public void PodLabelsChanged(string podNamespace, string? podName) => Endpoints?.RefreshLabels(podNamespace, podName);

    private void ApplyRemoteNodes(DatapathOptions config)
    {
        lock (_routesGate)
        {
            if (RemoteNodes is not { } remote)
            {
                return; // applied when pod networking starts
            }
            try
            {
                remote.Apply(MergedRemoteNodes(config));
            }
#pragma warning disable CA1031 // one Node the kernel refuses a route to must not stop the informer: said, retried on the next change
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogRoutesFailed(logger, e.Message);
            }
        }
    }

    /// <summary>--remote-nodes and the other Nodes merged; each replacement and problem logged once.</summary>
    private List<RemoteNode> MergedRemoteNodes(DatapathOptions config)
    {
        var notes = new List<string>();
        var problems = new List<string>();
        IReadOnlyList<NodeNetwork> nodes;
        lock (_sync)
        {
            nodes = _apiNodes;
        }
        var merged = ClusterNetwork.Merge(config.RemoteNodes, nodes, _cidrs, notes, problems);
        foreach (var note in notes)
        {
            SayOnce(note, () => LogReplaced(logger, note));
        }
        foreach (var problem in problems)
        {
            SayOnce(problem, () => LogNodeProblem(logger, problem));
        }
        return merged;
    }

    /// <summary>Node events repeat (resyncs, heartbeats): each message is logged once.</summary>
    private void SayOnce(string key, Action log)
    {
        bool fresh;
        lock (_said)
        {
            fresh = _said.Add(key);
        }
        if (fresh)
        {
            log();
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (options.Datapath is not { } config || _state == "off")
        {
            return;
        }
        lock (_sync)
        {
            _stopping = true;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _deferredStart.ConfigureAwait(false);
            await _identities.WaitAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
        }
        // The conflist goes first: a runtime must not call ADD on a socket about to close.
        if (ConflistPath is not null)
        {
            try
            {
                CniConflist.Remove(config.CniConfDir);
            }
            catch (IOException e)
            {
                LogFailed(logger, $"could not remove {ConflistPath}: {e.Message}");
            }
            ConflistPath = null;
        }
        await DisposeAsync().ConfigureAwait(false);
        _state = "stopped";
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Dispose();
        var host = _host;
        _host = null;
        if (host is not null)
        {
            await host.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The "datapath" object of /v1/status.</summary>
    public void WriteStatus(Utf8JsonWriter w)
    {
        w.WriteStartObject("datapath");
        w.WriteString("state", _state);
        if (options.Datapath is { } config)
        {
            w.WriteString("pod_cidrs_from", config.PodCidrsFromNode ? "node" : "config");
            w.WriteStartArray("pod_cidrs");
            foreach (var cidr in config.PodCidrsFromNode ? _cidrs : config.PodCidrs)
            {
                w.WriteStringValue(cidr.ToString());
            }
            w.WriteEndArray();
            w.WriteString("endpoint_socket", config.EndpointSocket);
            w.WriteString("host_device", config.HostDevice);
            if (ConflistPath is { } conflist)
            {
                w.WriteString("cni_conflist", conflist);
            }
        }
        if (Endpoints is { } endpoints)
        {
            w.WriteNumber("endpoints", endpoints.All.Count);
            w.WriteNumber("identities", endpoints.Identities.Count);
            w.WriteString("identity_allocation", options.Datapath?.IdentityAllocation == IdentityAllocationMode.Crd ? "crd" : "local");
            if (ClusterIdentities is { } cluster)
            {
                // What an operator checks when ADD answers "try again later": is the identity API reachable?
                w.WriteStartObject("cluster_identities");
                w.WriteBoolean("synced", cluster.Synced.IsCompletedSuccessfully);
                w.WriteNumber("known", cluster.Known().Count);
                w.WriteNumber("created", cluster.Created);
                w.WriteNumber("adopted", cluster.Adopted);
                w.WriteNumber("conflicts", cluster.Conflicts);
                w.WriteNumber("deleted", cluster.Deleted);
                w.WriteNumber("errors", cluster.Errors);
                if ((cluster.LastError ?? cluster.Informer.Stats.LastError) is { } error)
                {
                    w.WriteString("last_error", error);
                }
                w.WriteStartArray("problems");
                foreach (var problem in cluster.Problems)
                {
                    w.WriteStringValue(problem);
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteStartArray("pools");
            foreach (var pool in endpoints.Ipam.Pools)
            {
                w.WriteStartObject();
                w.WriteString("cidr", pool.Cidr.ToString());
                w.WriteString("gateway", pool.Gateway.ToString());
                w.WriteNumber("allocated", pool.Used);
                w.WriteString("capacity", pool.Capacity.ToString(System.Globalization.CultureInfo.InvariantCulture));
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (RemoteNodes is { } remote)
        {
            w.WriteNumber("remote_nodes", remote.Nodes.Count);
        }
        if (Restored is { } r)
        {
            w.WriteStartObject("restore");
            w.WriteNumber("adopted", r.Adopted.Count);
            w.WriteNumber("dropped", r.Dropped.Count);
            w.WriteNumber("replayed_dels", r.Replayed.Count);
            w.WriteNumber("leaked_addresses_released", r.LeakedAddresses.Count);
            w.WriteNumber("problems", r.Problems.Count);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    /// <summary>Logs each refused request with its CNI code, so a failing ADD is visible on the node, not only to the runtime.</summary>
    private sealed class LoggedEndpointApi(EndpointApi api, ILogger logger) : Palisade.Cni.Api.IEndpointApi
    {
        public async Task<Palisade.Cni.Api.Response> HandleAsync(Palisade.Cni.Api.Request request, CancellationToken cancellationToken)
        {
            var response = await api.HandleAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.Error is { } error)
            {
                LogRequestFailed(logger, request.OpCase.ToString(), error.Code, error.Msg);
            }
            return response;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Pod networking running: pod CIDRs {Cidrs} (from {Source}), gateways on {Device}, endpoint socket {Socket}, CNI config {Conflist}, {RemoteNodes} remote nodes routed")]
    private static partial void LogStarted(ILogger logger, string cidrs, string source, string device, string socket, string conflist, int remoteNodes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Identities are allocated cluster-wide through the Kubernetes API (PalisadeIdentity objects), node {Node}")]
    private static partial void LogClusterIdentities(ILogger logger, string node);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pod networking waits for Node {Node}'s spec.podCIDRs (no pod-cidr is set); no CNI config is written until they are known")]
    private static partial void LogWaiting(ILogger logger, string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pod networking still waiting: {Reason}")]
    private static partial void LogStillWaiting(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node}'s pod CIDRs are {Cidrs}: starting pod networking")]
    private static partial void LogNodeCidrs(ILogger logger, string node, string cidrs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {Node}'s spec.podCIDRs changed to {Now}; changing the pod CIDRs of a running node is not supported, {Kept} stay in use. Fix: drain the node and restart the agent")]
    private static partial void LogNodeCidrsChanged(ILogger logger, string node, string now, string kept);

    [LoggerMessage(Level = LogLevel.Warning, Message = "pod-cidr {Configured} differs from Node {Node}'s spec.podCIDRs {FromNode}; the configured pod-cidr is used. Fix: make them agree (pods of other nodes route to this node by the Node's), or leave pod-cidr empty to use the Node's")]
    private static partial void LogConfiguredCidrsDiffer(ILogger logger, string configured, string node, string fromNode);

    [LoggerMessage(Level = LogLevel.Information, Message = "Remote nodes: {Note}")]
    private static partial void LogReplaced(ILogger logger, string note);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Remote nodes: {Problem}")]
    private static partial void LogNodeProblem(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Error, Message = "Remote node routes not updated: {Reason}")]
    private static partial void LogRoutesFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Endpoint {Id} ({Namespace}/{Pod}): labels changed, identity {Before} -> {After}")]
    private static partial void LogRelabeled(ILogger logger, uint id, string? @namespace, string? pod, uint before, uint after);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Problem}")]
    private static partial void LogRelabelFailed(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "Endpoints restored: {Adopted} adopted, {Dropped} gone while the agent was down, {Replayed} queued DELs replayed, {Leaked} leaked address holders released")]
    private static partial void LogRestored(ILogger logger, int adopted, int dropped, int replayed, int leaked);

    [LoggerMessage(Level = LogLevel.Information, Message = "Endpoint restore: {Detail}")]
    private static partial void LogRestoreDetail(ILogger logger, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Endpoint restore: {Problem}")]
    private static partial void LogRestoreProblem(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "IPAM state: {File} ignored")]
    private static partial void LogIpamIgnored(ILogger logger, string file);

    [LoggerMessage(Level = LogLevel.Error, Message = "Pod networking not started: {Reason}. No CNI config is written, so runtimes see the network as not ready")]
    private static partial void LogFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Endpoint API {Operation} refused (CNI error {Code}): {Message}")]
    private static partial void LogRequestFailed(ILogger logger, string operation, uint code, string message);
}
