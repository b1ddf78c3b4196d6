using System.Diagnostics;
using System.Net;
using System.Text;
using Palisade.Bpf.Probe;
using Palisade.Datapath;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Bpf;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>Network policy on real traffic between pods in network namespaces (and the host), through the tc programs and the conntrack.</summary>
public sealed class NetworkPolicyTrafficTests
{
    private const byte In = 0, Eg = 1, Allow = 0, Off = 0, Enforce = 1;

    private static EndpointDatapath Open() => EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null });

    private static KeyValuePair<PalNetpolKey, PalNetpolValue> E(uint identity, byte dir, byte proto, ushort port, byte l4Prefix, uint rule) =>
        NetpolKeys.Entry(identity, dir, proto, port, l4Prefix, Allow, rule);

    private static bool Delivered(string received, string message) => received.Contains(message, StringComparison.Ordinal);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnIngressPolicyLetsTcp80UdpAndPingInAndKeepsTcp81Out(bool v6)
    {
        Kernel.Require(KernelFeature.Tc);
        using var pods = new TestPods(2);
        using var datapath = Open();
        var (a, b) = (pods.Pods[0], pods.Pods[1]);
        datapath.Install(a);
        datapath.Install(b);
        var target = v6 ? b.IPv6! : b.IPv4!;
        datapath.SetPolicy(b, new EndpointPolicyMap(Enforce, Off,
        [
            E(a.Identity, In, Frames.Tcp, 80, 24, 1),
            E(a.Identity, In, Frames.Udp, 5353, 24, 2),
            E(a.Identity, In, v6 ? Frames.Icmpv6 : Frames.Icmp, v6 ? (ushort)128 : (ushort)8, 24, 3),
        ]));

        var tcp80 = SocketExchange.Send(a, b, target, 80, udp: false, "tcp-80");
        var udp = SocketExchange.Send(a, b, target, 5353, udp: true, "udp-5353");
        var ping = TestPods.Ping(a, target, count: 2);
        var tcp81 = SocketExchange.Send(a, b, target, 81, udp: false, "tcp-81");

        Assert.True(Delivered(tcp80, "tcp-80"), tcp80);
        Assert.True(Delivered(udp, "udp-5353"), udp);
        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr);
        Assert.False(Delivered(tcp81, "tcp-81"), tcp81);
        var counters = datapath.Counters();
        Assert.True(counters[DatapathCounter.PolicyDenied] >= 1, $"policy denied {counters[DatapathCounter.PolicyDenied]}");
        // The server's answers were replies of tracked connections, not policy decisions.
        Assert.True(counters[DatapathCounter.CtReply] >= 3, $"ct replies {counters[DatapathCounter.CtReply]}");
    }

    [Fact]
    public void UnderAnEgressOnlyDefaultDenyTheServerStillAnswersButCannotConnect()
    {
        Kernel.Require(KernelFeature.Tc);
        using var pods = new TestPods(2);
        using var datapath = Open();
        var (client, server) = (pods.Pods[0], pods.Pods[1]);
        datapath.Install(client);
        datapath.Install(server);
        datapath.SetPolicy(server, new EndpointPolicyMap(Off, Enforce, []));

        var answered = SocketExchange.Send(client, server, server.IPv4!, 8080, udp: false, "to-server");
        var ping = TestPods.Ping(client, server.IPv4!, count: 2);
        var outbound = SocketExchange.Send(server, client, client.IPv4!, 8081, udp: false, "from-server");

        Assert.True(Delivered(answered, "to-server"), answered);
        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr);
        Assert.False(Delivered(outbound, "from-server"), outbound);
    }

    [Fact]
    public void APolicySwapUnderARunningTcpStreamKeepsItAndStopsNewConnections()
    {
        Kernel.Require(KernelFeature.Tc);
        using var pods = new TestPods(2);
        using var datapath = Open();
        var (a, b) = (pods.Pods[0], pods.Pods[1]);
        datapath.Install(a);
        datapath.Install(b);
        datapath.SetPolicy(b, new EndpointPolicyMap(Enforce, Off, [E(a.Identity, In, Frames.Tcp, 8090, 24, 1)]));

        var received = new StringBuilder();
        using var server = new Killed(Start(b, received, "timeout", "60", "nc", "-4", "-l", b.IPv4!.ToString(), "8090"));
        Assert.True(Command.WaitUntil(() => Command.Run("ip", "netns", "exec", TestPods.Namespace(b), "ss", "-Hnlt", "sport", "=", ":8090").Stdout.Trim().Length > 0,
            TimeSpan.FromSeconds(10)), "the server did not listen");
        using var client = new Killed(Start(a, new StringBuilder(), "sh", "-c",
            $"for i in $(seq 1 40); do echo line$i; sleep 0.1; done | timeout 50 nc -4 -N {b.IPv4} 8090"));
        Assert.True(Command.WaitUntil(() => Text(received).Contains("line5", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), "the stream did not start: " + Text(received));

        // The new policy allows nothing: the stream was allowed when it started and carries on.
        datapath.SetPolicy(b, new EndpointPolicyMap(Enforce, Off, []));
        var finished = client.Process.WaitForExit(TimeSpan.FromSeconds(50));
        Command.WaitUntil(() => Text(received).Contains("line40", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        var fresh = SocketExchange.Send(a, b, b.IPv4!, 8090, udp: false, "after-swap");

        Assert.True(finished, "the client did not finish");
        Assert.Contains("line40", Text(received), StringComparison.Ordinal);
        Assert.False(Delivered(fresh, "after-swap"), fresh);
        Assert.True(datapath.Counters()[DatapathCounter.CtEstablished] > 0);
    }

    [Fact]
    public void TheHostsOwnAddressesHaveTheHostIdentity()
    {
        Kernel.Require(KernelFeature.Tc);
        using var pods = new TestPods(2);
        using var datapath = Open();
        var (a, b) = (pods.Pods[0], pods.Pods[1]);
        datapath.Install(a);
        datapath.Install(b);
        // What the agent marks: every address of the node, the gateways on the host device among them.
        var nodeAddresses = EndpointDatapath.NodeAddresses();
        Assert.Contains(pods.Gateway4, nodeAddresses);
        datapath.SetHostAddresses(nodeAddresses);
        datapath.SetPolicy(b, new EndpointPolicyMap(Enforce, Off, [E((uint)ReservedIdentity.Host, In, Frames.Icmp, 8, 24, 1)]));

        var fromHost = TestPods.Ping(null, b.IPv4!, count: 2, source: pods.Gateway4);
        var fromPod = TestPods.Ping(a, b.IPv4!, count: 1);

        Assert.True(fromHost.ExitCode == 0, fromHost.Stdout + fromHost.Stderr);
        Assert.NotEqual(0, fromPod.ExitCode);
    }

    [Fact]
    public async Task ARestartedAgentAdoptsThePinnedPolicyAndConnections()
    {
        Kernel.Require(KernelFeature.Tc);
        var root = $"/sys/fs/bpf/palisade-test-{Guid.NewGuid():N}";
        var options = new EndpointDatapathOptions { PinDirectory = Path.Combine(root, "net") };
        EndpointDatapath? first = null;
        EndpointDatapath? second = null;
        var pods = new TestPods(2);
        try
        {
            var (a, b) = (pods.Pods[0], pods.Pods[1]);
            first = EndpointDatapath.Open(options);
            first.Install(a);
            first.Install(b);
            first.SetPolicy(b, new EndpointPolicyMap(Enforce, Off, [E(a.Identity, In, Frames.Icmp, 8, 24, 7)]));
            var flood = Task.Run(() => TestPods.Ping(a, b.IPv4!, count: 200, interval: "0.01"));
            Assert.True(Command.WaitUntil(() => first.Counters()[DatapathCounter.Redirected] > 20, TimeSpan.FromSeconds(10)), "the flood did not start");

            first.Dispose();
            first = null;
            second = EndpointDatapath.Open(options);
            // The agent re-installs its endpoints on start: the policy must stay.
            second.Install(a);
            second.Install(b);
            var flooded = await flood;
            var tcp = SocketExchange.Send(a, b, b.IPv4!, 8095, udp: false, "denied-after-restart");

            Assert.True(flooded.ExitCode == 0 && flooded.Stdout.Contains(" 0% packet loss", StringComparison.Ordinal),
                "echoes were lost across the restart: " + flooded.Stdout + flooded.Stderr);
            Assert.Equal(((byte)Enforce, (byte)Off), second.PolicyModes(b));
            Assert.Equal(7u, Assert.Single(second.PolicyEntries(b)).Value.Rule);
            Assert.False(Delivered(tcp, "denied-after-restart"), tcp);
        }
        finally
        {
            second?.Dispose();
            first?.Dispose();
            pods.Dispose();
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    /// <summary>A process killed (with its children) when the test ends, passed or failed.</summary>
    private sealed class Killed(Process process) : IDisposable
    {
        public Process Process => process;

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

    private static string Text(StringBuilder sb)
    {
        lock (sb)
        {
            return sb.ToString();
        }
    }

    private static Process Start(Endpoint pod, StringBuilder output, params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var arg in (string[])["netns", "exec", TestPods.Namespace(pod), .. args])
        {
            psi.ArgumentList.Add(arg);
        }
        var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + args[0]);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                lock (output)
                {
                    output.AppendLine(line);
                }
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
