using System.Net;
using System.Text;
using k8s;
using k8s.Models;
using Palisade.Agent;
using Palisade.Kubernetes;

namespace Palisade.Fuzz;

/// <summary>
/// A Node object as the API server sends it (JSON): what pod networking reads from it, this
/// node's pod CIDRs and the routes to it as another node. Contract: JSON the client cannot
/// read is its JsonException; anything it reads ends in CIDRs, routes and problems, never an
/// exception.
/// </summary>
public static class NodeObjects
{
    public static void Run(byte[] input)
    {
        V1Node? node;
        try
        {
            node = KubernetesJson.Deserialize<V1Node>(Encoding.UTF8.GetString(input));
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or InvalidOperationException or ArgumentException)
        {
            return;
        }
        if (node is null)
        {
            return;
        }
        var network = NodeNetwork.From(node);
        var problems = new List<string>();
        _ = ClusterNetwork.PodCidrs(network, problems);
        _ = ClusterNetwork.Merge([], [network], [IPNetwork.Parse("10.244.0.0/24")], [], problems);
        if (problems.Any(string.IsNullOrWhiteSpace))
        {
            throw new InvalidOperationException("a problem without a message");
        }
    }

    public static IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        static (string, byte[]) Seed(string name, string json) => (name, Encoding.UTF8.GetBytes(json));
        yield return Seed("dual-stack.json", """{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-b"},"spec":{"podCIDR":"10.244.2.0/24","podCIDRs":["10.244.2.0/24","fd00:244:2::/64"]},"status":{"addresses":[{"type":"InternalIP","address":"192.168.1.12"},{"type":"InternalIP","address":"fd00::12"},{"type":"Hostname","address":"node-b"}]}}""");
        yield return Seed("legacy.json", """{"metadata":{"name":"node-c"},"spec":{"podCIDR":"10.244.3.0/24"},"status":{"addresses":[{"type":"ExternalIP","address":"203.0.113.3"}]}}""");
        yield return Seed("bad-cidrs.json", """{"metadata":{"name":"node-d"},"spec":{"podCIDRs":["10.244.4.1/24","banana","10.244.0.0/16","fd00::/130",""]},"status":{"addresses":[{"type":"InternalIP","address":"not-an-ip"}]}}""");
        yield return Seed("no-name.json", """{"spec":{"podCIDRs":["10.244.5.0/24"]}}""");
    }
}
