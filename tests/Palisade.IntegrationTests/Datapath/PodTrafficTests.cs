using System.Net;
using Palisade.Bpf;
using Palisade.Bpf.Probe;
using Palisade.Datapath;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Bpf;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>Real traffic between two pods and the host through the datapath's tc programs.</summary>
public sealed unsafe class PodTrafficTests
{
    private static IPAddress Addr(Endpoint ep, bool v6) => v6 ? ep.IPv6! : ep.IPv4!;

    private static IPAddress Src(PalFlowEvent e) => DatapathKeys.Address(new ReadOnlySpan<uint>(e.Saddr, 4), (e.Flags & (uint)PalFlowFlags.Ipv6) != 0);

    private static IPAddress Dst(PalFlowEvent e) => DatapathKeys.Address(new ReadOnlySpan<uint>(e.Daddr, 4), (e.Flags & (uint)PalFlowFlags.Ipv6) != 0);

    private static EndpointDatapath Open() => EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TwoPodsReachEachOtherOverIcmpTcpAndUdpThroughTheRedirect(bool v6)
    {
        Kernel.Require(KernelFeature.Tc);
        using var pods = new TestPods(2);
        using var datapath = Open();
        using var flows = new FlowRecords(datapath.EventRing, background: true);
        var (a, b) = (pods.Pods[0], pods.Pods[1]);
        datapath.Install(a);
        datapath.Install(b);
        var redirectedBefore = datapath.Counters()[DatapathCounter.Redirected];

        var ping = TestPods.Ping(a, Addr(b, v6));
        var tcp = SocketExchange.Send(a, b, Addr(b, v6), 7070, udp: false, "hello-tcp");
        var udp = SocketExchange.Send(a, b, Addr(b, v6), 7071, udp: true, "hello-udp");

        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr);
        Assert.Contains("hello-tcp", tcp, StringComparison.Ordinal);
        Assert.Contains("hello-udp", udp, StringComparison.Ordinal);
        var redirected = datapath.Counters()[DatapathCounter.Redirected] - redirectedBefore;
        // 3 echo requests + 3 replies, a TCP handshake, data and close both ways, one datagram.
        Assert.True(redirected >= 6 + 6 + 1, $"only {redirected} packets were redirected by bpf_redirect_peer");

        var seen = new List<PalFlowEvent>();
        bool Is(PalFlowEvent r, byte proto, ushort dport) => r.Proto == proto && r.Dport == dport && Src(r).Equals(Addr(a, v6)) && Dst(r).Equals(Addr(b, v6));
        Assert.True(flows.WaitFor(seen, r => Is(r, Frames.Tcp, 7070) && r.ObsPoint == (byte)PalFlowObs.ToEndpoint),
            $"no TCP record at the receiver among {seen.Count}");
        Assert.True(flows.WaitFor(seen, r => Is(r, Frames.Udp, 7071) && r.ObsPoint == (byte)PalFlowObs.ToEndpoint), "no UDP record at the receiver");
        var tcpOut = seen.First(r => Is(r, Frames.Tcp, 7070) && r.ObsPoint == (byte)PalFlowObs.FromEndpoint && (r.Report & (uint)PalFlowReport.First) != 0);
        var tcpIn = seen.First(r => Is(r, Frames.Tcp, 7070) && r.ObsPoint == (byte)PalFlowObs.ToEndpoint && (r.Report & (uint)PalFlowReport.First) != 0);
        Assert.Equal((byte)PalFlowVerdict.Forwarded, tcpOut.Verdict);
        Assert.Equal((byte)PalFlowDirection.Egress, tcpOut.Direction);
        Assert.Equal((byte)PalFlowDirection.Ingress, tcpIn.Direction);
        Assert.Equal(Frames.Syn, (byte)tcpOut.TcpFlags);
        Assert.All(new[] { tcpOut, tcpIn }, r =>
        {
            Assert.Equal(a.Id, r.SrcEp);
            Assert.Equal(b.Id, r.DstEp);
            Assert.Equal(a.Identity, r.SrcIdentity);
            Assert.Equal(b.Identity, r.DstIdentity);
        });
        Assert.Equal((uint)a.HostIfIndex, tcpOut.Ifindex);
        Assert.Equal((uint)b.HostIfIndex, tcpIn.Ifindex);
        // The server's SYN-ACK: a reply, on a connection B accepted.
        var synAck = seen.FirstOrDefault(r => r.Proto == Frames.Tcp && r.Sport == 7070 && r.ObsPoint == (byte)PalFlowObs.FromEndpoint);
        Assert.True(synAck.Report != 0, "no record of the SYN-ACK leaving B");
        Assert.True((synAck.Report & (uint)PalFlowReport.Reply) != 0, $"report {synAck.Report}");
        Assert.Equal((byte)PalFlowDirection.Ingress, synAck.Direction);
        Assert.Contains(seen, r => Is(r, Frames.Tcp, 7070) && (r.Report & (uint)PalFlowReport.Close) != 0);
        Assert.Contains(seen, r => r.Proto == (v6 ? Frames.Icmpv6 : Frames.Icmp) && r.SrcEp == a.Id && r.DstEp == b.Id);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void APodAndTheHostReachEachOtherThroughTheStack(bool v6)
    {
        Kernel.Require(KernelFeature.Tc);
        using var pods = new TestPods(1);
        using var datapath = Open();
        using var flows = new FlowRecords(datapath.EventRing, background: true);
        var a = pods.Pods[0];
        var gateway = v6 ? pods.Gateway6 : pods.Gateway4;
        datapath.Install(a);
        datapath.SetHostAddresses([pods.Gateway4, pods.Gateway6]);

        var toHost = TestPods.Ping(a, gateway);
        var fromHost = TestPods.Ping(null, Addr(a, v6), source: gateway);
        var tcpToPod = SocketExchange.Send(null, a, Addr(a, v6), 7072, udp: false, "host-to-pod");
        var tcpToHost = SocketExchange.Send(a, null, gateway, 7073, udp: false, "pod-to-host");

        Assert.True(toHost.ExitCode == 0, toHost.Stdout + toHost.Stderr);
        Assert.True(fromHost.ExitCode == 0, fromHost.Stdout + fromHost.Stderr);
        Assert.Contains("host-to-pod", tcpToPod, StringComparison.Ordinal);
        Assert.Contains("pod-to-host", tcpToHost, StringComparison.Ordinal);
        var counters = datapath.Counters();
        Assert.True(counters[DatapathCounter.ToStack] >= 6, $"to-stack {counters[DatapathCounter.ToStack]}");
        Assert.True(counters[DatapathCounter.Forwarded] >= 6, $"forwarded to the pod {counters[DatapathCounter.Forwarded]}");

        var seen = new List<PalFlowEvent>();
        Assert.True(flows.WaitFor(seen, r => r.Proto == Frames.Tcp && r.Dport == 7073 && r.ObsPoint == (byte)PalFlowObs.ToStack), "no record of the pod's connection to the host");
        Assert.True(flows.WaitFor(seen, r => r.Proto == Frames.Tcp && r.Dport == 7072 && r.ObsPoint == (byte)PalFlowObs.ToEndpoint), "no record of the host's connection to the pod");
        var podToHost = seen.First(r => r.Dport == 7073 && r.ObsPoint == (byte)PalFlowObs.ToStack);
        Assert.Equal((byte)PalFlowDirection.Egress, podToHost.Direction);
        Assert.Equal(a.Id, podToHost.SrcEp);
        Assert.Equal((uint)ReservedIdentity.Host, podToHost.DstIdentity);
        var hostToPod = seen.First(r => r.Dport == 7072 && r.ObsPoint == (byte)PalFlowObs.ToEndpoint);
        Assert.Equal((byte)PalFlowDirection.Ingress, hostToPod.Direction);
        Assert.Equal(a.Id, hostToPod.DstEp);
        Assert.Equal((byte)PalFlowVerdict.Forwarded, hostToPod.Verdict);
        var echo = seen.FirstOrDefault(r => r.ObsPoint == (byte)PalFlowObs.ToEndpoint && r.IcmpType == (v6 ? 128 : 8));
        Assert.True(echo.Report != 0, "no record of the host's ping arriving at the pod");
        Assert.Equal((uint)ReservedIdentity.Host, echo.SrcIdentity);
        Assert.Equal((byte)PalFlowDirection.Ingress, echo.Direction);
    }

    [Fact]
    public void CheckNamesADetachedProgramAndAGoneHostVeth()
    {
        Kernel.Require(KernelFeature.Tc);
        using var pods = new TestPods(2);
        using var datapath = Open();
        var (a, b) = (pods.Pods[0], pods.Pods[1]);
        datapath.Install(a);
        datapath.Install(b);
        Assert.Null(datapath.Check(a));

        Command.Check("tc", "filter", "del", "dev", a.HostIfName, "ingress");
        Command.Check("ip", "link", "del", b.HostIfName);

        Assert.Contains("pal_from_endpoint is not attached", datapath.Check(a), StringComparison.Ordinal);
        Assert.Contains($"host veth {b.HostIfName} is gone", datapath.Check(b), StringComparison.Ordinal);
        datapath.Install(a);
        Assert.Null(datapath.Check(a));
    }

    [Fact]
    public void RemoveTakesTheFiltersAndEntriesAwayAndIsIdempotent()
    {
        Kernel.Require(KernelFeature.Tc);
        using var pods = new TestPods(1);
        using var datapath = Open();
        var a = pods.Pods[0];
        datapath.Install(a);

        datapath.Remove(a);
        datapath.Remove(a);

        var filters = Command.Check("tc", "filter", "show", "dev", a.HostIfName, "ingress") + Command.Check("tc", "filter", "show", "dev", a.HostIfName, "egress");
        Assert.DoesNotContain("pal_", filters, StringComparison.Ordinal);
        var problem = datapath.Check(a);
        Assert.Contains("no datapath entry", problem, StringComparison.Ordinal);
        Assert.Contains($"address {a.IPv4} is not mapped", problem, StringComparison.Ordinal);
    }
}
