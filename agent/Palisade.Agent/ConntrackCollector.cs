using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Palisade.Agent;

/// <summary>
/// Removes expired entries from the datapath's conntrack table every conntrack-gc-interval
/// (Cilium's conntrack GC), once pod networking has loaded the datapath. The programs treat an
/// expired entry as gone already, so a late collection never lets a packet through; it frees
/// room before the LRU has to evict live connections. A failed pass is logged and retried on
/// the next tick; it never stops the agent.
/// </summary>
internal sealed partial class ConntrackCollector(Configuration.AgentOptions options, KernelDatapath kernel, TimeProvider time, ILogger<ConntrackCollector> logger) : BackgroundService
{
    private long _passes;
    private long _removed;
    private long _failures;
    private int _lastRemoved;
    private DateTimeOffset? _lastPass;
    private string? _lastError;

    /// <summary>Null when pod networking is off (nothing to collect).</summary>
    public TimeSpan? Interval => options.Datapath?.ConntrackGcInterval;

    /// <summary>One pass now; nothing while the datapath is not loaded.</summary>
    private void CollectOnce()
    {
        if (kernel.Loaded is not { } datapath)
        {
            return;
        }
        try
        {
            var removed = datapath.CollectConntrack();
            Interlocked.Increment(ref _passes);
            Interlocked.Add(ref _removed, removed);
            _lastRemoved = removed;
            _lastPass = time.GetUtcNow();
            _lastError = null;
        }
        catch (Exception e) when (e is Palisade.Bpf.BpfException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _failures);
            _lastError = e.Message;
            LogFailed(logger, e.Message);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (Interval is not { } interval)
        {
            return;
        }
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                CollectOnce();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>The "conntrack" object of /v1/status: the table's fill, what the LRU evicted, and the collector's passes.</summary>
    public void WriteStatus(Utf8JsonWriter w)
    {
        if (Interval is not { } interval)
        {
            return;
        }
        w.WriteStartObject("conntrack");
        w.WriteNumber("gc_interval_seconds", interval.TotalSeconds);
        if (kernel.Loaded is { } datapath)
        {
            try
            {
                var (entries, capacity, evicted) = datapath.ConntrackUsage();
                w.WriteNumber("entries", entries);
                w.WriteNumber("capacity", capacity);
                w.WriteNumber("evicted", evicted);
            }
            catch (Exception e) when (e is Palisade.Bpf.BpfException or ObjectDisposedException)
            {
                // Closing while read: the next status reads again.
            }
        }
        w.WriteNumber("gc_passes", Interlocked.Read(ref _passes));
        w.WriteNumber("gc_removed", Interlocked.Read(ref _removed));
        w.WriteNumber("gc_last_removed", _lastRemoved);
        if (_lastPass is { } last)
        {
            w.WriteString("gc_last_pass", last);
        }
        w.WriteNumber("gc_failures", Interlocked.Read(ref _failures));
        if (_lastError is { } error)
        {
            w.WriteString("gc_last_error", error);
        }
        w.WriteEndObject();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "conntrack collection failed, retried at the next interval: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
