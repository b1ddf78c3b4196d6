using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;
using Palisade.Events;

namespace Palisade.Agent.NetworkPolicy;

/// <summary>
/// Keeps the <see cref="NetworkPolicyEngine"/> fed: the files of --network-policy-dir, the
/// policies of the Kubernetes API (KubernetesService calls <see cref="SetKubernetesPolicy"/>),
/// and the local endpoints of pod networking (their ADD, DEL and label changes); once pod
/// networking runs, compiled policies go to its datapath. A file is applied as soon as it is
/// whole (its writer closed it, or it was moved into place: <see cref="DirectoryWatcher"/>); a
/// file still open for writing waits until it has been quiet for 200 ms; a rescan every 2 s
/// catches anything missed. A bad file is logged and shown in the status, and changes nothing else.
/// </summary>
internal sealed partial class NetworkPolicyService(AgentOptions options, DatapathService datapath, DatapathParts parts, ILogger<NetworkPolicyService> logger)
    : IHostedService, IDisposable, IFlowPolicyResolver
{
    /// <summary>Quiet time after a write to a file its writer still holds open, before it is read anyway.</summary>
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(200);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, (DateTime Stamp, long Length)> _files = new(StringComparer.Ordinal);
    private DirectoryWatcher? _watcher;
    private Timer? _debounce;
    private Timer? _rescan;
    private Timer? _endpointSync;
    private NodeEndpoints? _subscribed;
    private bool _stopped;

    public NetworkPolicyEngine Engine { get; } = new(options.NetworkPolicy, options.NodeName);

    public string? PolicyDir => options.NetworkPolicyDir;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        options.PolicyRules.Target = this;
        if (options.NetworkPolicyDir is { } dir)
        {
            if (!Directory.Exists(dir))
            {
                LogNoDir(logger, dir);
            }
            SyncDirectory(dir);
            try
            {
                if (Directory.Exists(dir))
                {
                    _watcher = new DirectoryWatcher(dir, (change, name) => OnChange(dir, change, name));
                }
            }
            catch (IOException e)
            {
                LogNoWatch(logger, dir, e.Message);
            }
            _debounce = new Timer(_ => Guarded(() => SyncDirectory(dir)));
            _rescan = new Timer(_ => Guarded(() => SyncDirectory(dir)), null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));
        }
        // Pod networking may start later (it can wait for the Node's pod CIDRs): looked at every second.
        _endpointSync = new Timer(_ => Guarded(SyncEndpoints), null, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        return Task.CompletedTask;
    }

    private void OnChange(string dir, DirectoryChange change, string? name)
    {
        if (name is null || name == KubernetesVolumeData)
        {
            // Anything may have changed: an event queue overflow, or a ConfigMap volume's swap
            // (its files are links through ..data, replaced by one rename).
            Guarded(() => SyncDirectory(dir));
            return;
        }
        var path = Path.Combine(dir, name);
        if (!IsPolicyFile(path))
        {
            return;
        }
        if (change == DirectoryChange.Complete)
        {
            Guarded(() => SyncDirectory(dir, path));
        }
        else
        {
            lock (_gate)
            {
                if (!_stopped)
                {
                    _debounce?.Change(Debounce, Timeout.InfiniteTimeSpan);
                }
            }
        }
    }

    /// <summary>The link a Kubernetes ConfigMap or Secret volume swaps to replace its files at once.</summary>
    private const string KubernetesVolumeData = "..data";

    private void Guarded(Action action)
    {
        try
        {
            action();
        }
#pragma warning disable CA1031 // a background sync failing must be logged and retried, not crash the agent
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogSyncFailed(logger, e.Message);
        }
    }

    /// <summary>
    /// Reads the files of the directory that changed since the last look (only
    /// <paramref name="only"/> when given: the one file known to be whole); files gone are removed.
    /// </summary>
    public void SyncDirectory(string dir, string? only = null)
    {
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }
            var present = new HashSet<string>(StringComparer.Ordinal);
            if (Directory.Exists(dir))
            {
                IEnumerable<string> files = only is null ? Directory.EnumerateFiles(dir).Where(IsPolicyFile).Order(StringComparer.Ordinal) : File.Exists(only) ? [only] : [];
                foreach (var path in files)
                {
                    present.Add(path);
                    FileInfo info;
                    try
                    {
                        info = new FileInfo(path);
                        var stamp = (info.LastWriteTimeUtc, info.Length);
                        if (_files.TryGetValue(path, out var known) && known == stamp)
                        {
                            continue;
                        }
                        var text = File.ReadAllText(path);
                        _files[path] = stamp;
                        Engine.SetSource(path, "file", text);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        _files.Remove(path);
                        Engine.SetSourceUnreadable(path, "file", $"cannot read the file: {e.Message}. Fix: make it readable by the agent (root).");
                    }
                    Report(path);
                }
            }
            var gone = only is null
                ? Engine.Sources(Path.TrimEndingDirectorySeparator(dir) + Path.DirectorySeparatorChar).Where(s => !present.Contains(s)).ToList()
                : present.Count == 0 && Engine.Sources(only).Contains(only) ? [only] : [];
            foreach (var source in gone)
            {
                _files.Remove(source);
                Engine.RemoveSource(source);
                LogRemoved(logger, source);
            }
        }
    }

    private void Report(string source)
    {
        var status = Engine.SourceStatus().FirstOrDefault(s => s.Source == source);
        if (status is null)
        {
            return;
        }
        if (status.Errors.Count > 0)
        {
            LogBadFile(logger, source, status.Errors.Count, string.Join("; ", status.Errors), status.KeptFrom is null ? "nothing of it is in force" : $"its version of {status.KeptFrom:u} stays in force");
        }
        else
        {
            LogLoaded(logger, source, status.Policies.Count, string.Join(", ", status.Policies));
        }
        foreach (var warning in status.Warnings)
        {
            LogWarning(logger, source, warning.ToString());
        }
        if (Engine.LastError is { } error)
        {
            LogApplyFailed(logger, error);
        }
    }

    private static bool IsPolicyFile(string path)
    {
        var name = Path.GetFileName(path);
        if (name.StartsWith('.') || name.EndsWith('~'))
        {
            return false; // editors' swap and backup files
        }
        var ext = Path.GetExtension(name);
        return ext.Equals(".yaml", StringComparison.OrdinalIgnoreCase) || ext.Equals(".yml", StringComparison.OrdinalIgnoreCase) || ext.Equals(".json", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A policy object of the Kubernetes API (its JSON, which the YAML parser reads), or null when it was deleted.</summary>
    public void SetKubernetesPolicy(string kind, string? ns, string name, string? json)
    {
        var source = $"kubernetes:{kind}/{(ns is null ? "" : ns + "/")}{name}";
        if (json is null)
        {
            Engine.RemoveSource(source);
            return;
        }
        Engine.SetSource(source, "kubernetes", json);
        Report(source);
    }

    /// <summary>The Kubernetes objects known now; the others are removed (a relist after a watch gap).</summary>
    public void RetainKubernetesPolicies(IReadOnlySet<string> sources)
    {
        foreach (var gone in Engine.Sources("kubernetes:").Where(s => !sources.Contains(s)).ToList())
        {
            Engine.RemoveSource(gone);
        }
    }

    private void SyncEndpoints()
    {
        if (datapath.Endpoints is not { } endpoints)
        {
            return;
        }
        bool fresh;
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }
            fresh = !ReferenceEquals(_subscribed, endpoints);
            if (fresh)
            {
                _subscribed = endpoints;
                endpoints.Added += _ => Guarded(SyncEndpoints);
                endpoints.Removed += _ => Guarded(SyncEndpoints);
                endpoints.Relabeled += (_, _) => Guarded(SyncEndpoints);
            }
        }
        if (fresh)
        {
            var policyDatapath = parts.PolicyDatapath();
            Engine.UseDatapath(policyDatapath);
            LogDatapath(logger, policyDatapath is null
                ? "this datapath does not enforce network policy yet: policies are validated and reported, not enforced"
                : "compiled policies are written to the BPF datapath");
        }
        Engine.SetEndpoints(endpoints.All);
        if (Engine.LastError is { } error)
        {
            LogApplyFailed(logger, error);
        }
    }

    /// <summary>The rule a flow's PolicyRule names, for the flow's policy_match.</summary>
    public FlowPolicyMatch? Resolve(uint rule) =>
        Engine.RuleOf(rule) is { } origin
            ? new FlowPolicyMatch(origin.Policy.Kind.ToString(), origin.Policy.Namespace, origin.Policy.Name, origin.Source, origin.Rule)
            : null;

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        DirectoryWatcher? watcher;
        lock (_gate)
        {
            _stopped = true;
            watcher = _watcher;
            _watcher = null;
            _debounce?.Dispose();
            _rescan?.Dispose();
            _endpointSync?.Dispose();
        }
        watcher?.Dispose(); // outside the lock: its thread may be waiting for it
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "network-policy-dir {Dir} does not exist: no network policies from files until it does (it is looked at every 2 s)")]
    private static partial void LogNoDir(ILogger logger, string dir);

    [LoggerMessage(Level = LogLevel.Warning, Message = "network-policy-dir {Dir} cannot be watched ({Reason}); changes apply on the 2 s rescan")]
    private static partial void LogNoWatch(ILogger logger, string dir, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Network policy file {File}: {Count} policies ({Names})")]
    private static partial void LogLoaded(ILogger logger, string file, int count, string names);

    [LoggerMessage(Level = LogLevel.Error, Message = "Network policy file {File}: {Count} errors, {Kept}: {Errors}")]
    private static partial void LogBadFile(ILogger logger, string file, int count, string errors, string kept);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Network policy file {File}: {Warning}")]
    private static partial void LogWarning(ILogger logger, string file, string warning);

    [LoggerMessage(Level = LogLevel.Information, Message = "Network policy file {File} removed: its policies no longer apply")]
    private static partial void LogRemoved(ILogger logger, string file);

    [LoggerMessage(Level = LogLevel.Error, Message = "Network policy: {Error}")]
    private static partial void LogApplyFailed(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Network policy: pod networking runs, {What}")]
    private static partial void LogDatapath(ILogger logger, string what);

    [LoggerMessage(Level = LogLevel.Error, Message = "Network policy sync failed: {Reason}")]
    private static partial void LogSyncFailed(ILogger logger, string reason);
}
