using System.Globalization;
using System.Text.Json.Nodes;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Tests.Shared;

namespace Palisade.IntegrationTests.Endpoints;

/// <summary>
/// The real agent with --pod-networking true and no --pod-cidr, pointed at the loopback API
/// server: it waits (no conflist) while its Node has no spec.podCIDRs, starts once the Node
/// gets them, a CNI ADD through the real plugin gets an address from the Node's pod CIDR, and
/// another Node's pod CIDR is routed via its InternalIP until that Node is deleted. Everything
/// is inside 10.214.0.0/16, blackholed in the root namespace.
/// </summary>
public sealed class KubernetesPodCidrTests : IDisposable
{
    private const string Nodes = "v1/nodes";
    private readonly FakeKubeApiServer _api = new();
    private readonly string _id = Guid.NewGuid().ToString("N")[..6];
    private readonly string _dir;
    private readonly PodCidrBlackhole.Hold _blackhole;
    private readonly string _plugins;
    private readonly string _nodeLink;
    private readonly string _pinDirectory;
    private readonly string _hostDevice;

    public KubernetesPodCidrTests()
    {
        Kernel.RequireRoot();
        _dir = Helpers.RealPath(Directory.CreateTempSubdirectory("pal-k8s-cidr-").FullName);
        _blackhole = PodCidrBlackhole.Acquire();
        var plugin = Path.Combine(Path.GetDirectoryName(AgentProcess.Launcher())!, "palisade-cni");
        Assert.True(File.Exists(plugin), $"{plugin} is missing: ./build.sh publishes it");
        _plugins = Directory.CreateDirectory(Path.Combine(_dir, "plugins")).FullName;
        File.CreateSymbolicLink(Path.Combine(_plugins, "palisade-cni"), plugin);
        _nodeLink = "palk" + _id;
        _pinDirectory = "/sys/fs/bpf/paltest-" + _id;
        _hostDevice = "palh" + _id;
    }

    public void Dispose()
    {
        _api.Dispose();
        Command.Run("ip", "link", "del", _nodeLink); // gone with the other node's namespace already, unless a step failed before; takes the routes via it along
        Command.Run("ip", "link", "del", _hostDevice);
        if (Directory.Exists(_pinDirectory))
        {
            Directory.Delete(_pinDirectory, recursive: true);
        }
        PodCidrBlackhole.Release(_blackhole);
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void WithoutAPodCidrTheAgentTakesItsNodesPodCidrAndRoutesTheOtherNodes()
    {
        var n = Random.Shared.Next(241, 245);
        var podCidr = string.Create(CultureInfo.InvariantCulture, $"10.214.{n}.0/24");
        var remoteCidr = string.Create(CultureInfo.InvariantCulture, $"10.214.{n + 4}.0/24");
        var link = Random.Shared.Next(0, 127) * 2;
        var remoteAddress = string.Create(CultureInfo.InvariantCulture, $"10.214.254.{link + 1}");
        var nodeName = "pal-node-" + _id;
        // The other node's address is on-link through a veth into a namespace standing for it: a route via it is valid, and nothing leaves the machine.
        using var otherNode = new PodNamespace("pal-k8snode");
        Command.Check("ip", "link", "add", _nodeLink, "type", "veth", "peer", "name", "eth0", "netns", otherNode.Name);
        Command.Check("ip", "addr", "add", string.Create(CultureInfo.InvariantCulture, $"10.214.254.{link}/31"), "dev", _nodeLink);
        Command.Check("ip", "link", "set", _nodeLink, "up");
        Command.Check("ip", "-n", otherNode.Name, "addr", "add", remoteAddress + "/31", "dev", "eth0");
        Command.Check("ip", "-n", otherNode.Name, "link", "set", "eth0", "up");
        _api.Create(Nodes, Node(nodeName, null, "10.214.254.250"));
        var conflist = Path.Combine(_dir, "net.d", "05-palisade.conflist");
        using var agent = AgentProcess.Start(
            "--pod-networking", "true",
            "--kubeconfig", _api.WriteKubeconfig(_dir),
            "--node-name", nodeName,
            "--ipam-state-dir", Path.Combine(_dir, "ipam"),
            "--endpoint-state-dir", Path.Combine(_dir, "endpoints"),
            "--endpoint-socket", Path.Combine(_dir, "run", "endpoint.sock"),
            "--cni-del-queue-dir", Path.Combine(_dir, "cni-del-queue"),
            "--cni-conf-dir", Path.Combine(_dir, "net.d"),
            "--datapath-host-device", _hostDevice,
            "--bpf-dir", _pinDirectory);
        agent.WaitReady();
        Assert.True(Command.WaitUntil(() => State(agent).Contains("has no spec.podCIDRs", StringComparison.Ordinal), TimeSpan.FromSeconds(60)),
            $"status never said the Node has no pod CIDR: {State(agent)}\n{agent.Log}");
        Assert.StartsWith("waiting", State(agent), StringComparison.Ordinal);
        Assert.Contains("--allocate-node-cidrs", State(agent), StringComparison.Ordinal);
        Assert.False(File.Exists(conflist), "no conflist while the pod CIDR is unknown");

        _api.Update(Nodes, Node(nodeName, podCidr, "10.214.254.250"));
        _api.Create(Nodes, Node("node-b", remoteCidr, remoteAddress));

        Assert.True(Command.WaitUntil(() => File.Exists(conflist), TimeSpan.FromSeconds(60)), $"no conflist; datapath state: {State(agent)}\n{agent.Log}");
        using var pod = new PodNamespace("pal-k8scidr");
        var add = new CniInvoker([_plugins]).Add(JsonNode.Parse(File.ReadAllText(conflist))!.AsObject(),
            pod.Attachment(args: $"K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-{_id}"));
        Assert.True(add.Succeeded, add.ToString());
        Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"10.214.{n}.2"), add.FirstAddress());
        // With the Kubernetes API the pod's identity is a cluster-wide PalisadeIdentity object.
        var identity = Assert.Single(_api.All("palisade.io/v1alpha1/palisadeidentities"));
        Assert.Equal("shop", identity["security-labels"]!["k8s:io.kubernetes.pod.namespace"]!.GetValue<string>());
        using (var status = agent.Status())
        {
            Assert.Equal("crd", status.RootElement.GetProperty("datapath").GetProperty("identity_allocation").GetString());
        }
        Assert.True(Command.WaitUntil(() => Command.Run("ip", "route", "show", remoteCidr).Stdout.Contains($"via {remoteAddress}", StringComparison.Ordinal), TimeSpan.FromSeconds(30)),
            $"no route to node-b's pod CIDR: {Command.Run("ip", "route", "show", remoteCidr).Stdout}\n{agent.Log}");

        _api.Delete(Nodes, "node-b");

        Assert.True(Command.WaitUntil(() => !Command.Run("ip", "route", "show", remoteCidr).Stdout.Contains("via", StringComparison.Ordinal), TimeSpan.FromSeconds(30)),
            $"node-b's route stayed after its Node was deleted\n{agent.Log}");
        var del = new CniInvoker([_plugins]).Del(JsonNode.Parse(File.ReadAllText(conflist))!.AsObject(), pod.Attachment(), add.Json);
        Assert.True(del.Succeeded, del.ToString());
        Assert.True(agent.Terminate(), "the agent stopped cleanly");
    }

    private static string State(AgentProcess agent)
    {
        using var status = agent.Status();
        return status.RootElement.GetProperty("datapath").GetProperty("state").GetString() ?? "";
    }

    private static JsonObject Node(string name, string? podCidr, string internalIp)
    {
        var spec = new JsonObject();
        if (podCidr is not null)
        {
            spec["podCIDR"] = podCidr;
            spec["podCIDRs"] = new JsonArray(podCidr);
        }
        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Node",
            ["metadata"] = new JsonObject { ["name"] = name },
            ["spec"] = spec,
            ["status"] = new JsonObject { ["addresses"] = new JsonArray(new JsonObject { ["type"] = "InternalIP", ["address"] = internalIp }) },
        };
    }
}
