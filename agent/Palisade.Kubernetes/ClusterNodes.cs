using k8s.Models;

namespace Palisade.Kubernetes;

/// <summary>
/// What pod networking needs of one Node object, as the API server gave it (text, not yet
/// parsed: the datapath parses CIDRs and addresses with its own parsers): its pod CIDRs
/// (<c>spec.podCIDRs</c>, or the older single <c>spec.podCIDR</c>) and its addresses.
/// </summary>
public sealed record NodeNetwork(string Name, IReadOnlyList<string> PodCidrs, IReadOnlyList<string> InternalIPs, IReadOnlyList<string> ExternalIPs)
{
    /// <summary>Reads a Node: podCIDRs first (dual stack lists one per family), podCIDR when podCIDRs is empty.</summary>
    public static NodeNetwork From(V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var cidrs = node.Spec?.PodCIDRs is { Count: > 0 } many
            ? [.. many.Where(c => !string.IsNullOrWhiteSpace(c)).Select(c => c.Trim())]
            : node.Spec?.PodCIDR is { Length: > 0 } one ? [one.Trim()] : new List<string>();
        List<string> Addresses(string type) =>
            [.. (node.Status?.Addresses ?? []).Where(a => a.Type == type && !string.IsNullOrWhiteSpace(a.Address)).Select(a => a.Address.Trim())];
        return new NodeNetwork(node.Metadata?.Name ?? "", cidrs, Addresses("InternalIP"), Addresses("ExternalIP"));
    }

    /// <summary>Same name, pod CIDRs and addresses (a Node's heartbeats change nothing of this).</summary>
    public bool SameAs(NodeNetwork? other) =>
        other is not null && Name == other.Name && PodCidrs.SequenceEqual(other.PodCidrs, StringComparer.Ordinal)
        && InternalIPs.SequenceEqual(other.InternalIPs, StringComparer.Ordinal) && ExternalIPs.SequenceEqual(other.ExternalIPs, StringComparer.Ordinal);
}

/// <summary>
/// Every Node of the cluster as pod networking sees it, fed by a cluster-wide Node informer:
/// this node's entry (its pod CIDRs) and the others (routes to their pod CIDRs). Raises
/// <see cref="Changed"/> only when a Node's pod CIDRs or addresses change, a Node comes or
/// goes, or the first list is in: status heartbeats do not reach the datapath.
/// </summary>
public sealed class ClusterNodes(string ownNode) : IInformerHandler<V1Node>
{
    private readonly Lock _sync = new();
    private readonly Dictionary<string, NodeNetwork> _nodes = new(StringComparer.Ordinal);

    /// <summary>Raised on the informer's thread after a change that matters to pod networking.</summary>
    public event Action? Changed;

    /// <summary>The name of this node's Node object.</summary>
    public string OwnNode { get; } = ownNode;

    /// <summary>True once the first list is in: before that, "no Node" means "not known yet".</summary>
    public bool IsSynced { get; private set; }

    /// <summary>This node's entry; null when the API has no Node of that name (or not yet).</summary>
    public NodeNetwork? Own
    {
        get
        {
            lock (_sync)
            {
                return _nodes.GetValueOrDefault(OwnNode);
            }
        }
    }

    /// <summary>Every other Node, by name.</summary>
    public IReadOnlyList<NodeNetwork> Others
    {
        get
        {
            lock (_sync)
            {
                return [.. _nodes.Values.Where(n => n.Name != OwnNode).OrderBy(n => n.Name, StringComparer.Ordinal)];
            }
        }
    }

    public void OnUpsert(V1Node obj, V1Node? old)
    {
        var node = NodeNetwork.From(obj);
        if (node.Name.Length == 0)
        {
            return;
        }
        lock (_sync)
        {
            if (node.SameAs(_nodes.GetValueOrDefault(node.Name)))
            {
                return;
            }
            _nodes[node.Name] = node;
        }
        if (IsSynced)
        {
            Changed?.Invoke();
        }
    }

    public void OnDelete(V1Node obj)
    {
        bool removed;
        lock (_sync)
        {
            removed = _nodes.Remove(obj.Metadata?.Name ?? "");
        }
        if (removed && IsSynced)
        {
            Changed?.Invoke();
        }
    }

    /// <summary>The first list is delivered as a whole before this: one change for all of it.</summary>
    public void OnSynced()
    {
        IsSynced = true;
        Changed?.Invoke();
    }
}
