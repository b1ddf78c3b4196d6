using System.Diagnostics;
using System.Text.Json.Nodes;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Cni;

/// <summary>
/// Debian's bridge + host-local called the way a runtime calls a plugin (CNI_* environment,
/// config on stdin): proves <see cref="CniInvoker"/> and gives the behaviour palisade-cni must match.
/// </summary>
public sealed class ReferencePluginInvokerTests
{
    private static readonly CniInvoker s_cni = new([ReferenceBridgeNetwork.PluginDir]);

    [Fact]
    public void VersionNamesTheSpecVersionsThePluginSpeaks()
    {
        Kernel.RequireRoot();

        var version = s_cni.Version("bridge");

        Assert.True(version.Succeeded, version.ToString());
        var supported = version.Json!["supportedVersions"]!.AsArray().Select(v => (string?)v).ToList();
        Assert.Contains("1.0.0", supported);
        Assert.Contains("0.4.0", supported);
    }

    [Fact]
    public void AddPutsEth0WithAnAddressInThePodAndDelReleasesIt()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();
        using var pod = new PodNamespace();

        var add = s_cni.Add(network.Conflist, pod.Attachment());

        Assert.True(add.Succeeded, add.ToString());
        var address = add.FirstAddress();
        Assert.True(network.InSubnet(address), $"ADD gave {address}, outside {network.Subnet}");
        Assert.Equal("1.0.0", (string?)add.Json!["cniVersion"]);
        var sandbox = add.Json["interfaces"]!.AsArray().Select(i => i!.AsObject()).Single(i => (string?)i["name"] == "eth0");
        Assert.Equal(pod.Path, (string?)sandbox["sandbox"]);
        Assert.Contains($"inet {address}/24", pod.Exec("ip", "-4", "addr", "show", "dev", "eth0").Stdout, StringComparison.Ordinal);
        Assert.Equal([address], network.AllocatedAddresses());
        Assert.StartsWith(pod.ContainerId, network.HolderOf(address), StringComparison.Ordinal);

        var del = s_cni.Del(network.Conflist, pod.Attachment(), add.Json);

        Assert.True(del.Succeeded, del.ToString());
        Assert.Empty(network.AllocatedAddresses());
        Assert.NotEqual(0, pod.Exec("ip", "link", "show", "dev", "eth0").ExitCode);
    }

    [Fact]
    public void TwoPodNamespacesOnTheBridgeReachEachOtherByPingAndTcp()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();
        using var client = new PodNamespace();
        using var server = new PodNamespace();
        var clientAdd = s_cni.Add(network.Conflist, client.Attachment());
        var serverAdd = s_cni.Add(network.Conflist, server.Attachment());
        Assert.True(clientAdd.Succeeded && serverAdd.Succeeded, $"{clientAdd}\n{serverAdd}");
        var serverAddress = serverAdd.FirstAddress();
        // A loop, as in the podman tests: a first attempt that races the listener must not use it up.
        using var listener = StartIn(server, "while true; do echo pong | /bin/busybox nc -l -p 7000; done");

        var ping = client.Exec("ping", "-c", "2", "-W", "10", serverAddress);
        // The listener may not be bound yet: retry, bounded (a safety net, not a timing assertion).
        var tcp = client.Exec("/bin/busybox", "sh", "-c",
            $"for i in $(seq 100); do r=$(/bin/busybox nc -w 2 {serverAddress} 7000 </dev/null) && [ \"$r\" = pong ] && echo \"$r\" && exit 0; sleep 0.1; done; exit 1");

        Assert.True(ping.ExitCode == 0, $"ping {serverAddress}: {ping.Stdout}{ping.Stderr}");
        Assert.True(tcp.ExitCode == 0, $"no pong over TCP from {serverAddress}:7000: {tcp.Stdout}{tcp.Stderr}");
        Assert.True(s_cni.Del(network.Conflist, client.Attachment(), clientAdd.Json).Succeeded);
        Assert.True(s_cni.Del(network.Conflist, server.Attachment(), serverAdd.Json).Succeeded);
    }

    [Fact]
    public void CheckPassesOnAHealthyAttachment()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();
        using var pod = new PodNamespace();
        var add = s_cni.Add(network.Conflist, pod.Attachment());
        Assert.True(add.Succeeded, add.ToString());

        var check = s_cni.Check(network.Conflist, pod.Attachment(), add.Json!);

        Assert.True(check.Succeeded, check.ToString());
        Assert.True(s_cni.Del(network.Conflist, pod.Attachment(), add.Json).Succeeded);
    }

    [Fact]
    public void DelSucceedsAgainAndAfterTheNamespaceIsGone()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();
        var pod = new PodNamespace();
        var attachment = pod.Attachment();
        CniOutcome add;
        try
        {
            add = s_cni.Add(network.Conflist, attachment);
            Assert.True(add.Succeeded, add.ToString());
            Assert.True(s_cni.Del(network.Conflist, attachment, add.Json).Succeeded);
        }
        finally
        {
            pod.Dispose();
        }

        // The spec: DEL of something already gone (address released, netns deleted) is not an error.
        var again = s_cni.Del(network.Conflist, attachment, add.Json);

        Assert.True(again.Succeeded, again.ToString());
        Assert.Empty(network.AllocatedAddresses());
    }

    [Fact]
    public void AddWithoutANetnsFailsWithTheSpecsErrorObject()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();

        var add = s_cni.Add(network.Conflist, new CniAttachment("pal-no-netns", NetnsPath: ""));

        Assert.False(add.Succeeded);
        Assert.Equal(4, add.ErrorCode); // 4: invalid necessary environment variables
        Assert.Contains("CNI_NETNS", (string?)add.Json!["msg"] ?? "", StringComparison.Ordinal);
        Assert.Empty(network.AllocatedAddresses());
    }

    [Fact]
    public void ANetworkListRunsEveryPluginInOrderWithThePreviousResult()
    {
        Kernel.RequireRoot();
        using var network = new ReferenceBridgeNetwork();
        using var pod = new PodNamespace();
        // tuning reads prevResult and sets a sysctl in the pod: it fails without a prevResult.
        var conflist = network.Conflist.DeepClone().AsObject();
        conflist["plugins"]!.AsArray().Add(new JsonObject
        {
            ["type"] = "tuning",
            ["sysctl"] = new JsonObject { ["net.ipv4.conf.eth0.arp_notify"] = "1" },
        });

        var add = s_cni.Add(conflist, pod.Attachment());

        Assert.True(add.Succeeded, add.ToString());
        Assert.Equal("tuning", add.Plugin);
        Assert.Equal(network.AllocatedAddresses().Single(), add.FirstAddress());
        Assert.Equal("1", pod.Exec("cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify").Stdout.Trim());
        Assert.True(s_cni.Del(conflist, pod.Attachment(), add.Json).Succeeded);
    }

    // A background shell in the namespace; killed (the process tree we started) on dispose.
    private static Listener StartIn(PodNamespace pod, string script)
    {
        var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "netns", "exec", pod.Name, "/bin/busybox", "sh", "-c", script })
        {
            psi.ArgumentList.Add(arg);
        }
        return new Listener(Process.Start(psi) ?? throw new InvalidOperationException("cannot start ip netns exec"));
    }

    private sealed class Listener(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
            process.WaitForExit();
            process.Dispose();
        }
    }
}
