using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Palisade.Agent.Api;
using Palisade.Api.V1;
using Palisade.Datapath.Flows;
using Palisade.Events;
using Palisade.Exporters;
using static Palisade.Tests.Flows.FlowFilterTests;
using ApiFlowFilter = Palisade.Api.V1.FlowFilter;

namespace Palisade.Tests.Flows;

/// <summary>GetFlows reads Hubble's request: filters, history window, last or first N; responses have Hubble's GetFlowsResponse shape.</summary>
public sealed class GetFlowsTests
{
    private static readonly DateTimeOffset T = new(2026, 12, 2, 5, 0, 0, TimeSpan.Zero);

    private static List<FlowEvent> History() =>
    [
        Flow(time: T),
        Flow(verdict: FlowVerdict.Dropped, eventType: FlowEventType.Drop, time: T.AddSeconds(1)),
        Flow(srcNs: "kube-system", srcPod: "coredns-1", l4: FlowL4.Udp(53, 40000), time: T.AddSeconds(2)),
        Flow(time: T.AddSeconds(3)),
        Flow(verdict: FlowVerdict.Dropped, eventType: FlowEventType.Drop, time: T.AddSeconds(4)),
    ];

    private static IReadOnlyList<FlowEvent> Select(GetFlowsRequest request, List<FlowEvent> history) =>
        FlowMessages.Select(history, request, FlowMessages.ToFilterSet(request), "node-1");

    [Fact]
    public void WhitelistAndBlacklistSelectFlowsAsHubblesDo()
    {
        var history = History();
        var request = new GetFlowsRequest();
        request.Whitelist.Add(new ApiFlowFilter { SourcePod = { "default/" } });
        request.Whitelist.Add(new ApiFlowFilter { DestinationPod = { "default/" } });
        request.Blacklist.Add(new ApiFlowFilter { Verdict = { Verdict.Dropped } });
        Assert.Equal([history[0], history[3]], Select(request, history));
    }

    [Fact]
    public void EventTypeAndProtocolFiltersAreHubbles()
    {
        var history = History();
        var drops = new GetFlowsRequest();
        drops.Whitelist.Add(new ApiFlowFilter { EventType = { new EventTypeFilter { Type = FlowEventType.Drop } } });
        Assert.Equal([history[1], history[4]], Select(drops, history));
        var udp = new GetFlowsRequest();
        udp.Whitelist.Add(new ApiFlowFilter { Protocol = { "udp" }, SourcePort = { "53" } });
        Assert.Equal([history[2]], Select(udp, history));
    }

    [Fact]
    public void NumberTakesTheLastFlowsOrWithFirstTheFirstOnesInsideSinceAndUntil()
    {
        var history = History();
        Assert.Equal([history[3], history[4]], Select(new GetFlowsRequest { Number = 2 }, history));
        Assert.Equal([history[0], history[1]], Select(new GetFlowsRequest { Number = 2, First = true }, history));
        Assert.Equal(history, Select(new GetFlowsRequest(), history));
        var window = new GetFlowsRequest { Since = Timestamp.FromDateTimeOffset(T.AddSeconds(1)), Until = Timestamp.FromDateTimeOffset(T.AddSeconds(3)) };
        Assert.Equal([history[1], history[2], history[3]], Select(window, history));
        Assert.Equal(history, Select(new GetFlowsRequest { Number = 50 }, history));
        // Following without --last or --since starts at the newest flow, as Hubble's does.
        Assert.Empty(Select(new GetFlowsRequest { Follow = true }, history));
        Assert.Equal([history[4]], Select(new GetFlowsRequest { Follow = true, Number = 1 }, history));
    }

    [Fact]
    public void ABadFilterIsRefusedNamingWhereItIs()
    {
        var request = new GetFlowsRequest();
        request.Whitelist.Add(new ApiFlowFilter());
        request.Whitelist.Add(new ApiFlowFilter { SourceIp = { "not-an-ip" } });
        var e = Assert.Throws<FlowFilterException>(() => FlowMessages.ToFilterSet(request));
        Assert.StartsWith("whitelist[1].source_ip: \"not-an-ip\"", e.Message, StringComparison.Ordinal);
        var unknown = new GetFlowsRequest();
        unknown.Blacklist.Add(new ApiFlowFilter { Verdict = { Verdict.Unknown } });
        Assert.Contains("blacklist[0].verdict", Assert.Throws<FlowFilterException>(() => FlowMessages.ToFilterSet(unknown)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AResponseIsHubblesGetFlowsResponseWithTheProcessOnTheFlow()
    {
        var flow = Flow(time: T);
        var withProcess = new FlowEvent
        {
            Time = flow.Time, Uuid = "u-1", Verdict = flow.Verdict, IP = flow.IP, L4 = flow.L4, Source = flow.Source, Destination = flow.Destination,
            EventType = new FlowEventType(FlowEventType.PolicyVerdict), TrafficDirection = Palisade.Events.TrafficDirection.Egress, IsReply = false,
            TraceObservationPoint = Palisade.Events.TraceObservationPoint.FromEndpoint, Interface = new FlowInterface(7, "lxc1"), Summary = "TCP Flags: SYN",
            Process = FlowRecords.Curl(),
        };
        var json = JsonNode.Parse(EventMessages.ToJson(FlowMessages.ToResponse(withProcess, "node-1", TetragonJsonOptions.Default)))!;
        Assert.Equal("node-1", (string?)json["node_name"]);
        Assert.Equal("2026-12-02T05:00:00Z", (string?)json["time"]);
        var f = json["flow"]!;
        Assert.Equal("u-1", (string?)f["uuid"]);
        Assert.Equal("FORWARDED", (string?)f["verdict"]);
        Assert.Equal(80, (int?)f["l4"]!["TCP"]!["destination_port"]);
        Assert.Equal("xwing", (string?)f["source"]!["pod_name"]);
        Assert.Equal(5, (int?)f["event_type"]!["type"]);
        Assert.Equal("EGRESS", (string?)f["traffic_direction"]);
        Assert.False((bool?)f["is_reply"]);
        Assert.Equal("FROM_ENDPOINT", (string?)f["trace_observation_point"]);
        Assert.Equal("lxc1", (string?)f["interface"]!["name"]);
        Assert.Equal("TCP Flags: SYN", (string?)f["Summary"]);
        Assert.Equal("/usr/bin/curl", (string?)f["process"]!["binary"]);
        Assert.Equal("node-1", (string?)f["node_name"]);
        // The JSON export writes the same flow the same way.
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.WriteFiltered(w, withProcess, "node-1", TetragonJsonOptions.Default, []);
        }
        Assert.True(JsonNode.DeepEquals(json, JsonNode.Parse(buffer.WrittenSpan)), $"{json.ToJsonString()}\n{System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan)}");
    }
}
