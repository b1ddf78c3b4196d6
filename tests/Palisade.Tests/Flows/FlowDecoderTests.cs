using System.Net;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Flows;
using Palisade.Events;
using static Palisade.Tests.Flows.FlowRecords;

namespace Palisade.Tests.Flows;

/// <summary>Flow records from the datapath become Hubble-shaped flows that name both endpoints and the process owning the socket.</summary>
public sealed class FlowDecoderTests
{
    private static readonly Palisade.Datapath.Endpoint Xwing = Pod(1411, "default", "xwing", "10.244.0.7", 5123, ("app", "xwing"), ("class", "fighter"));
    private static readonly Palisade.Datapath.Endpoint Deathstar = Pod(2207, "empire", "deathstar-1", "10.244.0.9", 7177, ("app", "deathstar"));

    private readonly FakeEndpoints _endpoints = new(Xwing, Deathstar);
    private readonly FakeProcesses _processes = new(Curl());
    private readonly FakeInterfaces _interfaces = new(new() { [7] = "lxc1411" });
    private readonly List<PalisadeEvent> _published = [];

    private FlowDecoder Decoder() => new(_endpoints, _processes, Boot, _published.Add, _interfaces);

    private static PalFlowEvent XwingToDeathstar()
    {
        var r = Tcp("10.244.0.7", 43512, "10.244.0.9", 80);
        r.SrcEp = 1411;
        r.DstEp = 2207;
        r.SrcIdentity = 5123;
        r.DstIdentity = 7177;
        r.Ifindex = 7;
        r.Flags |= (uint)PalFlowFlags.Owner;
        r.OwnerTgid = 4242;
        r.OwnerKtime = 123456789;
        return r;
    }

    [Fact]
    public void AnEgressSynNamesBothPodsTheInterfaceAndTheProcessThatOwnsTheSocket()
    {
        var decoder = Decoder();
        decoder.OnRecord(Bytes(XwingToDeathstar()));

        var f = Assert.IsType<FlowEvent>(Assert.Single(_published));
        Assert.Equal(Boot + TimeSpan.FromSeconds(5), f.Time);
        Assert.True(Guid.TryParse(f.Uuid, out _));
        Assert.Equal(FlowVerdict.Forwarded, f.Verdict);
        Assert.Equal(DropReason.Unknown, f.DropReason);
        Assert.Equal(new FlowIp("10.244.0.7", "10.244.0.9", IpVersion.IPv4), f.IP);
        Assert.Equal(FlowL4.Tcp(43512, 80, TcpFlags.Syn), f.L4);
        Assert.Equal(1411u, f.Source!.ID);
        Assert.Equal(5123u, f.Source.Identity);
        Assert.Equal("default", f.Source.Namespace);
        Assert.Equal("xwing", f.Source.PodName);
        Assert.Equal(["k8s:app=xwing", "k8s:class=fighter", "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default", "k8s:io.kubernetes.pod.namespace=default"], f.Source.Labels);
        Assert.Equal("deathstar-1", f.Destination!.PodName);
        Assert.Equal("empire", f.Destination.Namespace);
        Assert.Equal(FlowType.L3L4, f.Type);
        Assert.Equal(new FlowEventType(FlowEventType.PolicyVerdict), f.EventType);
        Assert.Equal(TrafficDirection.Egress, f.TrafficDirection);
        Assert.False(f.IsReply);
        Assert.Equal(TraceObservationPoint.FromEndpoint, f.TraceObservationPoint);
        Assert.Equal(new FlowInterface(7, "lxc1411"), f.Interface);
        Assert.Equal("TCP Flags: SYN", f.Summary);
        Assert.Equal("/usr/bin/curl", f.Process!.Binary);
        Assert.Equal(4242u, f.Process.Pid);
        Assert.Equal(new FlowDecoderStats(1, 0, 1, 0, 0, 0, 60), decoder.Stats);
    }

    [Theory]
    [InlineData((int)PalFlowVerdict.Forwarded, FlowVerdict.Forwarded)]
    [InlineData((int)PalFlowVerdict.Dropped, FlowVerdict.Dropped)]
    [InlineData((int)PalFlowVerdict.Error, FlowVerdict.Error)]
    [InlineData((int)PalFlowVerdict.Audit, FlowVerdict.Audit)]
    [InlineData((int)PalFlowVerdict.Redirected, FlowVerdict.Redirected)]
    [InlineData((int)PalFlowVerdict.Traced, FlowVerdict.Traced)]
    [InlineData((int)PalFlowVerdict.Translated, FlowVerdict.Translated)]
    [InlineData((int)PalFlowVerdict.Unknown, FlowVerdict.Unknown)]
    public void EveryVerdictKeepsItsHubbleNumberAndOnlyADropHasAReason(int kernel, FlowVerdict expected)
    {
        var r = XwingToDeathstar();
        r.Verdict = (byte)kernel;
        r.DropReason = 133;
        var f = Decoder().Decode(Bytes(r))!;
        Assert.Equal(expected, f.Verdict);
        Assert.Equal(expected == FlowVerdict.Dropped ? DropReason.PolicyDenied : DropReason.Unknown, f.DropReason);
        Assert.Equal(expected == FlowVerdict.Dropped ? new FlowEventType(FlowEventType.Drop, 133) : new FlowEventType(FlowEventType.PolicyVerdict), f.EventType);
    }

    [Theory]
    [InlineData((int)PalFlowDirection.Ingress, (int)PalFlowObs.ToEndpoint, false, TrafficDirection.Ingress, TraceObservationPoint.ToEndpoint, 0)]
    [InlineData((int)PalFlowDirection.Egress, (int)PalFlowObs.FromEndpoint, true, TrafficDirection.Egress, TraceObservationPoint.FromEndpoint, 5)]
    [InlineData((int)PalFlowDirection.Egress, (int)PalFlowObs.ToNetwork, false, TrafficDirection.Egress, TraceObservationPoint.ToNetwork, 11)]
    [InlineData((int)PalFlowDirection.Ingress, (int)PalFlowObs.FromNetwork, true, TrafficDirection.Ingress, TraceObservationPoint.FromNetwork, 10)]
    [InlineData((int)PalFlowDirection.Unknown, (int)PalFlowObs.ToHost, false, TrafficDirection.Unknown, TraceObservationPoint.ToHost, 2)]
    [InlineData((int)PalFlowDirection.Ingress, (int)PalFlowObs.FromHost, false, TrafficDirection.Ingress, TraceObservationPoint.FromHost, 7)]
    [InlineData((int)PalFlowDirection.Egress, (int)PalFlowObs.ToStack, true, TrafficDirection.Egress, TraceObservationPoint.ToStack, 3)]
    [InlineData((int)PalFlowDirection.Egress, (int)PalFlowObs.FromStack, false, TrafficDirection.Egress, TraceObservationPoint.FromStack, 8)]
    public void DirectionObservationPointAndReplyPassThroughAndLaterReportsAreTraces(int direction, int obs, bool reply,
        TrafficDirection expectedDirection, TraceObservationPoint expectedPoint, int traceSubType)
    {
        var r = XwingToDeathstar();
        r.Direction = (byte)direction;
        r.ObsPoint = (byte)obs;
        r.Report = (uint)(PalFlowReport.State | (reply ? PalFlowReport.Reply : 0));
        var f = Decoder().Decode(Bytes(r))!;
        Assert.Equal(expectedDirection, f.TrafficDirection);
        Assert.Equal(expectedPoint, f.TraceObservationPoint);
        Assert.Equal(reply, f.IsReply);
        Assert.Equal(new FlowEventType(FlowEventType.Trace, traceSubType), f.EventType);
    }

    [Fact]
    public void TheFirstPacketInTheReplyDirectionIsATraceNotAPolicyVerdict()
    {
        var r = XwingToDeathstar();
        r.Report = (uint)(PalFlowReport.First | PalFlowReport.Reply);
        Assert.Equal(FlowEventType.Trace, Decoder().Decode(Bytes(r))!.EventType!.Value.Type);
    }

    [Fact]
    public void ProtocolsBecomeHubblesLayer4WithTheirSummaries()
    {
        var decoder = Decoder();
        FlowEvent Decode(byte proto, ushort flags = 0, byte type = 0, byte code = 0, bool v6 = false)
        {
            var r = XwingToDeathstar();
            r.Proto = proto;
            r.TcpFlags = flags;
            r.IcmpType = type;
            r.IcmpCode = code;
            if (v6)
            {
                SetAddresses(ref r, IPAddress.Parse("fd00::7"), IPAddress.Parse("fd00::9"));
            }
            return decoder.Decode(Bytes(r))!;
        }

        var synAck = Decode(6, (ushort)(TcpFlags.Syn | TcpFlags.Ack));
        Assert.Equal(FlowL4.Tcp(43512, 80, TcpFlags.Syn | TcpFlags.Ack), synAck.L4);
        Assert.Equal("TCP Flags: SYN, ACK", synAck.Summary);
        Assert.Equal("TCP Flags: FIN, ACK", Decode(6, (ushort)(TcpFlags.Fin | TcpFlags.Ack)).Summary);
        var udp = Decode(17);
        Assert.Equal(FlowL4.Udp(43512, 80), udp.L4);
        Assert.Equal("UDP", udp.Summary);
        var ping = Decode(1, type: 8);
        Assert.Equal(FlowL4.Icmpv4(8, 0), ping.L4);
        Assert.Equal("ICMPv4 EchoRequest", ping.Summary);
        Assert.Equal("ICMPv4 DestinationUnreachable", Decode(1, type: 3, code: 3).Summary);
        var ping6 = Decode(58, type: 128, v6: true);
        Assert.Equal(FlowL4.Icmpv6(128, 0), ping6.L4);
        Assert.Equal("ICMPv6 EchoRequest", ping6.Summary);
        Assert.Equal(new FlowIp("fd00::7", "fd00::9", IpVersion.IPv6), ping6.IP);
        var sctp = Decode(132);
        Assert.Equal(L4Protocol.None, sctp.L4.Protocol);
        Assert.Null(sctp.Summary);
    }

    [Fact]
    public void AnEndpointThatWentKeepsItsIdAndIdentityAndIsCounted()
    {
        var decoder = Decoder();
        _endpoints.Items.Remove(Deathstar);
        var f = decoder.Decode(Bytes(XwingToDeathstar()))!;
        Assert.Equal(2207u, f.Destination!.ID);
        Assert.Equal(7177u, f.Destination.Identity);
        Assert.Null(f.Destination.PodName);
        Assert.Equal(1, decoder.Stats.EndpointMisses);
    }

    [Fact]
    public void APeerThatIsNoLocalEndpointIsNamedByItsIdentityWithCiliumsReservedLabels()
    {
        var r = XwingToDeathstar();
        r.DstEp = 0;
        r.DstIdentity = 2;
        SetAddresses(ref r, IPAddress.Parse("10.244.0.7"), IPAddress.Parse("192.0.2.1"));
        var f = Decoder().Decode(Bytes(r))!;
        Assert.Equal(0u, f.Destination!.ID);
        Assert.Equal(2u, f.Destination.Identity);
        Assert.Equal(["reserved:world"], f.Destination.Labels);
    }

    [Fact]
    public void ALocalEndpointIsFoundByAddressWhenTheRecordCarriesNoId()
    {
        var r = XwingToDeathstar();
        r.DstEp = 0;
        Assert.Equal("deathstar-1", Decoder().Decode(Bytes(r))!.Destination!.PodName);
    }

    [Fact]
    public void AnOwnerTheProcessCacheDoesNotKnowLeavesTheFlowWithoutAProcessAndIsCounted()
    {
        var decoder = Decoder();
        var r = XwingToDeathstar();
        r.OwnerKtime = 999;
        var f = decoder.Decode(Bytes(r))!;
        Assert.Null(f.Process);
        Assert.Equal(1, decoder.Stats.ProcessMisses);
        Assert.Equal(0, decoder.Stats.WithProcess);
    }

    [Fact]
    public void ARecordWithoutAnOwnerAsksNoProcessAtAll()
    {
        var r = XwingToDeathstar();
        r.Flags &= ~(uint)PalFlowFlags.Owner;
        Assert.Null(Decoder().Decode(Bytes(r))!.Process);
        Assert.Empty(_processes.Lookups);
    }

    [Fact]
    public void PacketsFoldedIntoOneRecordAreCountedAsAggregated()
    {
        var decoder = Decoder();
        var r = XwingToDeathstar();
        r.Packets = 5;
        r.Bytes = 3000;
        decoder.Decode(Bytes(r));
        decoder.Decode(Bytes(XwingToDeathstar()));
        Assert.Equal(4, decoder.Stats.AggregatedPackets);
        Assert.Equal(3060, decoder.Stats.Bytes);
    }

    [Fact]
    public void FlowsOfOneEndpointShareItsDescriptionAndTheInterfaceNameIsAskedOnce()
    {
        var decoder = Decoder();
        var a = decoder.Decode(Bytes(XwingToDeathstar()))!;
        var b = decoder.Decode(Bytes(XwingToDeathstar()))!;
        Assert.Same(a.Source, b.Source);
        Assert.Same(a.Interface, b.Interface);
        Assert.Same(a.Summary, b.Summary);
        Assert.NotEqual(a.Uuid, b.Uuid);
    }

    [Fact]
    public void ThePolicyRuleDirectionAndMatchOfARecordReachTheFlow()
    {
        var decoder = Decoder();
        var r = XwingToDeathstar();
        r.Verdict = (byte)PalFlowVerdict.Dropped;
        r.DropReason = 181;
        r.PolicyRule = 17;
        r.PolicyDir = (byte)PalFlowDirection.Ingress;
        r.PolicyMatch = (byte)PalFlowPolicyMatch.Rule;
        var plain = XwingToDeathstar();

        var flow = decoder.Decode(Bytes(r))!;
        var none = decoder.Decode(Bytes(plain))!;

        Assert.Equal(DropReason.PolicyDeny, flow.DropReason);
        Assert.Equal(17u, flow.PolicyRule);
        Assert.Equal(TrafficDirection.Ingress, flow.PolicyDirection);
        Assert.Equal(FlowPolicyDecision.Rule, flow.PolicyDecision);
        Assert.Equal(0u, none.PolicyRule);
        Assert.Equal(TrafficDirection.Unknown, none.PolicyDirection);
        Assert.Equal(FlowPolicyDecision.None, none.PolicyDecision);
    }

    [Fact]
    public void MalformedRecordsAreCountedAndNeverThrow()
    {
        var decoder = Decoder();
        var good = Bytes(XwingToDeathstar());
        var wrongType = XwingToDeathstar();
        wrongType.Hdr.Type = 2;
        var badVerdict = XwingToDeathstar();
        badVerdict.Verdict = 8;
        var badDirection = XwingToDeathstar();
        badDirection.Direction = 3;
        var oversized = XwingToDeathstar();
        oversized.Hdr.Size = (uint)good.Length + 1;
        var badPolicyDir = XwingToDeathstar();
        badPolicyDir.PolicyDir = 3;
        var badPolicyMatch = XwingToDeathstar();
        badPolicyMatch.PolicyMatch = 6;
        foreach (var record in new[] { [], good[..20], good[..^1], Bytes(wrongType), Bytes(badVerdict), Bytes(badDirection), Bytes(oversized), Bytes(badPolicyDir), Bytes(badPolicyMatch) })
        {
            decoder.OnRecord(record);
        }
        Assert.Empty(_published);
        Assert.Equal(9, decoder.Stats.Malformed);
        Assert.Equal(0, decoder.Stats.Decoded);
        // A longer record (a later version with fields added at the end) still decodes.
        Assert.NotNull(decoder.Decode([.. good, 0, 0, 0, 0, 0, 0, 0, 0]));
    }
}
