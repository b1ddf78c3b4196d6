namespace Palisade.Datapath.Identity;

/// <summary>
/// The labels a security identity is made of, in Cilium's form so that network policies
/// written for Cilium select the same endpoints: <c>k8s:KEY=VALUE</c> for pod labels,
/// <c>k8s:io.kubernetes.pod.namespace=NS</c>, and the namespace's labels as
/// <c>k8s:io.cilium.k8s.namespace.labels.KEY=VALUE</c>. The pod's name is not part of it:
/// replicas share one identity.
/// </summary>
public static class IdentityLabels
{
    public const string Source = "k8s:";
    public const string PodNamespaceLabel = "io.kubernetes.pod.namespace";
    public const string NamespaceLabelPrefix = "io.cilium.k8s.namespace.labels.";

    /// <summary>The label Kubernetes puts on every namespace, and our default for a namespace whose labels are unknown.</summary>
    public const string NamespaceNameLabel = "kubernetes.io/metadata.name";

    /// <summary>
    /// Pod labels that controllers stamp on every pod of one rollout (Deployment, DaemonSet,
    /// StatefulSet revisions): Cilium leaves them out of identities, or every rollout would
    /// mint new identities for the same workload. They stay on the endpoint (flows show them).
    /// </summary>
    public static readonly IReadOnlySet<string> NotIdentity = new HashSet<string>(StringComparer.Ordinal)
    {
        "pod-template-hash", "controller-revision-hash", "pod-template-generation",
    };

    /// <summary>The sorted, de-duplicated identity labels of an endpoint.</summary>
    public static IReadOnlyList<string> For(string? podNamespace, IReadOnlyDictionary<string, string> labels, IReadOnlyDictionary<string, string> namespaceLabels)
    {
        var set = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in labels)
        {
            if (NotIdentity.Contains(key))
            {
                continue;
            }
            set.Add($"{Source}{key}={value}");
        }
        if (!string.IsNullOrEmpty(podNamespace))
        {
            set.Add($"{Source}{PodNamespaceLabel}={podNamespace}");
        }
        foreach (var (key, value) in namespaceLabels)
        {
            set.Add($"{Source}{NamespaceLabelPrefix}{key}={value}");
        }
        return [.. set];
    }

    /// <summary>The namespace labels to use when only the namespace's name is known (standalone).</summary>
    public static IReadOnlyDictionary<string, string> DefaultNamespaceLabels(string? podNamespace) =>
        string.IsNullOrEmpty(podNamespace)
            ? new Dictionary<string, string>()
            : new Dictionary<string, string>(StringComparer.Ordinal) { [NamespaceNameLabel] = podNamespace };
}

/// <summary>Identities with a fixed meaning, as Cilium numbers them; the allocator never hands these out.</summary>
public static class ReservedIdentity
{
    public const uint Host = 1, World = 2, Unmanaged = 3, Health = 4, Init = 5, RemoteNode = 6, KubeApiServer = 7;
}
