using System.Collections.Concurrent;
using k8s.Models;

namespace Palisade.Kubernetes;

/// <summary>
/// The labels of every Namespace, fed by the namespace informer: endpoints' identities carry
/// their namespace's labels (what a namespaceSelector matches). Raises
/// <see cref="LabelsChanged"/> with the namespace's name when its labels change.
/// </summary>
public sealed class NamespaceCache : IInformerHandler<V1Namespace>
{
    private readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, string>> _labels = new(StringComparer.Ordinal);

    /// <summary>Raised on the informer's thread when a namespace appears, changes labels or goes.</summary>
    public event Action<string>? LabelsChanged;

    public bool IsSynced { get; private set; }

    public int Count => _labels.Count;

    /// <summary>The labels of namespace <paramref name="name"/>; null when it is not known.</summary>
    public IReadOnlyDictionary<string, string>? LabelsOf(string name) => _labels.GetValueOrDefault(name);

    public void OnUpsert(V1Namespace obj, V1Namespace? old)
    {
        if (obj.Metadata?.Name is not { Length: > 0 } name)
        {
            return;
        }
        var labels = obj.Metadata.Labels is { } l ? new Dictionary<string, string>(l, StringComparer.Ordinal) : new Dictionary<string, string>(StringComparer.Ordinal);
        if (_labels.TryGetValue(name, out var before) && SameLabels(before, labels))
        {
            return;
        }
        _labels[name] = labels;
        LabelsChanged?.Invoke(name);
    }

    public void OnDelete(V1Namespace obj)
    {
        if (obj.Metadata?.Name is { } name && _labels.TryRemove(name, out _))
        {
            LabelsChanged?.Invoke(name);
        }
    }

    public void OnSynced() => IsSynced = true;

    /// <summary>Same keys and values.</summary>
    public static bool SameLabels(IReadOnlyDictionary<string, string>? a, IReadOnlyDictionary<string, string>? b)
    {
        if ((a?.Count ?? 0) != (b?.Count ?? 0))
        {
            return false;
        }
        return a is null || a.All(kv => b!.TryGetValue(kv.Key, out var v) && v == kv.Value);
    }
}
