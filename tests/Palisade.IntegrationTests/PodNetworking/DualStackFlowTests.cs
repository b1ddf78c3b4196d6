using System.Text.Json.Nodes;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.PodNetworking;

/// <summary>
/// Issue 16's process attribution over both address families: a flow between two pods of a
/// dual-stack agent names the process that owns the socket on each side, the client on egress
/// and the server on ingress.
/// </summary>
[Collection(PodNetworkCollection.Name)]
public sealed class DualStackFlowTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ATcpFlowBetweenTwoPodsNamesTheClientOnEgressAndTheServerOnIngress(bool v6)
    {
        using var network = new PalisadeNetwork();
        using var client = new PodNamespace();
        using var server = new PodNamespace();
        var invoker = new CniInvoker(network.PluginPath);
        var addClient = invoker.Add(network.Conflist, client.Attachment(args: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=client-1;PALISADE_LABELS=app=client"));
        var addServer = invoker.Add(network.Conflist, server.Attachment(args: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1;PALISADE_LABELS=app=web"));
        Assert.True(addClient.Succeeded, addClient.ToString());
        Assert.True(addServer.Succeeded, addServer.ToString());
        var clientAddress = addClient.FirstAddress(v6);
        var serverAddress = addServer.FirstAddress(v6);

        var exchange = PodTraffic.TcpExchange(server.Name, client.Name, serverAddress, 7500);

        var egress = network.WaitForFlow(f => (string?)f["IP"]?["source"] == clientAddress && (string?)f["IP"]?["destination"] == serverAddress &&
            (string?)f["traffic_direction"] == "EGRESS" && (string?)f["trace_observation_point"] == "FROM_ENDPOINT", "the client's egress flow");
        var ingress = network.WaitForFlow(f => (string?)f["IP"]?["source"] == clientAddress && (string?)f["IP"]?["destination"] == serverAddress &&
            (string?)f["traffic_direction"] == "INGRESS" && (string?)f["trace_observation_point"] == "TO_ENDPOINT", "the server's ingress flow");
        foreach (var flow in new[] { egress, ingress })
        {
            Assert.Equal(v6 ? "IPv6" : "IPv4", (string?)flow["IP"]?["ipVersion"]);
            Assert.Equal(7500, flow["l4"]?["TCP"]?["destination_port"]?.GetValue<int>());
            Assert.Equal("client-1", (string?)flow["source"]?["pod_name"]);
            Assert.Equal("web-1", (string?)flow["destination"]?["pod_name"]);
        }
        AssertProcess(egress, exchange.ClientPid);
        AssertProcess(ingress, exchange.ServerPid);
    }

    private static void AssertProcess(JsonObject flow, int pid)
    {
        Assert.True(flow["process"] is JsonObject, $"no process on {flow.ToJsonString()}");
        Assert.Equal(PodTraffic.Busybox, (string?)flow["process"]?["binary"]);
        Assert.Equal(pid, flow["process"]?["pid"]?.GetValue<int>());
        Assert.False(string.IsNullOrEmpty((string?)flow["process"]?["exec_id"]), flow.ToJsonString());
    }
}
