using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Bpf;
using Palisade.Datapath.Services;
using Palisade.Policies.Services;

namespace Palisade.Agent;

/// <summary>
/// Services in BPF: loads socket-LB (<see cref="ServiceDatapath"/>) and keeps it equal to the
/// Services and EndpointSlices of --service-dir (and, with kube-proxy-replacement, of the
/// Kubernetes API: <see cref="SetKubernetesObjects"/>). A file is read when it is whole
/// (<see cref="DirectoryWatcher"/>), a file still being written when it has been quiet for
/// 200 ms, and everything again every 2 s; a file with errors keeps its last good version.
/// Every change compiles the whole set (pure, <see cref="ServiceCompiler"/>) and writes only
/// the frontends that differ. Nothing here is on the connection path: the programs decide.
/// </summary>
internal sealed partial class ServiceLbService(AgentOptions options, ILogger<ServiceLbService> logger) : IHostedService, IDisposable
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(200);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, SourceState> _files = new(StringComparer.Ordinal);
    private IReadOnlyList<ServiceManifest> _kubeServices = [];
    private IReadOnlyList<EndpointSliceManifest> _kubeSlices = [];
    private IReadOnlyList<IPAddress> _nodeAddresses = [];
    private IReadOnlyList<string> _problems = [];
    private ServiceDatapath? _datapath;
    private DirectoryWatcher? _watcher;
    private Timer? _debounce;
    private Timer? _rescan;
    private bool _stopped;
    private bool _dirty;
    private Func<IReadOnlyDictionary<string, string>>? _kubernetesErrors;

    /// <summary>Why socket-LB is not running although configured; null when it runs or is off.</summary>
    public string? Failure { get; private set; }

    public bool Enabled => options.Services is not null;

    public ServiceDatapath? Datapath => _datapath;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Services is not { } settings)
        {
            return Task.CompletedTask;
        }
        try
        {
            var datapath = new ServiceDatapath(settings.DatapathOptions());
            datapath.Start();
            _datapath = datapath;
            LogStarted(logger, datapath.CgroupRoot ?? "?", settings.Algorithm.ToString().ToLowerInvariant(), settings.ServiceDir ?? "none", settings.FromKubernetes);
        }
        catch (Exception e) when (e is BpfException or InvalidOperationException or ArgumentException)
        {
            // Pod networking, policies and the runtime sensors go on; the status and the log say why services do not.
            Failure = $"socket-LB could not start: {e.Message}";
            LogStartFailed(logger, Failure);
            return Task.CompletedTask;
        }
        if (settings.ServiceDir is { } dir)
        {
            if (!Directory.Exists(dir))
            {
                LogNoDir(logger, dir);
            }
            Guarded(() => Sync(dir));
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
            _debounce = new Timer(_ => Guarded(() => Sync(dir)));
        }
        _rescan = new Timer(_ => Guarded(() =>
        {
            if (settings.ServiceDir is { } d)
            {
                Sync(d);
            }
            else
            {
                Compile(force: false);
            }
        }), null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));
        return Task.CompletedTask;
    }

    private void OnChange(string dir, DirectoryChange change, string? name)
    {
        if (name is not null && name != "..data" && !IsServiceFile(name))
        {
            return;
        }
        if (change == DirectoryChange.Complete)
        {
            Guarded(() => Sync(dir));
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

    private static bool IsServiceFile(string name) =>
        !name.StartsWith('.') && !name.EndsWith('~') &&
        (name.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".yml", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".json", StringComparison.OrdinalIgnoreCase));

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
            // Expected failures (a map full, a kernel refusal, a bad frontend) by their message; anything else with its stack.
            LogSyncFailed(logger, e is BpfException or ArgumentException or InvalidOperationException ? e.Message : e.ToString());
        }
    }

    /// <summary>Reads the files that changed since the last look, forgets those gone, and compiles when anything changed.</summary>
    private void Sync(string dir)
    {
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }
            var changed = false;
            var present = new HashSet<string>(StringComparer.Ordinal);
            if (Directory.Exists(dir))
            {
                foreach (var path in Directory.EnumerateFiles(dir).Where(p => IsServiceFile(Path.GetFileName(p))).Order(StringComparer.Ordinal))
                {
                    present.Add(path);
                    try
                    {
                        var info = new FileInfo(path);
                        var stamp = (info.LastWriteTimeUtc, info.Length);
                        if (_files.TryGetValue(path, out var known) && known.Stamp == stamp)
                        {
                            continue;
                        }
                        var parsed = ServiceManifestParser.Parse(File.ReadAllText(path), path);
                        var state = known ?? new SourceState();
                        state.Stamp = stamp;
                        state.Errors = [.. parsed.Errors.Select(e => e.ToString())];
                        if (parsed.Ok)
                        {
                            state.Good = parsed;
                            LogLoaded(logger, path, parsed.Services.Count, parsed.EndpointSlices.Count);
                        }
                        else
                        {
                            LogBadFile(logger, path, parsed.Errors.Count, string.Join("; ", state.Errors), state.Good is null ? "nothing of it is in force" : "its last good version stays in force");
                        }
                        foreach (var warning in parsed.Warnings)
                        {
                            LogWarning(logger, path, warning.ToString());
                        }
                        _files[path] = state;
                        changed = true;
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        var state = _files.GetValueOrDefault(path) ?? new SourceState();
                        state.Errors = [$"cannot read the file: {e.Message}. Fix: make it readable by the agent (root)."];
                        _files[path] = state;
                    }
                }
            }
            foreach (var gone in _files.Keys.Where(k => !present.Contains(k)).ToList())
            {
                _files.Remove(gone);
                LogRemoved(logger, gone);
                changed = true;
            }
            Compile(force: changed);
        }
    }

    /// <summary>Where the status finds the API objects that could not be parsed (kube-proxy-replacement).</summary>
    public void UseKubernetesErrors(Func<IReadOnlyDictionary<string, string>> errors) => _kubernetesErrors = errors;

    /// <summary>The Services and EndpointSlices of the Kubernetes API now (the whole set).</summary>
    public void SetKubernetesObjects(IReadOnlyList<ServiceManifest> services, IReadOnlyList<EndpointSliceManifest> slices)
    {
        lock (_gate)
        {
            _kubeServices = services;
            _kubeSlices = slices;
            Guarded(() => Compile(force: true)); // called from the informers' side: a failure is logged and retried on the rescan
        }
    }

    /// <summary>Compiles every source and applies the result; also when the node's addresses changed.</summary>
    private void Compile(bool force)
    {
        lock (_gate)
        {
            if (_datapath is not { } datapath || _stopped || options.Services is not { } settings)
            {
                return;
            }
            var addresses = NodeAddresses(settings.NodePortAddresses);
            if (!force && !_dirty && addresses.SequenceEqual(_nodeAddresses))
            {
                return;
            }
            _nodeAddresses = addresses;
            _dirty = true; // until the maps hold the result: a failed apply is retried on the rescan
            var good = _files.Values.Select(f => f.Good).OfType<ServiceManifestParseResult>().ToList();
            var compiled = ServiceCompiler.Compile(
                [.. good.SelectMany(g => g.Services), .. _kubeServices],
                [.. good.SelectMany(g => g.EndpointSlices), .. _kubeSlices],
                new ServiceCompileOptions { NodeName = options.NodeName, NodeAddresses = addresses, DefaultAlgorithm = settings.Algorithm });
            foreach (var problem in compiled.Problems.Except(_problems))
            {
                LogProblem(logger, problem);
            }
            _problems = compiled.Problems;
            datapath.Apply(compiled.Frontends);
            _dirty = false;
            LogApplied(logger, compiled.Frontends.Count, compiled.Frontends.Select(f => f.Service).Distinct().Count());
        }
    }

    /// <summary>This node's addresses for NodePort frontends: every up interface's unicast address but loopback and IPv6 link-local, within the filter when one is set.</summary>
    internal static IReadOnlyList<IPAddress> NodeAddresses(IReadOnlyList<IPNetwork> filter)
    {
        var list = new List<IPAddress>();
        NetworkInterface[] nics;
        try
        {
            nics = NetworkInterface.GetAllNetworkInterfaces();
        }
        catch (NetworkInformationException)
        {
            return [];
        }
        foreach (var nic in nics)
        {
            IEnumerable<UnicastIPAddressInformation> addresses;
            try
            {
                if (nic.NetworkInterfaceType == NetworkInterfaceType.Loopback || nic.OperationalStatus == OperationalStatus.Down)
                {
                    continue;
                }
                addresses = [.. nic.GetIPProperties().UnicastAddresses];
            }
            catch (Exception e) when (e is NetworkInformationException or PlatformNotSupportedException)
            {
                continue; // an interface going away while it is read, or one .NET cannot describe
            }
            foreach (var a in addresses)
            {
                var ip = a.Address;
                if (IPAddress.IsLoopback(ip) || ip.IsIPv6LinkLocal || ip.IsIPv4MappedToIPv6)
                {
                    continue;
                }
                if (filter.Count == 0 || filter.Any(c => c.Contains(ip)))
                {
                    // A frontend address carries no zone: ScopeId exists only on IPv6 (it throws on IPv4).
                    list.Add(ip.AddressFamily == AddressFamily.InterNetworkV6 && ip.ScopeId != 0 ? new IPAddress(ip.GetAddressBytes()) : ip);
                }
            }
        }
        return [.. list.Distinct().OrderBy(a => a.AddressFamily == AddressFamily.InterNetworkV6).ThenBy(a => a.ToString(), StringComparer.Ordinal)];
    }

    /// <summary>The "services" object of /v1/status.</summary>
    public void WriteStatus(Utf8JsonWriter w)
    {
        w.WriteStartObject("services");
        w.WriteBoolean("enabled", Enabled);
        if (Failure is not null)
        {
            w.WriteString("error", Failure);
        }
        lock (_gate)
        {
            if (_datapath is { } datapath)
            {
                var stats = datapath.Stats();
                w.WriteString("cgroup", datapath.CgroupRoot);
                w.WriteNumber("frontends", stats.Frontends);
                w.WriteNumber("backends", stats.Backends);
                w.WriteNumber("slots", stats.Slots);
                w.WriteNumber("map_bytes", stats.MapBytes);
                w.WriteNumber("translated", stats.Translated);
                w.WriteNumber("no_backend", stats.NoBackend);
                w.WriteNumber("backend_miss", stats.BackendMiss);
                w.WriteNumber("revnat_full", stats.RevNatFull);
                w.WriteNumber("affinity_hits", stats.AffinityHits);
                w.WriteNumber("reversed", stats.Reversed);
                w.WriteStartArray("node_addresses");
                foreach (var a in _nodeAddresses)
                {
                    w.WriteStringValue(a.ToString());
                }
                w.WriteEndArray();
            }
            w.WriteStartObject("invalid_files");
            foreach (var (path, state) in _files.Where(f => f.Value.Errors.Count > 0))
            {
                w.WriteString(path, string.Join("; ", state.Errors));
            }
            w.WriteEndObject();
            if (_kubernetesErrors is { } errors)
            {
                // Objects of the API the parser refused (the API server took them, Palisade cannot serve them).
                w.WriteStartObject("invalid_objects");
                foreach (var (id, error) in errors())
                {
                    w.WriteString(id, error);
                }
                w.WriteEndObject();
            }
            w.WriteStartArray("problems");
            foreach (var p in _problems)
            {
                w.WriteStringValue(p);
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

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
            _datapath?.Dispose();
            _datapath = null;
        }
        watcher?.Dispose();
    }

    private sealed class SourceState
    {
        public (DateTime, long) Stamp { get; set; }
        public ServiceManifestParseResult? Good { get; set; }
        public IReadOnlyList<string> Errors { get; set; } = [];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Socket-LB attached to cgroup {Cgroup} (algorithm {Algorithm}, service-dir {Dir}, Kubernetes services {Kubernetes})")]
    private static partial void LogStarted(ILogger logger, string cgroup, string algorithm, string dir, bool kubernetes);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Reason}; services are not served on this node")]
    private static partial void LogStartFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "service-dir {Dir} does not exist: no services from files until it does (it is looked at every 2 s)")]
    private static partial void LogNoDir(ILogger logger, string dir);

    [LoggerMessage(Level = LogLevel.Warning, Message = "service-dir {Dir} cannot be watched ({Reason}); changes apply on the 2 s rescan")]
    private static partial void LogNoWatch(ILogger logger, string dir, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Service file {File}: {Services} services, {Slices} endpoint slices")]
    private static partial void LogLoaded(ILogger logger, string file, int services, int slices);

    [LoggerMessage(Level = LogLevel.Error, Message = "Service file {File}: {Count} errors, {Kept}: {Errors}")]
    private static partial void LogBadFile(ILogger logger, string file, int count, string errors, string kept);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Service file {File}: {Warning}")]
    private static partial void LogWarning(ILogger logger, string file, string warning);

    [LoggerMessage(Level = LogLevel.Information, Message = "Service file {File} removed: its services are no longer served")]
    private static partial void LogRemoved(ILogger logger, string file);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Services: {Problem}")]
    private static partial void LogProblem(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Socket-LB holds {Frontends} frontends of {Services} service ports")]
    private static partial void LogApplied(ILogger logger, int frontends, int services);

    [LoggerMessage(Level = LogLevel.Error, Message = "Services could not be applied: {Reason} (retried on the next change and every 2 s)")]
    private static partial void LogSyncFailed(ILogger logger, string reason);
}
