using System.Net;
using Palisade.Datapath.Netlink;

namespace Palisade.Datapath.Endpoints;

/// <summary>
/// Native routing to other nodes: a route in the host namespace per remote pod CIDR via that
/// node's address, and the node handed to the datapath so its traffic is marked remote-node.
/// Routes stay when the agent stops, like the endpoints: cross-node traffic keeps flowing.
/// </summary>
public sealed class RemoteNodeRoutes(INodeDatapath datapath)
{
    private readonly Lock _sync = new();
    private readonly Dictionary<string, RemoteNode> _nodes = new(StringComparer.Ordinal);

    public IReadOnlyCollection<RemoteNode> Nodes
    {
        get
        {
            lock (_sync)
            {
                return [.. _nodes.Values];
            }
        }
    }

    /// <summary>
    /// Brings routes and the datapath in line with <paramref name="nodes"/>: new and changed
    /// nodes upserted, missing ones removed. A node whose route the kernel refuses (its address
    /// not on a network this node reaches directly) does not keep the others from being
    /// routed: every other node is applied, then one exception names each refused node and the fix.
    /// </summary>
    public void Apply(IReadOnlyCollection<RemoteNode> nodes)
    {
        lock (_sync)
        {
            using var host = Rtnetlink.OpenHost();
            var refused = new List<string>();
            foreach (var node in nodes)
            {
                foreach (var cidr in node.PodCidrs)
                {
                    if (cidr.BaseAddress.AddressFamily != node.NodeAddress.AddressFamily)
                    {
                        throw new ArgumentException($"node {node.Name}: pod CIDR {cidr} and node address {node.NodeAddress} are of different families; give the node an address of each family as two entries", nameof(nodes));
                    }
                }
                try
                {
                    foreach (var cidr in node.PodCidrs)
                    {
                        host.AddRoute(cidr, node.NodeAddress, 0, onlink: false, replace: true, $"(via {node.Name})");
                    }
                }
                catch (NetlinkException e)
                {
                    // Native routing has no tunnel: the node address must be a direct neighbour.
                    refused.Add($"node {node.Name}: its pod CIDRs ({string.Join(", ", node.PodCidrs)}) cannot be routed via {node.NodeAddress}: {e.Message}. " +
                        $"Fix: native routing needs every node's address on a network this node reaches directly (one L2 segment, no gateway between); give {node.Name}'s address on that network");
                    continue;
                }
                datapath.UpsertRemoteNode(node);
                if (_nodes.TryGetValue(node.Name, out var before))
                {
                    foreach (var gone in before.PodCidrs.Where(c => !node.PodCidrs.Contains(c)))
                    {
                        host.DeleteRoute(gone, 0, $"(via {node.Name})");
                    }
                }
                _nodes[node.Name] = node;
            }
            foreach (var name in _nodes.Keys.Where(n => !nodes.Any(x => x.Name == n)).ToList())
            {
                Remove(host, _nodes[name]);
                _nodes.Remove(name);
            }
            if (refused.Count > 0)
            {
                throw new InvalidOperationException($"remote-nodes: {refused.Count} of {nodes.Count} nodes not routed: {string.Join("; ", refused)}");
            }
        }
    }

    /// <summary>Removes every route and datapath entry of the nodes applied (a node leaving pod networking; tests).</summary>
    public void RemoveAll()
    {
        lock (_sync)
        {
            using var host = Rtnetlink.OpenHost();
            foreach (var node in _nodes.Values)
            {
                Remove(host, node);
            }
            _nodes.Clear();
        }
    }

    private void Remove(Rtnetlink host, RemoteNode node)
    {
        foreach (var cidr in node.PodCidrs)
        {
            host.DeleteRoute(cidr, 0, $"(via {node.Name})");
        }
        datapath.RemoveRemoteNode(node);
    }

    /// <summary>
    /// Parses the remote-nodes setting: entries separated by ';' or new lines, each
    /// <c>NAME@NODE-ADDRESS=CIDR[,CIDR]</c>, e.g. <c>node-b@192.168.1.12=10.215.1.0/24</c>.
    /// Errors name the entry and what is wrong with it.
    /// </summary>
    public static List<RemoteNode> Parse(string text, List<string> errors)
    {
        var nodes = new List<RemoteNode>();
        foreach (var entry in text.Split([';', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var at = entry.IndexOf('@', StringComparison.Ordinal);
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (at <= 0 || eq < at + 2 || eq == entry.Length - 1)
            {
                errors.Add($"\"{entry}\" is not NAME@NODE-ADDRESS=CIDR[,CIDR], e.g. node-b@192.168.1.12=10.215.1.0/24");
                continue;
            }
            var name = entry[..at];
            if (!IPAddress.TryParse(entry[(at + 1)..eq], out var address))
            {
                errors.Add($"\"{entry}\": \"{entry[(at + 1)..eq]}\" is not an IP address");
                continue;
            }
            var cidrs = new List<IPNetwork>();
            foreach (var c in entry[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!Ipam.Cidr.TryParse(c, out var cidr, out var problem))
                {
                    errors.Add($"\"{entry}\": \"{c}\" is not a CIDR ({problem}), e.g. 10.215.1.0/24");
                }
                else if (cidr.BaseAddress.AddressFamily != address.AddressFamily)
                {
                    errors.Add($"\"{entry}\": {cidr} is not of the node address's family; list the node once per family (node-b@ADDRESS4=CIDR4;node-b6@ADDRESS6=CIDR6)");
                }
                else
                {
                    cidrs.Add(cidr);
                }
            }
            if (nodes.Any(n => n.Name == name))
            {
                errors.Add($"\"{entry}\": node {name} is listed twice");
                continue;
            }
            nodes.Add(new RemoteNode(name, address, cidrs));
        }
        return nodes;
    }
}
