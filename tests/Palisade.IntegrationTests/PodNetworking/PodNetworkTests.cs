using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.PodNetworking;

/// <summary>
/// Issue 16's acceptance, end to end: the agent with pod networking on, palisade-cni called as
/// a runtime calls it (and by podman), pods in network namespaces, real traffic.
/// </summary>
[Collection(PodNetworkCollection.Name)]
public sealed class PodNetworkTests
{
    private const string Busybox = PodTraffic.Busybox;

    private static string Address(CniOutcome add) => add.FirstAddress().Split('/')[0];

    private static CniOutcome Add(PalisadeNetwork network, PodNamespace pod, string podName, string labels = "app=web")
    {
        var add = new CniInvoker(network.PluginPath).Add(network.Conflist,
            pod.Attachment(args: $"K8S_POD_NAMESPACE=shop;K8S_POD_NAME={podName};PALISADE_LABELS={labels}"));
        Assert.True(add.Succeeded, add.ToString());
        return add;
    }

    /// <summary>
    /// A TCP or UDP exchange: a server in one namespace answers "pong" to every connection
    /// (busybox nc) or every datagram (python, whose UDP client waits for the answer, where
    /// busybox nc gives up at the end of its input), a client in another reads the answer.
    /// </summary>
    private static string Exchange(PodNamespace server, PodNamespace client, string address, int port, bool udp)
    {
        var serve = udp
            ? $"import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('', {port}))\nwhile True:\n    d, peer = s.recvfrom(64)\n    s.sendto(b'pong', peer)\n"
            : $"while true; do echo pong | {Busybox} nc -l -p {port}; done";
        using var listener = Process.Start(new ProcessStartInfo("ip", udp
            ? ["netns", "exec", server.Name, "python3", "-c", serve]
            : ["netns", "exec", server.Name, Busybox, "sh", "-c", serve]))!;
        try
        {
            var reply = "";
            // The listener may not be bound yet: retry the client, bounded (a safety net, not a timing assertion).
            Command.WaitUntil(() =>
            {
                reply = (udp
                    ? client.Exec("python3", "-c", $"import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(2)\ns.sendto(b'ping', ('{address}', {port}))\nprint(s.recv(64).decode())\n")
                    : client.Exec(Busybox, "sh", "-c", $"{Busybox} nc -w 2 {address} {port} </dev/null")).Stdout.Trim();
                return reply == "pong";
            }, TimeSpan.FromSeconds(30));
            return reply;
        }
        finally
        {
            listener.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public void TwoPodsReachEachOtherOverTcpUdpAndIcmpAndThePodsAndTheHostBothWays()
    {
        using var network = new PalisadeNetwork();
        using var a = new PodNamespace();
        using var b = new PodNamespace();
        var addA = Address(Add(network, a, "client-1", "app=client"));
        var addB = Address(Add(network, b, "web-1"));

        PodTraffic.Ping(a.Name, addB);
        Assert.Equal("pong", Exchange(b, a, addB, 7100, udp: false));
        Assert.Equal("pong", Exchange(b, a, addB, 7101, udp: true));
        PodTraffic.Ping(a.Name, network.Gateway);
        PodTraffic.Ping(null, addA);

        // Every forwarded flow names its endpoints; the TCP connection's first packet names the process.
        JsonObject? syn = null;
        Assert.True(Command.WaitUntil(() =>
        {
            syn = network.Flows().FirstOrDefault(f =>
                (string?)f["IP"]?["destination"] == addB && f["l4"]?["TCP"]?["destination_port"]?.GetValue<int>() == 7100 &&
                (string?)f["traffic_direction"] == "EGRESS");
            return syn is not null;
        }, TimeSpan.FromSeconds(30)), $"no egress flow of the TCP connection to {addB}:7100 in {network.EventsFile}");
        Assert.Equal("FORWARDED", (string?)syn!["verdict"]);
        Assert.Equal("client-1", (string?)syn["source"]?["pod_name"]);
        Assert.Equal("shop", (string?)syn["source"]?["namespace"]);
        Assert.Equal("web-1", (string?)syn["destination"]?["pod_name"]);
        Assert.Contains("k8s:app=web", syn["destination"]?["labels"]?.AsArray().Select(l => (string?)l) ?? []);
        Assert.Equal(Busybox, (string?)syn["process"]?["binary"]);
        Assert.Contains(network.Flows(), f => (string?)f["IP"]?["source"] == addA && f["l4"]?["ICMPv4"] is not null);
        Assert.Contains(network.Flows(), f => f["l4"]?["UDP"]?["destination_port"]?.GetValue<int>() == 7101);

        // What the datapath did is counted: packets redirected between the pods, records written and decoded, none refused.
        using var status = network.Agent!.Status();
        Assert.True(status.RootElement.GetProperty("datapath_counters").GetProperty("redirected").GetInt64() > 0, status.RootElement.ToString());
        var counted = status.RootElement.GetProperty("flows");
        Assert.True(counted.GetProperty("records_reported").GetInt64() > 0, counted.ToString());
        Assert.True(counted.GetProperty("decoder").GetProperty("decoded").GetInt64() > 0, counted.ToString());
        Assert.Equal(0, counted.GetProperty("decoder").GetProperty("malformed").GetInt64());
        Assert.Contains("flows:   ", network.Agent.Cli("status").Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void FiftyConcurrentAddsGetDistinctAddressesAndEveryPodWorks()
    {
        using var network = new PalisadeNetwork();
        var pods = Enumerable.Range(0, 50).Select(_ => new PodNamespace()).ToList();
        try
        {
            var addresses = new ConcurrentDictionary<int, string>();
            Parallel.For(0, pods.Count, new ParallelOptions { MaxDegreeOfParallelism = 50 }, i =>
                addresses[i] = Address(Add(network, pods[i], $"pod-{i}")));

            Assert.Equal(50, addresses.Values.Distinct().Count());
            foreach (var (i, address) in addresses)
            {
                PodTraffic.Ping(pods[(i + 1) % pods.Count].Name, address);
            }
            Assert.Equal(50, network.AllocatedV4());
        }
        finally
        {
            pods.ForEach(p => p.Dispose());
        }
    }

    [Fact]
    public void DelWhileTheAgentIsStoppedSucceedsAndIsReplayedWhenItReturns()
    {
        using var network = new PalisadeNetwork();
        using var pod = new PodNamespace();
        var conflist = network.Conflist;
        var add = Add(network, pod, "web-1");
        Assert.Equal(1, network.AllocatedV4());

        network.Stop();
        var del = new CniInvoker(network.PluginPath).Del(conflist, pod.Attachment(), add.Json);
        Assert.True(del.Succeeded, del.ToString());
        Assert.Single(Directory.GetFiles(network.DelQueueDir, "*.del"));

        network.Start();
        Assert.Equal(0, network.AllocatedV4());
        Assert.Empty(Directory.GetFiles(network.DelQueueDir, "*.del"));
        Assert.Equal(1, network.DatapathStatus().GetProperty("restore").GetProperty("replayed_dels").GetInt32());
    }

    [Fact]
    public void CheckPassesOnAHealthyPodAndFailsOnceItsHostVethIsDeleted()
    {
        using var network = new PalisadeNetwork();
        using var pod = new PodNamespace();
        var invoker = new CniInvoker(network.PluginPath);
        var add = Add(network, pod, "web-1");
        var check = invoker.Check(network.Conflist, pod.Attachment(), add.Json!);
        Assert.True(check.Succeeded, check.ToString());

        Command.Check("ip", "link", "del", EndpointNames.HostInterface(new AttachmentId(pod.ContainerId, "eth0")));

        var broken = invoker.Check(network.Conflist, pod.Attachment(), add.Json!);
        Assert.False(broken.Succeeded, broken.ToString());
        Assert.Contains("veth", broken.Stdout, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void APodmanContainerOnOurNetworkReachesAPodAndItsRemovalReleasesItsAddress()
    {
        using var network = new PalisadeNetwork();
        using var pod = new PodNamespace();
        var address = Address(Add(network, pod, "web-1"));
        using var podman = new Podman(network);
        using var server = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", pod.Name, Busybox, "sh", "-c", $"while true; do echo pong | {Busybox} nc -l -p 7200 -w 5; done"]))!;
        try
        {
            var run = podman.Run($"ping -c 2 -W 10 {address} || exit 11; " +
                $"for i in $(seq 100); do r=$(nc -w 2 {address} 7200 </dev/null) && [ \"$r\" = pong ] && echo \"tcp:$r\" && exit 0; sleep 0.1; done; exit 12");
            Assert.True(run.ExitCode == 0, $"the container could not reach the pod ({run.ExitCode}): {run.Stdout}{run.Stderr}");
            Assert.Contains("tcp:pong", run.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
        }
        // podman run --rm called DEL: only the pod's address is left.
        Assert.Equal(1, network.AllocatedV4());
    }

    [Fact]
    public void AnAgentRestartDuringALongTcpStreamDoesNotBreakIt()
    {
        using var network = new PalisadeNetwork();
        using var a = new PodNamespace();
        using var b = new PodNamespace();
        Add(network, a, "client-1", "app=client");
        var server = Address(Add(network, b, "web-1"));
        var received = Path.Combine(Path.GetTempPath(), $"pal-stream-{Guid.NewGuid():N}");
        using var listener = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", b.Name, Busybox, "sh", "-c", $"{Busybox} nc -l -p 7300 > {received}"]))!;
        try
        {
            Assert.True(Command.WaitUntil(() => b.Exec("ss", "-Hltn", "sport = :7300").Stdout.Contains("7300", StringComparison.Ordinal), TimeSpan.FromSeconds(30)),
                "the stream's server never listened");
            // 150 lines over about 15 s, one connection; the agent restarts in the middle.
            using var client = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", a.Name, Busybox, "sh", "-c",
                $"for i in $(seq 150); do echo line-$i; sleep 0.1; done | {Busybox} nc {server} 7300"]))!;
            Thread.Sleep(2000);
            network.Stop();
            network.Start();
            Assert.True(client.WaitForExit(TimeSpan.FromSeconds(120)), "the streaming client never finished");
            Assert.Equal(0, client.ExitCode);
            Assert.True(listener.WaitForExit(TimeSpan.FromSeconds(30)), "the server never saw the end of the stream");
            var lines = File.ReadAllLines(received);
            Assert.Equal(150, lines.Length);
            Assert.Equal("line-150", lines[^1]);
        }
        finally
        {
            if (!listener.HasExited)
            {
                listener.Kill(entireProcessTree: true);
            }
            File.Delete(received);
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PodNetworkCollection
{
    public const string Name = "pod networking";
}
