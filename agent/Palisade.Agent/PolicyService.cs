using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Bpf;
using Palisade.Events;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Runtime.Policies;

namespace Palisade.Agent;

internal static class PolicyJson
{
    public static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };
}

/// <summary>
/// Runs the TracingPolicy engine and keeps it in step with --tracing-policy-dir: files added,
/// changed or removed there apply live (a watcher plus a rescan every 2 s, so a missed
/// notification only delays). A bad file is logged with its errors and changes nothing else.
/// </summary>
internal sealed partial class PolicyService(AgentOptions options, KernelSetupService kernel, ProcessSensorService processes, EventHub hub, ILogger<PolicyService> logger)
    : IHostedService, IDisposable
{
    private TracingPolicyEngine? _engine;
    private FileSystemWatcher? _watcher;
    private readonly Dictionary<string, DateTime> _emptySince = new(StringComparer.Ordinal);
    private Timer? _rescan;
    private readonly Lock _sync = new();
    private readonly Dictionary<string, (DateTime Stamp, long Length, List<string> Names)> _files = new(StringComparer.Ordinal);

    /// <summary>The TracingPolicy engine; null before it started, when it could not, and once stopping.</summary>
    public TracingPolicyEngine? Engine => _engine;

    /// <summary>Policy files of the directory that do not parse or apply, with the first error: the status endpoint lists them.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, string> InvalidPolicyFiles { get; } = new(StringComparer.Ordinal);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var sensor = processes.Sensor;
        var missing = new[] { Palisade.Bpf.Probe.KernelFeature.TpBtf, Palisade.Bpf.Probe.KernelFeature.RdonlyCast }
            .Select(f => kernel.Probe?.Find(f))
            .Where(r => r is { Available: false })
            .Select(r => $"{r!.Name} ({r.Detail})")
            .ToList();
        if (missing.Count > 0)
        {
            // The syscall programs are tp_btf and every program reads kernel structs through
            // bpf_rdonly_cast: without them the object cannot load, so say which is missing.
            LogStartFailed(logger, $"this kernel lacks {string.Join(" and ", missing)}; the engine needs both (Linux 6.2 or later with BTF)");
            return Task.CompletedTask;
        }
        if (sensor is null)
        {
            LogStartFailed(logger, "the process sensor is not running, and the engine works on its process table and ring buffer");
            return Task.CompletedTask;
        }
        var facts = TracingPolicyEngine.FactsFor(options.ProcFs, kernel.Probe?.IsAvailable(Palisade.Bpf.Probe.KernelFeature.Kprobe) ?? false)
            with { PodScoping = options.Kubernetes };
        var engine = new TracingPolicyEngine(hub.Publish, facts, sensor.Resolve, options.ProcFs)
        {
            AncestorKinds = options.AncestorEventTypes.Select(t => t switch
            {
                "kprobe" => EventKind.ProcessKprobe,
                "tracepoint" => EventKind.ProcessTracepoint,
                "uprobe" => EventKind.ProcessUprobe,
                "lsm" => EventKind.ProcessLsm,
                _ => EventKind.ProcessExec,
            }).Where(k => k != EventKind.ProcessExec).ToHashSet(),
        };
        try
        {
            engine.Start(sensor);
        }
        catch (BpfException e)
        {
            engine.Dispose();
            LogStartFailed(logger, e.Message);
            return Task.CompletedTask;
        }
        _engine = engine;
        if (options.TracingPolicyFile is { } single && options.TracingPolicyDir is null)
        {
            Sync(null); // Tetragon's --tracing-policy: one file, read at start
        }
        if (options.TracingPolicyDir is { } dir)
        {
            if (!Directory.Exists(dir))
            {
                LogNoDir(logger, dir);
                if (options.TracingPolicyFile is not null)
                {
                    Sync(null);
                }
            }
            else
            {
                Sync(dir);
                _watcher = new FileSystemWatcher(dir) { IncludeSubdirectories = false, EnableRaisingEvents = true };
                _watcher.Changed += (_, _) => GuardedSync(dir);
                _watcher.Created += (_, _) => GuardedSync(dir);
                _watcher.Deleted += (_, _) => GuardedSync(dir);
                _watcher.Renamed += (_, _) => GuardedSync(dir);
                _rescan = new Timer(_ => GuardedSync(dir), null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));
            }
        }
        // Every policy of the directory is back over the maps an earlier run left pinned:
        // what none of them wrote belongs to policies that are gone. With Kubernetes the
        // restore completes once the cluster's policies are listed too (KubernetesService).
        lock (_sync)
        {
            var adopted = engine.AdoptedLinks;
            if (!options.Kubernetes)
            {
                engine.CompleteRestore();
            }
            if (sensor.PinDirectory is { } pins)
            {
                LogRestored(logger, pins, adopted);
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// <see cref="Sync"/> for the watcher and timer threads, where an exception would end the
    /// process: the directory vanishing mid-listing is retried at the next rescan.
    /// </summary>
    private void GuardedSync(string? dir)
    {
        try
        {
            Sync(dir);
        }
#pragma warning disable CA1031 // on a timer thread any exception kills the agent and every policy's enforcement with it
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            LogSyncFailed(logger, dir ?? options.TracingPolicyFile ?? "", $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Brings the engine in line with the directory's current files and the --tracing-policy file.</summary>
    private void Sync(string? dir)
    {
        lock (_sync)
        {
            var engine = _engine;
            if (engine is null)
            {
                return;
            }
            var present = dir is not null && Directory.Exists(dir)
                ? Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal)
                : [];
            if (options.TracingPolicyFile is { } single)
            {
                if (File.Exists(single))
                {
                    present.Add(Path.GetFullPath(single));
                    InvalidPolicyFiles.TryRemove(single, out _);
                }
                else
                {
                    InvalidPolicyFiles[single] = "tracing-policy: the file does not exist. Fix: give the path of a TracingPolicy YAML file, or drop the setting.";
                }
            }
            foreach (var gone in _files.Keys.Where(f => !present.Contains(f)).ToList())
            {
                foreach (var name in _files[gone].Names)
                {
                    engine.Delete(name);
                    LogDeleted(logger, name, gone);
                }
                _files.Remove(gone);
                _emptySince.Remove(gone);
                InvalidPolicyFiles.TryRemove(gone, out _);
            }
            foreach (var file in present.Order(StringComparer.Ordinal))
            {
                try
                {
                    SyncFile(engine, file);
                }
#pragma warning disable CA1031 // one file, whatever is wrong with it or with us, must never stop the others or the agent
                catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
                {
                    // Marked as seen, so a file that cannot be applied is not retried every
                    // rescan; editing it tries again. What it ran before keeps running.
                    var info = new FileInfo(file);
                    var names = _files.TryGetValue(file, out var before) ? before.Names : [];
                    _files[file] = (info.LastWriteTimeUtc, info.Length, names);
                    InvalidPolicyFiles[file] = $"could not be applied: {e.GetType().Name}: {e.Message}";
                    LogApplyFailed(logger, file, $"{e.GetType().Name}: {e.Message}");
                }
            }
        }
    }

    /// <summary>Applies one file of the directory: its policies replace what it held before.</summary>
    private void SyncFile(TracingPolicyEngine engine, string file)
    {
        FileInfo info;
        string text;
        try
        {
            info = new FileInfo(file);
            if (_files.TryGetValue(file, out var known) && known.Stamp == info.LastWriteTimeUtc && known.Length == info.Length)
            {
                return;
            }
            text = File.ReadAllText(file);
        }
        catch (IOException)
        {
            return; // being written: the next event or rescan picks it up
        }
        if (string.IsNullOrWhiteSpace(text) && _files.TryGetValue(file, out var previous) && previous.Names.Count > 0
            && _emptySince.GetValueOrDefault(file) != info.LastWriteTimeUtc)
        {
            // Empty right now: most likely an editor or `cp` truncated it and is still
            // writing. Keep enforcing what it held; if it is still empty at the next
            // rescan, it really was emptied and its policies go.
            _emptySince[file] = info.LastWriteTimeUtc;
            return;
        }
        _emptySince.Remove(file);
        var parsed = TracingPolicyParser.Parse(text, file);
        var names = new List<string>();
        foreach (var error in parsed.Errors)
        {
            LogInvalid(logger, file, error.ToString());
        }
        if (parsed.Errors.Count > 0)
        {
            InvalidPolicyFiles[file] = parsed.Errors[0].ToString() + (parsed.Errors.Count > 1 ? $" (and {parsed.Errors.Count - 1} more, see the log)" : "");
        }
        else
        {
            InvalidPolicyFiles.TryRemove(file, out _);
        }
        foreach (var policy in parsed.Policies)
        {
            if (options.TracingPolicySelector.Any(kv => !policy.Labels.TryGetValue(kv.Key, out var v) || v != kv.Value))
            {
                LogSkipped(logger, policy.Name, file);
                continue;
            }
            var status = engine.Apply(policy, file);
            names.Add(policy.Name);
            LogApplied(logger, policy.Name, status.State, status.Mode, file,
                string.Join("; ", status.Hooks.Select(h => $"{h.Name}: {h.Mode}" + (h.Mode == "unsupported" ? $" ({h.Detail})" : "")).Concat(status.Errors)));
        }
        if (_files.TryGetValue(file, out var before))
        {
            foreach (var removed in before.Names.Where(n => !names.Contains(n)))
            {
                if (parsed.Errors.Count > 0)
                {
                    // A typo must not switch enforcement off: the last good version
                    // of the policy keeps running until the file is fixed or deleted.
                    names.Add(removed);
                    LogKeptLastGood(logger, removed, file);
                    continue;
                }
                engine.Delete(removed);
                LogDeleted(logger, removed, file);
            }
        }
        _files[file] = (info.LastWriteTimeUtc, info.Length, names);
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _rescan?.Dispose();
        _watcher?.Dispose();
        lock (_sync)
        {
            var engine = _engine;
            _engine = null;
            engine?.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "TracingPolicy engine pinned under {Dir} (--keep-sensors-on-exit): {Adopted} program links of the earlier run taken over; its entries of policies that no longer exist are removed once every policy is re-applied")]
    private static partial void LogRestored(ILogger logger, string dir, int adopted);

    [LoggerMessage(Level = LogLevel.Error, Message = "TracingPolicy engine not started: {Reason}")]
    private static partial void LogStartFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Policy directory {Dir} does not exist; no policies loaded from it")]
    private static partial void LogNoDir(ILogger logger, string dir);

    [LoggerMessage(Level = LogLevel.Error, Message = "Policy file {File} is invalid: {Error}")]
    private static partial void LogInvalid(ILogger logger, string file, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Name} {State} ({Mode}) from {File}: {Hooks}")]
    private static partial void LogApplied(ILogger logger, string name, string state, string mode, string file, string hooks);

    [LoggerMessage(Level = LogLevel.Error, Message = "Policy directory {Dir} could not be read: {Error}; trying again at the next rescan")]
    private static partial void LogSyncFailed(ILogger logger, string dir, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Policy file {File} could not be applied: {Error}. The other files are unaffected; whatever this file ran before keeps running")]
    private static partial void LogApplyFailed(ILogger logger, string file, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Name} in {File} skipped: its labels do not match --tracing-policy-selector")]
    private static partial void LogSkipped(ILogger logger, string name, string file);

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Name} deleted ({File} changed or removed)")]
    private static partial void LogDeleted(ILogger logger, string name, string file);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Policy {Name} keeps running its last good version: {File} has errors (see above); fix or delete the file")]
    private static partial void LogKeptLastGood(ILogger logger, string name, string file);
}
