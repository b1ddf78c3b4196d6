using k8s.Models;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Runtime.Processes;

namespace Palisade.Kubernetes;

/// <summary>One cgroup of a pod: the pod's own (ContainerId null) or a container's.</summary>
public readonly record struct PodCgroup(ulong Id, string? ContainerId, string Path);

/// <summary>
/// Finds the cgroups of the pods on this node by walking the cgroup v2 tree for the pod
/// directories kubelet makes ("pod&lt;uid&gt;" under the cgroupfs driver,
/// "kubepods-&lt;qos&gt;-pod&lt;uid&gt;.slice" under systemd). A pod's cgroups are its directory and
/// everything under it; the container directories carry the container id.
/// </summary>
public static class PodCgroups
{
    private const int MaxDepth = 12;

    public static Dictionary<string, List<PodCgroup>> Scan(string root)
    {
        var result = new Dictionary<string, List<PodCgroup>>(StringComparer.Ordinal);
        Walk(root, 0, result);
        return result;
    }

    private static void Walk(string dir, int depth, Dictionary<string, List<PodCgroup>> result)
    {
        if (depth > MaxDepth)
        {
            return;
        }
        foreach (var child in Children(dir))
        {
            var name = Path.GetFileName(child);
            if (ContainerIds.PodUidFrom(name) is { } uid)
            {
                if (!result.TryGetValue(uid, out var list))
                {
                    result[uid] = list = [];
                }
                AddTree(child, name, null, list, depth + 1);
            }
            else
            {
                Walk(child, depth + 1, result);
            }
        }
    }

    private static void AddTree(string dir, string name, string? parent, List<PodCgroup> into, int depth)
    {
        var id = ProcFs.InodeOf(dir);
        if (id == 0)
        {
            return;
        }
        into.Add(new PodCgroup(id, parent is null ? null : ContainerIds.FromCgroup(name, parent)?.ContainerId, dir));
        if (depth > MaxDepth)
        {
            return;
        }
        foreach (var child in Children(dir))
        {
            AddTree(child, Path.GetFileName(child), name, into, depth + 1);
        }
    }

    private static List<string> Children(string dir)
    {
        try
        {
            return [.. Directory.EnumerateDirectories(dir)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return []; // removed while we walked, or not ours to read
        }
    }
}

/// <summary>Which cgroups a pod-scoped policy applies in: a pure function of the policy, the pods and their cgroups.</summary>
public static class PodScopes
{
    public static HashSet<ulong> For(TracingPolicy policy, IEnumerable<V1Pod> pods, IReadOnlyDictionary<string, List<PodCgroup>> cgroups)
    {
        var ids = new HashSet<ulong>();
        foreach (var pod in pods)
        {
            if (!Selects(policy, pod) || pod.Metadata?.Uid is not { } uid || !cgroups.TryGetValue(uid, out var podCgroups))
            {
                continue;
            }
            foreach (var cg in podCgroups)
            {
                if (policy.Spec.ContainerSelector is { } containers)
                {
                    // Only container cgroups whose container the selector picks.
                    if (cg.ContainerId is null || ContainerLabels(pod, cg.ContainerId) is not { } labels || !containers.Matches(labels))
                    {
                        continue;
                    }
                }
                ids.Add(cg.Id);
            }
        }
        return ids;
    }

    /// <summary>The namespace and podSelector test.</summary>
    public static bool Selects(TracingPolicy policy, V1Pod pod)
    {
        if (policy.IsNamespaced && pod.Metadata?.NamespaceProperty != policy.Namespace)
        {
            return false;
        }
        return policy.Spec.PodSelector is not { } selector || selector.Matches(pod.Metadata?.Labels as IReadOnlyDictionary<string, string> ?? ToReadOnly(pod.Metadata?.Labels));
    }

    /// <summary>
    /// The labels a containerSelector matches against, as Tetragon defines them: "name" (the
    /// container's name in the pod spec) and "repo" (its image without tag or digest).
    /// </summary>
    public static IReadOnlyDictionary<string, string>? ContainerLabels(V1Pod pod, string containerId)
    {
        var status = (pod.Status?.ContainerStatuses ?? []).Concat(pod.Status?.InitContainerStatuses ?? [])
            .FirstOrDefault(s => PodCache.BareId(s.ContainerID) == containerId);
        if (status is null)
        {
            return null;
        }
        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["name"] = status.Name };
        if (status.Image is { Length: > 0 } image)
        {
            labels["repo"] = Repo(image);
        }
        return labels;
    }

    /// <summary>"docker.io/library/nginx:1.25@sha256:..." → "docker.io/library/nginx".</summary>
    public static string Repo(string image)
    {
        var at = image.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            image = image[..at];
        }
        var colon = image.LastIndexOf(':');
        return colon > image.LastIndexOf('/') ? image[..colon] : image;
    }

    private static IReadOnlyDictionary<string, string>? ToReadOnly(IDictionary<string, string>? labels) =>
        labels is null ? null : new Dictionary<string, string>(labels, StringComparer.Ordinal);
}
