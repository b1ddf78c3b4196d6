using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using k8s.Models;
using Palisade.Events;

namespace Palisade.Kubernetes;

/// <summary>
/// The pods on this node, fed by the pod informer: gives processes their pod (by container id,
/// or by the pod uid in the cgroup path while the container is not in the pod's status yet).
/// Lookups are lock-free; they run on the ring-buffer thread.
/// </summary>
public sealed partial class PodCache : IPodResolver, IInformerHandler<V1Pod>
{
    private readonly ConcurrentDictionary<string, V1Pod> _byUid = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (V1Pod Pod, V1ContainerStatus Status)> _byContainer = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Namespace, string Name), V1Pod> _byName = new();

    /// <summary>Whether pod context carries the pod's annotations (enable-pod-annotations; off by default: they can be large).</summary>
    public bool IncludeAnnotations { get; init; }

    /// <summary>Raised after every change (add, update, delete, first sync), on the informer's thread.</summary>
    public event Action? Changed;

    /// <summary>Raised with (namespace, name) when a pod appears or its labels change, on the informer's thread (endpoints follow their pod's labels).</summary>
    public event Action<string, string>? LabelsChanged;

    public int Count => _byUid.Count;

    public bool IsSynced { get; private set; }

    public IReadOnlyCollection<V1Pod> Pods => [.. _byUid.Values];

    public V1Pod? ByUid(string uid) => _byUid.GetValueOrDefault(uid);

    /// <summary>The pod named <paramref name="name"/> in <paramref name="podNamespace"/> (what CNI_ARGS' K8S_POD_NAMESPACE/K8S_POD_NAME name); null when not known.</summary>
    public V1Pod? ByName(string podNamespace, string name) => _byName.GetValueOrDefault((podNamespace, name));

    public PodInfo? Resolve(in ContainerContext container)
    {
        if (container.ContainerId is { } id && _byContainer.TryGetValue(id, out var hit))
        {
            return Describe(hit.Pod, hit.Status, id, IncludeAnnotations);
        }
        if (container.PodUid is { } uid && _byUid.TryGetValue(uid, out var pod))
        {
            return Describe(pod, container.ContainerId is null ? null : StatusOf(pod, container.ContainerId), container.ContainerId, IncludeAnnotations);
        }
        return null;
    }

    /// <summary>The pod context of a process record, if its pod is known now.</summary>
    public PodInfo? Resolve(ProcessRecord process) =>
        process.PodUid is null && process.ContainerId is null ? null : Resolve(new ContainerContext(process.ContainerId, process.PodUid, process.CgroupId));

    public void OnUpsert(V1Pod obj, V1Pod? old)
    {
        if (obj.Metadata?.Uid is not { } uid)
        {
            return;
        }
        if (old is not null)
        {
            Forget(old);
        }
        _byUid[uid] = obj;
        if (obj.Metadata.Name is { } name)
        {
            _byName[(obj.Metadata.NamespaceProperty ?? "", name)] = obj;
        }
        foreach (var status in AllStatuses(obj))
        {
            if (BareId(status.ContainerID) is { } id)
            {
                _byContainer[id] = (obj, status);
            }
        }
        Changed?.Invoke();
        if (obj.Metadata.Name is { } podName && (old is null || !NamespaceCache.SameLabels(old.Metadata?.Labels?.AsReadOnly(), obj.Metadata.Labels?.AsReadOnly())))
        {
            LabelsChanged?.Invoke(obj.Metadata.NamespaceProperty ?? "", podName);
        }
    }

    public void OnDelete(V1Pod obj)
    {
        Forget(obj);
        Changed?.Invoke();
    }

    public void OnSynced()
    {
        IsSynced = true;
        Changed?.Invoke();
    }

    private void Forget(V1Pod pod)
    {
        if (pod.Metadata?.Uid is { } uid)
        {
            _byUid.TryRemove(uid, out _);
            // Only the same pod: a new one of that name may be in already.
            if (pod.Metadata.Name is { } name && _byName.TryGetValue((pod.Metadata.NamespaceProperty ?? "", name), out var known) && known.Metadata?.Uid == uid)
            {
                _byName.TryRemove((pod.Metadata.NamespaceProperty ?? "", name), out _);
            }
        }
        foreach (var status in AllStatuses(pod))
        {
            if (BareId(status.ContainerID) is { } id)
            {
                _byContainer.TryRemove(id, out _);
            }
        }
    }

    private static IEnumerable<V1ContainerStatus> AllStatuses(V1Pod pod) =>
        (pod.Status?.ContainerStatuses ?? []).Concat(pod.Status?.InitContainerStatuses ?? []).Concat(pod.Status?.EphemeralContainerStatuses ?? []);

    private static V1ContainerStatus? StatusOf(V1Pod pod, string containerId) =>
        AllStatuses(pod).FirstOrDefault(s => BareId(s.ContainerID) == containerId);

    /// <summary>"containerd://0123..." → "0123..." (the id cgroup names carry).</summary>
    public static string? BareId(string? containerId)
    {
        if (string.IsNullOrEmpty(containerId))
        {
            return null;
        }
        var sep = containerId.IndexOf("://", StringComparison.Ordinal);
        return sep < 0 ? containerId : containerId[(sep + 3)..];
    }

    /// <summary>The pod fields of an event, as Tetragon fills them.</summary>
    public static PodInfo Describe(V1Pod pod, V1ContainerStatus? status, string? containerId, bool withAnnotations = false)
    {
        var (workload, kind) = Workload(pod);
        ContainerInfo? container = null;
        if (status is not null)
        {
            container = new ContainerInfo(status.ContainerID ?? containerId ?? "", status.Name, status.ImageID, status.Image,
                status.State?.Running?.StartedAt is { } started ? new DateTimeOffset(DateTime.SpecifyKind(started, DateTimeKind.Utc)) : null,
                ExecProbes: ProbesOf(pod, status.Name));
        }
        else if (containerId is not null)
        {
            container = new ContainerInfo(containerId);
        }
        return new PodInfo(pod.Metadata.NamespaceProperty ?? "", pod.Metadata.Name ?? "", pod.Metadata.Uid,
            pod.Metadata.Labels is { } labels ? new Dictionary<string, string>(labels, StringComparer.Ordinal) : null, workload, kind, container,
            withAnnotations && pod.Metadata.Annotations is { Count: > 0 } annotations ? new Dictionary<string, string>(annotations, StringComparer.Ordinal) : null);
    }

    /// <summary>The exec commands of a container's liveness, readiness and startup probes (for maybe_exec_probe); null when it has none.</summary>
    public static IReadOnlyList<IReadOnlyList<string>>? ProbesOf(V1Pod pod, string? containerName)
    {
        var spec = pod.Spec?.Containers?.FirstOrDefault(c => c.Name == containerName)
            ?? pod.Spec?.InitContainers?.FirstOrDefault(c => c.Name == containerName);
        if (spec is null)
        {
            return null;
        }
        List<IReadOnlyList<string>> probes = [];
        foreach (var probe in new[] { spec.LivenessProbe, spec.ReadinessProbe, spec.StartupProbe })
        {
            if (probe?.Exec?.Command is { Count: > 0 } command)
            {
                probes.Add([.. command]);
            }
        }
        return probes.Count > 0 ? probes : null;
    }

    /// <summary>
    /// The workload that owns a pod: a ReplicaSet made by a Deployment (its name is the
    /// Deployment's plus "-" and the pod-template-hash) counts as the Deployment, a Job made by
    /// a CronJob (name plus "-" and a scheduled-time number) as the CronJob; a bare pod is its
    /// own workload.
    /// </summary>
    public static (string Workload, string Kind) Workload(V1Pod pod)
    {
        var owner = pod.Metadata?.OwnerReferences?.FirstOrDefault(o => o.Controller == true) ?? pod.Metadata?.OwnerReferences?.FirstOrDefault();
        if (owner is null)
        {
            return (pod.Metadata?.Name ?? "", "Pod");
        }
        if (owner.Kind == "ReplicaSet" && pod.Metadata?.Labels?.TryGetValue("pod-template-hash", out var hash) == true
            && owner.Name.EndsWith("-" + hash, StringComparison.Ordinal))
        {
            return (owner.Name[..^(hash.Length + 1)], "Deployment");
        }
        if (owner.Kind == "Job" && CronJobSuffix().Match(owner.Name) is { Success: true } m)
        {
            return (owner.Name[..m.Index], "CronJob");
        }
        return (owner.Name, owner.Kind);
    }

    [GeneratedRegex(@"-\d{8,}$")]
    private static partial Regex CronJobSuffix();
}
