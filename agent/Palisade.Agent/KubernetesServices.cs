using k8s;
using k8s.Models;
using Palisade.Kubernetes;
using Palisade.Policies.Services;

namespace Palisade.Agent;

/// <summary>
/// Feeds socket-LB from the informers of Services (v1) and EndpointSlices (discovery.k8s.io/v1):
/// each object goes through the same parser as a --service-dir file (its JSON), so an object the
/// API server accepted but Palisade cannot serve gets the same error, naming its field, in the
/// status. Nothing is handed on before both kinds have listed once (a Service without its slices
/// would be refused for a moment); after that, changes that arrive together are handed on as one
/// set, at most every <see cref="Coalesce"/>, so a burst of 10 000 events is one compilation, not
/// 10 000.
/// </summary>
internal sealed class KubernetesServices : IDisposable
{
    /// <summary>How long a change waits for the ones that come with it.</summary>
    public static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(50);

    private readonly Lock _gate = new();
    private readonly Lock _flushGate = new();
    private readonly Action<IReadOnlyList<ServiceManifest>, IReadOnlyList<EndpointSliceManifest>> _sink;
    private readonly SortedDictionary<string, ServiceManifest> _services = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, EndpointSliceManifest> _slices = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, string> _errors = new(StringComparer.Ordinal);
    private readonly Timer _timer;
    private bool _servicesSynced;
    private bool _slicesSynced;
    private bool _pending;
    private bool _disposed;

    public KubernetesServices(Action<IReadOnlyList<ServiceManifest>, IReadOnlyList<EndpointSliceManifest>> sink)
    {
        _sink = sink;
        _timer = new Timer(_ => Flush(), null, Timeout.Infinite, Timeout.Infinite);
        Services = new Handler<V1Service>(this, "Service", "v1", o => o.Metadata);
        Slices = new Handler<V1EndpointSlice>(this, "EndpointSlice", "discovery.k8s.io/v1", o => o.Metadata);
    }

    public IInformerHandler<V1Service> Services { get; }

    public IInformerHandler<V1EndpointSlice> Slices { get; }

    /// <summary>Objects the parser refused, by "Kind namespace/name": the first error of each.</summary>
    public IReadOnlyDictionary<string, string> Errors
    {
        get
        {
            lock (_gate)
            {
                return new Dictionary<string, string>(_errors, StringComparer.Ordinal);
            }
        }
    }

    /// <summary>True once both kinds have listed and the set has been handed on.</summary>
    public bool Synced { get; private set; }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }
        _timer.Dispose();
    }

    private void Upsert(string kind, string ns, string name, string json)
    {
        var id = $"{kind} {ns}/{name}";
        var parsed = ServiceManifestParser.Parse(json, $"kubernetes {id}");
        lock (_gate)
        {
            Forget(kind, id);
            if (!parsed.Ok)
            {
                var e = parsed.Errors[0];
                _errors[id] = $"{e.Path}: {e.Message}";
            }
            else if (kind == "Service" && parsed.Services.Count == 1)
            {
                _services[id] = parsed.Services[0];
            }
            else if (kind == "EndpointSlice" && parsed.EndpointSlices.Count == 1)
            {
                _slices[id] = parsed.EndpointSlices[0];
            }
            // An FQDN slice or an ExternalName Service parses to nothing with a warning: nothing to serve.
            Changed();
        }
    }

    private void Remove(string kind, string ns, string name)
    {
        lock (_gate)
        {
            Forget(kind, $"{kind} {ns}/{name}");
            Changed();
        }
    }

    private void Forget(string kind, string id)
    {
        _errors.Remove(id);
        if (kind == "Service")
        {
            _services.Remove(id);
        }
        else
        {
            _slices.Remove(id);
        }
    }

    private void OnSynced(string kind)
    {
        lock (_gate)
        {
            if (kind == "Service")
            {
                _servicesSynced = true;
            }
            else
            {
                _slicesSynced = true;
            }
            if (_servicesSynced && _slicesSynced && !_disposed)
            {
                _pending = true;
                _timer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>Under the lock: schedule one hand-on for this change and those that follow it within the window.</summary>
    private void Changed()
    {
        if (!_servicesSynced || !_slicesSynced || _pending || _disposed)
        {
            return;
        }
        _pending = true;
        _timer.Change(Coalesce, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Hands on the set as it is now. One at a time, so an older set never lands after a newer one.</summary>
    private void Flush()
    {
        lock (_flushGate)
        {
            ServiceManifest[] services;
            EndpointSliceManifest[] slices;
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }
                _pending = false;
                services = [.. _services.Values];
                slices = [.. _slices.Values];
            }
            _sink(services, slices);
            Synced = true;
        }
    }

    private sealed class Handler<T>(KubernetesServices owner, string kind, string apiVersion, Func<T, V1ObjectMeta?> meta) : IInformerHandler<T>
        where T : class, IKubernetesObject
    {
        public void OnUpsert(T obj, T? old)
        {
            ArgumentNullException.ThrowIfNull(obj);
            // Items of a list carry no kind or apiVersion; the parser needs them to know the object.
            obj.Kind ??= kind;
            obj.ApiVersion ??= apiVersion;
            var m = meta(obj);
            owner.Upsert(kind, m?.NamespaceProperty ?? "default", m?.Name ?? "", KubernetesJson.Serialize(obj));
        }

        public void OnDelete(T obj)
        {
            ArgumentNullException.ThrowIfNull(obj);
            var m = meta(obj);
            owner.Remove(kind, m?.NamespaceProperty ?? "default", m?.Name ?? "");
        }

        public void OnSynced() => owner.OnSynced(kind);
    }
}
