using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Bpf;
using Palisade.Bpf.Probe;
using Palisade.Events;
using Palisade.Runtime;

namespace Palisade.Agent;

/// <summary>Runs the process lifecycle sensor for the agent's lifetime and logs its loss counters.</summary>
internal sealed partial class ProcessSensorService(AgentOptions options, KernelSetupService kernel, EventHub hub, TimeProvider time, Palisade.Kubernetes.PodCache pods,
    ILogger<ProcessSensorService> logger)
    : IHostedService, IDisposable
{
    private ProcessSensor? _sensor;
    private ITimer? _report;
    private ulong _lastLost;

    /// <summary>The running process sensor; null before it started, when it could not, and once stopping.</summary>
    public ProcessSensor? Sensor => _sensor;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var probe = kernel.Probe;
        if (probe is not null && (!probe.IsAvailable(KernelFeature.RawTracepoint) || !probe.IsAvailable(KernelFeature.Ringbuf)))
        {
            LogUnavailable(logger, probe.Find(KernelFeature.RawTracepoint)?.Detail ?? "", probe.Find(KernelFeature.Ringbuf)?.Detail ?? "");
            return Task.CompletedTask;
        }
        if (!options.KeepSensorsOnExit)
        {
            // An earlier run with --keep-sensors-on-exit left its programs attached: without the
            // flag this run must not leave them there (nor run them twice beside its own).
            try
            {
                if (SensorPins.Remove(options.BpfDir) is var removed and > 0)
                {
                    LogStaleRemoved(logger, removed, options.BpfDir);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogStaleRemoveFailed(logger, options.BpfDir, e.Message);
            }
        }
        var sensor = new ProcessSensor(new ProcessSensorOptions
        {
            NodeName = options.NodeName,
            ArgsMax = options.ProcessArgsMax,
            RingBufferBytes = options.RingBufferSize,
            ProcRoot = options.ProcFs,
            CacheCapacity = options.ProcessCacheSize,
            CacheGrace = options.ProcessCacheGrace,
            CacheGcInterval = options.ProcessCacheGcInterval,
            Ancestors = options.EnableAncestors,
            UserNames = options.UsernameMetadata,
            PinDirectory = options.KeepSensorsOnExit ? options.BpfDir : null,
        }, hub, time, options.Kubernetes ? pods : null);
        try
        {
            sensor.Start();
        }
        catch (BpfException e)
        {
            sensor.Dispose();
            LogStartFailed(logger, e, e.Message);
            throw;
        }
        _sensor = sensor;
        LogStarted(logger, sensor.SeededFromProcFs);
        if (sensor.PinDirectory is { } pins)
        {
            if (sensor.StaleRemoved)
            {
                LogPinsIncompatible(logger, pins);
            }
            LogPinned(logger, pins, sensor.AdoptedLinks);
        }
        _report = time.CreateTimer(_ => ReportLosses(), null, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10));
        return Task.CompletedTask;
    }

    private void ReportLosses()
    {
        if (_sensor is null)
        {
            return;
        }
        var stats = _sensor.Stats();
        if (stats.KernelLost > _lastLost)
        {
            LogLost(logger, stats.KernelLost - _lastLost, stats.LostExec, stats.LostExit, stats.LostFork);
            _lastLost = stats.KernelLost;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _report?.Dispose();
        if (_sensor is { } sensor)
        {
            var stats = sensor.Stats();
            LogStopped(logger, stats.Decoder.Exec, stats.Decoder.Exit, stats.KernelLost, stats.Cache.Count);
            _sensor = null;
            sensor.Dispose();
        }
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _report?.Dispose();
        _sensor?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Removed {Count} pins of an earlier run with --keep-sensors-on-exit from {Dir}: their programs are detached")]
    private static partial void LogStaleRemoved(ILogger logger, int count, string dir);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot remove the pins of an earlier run under {Dir}: {Reason}. Its programs may still be attached; remove the directory by hand")]
    private static partial void LogStaleRemoveFailed(ILogger logger, string dir, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The pins under {Dir} did not fit this agent (other settings or build) and were replaced: enforcement paused while the sensors reloaded")]
    private static partial void LogPinsIncompatible(ILogger logger, string dir);

    [LoggerMessage(Level = LogLevel.Information, Message = "Process sensor pinned under {Dir} (--keep-sensors-on-exit): {Adopted} links of the earlier run taken over, programs stay attached after exit")]
    private static partial void LogPinned(ILogger logger, string dir, int adopted);

    [LoggerMessage(Level = LogLevel.Error, Message = "Process sensor not started: it needs raw tracepoints ({RawTp}) and ring buffers ({Ringbuf})")]
    private static partial void LogUnavailable(ILogger logger, string rawTp, string ringbuf);

    [LoggerMessage(Level = LogLevel.Error, Message = "Process sensor failed to start: {Reason}")]
    private static partial void LogStartFailed(ILogger logger, Exception e, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Process sensor running: {Seeded} processes read from /proc")]
    private static partial void LogStarted(ILogger logger, int seeded);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Process sensor lost {Lost} events in the kernel (ring buffer full): exec {Exec}, exit {Exit}, fork {Fork} in total. Raise --rb-size.")]
    private static partial void LogLost(ILogger logger, ulong lost, ulong exec, ulong exit, ulong fork);

    [LoggerMessage(Level = LogLevel.Information, Message = "Process sensor stopped after {Execs} execs and {Exits} exits; {Lost} lost in the kernel; {Cached} records cached")]
    private static partial void LogStopped(ILogger logger, long execs, long exits, ulong lost, int cached);
}
