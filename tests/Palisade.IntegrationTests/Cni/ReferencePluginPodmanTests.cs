using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Cni;

/// <summary>
/// A real runtime (podman + runc) on a network of Debian's reference plugins: proves the
/// harness that palisade-cni is tested with, on the baseline it is measured against.
/// </summary>
public sealed class ReferencePluginPodmanTests
{
    // A TCP service in busybox: answers every connection with one line, forever.
    private const string PongServer = "while true; do echo pong | nc -l -p 7000; done";

    // The server container may still be starting: retry, bounded (a safety net, not a timing assertion).
    private static string PingAndConnect(string address) =>
        // -W bounds the wait for the first reply (ARP included) on a loaded machine; not a timing assertion.
        $"ping -c 2 -W 10 {address} || exit 11; " +
        $"for i in $(seq 100); do r=$(nc -w 2 {address} 7000 </dev/null) && [ \"$r\" = pong ] && echo \"tcp:$r\" && exit 0; sleep 0.1; done; exit 12";

    [Fact]
    public void AContainerOnTheBridgeNetworkGetsAnAddressFromHostLocal()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();
        using var podman = new Podman(network);

        var result = podman.Run("ip -4 -o addr show dev eth0; cat /sys/class/net/eth0/operstate");

        Assert.True(result.ExitCode == 0, $"podman run exited {result.ExitCode}: {result.Stderr}{result.Stdout}");
        var address = result.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipWhile(w => w != "inet").Skip(1).First().Split('/')[0];
        Assert.True(network.InSubnet(address), $"eth0 has {address}, outside the test subnet {network.Subnet}: {result.Stdout}");
        Assert.Contains("up", result.Stdout, StringComparison.Ordinal);
        Assert.True(network.BridgeExists(), $"the bridge plugin made no {network.BridgeName}");
    }

    [Fact]
    public void TwoContainersOnTheBridgeNetworkReachEachOtherByPingAndTcp()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();
        using var podman = new Podman(network);
        var server = podman.RunDetached(PongServer);
        var serverAddress = podman.AddressOf(server);

        var client = podman.Run(PingAndConnect(serverAddress));

        Assert.True(network.InSubnet(serverAddress), $"the server got {serverAddress}, outside {network.Subnet}");
        Assert.True(client.ExitCode == 0, $"the client could not reach {serverAddress} (exit 11: ping, 12: tcp): {client.Stdout}{client.Stderr}");
        Assert.Contains("tcp:pong", client.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void RemovingAContainerReleasesItsAddressInHostLocal()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();
        using var podman = new Podman(network);
        var id = podman.RunDetached("sleep 300");
        var address = podman.AddressOf(id);
        Assert.Equal([address], network.AllocatedAddresses());
        Assert.StartsWith(id, network.HolderOf(address), StringComparison.Ordinal);
        var netns = podman.NetnsOf(id);
        Assert.True(File.Exists(netns), $"podman made no network namespace at {netns}");

        podman.Remove(id);

        Assert.Empty(network.AllocatedAddresses());
        Assert.False(File.Exists(netns), $"podman left its network namespace {netns} behind");
        Assert.Empty(podman.Containers());
    }

    [Fact]
    public void AContainerReachesAPodNamespaceAddedByCallingThePluginDirectly()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();
        using var podman = new Podman(network);
        using var pod = new PodNamespace();
        var cni = new CniInvoker(network.PluginPath);
        var add = cni.Add(network.Conflist, pod.Attachment());
        Assert.True(add.Succeeded, add.ToString());
        try
        {
            var server = podman.RunDetached(PongServer);
            var serverAddress = podman.AddressOf(server);

            var fromContainer = podman.Run($"ping -c 2 -W 10 {add.FirstAddress()}");
            var fromPod = pod.Exec("/bin/busybox", "sh", "-c", PingAndConnect(serverAddress));

            Assert.True(fromContainer.ExitCode == 0, $"the container could not ping the pod at {add.FirstAddress()}: {fromContainer.Stdout}{fromContainer.Stderr}");
            Assert.True(fromPod.ExitCode == 0, $"the pod could not reach the container at {serverAddress} (exit 11: ping, 12: tcp): {fromPod.Stdout}{fromPod.Stderr}");
            Assert.Contains("tcp:pong", fromPod.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            var del = cni.Del(network.Conflist, pod.Attachment(), add.Json);
            Assert.True(del.Succeeded, del.ToString());
        }
    }

    [Fact]
    public void DisposingTheHarnessLeavesNoContainerNamespaceBridgeOrStateBehind()
    {
        Kernel.RequireRoot();
        string configDir, bridge, netns, stateDir;
        List<string> hostVeths;
        var network = new ReferenceBridgeNetwork();
        try
        {
            configDir = network.ConfigDir;
            bridge = network.BridgeName;
            using (var podman = new Podman(network))
            {
                stateDir = podman.StateDir;
                // Left running on purpose: Dispose must stop it, release its address and delete its namespace.
                var id = podman.RunDetached("sleep 300");
                netns = podman.NetnsOf(id);
                hostVeths = PortsOf(bridge);
                Assert.NotEmpty(network.AllocatedAddresses());
                Assert.Single(hostVeths);
            }
            Assert.Empty(network.AllocatedAddresses());
            Assert.False(File.Exists(netns), $"{netns} is still there");
            Assert.False(Directory.Exists(stateDir), $"podman's state folder {stateDir} is still there");
            Assert.Empty(Directory.Exists(CniCache) ? Directory.EnumerateFiles(CniCache, network.Name + "-*") : []);
        }
        finally
        {
            network.Dispose();
        }

        Assert.False(Directory.Exists(configDir), $"{configDir} is still there");
        Assert.False(LinkExists(bridge), $"the bridge {bridge} is still there");
        Assert.False(LinkExists(hostVeths[0]), $"the container's host veth {hostVeths[0]} is still there");
    }

    // libcni's result cache, where podman keeps each attachment's ADD result for DEL.
    private const string CniCache = "/var/lib/cni/results";

    private static List<string> PortsOf(string bridge) =>
        Command.Check("ip", "-o", "link", "show", "master", bridge).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(':')[1].Trim().Split('@')[0]).ToList();

    private static bool LinkExists(string name) => Command.Run("ip", "link", "show", "dev", name).ExitCode == 0;
}
