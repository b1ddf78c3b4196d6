using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;
using Palisade.Datapath.Identity;
using Palisade.Datapath.Ipam;

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

    /// <summary>Tells the datapath which addresses are this node's (the gateways): traffic to them is the host identity.</summary>
    public Action<IReadOnlyList<System.Net.IPAddress>> HostAddresses { get; init; } = _ => { };
}

/// <summary>
/// Pod networking in the agent, when a pod CIDR is configured (otherwise it does nothing, so
/// the runtime-security agent runs as before): creates the host device with the gateways,
/// opens IPAM and identities, restores the endpoints of the last run, replays queued DELs,
/// routes to the other nodes, serves the endpoint socket and, last, writes the CNI conflist
/// so runtimes start using the network only once ADD can succeed. A clean stop removes the
/// conflist and the socket; endpoints, routes and the host device stay (pods keep working).
/// </summary>
internal sealed partial class DatapathService(AgentOptions options, DatapathParts parts, ILogger<DatapathService> logger) : IHostedService, IAsyncDisposable
{
    private IEndpointApiHost? _host;
    private volatile string _state = "off";

    /// <summary>The endpoints of this node; null when pod networking is off or did not start.</summary>
    public NodeEndpoints? Endpoints { get; private set; }

    public RemoteNodeRoutes? RemoteNodes { get; private set; }

    public RestoreReport? Restored { get; private set; }

    /// <summary>"off", "starting", "running", "failed: WHY" or "stopped".</summary>
    public string State => _state;

    /// <summary>Where the conflist was written; null before.</summary>
    public string? ConflistPath { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Datapath is not { } config)
        {
            return;
        }
        _state = "starting";
        try
        {
            var ipam = NodeIpam.Open(config.PodCidrs, config.IpamStateDir);
            foreach (var ignored in ipam.Ignored)
            {
                LogIpamIgnored(logger, ignored);
            }
            HostDevice.Ensure(config.HostDevice, [.. ipam.Pools.Select(p => p.Gateway)]);
            parts.HostAddresses([.. ipam.Pools.Select(p => p.Gateway)]);
            var endpoints = new NodeEndpoints(new NodeEndpointsOptions
            {
                Ipam = ipam,
                Identities = IdentityAllocator.Open(Path.Combine(config.EndpointStateDir, "identities.json")),
                Registry = new EndpointRegistry(Path.Combine(config.EndpointStateDir, "registry")),
                Interfaces = parts.Interfaces(),
                Datapath = parts.EndpointDatapath(),
                DelQueueDirectory = config.DelQueueDir,
                DefaultMtu = config.Mtu,
            });
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
            remote.Apply(config.RemoteNodes);
            RemoteNodes = remote;
            var host = parts.ApiHost();
            await host.StartAsync(config.EndpointSocket, new LoggedEndpointApi(new EndpointApi(endpoints), logger), cancellationToken).ConfigureAwait(false);
            _host = host;
            Endpoints = endpoints;
            ConflistPath = CniConflist.Write(config.CniConfDir, config.EndpointSocket, config.DelQueueDir, config.CniVersion);
            _state = "running";
            LogStarted(logger, string.Join(", ", config.PodCidrs), config.HostDevice, config.EndpointSocket, ConflistPath, config.RemoteNodes.Count);
        }
#pragma warning disable CA1031 // pod networking failing must not take runtime security down with it: the state says why
        catch (Exception e) when (e is not OperationCanceledException)
#pragma warning restore CA1031
        {
            _state = $"failed: {e.Message}";
            LogFailed(logger, e.Message);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (options.Datapath is not { } config || _state == "off")
        {
            return;
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Pod networking running: pod CIDRs {Cidrs}, gateways on {Device}, endpoint socket {Socket}, CNI config {Conflist}, {RemoteNodes} remote nodes routed")]
    private static partial void LogStarted(ILogger logger, string cidrs, string device, string socket, string conflist, int remoteNodes);

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
