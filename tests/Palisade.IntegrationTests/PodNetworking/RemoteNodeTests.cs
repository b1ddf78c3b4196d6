using System.Net;
using System.Text.Json.Nodes;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.PodNetworking;

/// <summary>
/// Issue 16's native routing across nodes, end to end: the agent with --remote-nodes naming a
/// network namespace that stands for another node (its node address on a veth, its own pod
/// CIDRs, a pod address there), a pod on our node, real traffic both ways.
/// </summary>
[Collection(PodNetworkCollection.Name)]
public sealed class RemoteNodeTests
{
    private const uint WorldIdentity = 2, RemoteNodeIdentity = 6;

    private static string Address(CniOutcome add, bool v6) => add.FirstAddress(v6);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void APodReachesAPodOfAnotherNodeOverARouteViaThatNodeAndBackWithTheRemoteSideNamedAndNoFirewallRule(bool v6)
    {
        var rulesBefore = FirewallRules.Snapshot();
        using var node2 = new SimulatedNode();
        using var network = new PalisadeNetwork("--remote-nodes", node2.RemoteNodesSetting("node-2"));
        node2.RouteBackTo(network.PodCidr, network.PodCidrV6);
        using var pod = new PodNamespace();
        var add = new CniInvoker(network.PluginPath).Add(network.Conflist,
            pod.Attachment(args: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=client-1;PALISADE_LABELS=app=client"));
        Assert.True(add.Succeeded, add.ToString());
        var local = Address(add, v6);
        var (remotePod, remoteCidr, nodeAddress) = v6
            ? (node2.RemotePodV6, node2.PodCidrV6, node2.NodeAddressV6)
            : (node2.RemotePod, node2.PodCidr, node2.NodeAddress);

        // Native routing: the other node's pod CIDR goes via its node address, over the link to it.
        var route = Command.Check("ip", v6 ? "-6" : "-4", "route", "show", remoteCidr);
        Assert.Contains($"via {nodeAddress} dev {node2.HostInterface}", route, StringComparison.Ordinal);

        // There and back: ICMP and TCP from our pod to the remote pod, and from the remote pod (the
        // source of node-2's routes to our pods) to ours.
        PodTraffic.Ping(pod.Name, remotePod);
        var outbound = PodTraffic.TcpExchange(node2.Namespace, pod.Name, remotePod, 7400);
        PodTraffic.Ping(node2.Namespace, local);
        var inbound = PodTraffic.TcpExchange(pod.Name, node2.Namespace, local, 7401);
        // The other node itself (its node address, not a pod of it).
        PodTraffic.Ping(pod.Name, nodeAddress);

        // A remote pod's address has no identity on this node (identities are node-local): world,
        // as Cilium names an address its ipcache has no identity for; the node's own address is
        // reserved:remote-node.
        var toRemotePod = network.WaitForFlow(f => Ip(f, "destination") == remotePod && Tcp(f, "destination_port") == 7400 && Direction(f) == "EGRESS" && !IsReply(f),
            $"egress flow of the TCP connection to {remotePod}:7400");
        Assert.Equal("FORWARDED", (string?)toRemotePod["verdict"]);
        Assert.Equal("TO_STACK", (string?)toRemotePod["trace_observation_point"]);
        Assert.Equal("client-1", (string?)toRemotePod["source"]?["pod_name"]);
        AssertPeer(toRemotePod["destination"], WorldIdentity, "reserved:world");
        Assert.Equal(PodTraffic.Busybox, (string?)toRemotePod["process"]?["binary"]);
        Assert.Equal(outbound.ClientPid, toRemotePod["process"]?["pid"]?.GetValue<int>());

        var answer = network.WaitForFlow(f => Ip(f, "source") == remotePod && Tcp(f, "source_port") == 7400 && IsReply(f),
            $"reply flow of the TCP connection from {remotePod}:7400");
        Assert.Equal("EGRESS", Direction(answer)); // a reply belongs to the connection our pod opened
        Assert.Equal("TO_ENDPOINT", (string?)answer["trace_observation_point"]);
        AssertPeer(answer["source"], WorldIdentity, "reserved:world");

        var fromRemotePod = network.WaitForFlow(f => Ip(f, "source") == remotePod && Tcp(f, "destination_port") == 7401 && Direction(f) == "INGRESS" && !IsReply(f),
            $"ingress flow of the TCP connection from {remotePod} to {local}:7401");
        Assert.Equal("client-1", (string?)fromRemotePod["destination"]?["pod_name"]);
        AssertPeer(fromRemotePod["source"], WorldIdentity, "reserved:world");
        Assert.Equal(inbound.ServerPid, fromRemotePod["process"]?["pid"]?.GetValue<int>());

        var icmp = v6 ? "ICMPv6" : "ICMPv4";
        network.WaitForFlow(f => Ip(f, "destination") == remotePod && f["l4"]?[icmp] is not null && Direction(f) == "EGRESS", $"{icmp} flow to {remotePod}");
        network.WaitForFlow(f => Ip(f, "source") == remotePod && Ip(f, "destination") == local && f["l4"]?[icmp] is not null && Direction(f) == "INGRESS",
            $"{icmp} flow from {remotePod} to {local}");
        var toNode = network.WaitForFlow(f => Ip(f, "destination") == nodeAddress && f["l4"]?[icmp] is not null, $"{icmp} flow to node-2's address {nodeAddress}");
        AssertPeer(toNode["destination"], RemoteNodeIdentity, "reserved:remote-node");

        // Routing and flows without a single firewall rule.
        Assert.Empty(FirewallRules.Snapshot().AddedSince(rulesBefore));
    }

    [Fact]
    public void ANodeWhoseAddressIsNotADirectNeighbourIsRefusedByNameAndTheOthersAreStillRouted()
    {
        using var node2 = new SimulatedNode();
        var routes = new RemoteNodeRoutes(new KernelRoutesOnly());
        // Inside the blackholed link range but on no link: the kernel has no neighbour to send to.
        var unreachable = new RemoteNode("node-3", IPAddress.Parse("10.219.255.77"), [IPNetwork.Parse("10.220.255.0/24")]);
        var reachable = new RemoteNode("node-2", IPAddress.Parse(node2.NodeAddress), [IPNetwork.Parse(node2.PodCidr)]);
        try
        {
            var refused = Assert.Throws<InvalidOperationException>(() => routes.Apply([unreachable, reachable]));

            Assert.Contains("node node-3", refused.Message, StringComparison.Ordinal);
            Assert.Contains("10.219.255.77", refused.Message, StringComparison.Ordinal);
            Assert.Contains("Fix:", refused.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("node node-2", refused.Message, StringComparison.Ordinal);
            Assert.Contains($"via {node2.NodeAddress}", Command.Check("ip", "route", "show", node2.PodCidr), StringComparison.Ordinal);
            Assert.Equal(["node-2"], routes.Nodes.Select(n => n.Name));
        }
        finally
        {
            routes.RemoveAll();
        }
        Assert.Equal("", Command.Check("ip", "route", "show", node2.PodCidr).Trim());
    }

    private static void AssertPeer(JsonNode? side, uint identity, string label)
    {
        Assert.Equal(identity, side?["identity"]?.GetValue<uint>());
        Assert.Equal([label], side?["labels"]?.AsArray().Select(l => (string?)l) ?? []);
        Assert.Null(side?["pod_name"]);
    }

    private static string? Ip(JsonObject flow, string side) => (string?)flow["IP"]?[side];

    private static int? Tcp(JsonObject flow, string port) => flow["l4"]?["TCP"]?[port]?.GetValue<int>();

    private static string? Direction(JsonObject flow) => (string?)flow["traffic_direction"];

    private static bool IsReply(JsonObject flow) => flow["is_reply"]?.GetValue<bool>() == true;
}
