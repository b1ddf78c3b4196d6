using System.Net;
using System.Net.Sockets;
using Palisade.Datapath;
using Palisade.Datapath.Ipam;
using Palisade.Kubernetes;

namespace Palisade.Agent;

/// <summary>
/// Pod networking from Node objects, as pure functions: this node's pod CIDRs from its Node,
/// the other Nodes as the <see cref="RemoteNode"/> entries --remote-nodes parses into, and the
/// two lists merged. CIDRs are read with the same parser as --pod-cidr, so a Node's CIDR is
/// held to the same rules.
/// </summary>
public static class ClusterNetwork
{
    /// <summary>Suffix of the IPv6 entry of a dual-stack Node (a Node name cannot hold '/', so it never collides with one).</summary>
    public const string V6Suffix = "/ipv6";

    /// <summary>What status and the log say when this node's Node has no pod CIDR.</summary>
    public static string MissingPodCidrs(string node) =>
        $"Node {node} has no spec.podCIDRs (nor spec.podCIDR), so this node has no pod CIDR. Fix: run kube-controller-manager with --allocate-node-cidrs=true and --cluster-cidr (it then assigns one to every Node), or give the agent --pod-cidr";

    /// <summary>The Node's pod CIDRs, at most one per family (the rest, and what does not parse, go to <paramref name="problems"/>).</summary>
    public static List<IPNetwork> PodCidrs(NodeNetwork node, List<string> problems)
    {
        var cidrs = new List<IPNetwork>();
        foreach (var text in node.PodCidrs)
        {
            if (!Cidr.TryParse(text, out var cidr, out var problem))
            {
                problems.Add($"Node {node.Name}: spec.podCIDRs entry \"{text}\" is not a CIDR ({problem}); it is ignored");
            }
            else if (cidr.PrefixLength > Configuration.DatapathSettings.MaxPrefix(cidr))
            {
                problems.Add($"Node {node.Name}: spec.podCIDRs entry {cidr} is too small for a gateway and a pod (at most a /{Configuration.DatapathSettings.MaxPrefix(cidr)}); it is ignored");
            }
            else if (cidrs.Where(c => c.BaseAddress.AddressFamily == cidr.BaseAddress.AddressFamily).Select(c => (IPNetwork?)c).FirstOrDefault() is { } other)
            {
                problems.Add($"Node {node.Name}: spec.podCIDRs has a second {Family(cidr)} CIDR {cidr} besides {other}; only the first is used");
            }
            else
            {
                cidrs.Add(cidr);
            }
        }
        return cidrs;
    }

    /// <summary>
    /// The routes to another Node: each pod CIDR via the Node's InternalIP of that family, else
    /// its ExternalIP. A dual-stack Node gives two entries, NAME (IPv4) and NAME/ipv6; a pod
    /// CIDR with no address of its family gets no route (said in <paramref name="problems"/>).
    /// </summary>
    public static List<RemoteNode> RemoteNodes(NodeNetwork node, List<string> problems)
    {
        var entries = new List<RemoteNode>();
        var cidrs = PodCidrs(node, problems);
        foreach (var cidr in cidrs.OrderBy(c => c.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6))
        {
            var family = cidr.BaseAddress.AddressFamily;
            var address = FirstOf(node.InternalIPs, family) ?? FirstOf(node.ExternalIPs, family);
            if (address is null)
            {
                problems.Add($"Node {node.Name}: pod CIDR {cidr} has no route: status.addresses has no {Family(cidr)} InternalIP or ExternalIP (it has {Describe(node)})");
                continue;
            }
            var name = family == AddressFamily.InterNetworkV6 && entries.Count > 0 ? node.Name + V6Suffix : node.Name;
            entries.Add(new RemoteNode(name, address, [cidr]));
        }
        return entries;
    }

    /// <summary>The Node a remote-node entry stands for (NAME/ipv6 is NAME's).</summary>
    public static string NodeOf(RemoteNode entry) =>
        entry.Name.EndsWith(V6Suffix, StringComparison.Ordinal) ? entry.Name[..^V6Suffix.Length] : entry.Name;

    /// <summary>
    /// --remote-nodes entries and the other Nodes merged: a Node that gives routes replaces the
    /// static entries of its name (each replacement said in <paramref name="notes"/>); entries
    /// whose pod CIDR overlaps this node's are left out (said in <paramref name="problems"/>).
    /// </summary>
    public static List<RemoteNode> Merge(IReadOnlyList<RemoteNode> configured, IReadOnlyList<NodeNetwork> nodes, IReadOnlyList<IPNetwork> own,
        List<string> notes, List<string> problems)
    {
        var fromApi = nodes.SelectMany(n => RemoteNodes(n, problems)).ToList();
        var apiNames = fromApi.Select(NodeOf).ToHashSet(StringComparer.Ordinal);
        var merged = new List<RemoteNode>();
        foreach (var entry in configured)
        {
            if (apiNames.Contains(NodeOf(entry)))
            {
                var replacement = fromApi.Where(a => NodeOf(a) == NodeOf(entry)).Select(Describe);
                notes.Add($"remote node {NodeOf(entry)}: the Kubernetes Node ({string.Join("; ", replacement)}) replaces the --remote-nodes entry {Describe(entry)}");
                continue;
            }
            merged.Add(entry);
        }
        merged.AddRange(fromApi);
        var kept = new List<RemoteNode>();
        foreach (var entry in merged)
        {
            if (entry.PodCidrs.Where(c => own.Any(o => Configuration.DatapathSettings.Overlaps(o, c))).Select(c => (IPNetwork?)c).FirstOrDefault() is { } overlap)
            {
                problems.Add($"remote node {entry.Name}: pod CIDR {overlap} overlaps this node's ({string.Join(", ", own)}); no route to it. Fix: every node needs pod CIDRs of its own");
                continue;
            }
            kept.Add(entry);
        }
        return kept;
    }

    /// <summary>Same CIDRs, whatever the order.</summary>
    public static bool SameCidrs(IReadOnlyList<IPNetwork> a, IReadOnlyList<IPNetwork> b) => a.Count == b.Count && a.All(b.Contains);

    public static string Describe(RemoteNode node) => $"{node.Name}@{node.NodeAddress}={string.Join(",", node.PodCidrs)}";

    private static string Describe(NodeNetwork node) =>
        node.InternalIPs.Count + node.ExternalIPs.Count == 0
            ? "none"
            : string.Join(", ", node.InternalIPs.Select(a => $"InternalIP {a}").Concat(node.ExternalIPs.Select(a => $"ExternalIP {a}")));

    private static IPAddress? FirstOf(IReadOnlyList<string> addresses, AddressFamily family) =>
        addresses.Select(a => IPAddress.TryParse(a, out var ip) ? ip : null).FirstOrDefault(ip => ip?.AddressFamily == family);

    private static string Family(IPNetwork cidr) => cidr.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4";
}
