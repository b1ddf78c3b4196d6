using Palisade.Datapath.Flows;
using Palisade.Events;

namespace Palisade.Tests.Flows;

/// <summary>Hubble's flow filters: fields AND, values OR, whitelist OR, blacklist excludes; bad values are refused by name.</summary>
public sealed class FlowFilterTests
{
    private static readonly DateTimeOffset T = new(2026, 12, 2, 5, 0, 0, TimeSpan.Zero);

    internal static FlowEvent Flow(string srcNs = "default", string srcPod = "xwing", string dstNs = "empire", string dstPod = "deathstar-1",
        FlowVerdict verdict = FlowVerdict.Forwarded, FlowL4? l4 = null, string srcIp = "10.244.0.7", string dstIp = "10.244.0.9",
        int eventType = FlowEventType.Trace, bool reply = false, TrafficDirection direction = TrafficDirection.Egress, DateTimeOffset? time = null) => new()
    {
        Time = time ?? T,
        Uuid = Guid.NewGuid().ToString(),
        Verdict = verdict,
        DropReason = verdict == FlowVerdict.Dropped ? DropReason.PolicyDenied : DropReason.Unknown,
        IP = new FlowIp(srcIp, dstIp, srcIp.Contains(':', StringComparison.Ordinal) ? IpVersion.IPv6 : IpVersion.IPv4),
        L4 = l4 ?? FlowL4.Tcp(43512, 80, TcpFlags.Syn),
        Source = new FlowEndpoint { ID = 1, Identity = 5123, Namespace = srcNs, PodName = srcPod, Labels = ["k8s:app=xwing", "k8s:class=fighter"] },
        Destination = new FlowEndpoint { ID = 2, Identity = 7177, Namespace = dstNs, PodName = dstPod, Labels = ["k8s:app=deathstar"] },
        EventType = new FlowEventType(eventType),
        IsReply = reply,
        TrafficDirection = direction,
    };

    private static bool Matches(FlowFilter.Spec spec, FlowEvent flow) => FlowFilter.Parse(spec).Matches(flow, "node-1");

    [Fact]
    public void PodFiltersTakeANamespaceAndANamePrefixOrEitherAlone()
    {
        var f = Flow();
        Assert.True(Matches(new() { SourcePod = ["default/xw"] }, f));
        Assert.True(Matches(new() { SourcePod = ["default/"] }, f));
        Assert.True(Matches(new() { SourcePod = ["xwing"] }, f));
        Assert.False(Matches(new() { SourcePod = ["empire/xwing"] }, f));
        Assert.False(Matches(new() { SourcePod = ["default/deathstar"] }, f));
        Assert.True(Matches(new() { DestinationPod = ["empire/deathstar"] }, f));
        Assert.False(Matches(new() { DestinationPod = ["default/"] }, f));
    }

    [Fact]
    public void LabelSelectorsMatchWithOrWithoutTheLabelSource()
    {
        var f = Flow();
        Assert.True(Matches(new() { SourceLabel = ["app=xwing"] }, f));
        Assert.True(Matches(new() { SourceLabel = ["k8s:app=xwing,class"] }, f));
        Assert.True(Matches(new() { SourceLabel = ["app==xwing"] }, f));
        Assert.False(Matches(new() { SourceLabel = ["reserved:app=xwing"] }, f));
        Assert.False(Matches(new() { SourceLabel = ["app=xwing,!class"] }, f));
        Assert.True(Matches(new() { SourceLabel = ["app!=deathstar"] }, f));
        Assert.True(Matches(new() { SourceLabel = ["!tier"] }, f));
        Assert.False(Matches(new() { DestinationLabel = ["app=xwing"] }, f));
        Assert.True(Matches(new() { DestinationLabel = ["app=xwing", "app=deathstar"] }, f));
    }

    [Fact]
    public void AddressesPortsProtocolsVerdictsTypesDirectionAndReplyEachNarrowTheFlows()
    {
        var f = Flow();
        Assert.True(Matches(new() { SourceIp = ["10.244.0.7"] }, f));
        Assert.True(Matches(new() { SourceIp = ["10.244.0.0/16"] }, f));
        Assert.False(Matches(new() { DestinationIp = ["10.244.0.7"] }, f));
        Assert.True(Matches(new() { DestinationPort = ["80"] }, f));
        Assert.False(Matches(new() { SourcePort = ["80"] }, f));
        Assert.True(Matches(new() { Protocol = ["TCP"] }, f));
        Assert.False(Matches(new() { Protocol = ["udp", "icmp"] }, f));
        Assert.True(Matches(new() { Protocol = ["icmp"] }, Flow(l4: FlowL4.Icmpv6(128, 0))));
        Assert.False(Matches(new() { DestinationPort = ["80"] }, Flow(l4: FlowL4.Icmpv4(8, 0))));
        Assert.True(Matches(new() { Verdict = ["forwarded"] }, f));
        Assert.False(Matches(new() { Verdict = ["DROPPED"] }, f));
        Assert.True(Matches(new() { EventType = ["trace"] }, f));
        Assert.False(Matches(new() { EventType = ["drop", "policy-verdict"] }, f));
        Assert.True(Matches(new() { EventType = ["4:0"] }, f));
        Assert.True(Matches(new() { TrafficDirection = ["egress"] }, f));
        Assert.False(Matches(new() { Reply = [true] }, f));
        Assert.True(Matches(new() { NodeName = ["node-1"] }, f));
        // Fields AND.
        Assert.False(Matches(new() { SourcePod = ["default/"], Verdict = ["DROPPED"] }, f));
    }

    [Fact]
    public void AFlowPassesAnyWhitelistFilterAndNoBlacklistFilter()
    {
        var toPod = FlowFilter.Parse(new() { DestinationPod = ["default/xwing"] });
        var fromPod = FlowFilter.Parse(new() { SourcePod = ["default/xwing"] });
        var drops = FlowFilter.Parse(new() { Verdict = ["DROPPED"] });
        var set = new FlowFilterSet([toPod, fromPod], [drops]);
        Assert.True(set.Passes(Flow(), "n"));
        Assert.False(set.Passes(Flow(verdict: FlowVerdict.Dropped), "n"));
        Assert.False(set.Passes(Flow(srcNs: "other"), "n"));
        Assert.True(FlowFilterSet.All.Passes(Flow(), "n"));
    }

    [Theory]
    [InlineData("source_ip", "10.0.0.300", "is not an IP address or CIDR")]
    [InlineData("destination_port", "http", "is not a port")]
    [InlineData("protocol", "sctp", "is not a protocol")]
    [InlineData("verdict", "ALLOWED", "is not a verdict")]
    [InlineData("event_type", "l7", "is not an event type")]
    [InlineData("source_label", "app=web,", "empty requirement")]
    [InlineData("source_pod", "", "empty pod filter")]
    [InlineData("traffic_direction", "sideways", "is not a direction")]
    public void ABadValueIsRefusedNamingTheFieldAndTheValue(string field, string value, string why)
    {
        FlowFilter.Spec spec = field switch
        {
            "source_ip" => new() { SourceIp = [value] },
            "destination_port" => new() { DestinationPort = [value] },
            "protocol" => new() { Protocol = [value] },
            "verdict" => new() { Verdict = [value] },
            "event_type" => new() { EventType = [value] },
            "source_label" => new() { SourceLabel = [value] },
            "source_pod" => new() { SourcePod = [value] },
            _ => new() { TrafficDirection = [value] },
        };
        var e = Assert.Throws<FlowFilterException>(() => FlowFilter.Parse(spec, "whitelist[0]"));
        Assert.StartsWith($"whitelist[0].{field}:", e.Message, StringComparison.Ordinal);
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }
}
