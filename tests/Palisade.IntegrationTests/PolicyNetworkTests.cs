using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Palisade.Events;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>
/// Socket, packet and capability functions emulated on kernel tracepoints and cgroup skb
/// hooks (no kprobes here): real processes, real sockets on loopback, decisions in the kernel.
/// </summary>
public sealed class PolicyNetworkTests
{
    private const int KilledBySigkill = 128 + 9;

    public PolicyNetworkTests() => Kernel.Require();

    private static string Opener => Helpers.Path("opener");

    /// <summary>A kprobes entry that tracks every IPv4 socket to the process that creates it (TrackSock), posting nothing.</summary>
    private const string TrackIPv4Sockets = """
                      - call: "sk_alloc"
                        syscall: false
                        return: true
                        args:
                        - index: 1
                          type: int
                          label: "Family"
                        returnArg:
                          index: 0
                          type: sock
                        returnArgAction: TrackSock
                        selectors:
                        - matchArgs:
                          - index: 1
                            operator: "Equal"
                            values:
                            - "2"
                          matchActions:
                          - action: NoPost
                    """;

    private static string S(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static CommandResult Run(params string[] args)
    {
        using var p = Start(args);
        var stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(30)), $"opener {string.Join(' ', args)} did not finish");
        return new CommandResult(p.ExitCode, stdout.GetAwaiter().GetResult(), "");
    }

    private static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo(Opener) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        return Process.Start(psi)!;
    }

    private static async Task<T> Within<T>(Task<T> task, string what)
    {
        try
        {
            return await task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            Assert.Fail(what);
            throw;
        }
    }

    /// <summary>A free loopback port (bound and released at once).</summary>
    private static int FreePort(SocketType type = SocketType.Stream)
    {
        using var s = new Socket(AddressFamily.InterNetwork, type, type == SocketType.Stream ? ProtocolType.Tcp : ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    [Fact]
    public void ListenOnAForbiddenPortKillsBeforeListenReturns()
    {
        using var h = new PolicyHarness();
        var forbidden = FreePort();
        var allowed = FreePort();
        h.ApplyRunning($"""
            apiVersion: cilium.io/v1alpha1
            kind: TracingPolicy
            metadata:
              name: tcp-listen
            spec:
              kprobes:
              - call: "inet_csk_listen_start"
                syscall: false
                args:
                - index: 0
                  type: "sock"
                selectors:
                - matchArgs:
                  - index: 0
                    operator: "SPort"
                    values:
                    - "{forbidden}"
                  matchActions:
                  - action: Sigkill
            """);
        var killed = Run("listen", "127.0.0.1", S(forbidden));
        Assert.Equal(KilledBySigkill, killed.ExitCode);
        Assert.DoesNotContain("listening", killed.Stdout, StringComparison.Ordinal);
        var ok = Run("listen", "127.0.0.1", S(allowed));
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("listening", ok.Stdout, StringComparison.Ordinal);
        var ev = h.WaitForPolicyEvent(e => e.PolicyName == "tcp-listen", "listen event");
        Assert.Equal("KPROBE_ACTION_SIGKILL", ev.Action);
        Assert.Equal(Helpers.RealPath(Opener), ev.Process.Binary);
        var sock = Assert.Single(ev.Args).Sock!;
        Assert.Equal((uint)forbidden, sock.SPort);
        Assert.Equal("127.0.0.1", sock.SAddr);
        Assert.Equal("IPPROTO_TCP", sock.Protocol);
        Assert.DoesNotContain(h.PolicyEvents, e => e.Args.Any(a => a.Sock?.SPort == (uint)allowed));
    }

    [Fact]
    public async Task TcpStateChangesAcceptAndCloseAreSeen()
    {
        using var h = new PolicyHarness();
        var port = FreePort();
        h.ApplyRunning($"""
            apiVersion: cilium.io/v1alpha1
            kind: TracingPolicy
            metadata:
              name: accept
            spec:
              kprobes:
            {TrackIPv4Sockets}
              - call: "tcp_set_state"
                syscall: false
                args:
                - index: 0
                  type: "sock"
                - index: 1
                  type: "int"
                  label: "state"
                selectors:
                - matchArgs:
                  - index: 0
                    operator: "SPort"
                    values:
                    - "{port}"
                  - index: 1
                    operator: "Equal"
                    values:
                    - "1"
                  matchActions:
                  - action: Sigkill
              - call: "tcp_create_openreq_child"
                syscall: false
                return: true
                args:
                - index: 0
                  type: "sock"
                returnArg:
                  index: 0
                  type: sock
                returnArgAction: TrackSock
                selectors:
                - matchArgs:
                  - index: 0
                    operator: "SPort"
                    values:
                    - "{port}"
              - call: "tcp_close"
                syscall: false
                args:
                - index: 0
                  type: "sock"
                selectors:
                - matchArgs:
                  - index: 0
                    operator: "SPort"
                    values:
                    - "{port}"
            """);
        using var server = Start("serve", "127.0.0.1", S(port));
        await Within(server.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken).AsTask(), "the server did not start listening");
        // The server's socket becomes ESTABLISHED while the kernel handles the client's ACK in a
        // softirq on the client's CPU: the Sigkill must not hit the client, whose call it is not.
        var client = Run("connect", "127.0.0.1", S(port));
        Assert.Equal(0, client.ExitCode);
        Assert.Contains("connected", client.Stdout, StringComparison.Ordinal);
        Assert.True(server.WaitForExit(TimeSpan.FromSeconds(10)), "the server did not accept");
        Assert.Equal(0, server.ExitCode);

        // The handshake's new socket (LISTEN -> SYN_RECV), then SYN_RECV -> ESTABLISHED.
        // Created in a softirq: posted, but not tracked (no task's call owns it there).
        var child = h.WaitForPolicyEvent(e => e.PolicyName == "accept" && e.FunctionName == "tcp_create_openreq_child", "child socket event");
        Assert.Equal((uint)port, child.Return!.Sock!.SPort);
        var established = h.WaitForPolicyEvent(e => e.PolicyName == "accept" && e.FunctionName == "tcp_set_state", "established event");
        Assert.Equal("TCP_SYN_RECV", established.Args[0].Sock!.State); // the old state, as at the function's entry
        Assert.Equal(1, established.Args[1].Int);
        Assert.Equal("KPROBE_ACTION_POST", established.Action); // interrupt context: reported, nobody signalled
        // The server closes its accepted socket in its own call.
        var close = h.WaitForPolicyEvent(e => e.PolicyName == "accept" && e.FunctionName == "tcp_close", "close event");
        Assert.Equal((uint)server.Id, close.Process.Pid);
        // NoPost: the tracked sockets produce no sk_alloc events.
        Assert.DoesNotContain(h.PolicyEvents, e => e.FunctionName == "sk_alloc");
    }

    [Fact]
    public async Task DnsToAnUnlistedServerIsDroppedAndTheSenderKilled()
    {
        using var h = new PolicyHarness();
        var port = FreePort(SocketType.Dgram);
        using var forbidden = new UdpClient(new IPEndPoint(IPAddress.Loopback, port));
        using var allowed = new UdpClient(new IPEndPoint(IPAddress.Parse("127.0.0.53"), port));
        // Tetragon's dns-only-specified-servers, on a test port instead of 53.
        h.ApplyRunning($"""
            apiVersion: cilium.io/v1alpha1
            kind: TracingPolicy
            metadata:
              name: dns-only-specified-servers
            spec:
              kprobes:
              - call: "ip_output"
                syscall: false
                args:
                - index: 2
                  type: "skb"
                selectors:
                - matchArgs:
                  - index: 2
                    operator: "Protocol"
                    values:
                    - "IPPROTO_TCP"
                    - "IPPROTO_UDP"
                  - index: 2
                    operator: "DPort"
                    values:
                    - "{port}"
                  - index: 2
                    operator: "NotDAddr"
                    values:
                    - "127.0.0.53"
                  matchActions:
                  - action: "Sigkill"
            """);
        var killed = Run("udp", "127.0.0.1", S(port));
        Assert.Equal(KilledBySigkill, killed.ExitCode);
        Assert.DoesNotContain("sent", killed.Stdout, StringComparison.Ordinal);
        var ok = Run("udp", "127.0.0.53", S(port));
        Assert.Equal(0, ok.ExitCode);
        var got = await Within(allowed.ReceiveAsync(TestContext.Current.CancellationToken).AsTask(), "the allowed server got nothing");
        Assert.Equal("palisade", System.Text.Encoding.ASCII.GetString(got.Buffer));
        Assert.Equal(0, forbidden.Available); // the packet was dropped before it left
        var ev = h.WaitForPolicyEvent(e => e.PolicyName == "dns-only-specified-servers", "kill event");
        Assert.Equal("KPROBE_ACTION_SIGKILL", ev.Action);
        var skb = Assert.Single(ev.Args);
        Assert.Equal("skb_arg", skb.Type);
        Assert.Contains(skb.Object!, f => f.Key == "daddr" && (string)f.Value == "127.0.0.1");
        Assert.Contains(skb.Object!, f => f.Key == "dport" && (uint)f.Value == (uint)port);
        Assert.Contains(skb.Object!, f => f.Key == "protocol" && (string)f.Value == "IPPROTO_UDP");
    }

    [Fact]
    public async Task PacketsOnBothDirectionsAndDevicesAreReportedAndTrackedSocketsNameTheirOwner()
    {
        using var h = new PolicyHarness();
        var port = FreePort(SocketType.Dgram);
        h.ApplyRunning($"""
            apiVersion: cilium.io/v1alpha1
            kind: TracingPolicy
            metadata:
              name: datagram
            spec:
              kprobes:
            {TrackIPv4Sockets}
              - call: "__sk_free"
                syscall: false
                args:
                - index: 0
                  type: sock
                selectors:
                - matchActions:
                  - action: UntrackSock
                    argSock: 0
                  - action: NoPost
              - call: "__cgroup_bpf_run_filter_skb"
                syscall: false
                args:
                - index: 0
                  type: sock
                - index: 1
                  type: skb
                - index: 2
                  type: int
                  label: "send"
                selectors:
                - matchArgs:
                  - index: 1
                    operator: "DPort"
                    values:
                    - "{port}"
                  - index: 1
                    operator: "Protocol"
                    values:
                    - "IPPROTO_UDP"
              - call: "dev_hard_start_xmit"
                syscall: false
                args:
                - index: 0
                  type: "skb"
                - index: 1
                  type: "net_device"
                selectors:
                - matchArgs:
                  - index: 1
                    operator: Equal
                    values:
                    - "lo"
                  - index: 0
                    operator: "DPort"
                    values:
                    - "{port}"
            """);
        using var receiver = Start("udp", "127.0.0.1", S(port), "recv");
        await Within(receiver.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken).AsTask(), "the receiver did not bind");
        var sender = Run("udp", "127.0.0.1", S(port));
        Assert.Equal(0, sender.ExitCode);
        Assert.True(receiver.WaitForExit(TimeSpan.FromSeconds(10)), "the receiver got nothing");
        Assert.Equal(0, receiver.ExitCode);

        var egress = h.WaitForPolicyEvent(e => e.FunctionName == "__cgroup_bpf_run_filter_skb" && e.Args[2].Int == 1, "egress event");
        var ingress = h.WaitForPolicyEvent(e => e.FunctionName == "__cgroup_bpf_run_filter_skb" && e.Args[2].Int == 0, "ingress event");
        var device = h.WaitForPolicyEvent(e => e.FunctionName == "dev_hard_start_xmit", "device event");
        Assert.Contains(device.Args[1].Object!, f => f.Key == "name" && (string)f.Value == "lo");
        Assert.Contains(egress.Args[1].Object!, f => f.Key == "dport" && (uint)f.Value == (uint)port);
        Assert.Equal((uint)port, ingress.Args[0].Sock!.SPort); // the receiving socket
        // The packet arrives in the sender's softirq; the receiver's socket was tracked at its
        // socket() (TrackSock), so the ingress event names the receiver, not the sender.
        Assert.Equal((uint)receiver.Id, ingress.Process.Pid);
        Assert.NotEqual(ingress.Process.Pid, egress.Process.Pid);
    }

    [Fact]
    public void CapabilityChecksAreSeenWithTheirResultAndCanKill()
    {
        using var h = new PolicyHarness();
        var opener = Helpers.RealPath(Opener);
        h.ApplyRunning($"""
            apiVersion: cilium.io/v1alpha1
            kind: TracingPolicy
            metadata:
              name: creds-capability-checks
            spec:
              kprobes:
              - call: "cap_capable"
                syscall: false
                return: true
                args:
                - index: 1
                  type: "user_namespace"
                - index: 2
                  type: "capability"
                returnArg:
                  index: 0
                  type: "int"
                selectors:
                - matchArgs:
                  - index: 2
                    operator: "Equal"
                    values:
                    - "7"
                  matchBinaries:
                  - operator: "In"
                    values:
                    - "{opener}"
                  matchActions:
                  - action: Sigkill
            """);
        var r = Run("setuid", "0");
        Assert.Equal(KilledBySigkill, r.ExitCode);
        Assert.DoesNotContain("setuid done", r.Stdout, StringComparison.Ordinal);
        var ev = h.WaitForPolicyEvent(e => e.PolicyName == "creds-capability-checks", "capability event");
        Assert.Equal("capability_arg", ev.Args[1].Type);
        Assert.Contains(ev.Args[1].Object!, f => f.Key == "name" && (string)f.Value == "CAP_SETUID");
        Assert.Equal("user_ns_arg", ev.Args[0].Type);
        Assert.Contains(ev.Args[0].Object!, f => f.Key == "level" && (int)f.Value == 0);
        Assert.Equal(0, ev.Return!.Int); // root has CAP_SETUID: the check passed
    }
}
