using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Bpf;
using Palisade.Bpf.Probe;
using Palisade.Datapath;
using Palisade.Datapath.Flows;
using Palisade.Datapath.Sockets;
using Palisade.Events;
using Palisade.Runtime.Processes;

namespace Palisade.Agent;

/// <summary>
/// The flow side of the process sensor: starts the socket-owner table over the sensor's
/// process table, and decodes the flow records the datapath writes to the sensor's ring
/// buffer into flows that name their process. Endpoints come from the
/// <see cref="IEndpointDirectory"/> registered by the datapath (none: flows name no pods).
/// Without the hooks it needs (older kernels) it logs why and flows carry no process.
/// </summary>
internal sealed partial class FlowSensorService(Configuration.AgentOptions options, ProcessSensorService processes, KernelSetupService kernel, EventHub hub, TimeProvider time,
    IServiceProvider services, ILogger<FlowSensorService> logger) : IHostedService, IDisposable
{
    private static readonly string[] Needed =
        [KernelFeature.TpBtf, KernelFeature.Sockops, KernelFeature.CgroupSendmsg4, KernelFeature.CgroupSkb, KernelFeature.CgroupSock, KernelFeature.RdonlyCast];

    private SocketOwnerSensor? _owners;

    /// <summary>The socket-owner table, for the datapath object's ReuseFrom; null when it could not start.</summary>
    public SocketOwnerSensor? SocketOwners => _owners;

    /// <summary>The flow decoder attached to the process sensor's ring buffer; null before start or without a process sensor.</summary>
    public FlowDecoder? Decoder { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (processes.Sensor is not { } sensor)
        {
            return Task.CompletedTask;
        }
        var endpoints = services.GetService<IEndpointDirectory>() ?? NoEndpoints.Instance;
        Decoder = new FlowDecoder(endpoints, new CacheResolver(sensor), new BootClock(time).BootTime, hub.Publish, new SysfsInterfaceNames(time));
        sensor.AttachFlowConsumer(Decoder);
        if (kernel.Probe is { } probe && Needed.FirstOrDefault(f => !probe.IsAvailable(f)) is { } missing)
        {
            LogUnavailable(logger, missing, probe.Find(missing)?.Detail ?? "");
            return Task.CompletedTask;
        }
        // Pinned with the process sensor's maps (--keep-sensors-on-exit), so the datapath's
        // programs, which keep running while no agent does, keep a table to read.
        var owners = new SocketOwnerSensor(new SocketOwnerOptions
        {
            PinDirectory = options.KeepSensorsOnExit ? Palisade.Runtime.SensorPins.Maps(options.BpfDir, "sockets") : null,
        });
        try
        {
            owners.Start(sensor.ProcessMap);
            _owners = owners;
            LogStarted(logger, owners.CgroupRoot ?? "");
        }
        catch (Exception e) when (e is BpfException or InvalidOperationException)
        {
            // Flows still decode; they name no process.
            owners.Dispose();
            LogStartFailed(logger, e.Message);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        processes.Sensor?.DetachFlowConsumer();
        if (_owners is { } owners)
        {
            var stats = owners.Stats();
            LogStopped(logger, stats.Owned, stats.Released, stats.TableFull, Decoder?.Stats.Decoded ?? 0);
            _owners = null;
            owners.Dispose();
        }
        return Task.CompletedTask;
    }

    public void Dispose() => _owners?.Dispose();

    private sealed class CacheResolver(Palisade.Runtime.ProcessSensor sensor) : IFlowProcessResolver
    {
        public ProcessRecord? Resolve(uint tgid, ulong ktime) => sensor.Resolve(tgid, ktime);
    }

    private sealed class NoEndpoints : IEndpointDirectory
    {
        public static readonly NoEndpoints Instance = new();

        public Endpoint? ById(uint id) => null;

        public Endpoint? ByAddress(System.Net.IPAddress address) => null;

        public IReadOnlyCollection<Endpoint> All => [];
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Socket-owner table not started: this kernel lacks {Feature} ({Detail}); flows will not name their process")]
    private static partial void LogUnavailable(ILogger logger, string feature, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Socket-owner table failed to start: {Reason}; flows will not name their process")]
    private static partial void LogStartFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Socket-owner table running, its programs attached to the cgroup {Root}")]
    private static partial void LogStarted(ILogger logger, string root);

    [LoggerMessage(Level = LogLevel.Information, Message = "Socket-owner table stopped: {Owned} sockets owned, {Released} released, {Full} refused (table full); {Flows} flows decoded")]
    private static partial void LogStopped(ILogger logger, ulong owned, ulong released, ulong full, long flows);
}
