using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Palisade.Agent.Api;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Elasticsearch;
using Palisade.Exporters.Filters;

namespace Palisade.Tests;

/// <summary>A network flow is an event like any other: hub, filters, every encoder and metrics take it, with or without a process.</summary>
public sealed class FlowEventTests
{
    private static readonly DateTimeOffset T = new(2026, 11, 23, 1, 44, 4, 349, TimeSpan.Zero);

    private static FlowEvent Drop(ProcessRecord? process = null) => new()
    {
        Time = T,
        Uuid = "6f3b1a3c-8f2e-4c2a-9f0e-1d2c3b4a5f60",
        Verdict = FlowVerdict.Dropped,
        DropReason = DropReason.PolicyDenied,
        IP = new FlowIp("10.244.1.7", "10.244.2.9", IpVersion.IPv4),
        L4 = FlowL4.Tcp(43512, 80, TcpFlags.Syn),
        Source = new FlowEndpoint { ID = 1411, Identity = 5123, Namespace = "default", Labels = ["k8s:app=xwing"], PodName = "xwing" },
        Destination = new FlowEndpoint { ID = 2207, Identity = 7177, Namespace = "default", Labels = ["k8s:app=deathstar"], PodName = "deathstar-1" },
        TrafficDirection = TrafficDirection.Ingress,
        IsReply = false,
        TraceObservationPoint = TraceObservationPoint.ToEndpoint,
        Interface = new FlowInterface(7, "lxc1a2b3c"),
        Summary = "TCP Flags: SYN",
        Process = process,
    };

    private static ProcessRecord Curl() => new()
    {
        ExecId = "bm9kZS0xOjEyMzQ1Njc4OTo0MjQy", Pid = 4242, Ktime = 123456789, StartTime = T,
        Binary = "/usr/bin/curl", Arguments = "-u admin:hunter2 http://10.244.2.9/",
        Pod = new PodInfo("default", "xwing"),
    };

    private const string GoldenDrop =
        """{"flow":{"time":"2026-11-23T01:44:04.349Z","uuid":"6f3b1a3c-8f2e-4c2a-9f0e-1d2c3b4a5f60","verdict":"DROPPED","IP":{"source":"10.244.1.7","destination":"10.244.2.9","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":43512,"destination_port":80,"flags":{"SYN":true}}},"source":{"ID":1411,"identity":5123,"namespace":"default","labels":["k8s:app=xwing"],"pod_name":"xwing"},"destination":{"ID":2207,"identity":7177,"namespace":"default","labels":["k8s:app=deathstar"],"pod_name":"deathstar-1"},"Type":"L3_L4","node_name":"node-1","traffic_direction":"INGRESS","trace_observation_point":"TO_ENDPOINT","drop_reason_desc":"POLICY_DENIED","is_reply":false,"interface":{"index":7,"name":"lxc1a2b3c"},"Summary":"TCP Flags: SYN"},"node_name":"node-1","time":"2026-11-23T01:44:04.349Z"}""";

    private static string Json(PalisadeEvent e, TetragonJsonOptions? options = null, IReadOnlyList<FieldFilter>? fields = null)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.WriteFiltered(w, e, "node-1", options ?? TetragonJsonOptions.Default, fields ?? []);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string ApiJson(PalisadeEvent e, TetragonJsonOptions? options = null, IReadOnlyList<FieldFilter>? fields = null) =>
        EventMessages.ToJson(EventMessages.ToMessage(e, "node-1", options ?? TetragonJsonOptions.Default, fields ?? []));

    private static void AssertSameJson(string expected, string actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(actual)), $"expected\n{expected}\nbut got\n{actual}");

    [Fact]
    public void AFlowWithoutAProcessIsWrittenInHubblesJsonShape()
    {
        Assert.Equal(GoldenDrop, Json(Drop()));
    }

    [Fact]
    public void TheGrpcMessageOfAFlowCarriesWhatTheJsonLineSays()
    {
        var message = EventMessages.ToMessage(Drop(), "node-1", TetragonJsonOptions.Default, []);
        Assert.Equal(Palisade.Api.V1.GetEventsResponse.EventOneofCase.Flow, message.EventCase);
        Assert.Equal(80u, message.Flow.L4.TCP.DestinationPort);
        Assert.True(message.Flow.L4.TCP.Flags.SYN);
        Assert.Equal(Palisade.Api.V1.DropReason.PolicyDenied, message.Flow.DropReasonDesc);
        Assert.Null(message.Flow.Process);
        AssertSameJson(GoldenDrop, EventMessages.ToJson(message));
        // And it survives the wire.
        var parsed = Palisade.Api.V1.GetEventsResponse.Parser.ParseFrom(Google.Protobuf.MessageExtensions.ToByteArray(message));
        Assert.Equal(message, parsed);
    }

    [Fact]
    public void AFlowNamesTheProcessThatOwnsItsSocketWithSecretsRedacted()
    {
        var redactor = Redactor.Parse("""{"redact":["-u \\w+:(\\S+)"]}""", "redaction-filters");
        var options = new TetragonJsonOptions { Redactor = redactor };
        var flow = Drop(Curl());
        var json = Json(flow, options);
        var process = JsonNode.Parse(json)!["flow"]!["process"]!;
        Assert.Equal("""{"exec_id":"bm9kZS0xOjEyMzQ1Njc4OTo0MjQy","pid":4242,"binary":"/usr/bin/curl","arguments":"-u admin:***** http://10.244.2.9/"}""", process.ToJsonString());
        AssertSameJson(json, ApiJson(flow, options));
        Assert.DoesNotContain("hunter2", CompactFormat.Format(flow, "node-1", false, redactor), StringComparison.Ordinal);
    }

    [Fact]
    public void ACompactLineNamesBothSidesProtocolDirectionAndVerdict()
    {
        const string Expected = "🚫 drop    node-1 default/xwing:43512 -> default/deathstar-1:80 tcp SYN INGRESS DROPPED POLICY_DENIED";
        Assert.Equal(Expected, CompactFormat.Format(Drop(), "node-1", false));
        // `palisade getevents -o compact` renders the API's JSON the same way.
        using var doc = JsonDocument.Parse(ApiJson(Drop()));
        Assert.Equal(Expected, CompactFormat.Format(doc.RootElement, false));
        var udp = new FlowEvent
        {
            Time = T, Uuid = "u", Verdict = FlowVerdict.Forwarded, IP = new FlowIp("10.244.1.7", "10.96.0.10", IpVersion.IPv4),
            L4 = FlowL4.Udp(52435, 53), TrafficDirection = TrafficDirection.Egress, Process = Curl(),
        };
        Assert.Equal("🌐 flow    node-1 10.244.1.7:52435 -> 10.96.0.10:53 udp EGRESS FORWARDED /usr/bin/curl -u admin:hunter2 http://10.244.2.9/",
            CompactFormat.Format(udp, "node-1", false));
    }

    [Fact]
    public void AnEcsDocumentOfAFlowHasNetworkSourceAndDestination()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            EcsDocument.Write(w, Drop(), Encoding.UTF8.GetBytes(Json(Drop())), "node-1", TetragonJsonOptions.Default);
        }
        var doc = JsonNode.Parse(buffer.WrittenSpan)!;
        Assert.Equal("event", (string?)doc["event"]!["kind"]);
        Assert.Equal("network", (string?)doc["event"]!["category"]![0]);
        Assert.Equal(["connection", "denied"], doc["event"]!["type"]!.AsArray().Select(t => (string?)t));
        Assert.Equal("failure", (string?)doc["event"]!["outcome"]);
        Assert.Equal("POLICY_DENIED", (string?)doc["event"]!["reason"]);
        Assert.Equal("tcp", (string?)doc["network"]!["transport"]);
        Assert.Equal("ipv4", (string?)doc["network"]!["type"]);
        Assert.Equal("ingress", (string?)doc["network"]!["direction"]);
        Assert.Equal("10.244.1.7", (string?)doc["source"]!["ip"]);
        Assert.Equal(43512, (int?)doc["source"]!["port"]);
        Assert.Equal("10.244.2.9", (string?)doc["destination"]!["ip"]);
        Assert.Equal(80, (int?)doc["destination"]!["port"]);
        Assert.Null(doc["process"]);
        Assert.Equal("DROPPED", (string?)doc["palisade"]!["flow"]!["verdict"]);
        Assert.Equal(ElasticsearchSink.DocumentId("node-1", "flow", Drop().Uuid, "2026-11-23T01:44:04.349Z"),
            ElasticsearchSink.DocumentId(JsonDocument.Parse(Json(Drop())).RootElement));
    }

    [Fact]
    public void ProcessFiltersDoNotMatchAFlowWithoutAProcessAndEventSetSelectsFlows()
    {
        var flow = Drop();
        foreach (var f in new[]
        {
            """{"binary_regex":[".*"]}""", """{"namespace":[""]}""", """{"namespace":["default"]}""", """{"pod_regex":[".*"]}""",
            """{"labels":["!app"]}""", """{"pid":[0]}""", """{"pid_set":[0]}""", """{"parent_binary_regex":[".*"]}""",
            """{"ancestor_binary_regex":[".*"]}""", """{"arguments_regex":[".*"]}""", """{"container_name_regex":[".*"]}""",
            """{"policy_names":["p"]}""", """{"event_set":["PROCESS_EXEC"]}""",
        })
        {
            Assert.False(EventFilter.Parse(f, "t").Matches(flow), f);
        }
        Assert.True(EventFilter.Parse("""{"event_set":["FLOW"]}""", "t").Matches(flow));
        Assert.True(EventFilter.Parse("""{"event_set":["FLOW"],"binary_regex":["curl"]}""", "t").Matches(Drop(Curl())));

        // A deny list about processes lets flows through; an allow list for exec keeps them out.
        Assert.True(new ExportFilter([], EventFilter.ParseList("""{"binary_regex":["curl"]}""", "deny")).Passes(flow));
        Assert.False(new ExportFilter(EventFilter.ParseList("""{"event_set":["PROCESS_EXEC"]}""", "allow"), []).Passes(flow));
        Assert.False(new ExportFilter([], EventFilter.ParseList("""{"event_set":["FLOW"]}""", "deny")).Passes(flow));
    }

    [Fact]
    public void FieldFiltersShapeAFlowTheSameInTheJsonLineAndTheGrpcMessage()
    {
        var flow = Drop(Curl());
        var include = FieldFilter.ParseList("""{"event_set":["FLOW"],"fields":"verdict,IP.source,l4,process.binary","action":"INCLUDE"}""", "t");
        var kept = Json(flow, fields: include);
        Assert.Equal("""{"verdict":"DROPPED","IP":{"source":"10.244.1.7"},"l4":{"TCP":{"source_port":43512,"destination_port":80,"flags":{"SYN":true}}},"process":{"binary":"/usr/bin/curl"}}""",
            JsonNode.Parse(kept)!["flow"]!.ToJsonString());
        Assert.Equal("node-1", (string?)JsonNode.Parse(kept)!["node_name"]);
        AssertSameJson(kept, ApiJson(flow, fields: include));

        var exclude = FieldFilter.ParseList("""{"fields":"source.labels,destination,process.arguments,l4.TCP.flags","action":"EXCLUDE"}""", "t");
        var rest = Json(flow, fields: exclude);
        var body = JsonNode.Parse(rest)!["flow"]!;
        Assert.Null(body["destination"]);
        Assert.Null(body["source"]!["labels"]);
        Assert.Equal("xwing", (string?)body["source"]!["pod_name"]);
        Assert.Null(body["process"]!["arguments"]);
        Assert.Null(body["l4"]!["TCP"]!["flags"]);
        AssertSameJson(rest, ApiJson(flow, fields: exclude));

        // A filter for process events leaves flows whole.
        var forExec = FieldFilter.ParseList("""{"event_set":["PROCESS_EXEC"],"fields":"process.binary","action":"INCLUDE"}""", "t");
        Assert.Equal(Json(flow), Json(flow, fields: forExec));
    }

    [Fact]
    public void FieldFiltersOnAProcessEventKeepTheirMeaning()
    {
        var parent = new ProcessRecord { ExecId = "p", Pid = 1, Ktime = 1, StartTime = T, Binary = "/sbin/init" };
        var exec = new ProcessExecEvent
        {
            Time = T, Parent = parent, Ancestors = [parent],
            Process = new ProcessRecord { ExecId = "c", Pid = 2, Ktime = 2, StartTime = T, Binary = "/bin/sh", Arguments = "-c x", Cwd = "/tmp", Parent = parent },
        };
        // Filters apply one after another: what stays is what every one of them keeps.
        var fields = FieldFilter.ParseList(
            """{"fields":"process,parent.binary,ancestors.pid,nothing.here","action":"INCLUDE"}""" + "\n" +
            """{"fields":"process.cwd,process.start_time","action":"EXCLUDE"}""", "t");
        var body = JsonNode.Parse(Json(exec, fields: fields))!["process_exec"]!;
        // ancestors.pid reaches into an array, which a path cannot: the INCLUDE drops ancestors.
        Assert.Equal("""{"process":{"exec_id":"c","pid":2,"uid":0,"binary":"/bin/sh","arguments":"-c x","auid":4294967295,"tid":2},"parent":{"binary":"/sbin/init"}}""",
            body.ToJsonString());
        AssertSameJson(Json(exec, fields: fields), ApiJson(exec, fields: fields));
    }

    [Fact]
    public async Task AFlowWithoutAProcessGoesThroughTheHubIntoTheJsonFile()
    {
        var dir = Directory.CreateTempSubdirectory("pal-flow-").FullName;
        try
        {
            var hub = new EventHub();
            var pipeline = new SinkPipeline(new ExportFilter([], EventFilter.ParseList("""{"binary_regex":["."]}""", "deny")), [], 0);
            var sink = new JsonFileSink(hub.Subscribe("file", 100), "node-1", Path.Combine(dir, "events.json"), pipeline: pipeline);
            sink.Start();
            hub.Publish(Drop());
            await sink.DisposeAsync();
            Assert.Equal(0, sink.Failed);
            Assert.Equal(GoldenDrop, Assert.Single(File.ReadAllLines(Path.Combine(dir, "events.json"))));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task MetricsCountFlowsByVerdictAndDirectionAndDropsByReason()
    {
        var options = Palisade.Agent.Configuration.AgentConfiguration.Load(new Dictionary<string, string>(), new Dictionary<string, string>());
        var hub = new EventHub();
        var exports = new Palisade.Agent.ExportService(options, hub, Microsoft.Extensions.Logging.Abstractions.NullLogger<Palisade.Agent.ExportService>.Instance);
        var metrics = new Palisade.Agent.AgentMetrics(options, hub, exports);
        await metrics.StartAsync(TestContext.Current.CancellationToken);
        hub.Publish(Drop());
        hub.Publish(Drop());
        hub.Publish(new FlowEvent { Time = T, Uuid = "f", Verdict = FlowVerdict.Forwarded, TrafficDirection = TrafficDirection.Egress, Process = Curl() });
        await metrics.StopAsync(TestContext.Current.CancellationToken); // drains the subscription

        using var scrape = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(scrape, TestContext.Current.CancellationToken);
        var text = Encoding.UTF8.GetString(scrape.ToArray());
        Assert.Contains("palisade_flows_total{verdict=\"DROPPED\",direction=\"INGRESS\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flows_total{verdict=\"FORWARDED\",direction=\"EGRESS\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("palisade_drop_count_total{reason=\"POLICY_DENIED\",direction=\"INGRESS\"} 2", text, StringComparison.Ordinal);
        Assert.DoesNotContain("reason=\"DROP_REASON_UNKNOWN\"", text, StringComparison.Ordinal);
        // The per-event series take flows too: the process's labels when it has one, the local pod's otherwise.
        Assert.Contains("palisade_events_total{type=\"flow\",namespace=\"default\",workload=\"\",binary=\"\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("palisade_events_total{type=\"flow\",namespace=\"default\",workload=\"\",binary=\"/usr/bin/curl\"} 1", text, StringComparison.Ordinal);
    }

    [Fact]
    public void DropReasonsHaveCiliumsNames()
    {
        Assert.Equal("POLICY_DENIED", FlowNames.DropReason(DropReason.PolicyDenied));
        Assert.Equal("UNKNOWN_ICMPV4_CODE", FlowNames.DropReason(DropReason.UnknownIcmpv4Code));
        Assert.Equal("UNKNOWN_L3_TARGET_ADDRESS", FlowNames.DropReason(DropReason.UnknownL3TargetAddress));
        Assert.Equal("IS_A_CLUSTERIP", FlowNames.DropReason(DropReason.IsAClusterIp));
        Assert.Equal("NAT46", FlowNames.DropReason(DropReason.Nat46));
        Assert.Equal("DROP_EP_NOT_READY", FlowNames.DropReason(DropReason.DropEpNotReady));
        Assert.Equal("999", FlowNames.DropReason((DropReason)999));
        // The API's enum has the same names for the same numbers.
        foreach (var reason in Enum.GetValues<DropReason>())
        {
            var api = Palisade.Api.V1.FlowReflection.Descriptor.EnumTypes.Single(t => t.Name == "DropReason").FindValueByNumber((int)reason);
            Assert.True(api is not null, $"{reason} is missing from flow.proto");
            Assert.Equal(api.Name, FlowNames.DropReason(reason));
        }
    }
}
