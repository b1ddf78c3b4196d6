using System.Text.Json;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Runtime.Policies;

namespace Palisade.Kubernetes;

/// <summary>Where the controller puts policies: the TracingPolicy engine (an interface so the controller is testable without BPF).</summary>
public interface IPolicySink
{
    PolicyStatus Apply(TracingPolicy policy, string source, IReadOnlyCollection<ulong> scope);

    bool Delete(string key);

    bool SetScope(string key, IReadOnlyCollection<ulong> scope);
}

/// <summary>What this node reports for one policy (status.nodes.NODE and Kubernetes Events).</summary>
public sealed record NodePolicyReport(string Kind, string Name, string? Namespace, string? Uid, long Generation, string State, string Mode,
    string Message, IReadOnlyList<HookReport> Hooks, long KernelMemoryBytes);

/// <summary>
/// Keeps the engine in step with the TracingPolicy and TracingPolicyNamespaced objects of the
/// cluster: each add, update and delete is applied at once; pod-scoped policies get the
/// cgroups of the pods they select, recomputed when pods or cgroups change; a policy whose
/// nodeSelector does not match this node is not loaded here. Every outcome is reported.
/// </summary>
public sealed partial class PolicyController : IDisposable
{
    private readonly IPolicySink _sink;
    private readonly PodCache _pods;
    private readonly string? _cgroupRoot;
    private readonly Action<NodePolicyReport> _report;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private IReadOnlyDictionary<string, string>? _nodeLabels;
    private readonly Timer? _rescan;

    private sealed class Entry(string kind, CustomObject obj)
    {
        public readonly string Kind = kind;
        public CustomObject Object = obj;
        public TracingPolicy? Running; // the version loaded in the engine, if any
        public bool Processed;         // Object's generation has been applied (or refused)
    }

    public PolicyController(IPolicySink sink, PodCache pods, string? cgroupRoot, Action<NodePolicyReport> report, ILogger logger, TimeSpan? rescan = null)
    {
        _sink = sink;
        _pods = pods;
        _cgroupRoot = cgroupRoot;
        _report = report;
        _logger = logger;
        _pods.Changed += OnPodsChanged;
        // Containers get their cgroups after their pod is scheduled, and without an event
        // we could watch: look again while any pod-scoped policy is loaded.
        var every = rescan ?? TimeSpan.FromSeconds(1);
        _rescan = new Timer(_ => RefreshScopes(), null, every, every);
    }

    private readonly HashSet<string> _syncedKinds = new(StringComparer.Ordinal);

    /// <summary>
    /// Raised once, when both policy kinds have been listed and applied: from then on the
    /// engine holds every policy of the cluster for this node (a restart over pinned sensors
    /// completes its restore here).
    /// </summary>
    public event Action? PoliciesSynced;

    private void KindSynced(string kind)
    {
        bool all;
        lock (_gate)
        {
            all = _syncedKinds.Add(kind) && _syncedKinds.Count == 2;
        }
        if (all)
        {
            PoliciesSynced?.Invoke();
        }
    }

    /// <summary>The handler for one of the two policy kinds.</summary>
    public IInformerHandler<CustomObject> HandlerFor(string kind) => new KindHandler(this, kind);

    /// <summary>The handler for this node's Node object (its labels drive nodeSelector).</summary>
    public IInformerHandler<V1Node> NodeHandler => new NodeLabelsHandler(this);

    private sealed class KindHandler(PolicyController owner, string kind) : IInformerHandler<CustomObject>
    {
        public void OnUpsert(CustomObject obj, CustomObject? old) => owner.Upsert(kind, obj);

        public void OnDelete(CustomObject obj) => owner.Remove(kind, obj);

        public void OnSynced() => owner.KindSynced(kind);
    }

    private sealed class NodeLabelsHandler(PolicyController owner) : IInformerHandler<V1Node>
    {
        public void OnUpsert(V1Node obj, V1Node? old) => owner.SetNodeLabels(obj.Metadata?.Labels is { } l ? new Dictionary<string, string>(l, StringComparer.Ordinal) : new Dictionary<string, string>());

        public void OnDelete(V1Node obj)
        {
        }

        public void OnSynced()
        {
        }
    }

    private static string KeyOf(string kind, CustomObject obj) => TracingPolicy.KeyOf(kind, obj.Metadata.Name ?? "", obj.Metadata.NamespaceProperty);

    /// <summary>The policy document our parser reads, rebuilt from the object the API server sent.</summary>
    public static string Document(string kind, CustomObject obj)
    {
        var metadata = new Dictionary<string, object> { ["name"] = obj.Metadata.Name ?? "" };
        if (obj.Metadata.NamespaceProperty is { } ns)
        {
            metadata["namespace"] = ns;
        }
        if (obj.Metadata.Labels is { Count: > 0 } labels)
        {
            metadata["labels"] = labels;
        }
        var doc = new Dictionary<string, object>
        {
            ["apiVersion"] = $"{Resources.CiliumGroup}/{Resources.CiliumVersion}",
            ["kind"] = kind,
            ["metadata"] = metadata,
        };
        if (obj.Spec is { } spec)
        {
            doc["spec"] = spec;
        }
        return JsonSerializer.Serialize(doc);
    }

    private void Upsert(string kind, CustomObject obj)
    {
        lock (_gate)
        {
            var key = KeyOf(kind, obj);
            if (!_entries.TryGetValue(key, out var entry))
            {
                _entries[key] = entry = new Entry(kind, obj);
            }
            else if (entry.Processed && entry.Object.Metadata.Generation == obj.Metadata.Generation && entry.Object.Metadata.Uid == obj.Metadata.Uid
                && SameLabels(entry.Object.Metadata.Labels, obj.Metadata.Labels))
            {
                // Only status or other metadata changed (our own status patches come back this
                // way, and so does a resync): re-applying would reset counters for nothing.
                entry.Object = obj;
                return;
            }
            entry.Object = obj;
            ApplyLocked(kind, key, entry);
        }
    }

    private static bool SameLabels(IDictionary<string, string>? a, IDictionary<string, string>? b) =>
        (a?.Count ?? 0) == (b?.Count ?? 0) && (a is null || a.All(kv => b!.TryGetValue(kv.Key, out var v) && v == kv.Value));

    private void ApplyLocked(string kind, string key, Entry entry)
    {
        try
        {
            ApplyOrRefuseLocked(kind, key, entry);
        }
#pragma warning disable CA1031 // an object the API server sent, however odd, must not stop the informer (and so every other policy)
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            var message = $"could not be applied ({e.GetType().Name}: {e.Message})" + (entry.Running is not null ? ". The previous version keeps running." : "");
            LogInvalid(_logger, kind, key, message);
            _report(Report(kind, entry.Object, "error", "", message, [], 0));
        }
    }

    private void ApplyOrRefuseLocked(string kind, string key, Entry entry)
    {
        var obj = entry.Object;
        entry.Processed = true;
        var parsed = TracingPolicyParser.Parse(Document(kind, obj), $"kubernetes:{kind}/{key}");
        if (parsed.Errors.Count > 0 || parsed.Policies.Count != 1)
        {
            var message = string.Join("; ", parsed.Errors.Select(e => e.ToString()));
            if (entry.Running is not null)
            {
                message += ". The previous version keeps running until the policy is fixed or deleted.";
            }
            LogInvalid(_logger, kind, key, message);
            _report(Report(kind, obj, "error", "", message, [], 0));
            return;
        }
        var policy = parsed.Policies[0];
        if (policy.Spec.NodeSelector is { } nodeSelector && _nodeLabels is { } labels && !nodeSelector.Matches(labels))
        {
            if (entry.Running is not null)
            {
                _sink.Delete(key);
                entry.Running = null;
            }
            _report(Report(kind, obj, "disabled", policy.Spec.Mode ?? "enforce", "spec.nodeSelector does not select this node", [], 0));
            return;
        }
        var scope = policy.IsPodScoped ? ScopeOf(policy) : [];
        var status = _sink.Apply(policy, $"kubernetes:{kind}/{key}", scope);
        entry.Running = policy;
        LogApplied(_logger, kind, key, status.State, policy.IsPodScoped ? $", {scope.Count} cgroups in scope" : "");
        var why = string.Join("; ", status.Errors.Concat(status.Hooks.Where(h => h.Mode == "unsupported").Select(h => $"{h.Type} {h.Name}: {h.Detail}")));
        _report(Report(kind, obj, status.State, status.Mode, why, status.Hooks, status.KernelMemoryBytes));
    }

    private static NodePolicyReport Report(string kind, CustomObject obj, string state, string mode, string message, IReadOnlyList<HookReport> hooks, long bytes) =>
        new(kind, obj.Metadata.Name ?? "", kind == TracingPolicy.NamespacedKind ? obj.Metadata.NamespaceProperty : null, obj.Metadata.Uid,
            obj.Metadata.Generation ?? 0, state, mode, message, hooks, bytes);

    private void Remove(string kind, CustomObject obj)
    {
        lock (_gate)
        {
            var key = KeyOf(kind, obj);
            if (_entries.Remove(key, out var entry) && entry.Running is not null)
            {
                _sink.Delete(key);
                LogDeleted(_logger, kind, key);
            }
        }
    }

    private void SetNodeLabels(IReadOnlyDictionary<string, string> labels)
    {
        lock (_gate)
        {
            var before = _nodeLabels;
            _nodeLabels = labels;
            if (before is not null && before.Count == labels.Count && before.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value))
            {
                return;
            }
            foreach (var (key, entry) in _entries.Where(e => e.Value.Running?.Spec.NodeSelector is not null || e.Value.Running is null).ToList())
            {
                ApplyLocked(entry.Kind, key, entry);
            }
        }
    }

    private HashSet<ulong> ScopeOf(TracingPolicy policy) =>
        _cgroupRoot is null ? [] : PodScopes.For(policy, _pods.Pods, PodCgroups.Scan(_cgroupRoot));

    /// <summary>
    /// A pod changed. During the first list every pod raises this; one scan at its end
    /// (the sync raises it too) does for all of them.
    /// </summary>
    private void OnPodsChanged()
    {
        if (_pods.IsSynced)
        {
            RefreshScopes();
        }
    }

    /// <summary>Recomputes the cgroups of every pod-scoped policy (pods or cgroups changed).</summary>
    public void RefreshScopes()
    {
        lock (_gate)
        {
            var scoped = _entries.Where(e => e.Value.Running?.IsPodScoped == true).ToList();
            if (scoped.Count == 0 || _cgroupRoot is null)
            {
                return;
            }
            var cgroups = PodCgroups.Scan(_cgroupRoot);
            var pods = _pods.Pods;
            foreach (var (key, entry) in scoped)
            {
                _sink.SetScope(key, PodScopes.For(entry.Running!, pods, cgroups));
            }
        }
    }

    public void Dispose()
    {
        _pods.Changed -= OnPodsChanged;
        _rescan?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Kubernetes {Kind} {Key} is invalid: {Errors}")]
    private static partial void LogInvalid(ILogger logger, string kind, string key, string errors);

    [LoggerMessage(Level = LogLevel.Information, Message = "Kubernetes {Kind} {Key} applied: {State}{Scope}")]
    private static partial void LogApplied(ILogger logger, string kind, string key, string state, string scope);

    [LoggerMessage(Level = LogLevel.Information, Message = "Kubernetes {Kind} {Key} deleted")]
    private static partial void LogDeleted(ILogger logger, string kind, string key);
}
