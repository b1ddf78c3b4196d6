using System.Text;
using System.Text.Json;
using Palisade.Agent;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Flows;
using Palisade.Events;
using static Palisade.Tests.Flows.FlowRecords;

namespace Palisade.Tests.Flows;

/// <summary>What was aggregated or lost on the flow path reaches the metrics, the status document and `palisade status`.</summary>
public sealed class FlowCountersTests
{
    private static Dictionary<DatapathCounter, ulong> Kernel(params (DatapathCounter Counter, ulong Value)[] values)
    {
        var counters = FlowCounters.DatapathCounters.ToDictionary(c => c, _ => 0UL);
        foreach (var (counter, value) in values)
        {
            counters[counter] = value;
        }
        return counters;
    }

    private static readonly Dictionary<DatapathCounter, ulong> Busy = Kernel(
        (DatapathCounter.FlowRecords, 120), (DatapathCounter.FlowAggregated, 9_000), (DatapathCounter.RingbufFull, 4), (DatapathCounter.FlowTableFull, 2),
        (DatapathCounter.Forwarded, 5_000), (DatapathCounter.Redirected, 4_000), (DatapathCounter.ToStack, 100), (DatapathCounter.PassedL2, 30),
        (DatapathCounter.NoEndpoint, 1), (DatapathCounter.DropInvalidSip, 3), (DatapathCounter.DropInvalid, 5), (DatapathCounter.Fragment, 6), (DatapathCounter.UnknownL4, 7));

    private static Dictionary<FlowRecordError, long> Malformed(long truncated = 0, long notAFlow = 0, long size = 0, long range = 0) => new()
    {
        [FlowRecordError.Truncated] = truncated, [FlowRecordError.NotAFlow] = notAFlow, [FlowRecordError.SizeMismatch] = size, [FlowRecordError.OutOfRange] = range,
    };

    private static async Task<string> Scrape(AgentMetrics metrics)
    {
        using var scrape = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(scrape, TestContext.Current.CancellationToken);
        return Encoding.UTF8.GetString(scrape.ToArray());
    }

    private static AgentMetrics Metrics()
    {
        var options = Palisade.Agent.Configuration.AgentConfiguration.Load(new Dictionary<string, string>(), new Dictionary<string, string>());
        var hub = new EventHub();
        return new AgentMetrics(options, hub, new ExportService(options, hub, Microsoft.Extensions.Logging.Abstractions.NullLogger<ExportService>.Instance));
    }

    [Fact]
    public async Task TheDatapathsCountersBecomeFlowRecordAndPacketSeries()
    {
        var metrics = Metrics();

        metrics.CollectFlows(new FlowCounters(Busy, new FlowTableFill(300, 65536, 12), new FlowDecoderStats(118, 3, 90, 5, 1, 8_990, 1_000_000), Malformed(truncated: 2, range: 1)));

        var text = await Scrape(metrics);
        Assert.Contains("palisade_flow_records_total{outcome=\"reported\"} 120", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_records_total{outcome=\"aggregated\"} 9000", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_records_total{outcome=\"ringbuf_full\"} 4", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_table_full_total 2", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_table_evictions_total 12", text, StringComparison.Ordinal);
        Assert.Contains("palisade_bpf_map_entries{map=\"pal_flows\"} 300", text, StringComparison.Ordinal);
        Assert.Contains("palisade_bpf_map_capacity{map=\"pal_flows\"} 65536", text, StringComparison.Ordinal);
        Assert.Contains("palisade_datapath_packets_total{action=\"forwarded\",reason=\"\"} 5000", text, StringComparison.Ordinal);
        Assert.Contains("palisade_datapath_packets_total{action=\"redirected\",reason=\"\"} 4000", text, StringComparison.Ordinal);
        Assert.Contains("palisade_datapath_packets_total{action=\"to_stack\",reason=\"\"} 100", text, StringComparison.Ordinal);
        Assert.Contains("palisade_datapath_packets_total{action=\"passed_l2\",reason=\"\"} 30", text, StringComparison.Ordinal);
        Assert.Contains("palisade_datapath_packets_total{action=\"no_endpoint\",reason=\"\"} 1", text, StringComparison.Ordinal);
        // Drops carry the reason names of palisade_drop_count_total (Hubble's), so the two can be compared.
        Assert.Contains("palisade_datapath_packets_total{action=\"dropped\",reason=\"INVALID_SOURCE_IP\"} 3", text, StringComparison.Ordinal);
        Assert.Contains("palisade_datapath_packets_total{action=\"dropped\",reason=\"INVALID_PACKET_DROPPED\"} 5", text, StringComparison.Ordinal);
        Assert.Contains("palisade_datapath_packets_total{action=\"dropped\",reason=\"ERROR_WRITING_TO_PACKET\"} 0", text, StringComparison.Ordinal);
        Assert.Contains("palisade_datapath_packets_without_l4_total{reason=\"fragment\"} 6", text, StringComparison.Ordinal);
        Assert.Contains("palisade_datapath_packets_without_l4_total{reason=\"unknown_protocol\"} 7", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_decode_errors_total{reason=\"truncated\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_decode_errors_total{reason=\"out_of_range\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_decode_errors_total{reason=\"not_a_flow\"} 0", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_unresolved_total{what=\"process\"} 5", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_unresolved_total{what=\"endpoint\"} 1", text, StringComparison.Ordinal);
        // The flows the hub carried are palisade_flows_total's alone: reading the kernel counters adds none.
        Assert.DoesNotContain("palisade_flows_total{", text, StringComparison.Ordinal);
        Assert.DoesNotContain("palisade_drop_count_total{", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ALaterReadingAdvancesTheCountersAndALowerOneNeverTakesThemBack()
    {
        var metrics = Metrics();
        metrics.CollectFlows(new FlowCounters(Busy, null, null, null));

        metrics.CollectFlows(new FlowCounters(Kernel((DatapathCounter.FlowRecords, 200), (DatapathCounter.RingbufFull, 1)), null, null, null));

        var text = await Scrape(metrics);
        Assert.Contains("palisade_flow_records_total{outcome=\"reported\"} 200", text, StringComparison.Ordinal);
        Assert.Contains("palisade_flow_records_total{outcome=\"ringbuf_full\"} 4", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutADatapathOrDecoderNoFlowPathSeriesAppear()
    {
        var text = await Scrape(Metrics());

        Assert.DoesNotContain("palisade_flow_records_total{", text, StringComparison.Ordinal);
        Assert.DoesNotContain("palisade_datapath_packets_total{", text, StringComparison.Ordinal);
    }

    [Fact]
    public void TheStatusDocumentHasEveryDatapathCounterAndAFlowsSection()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            AgentStatus.WriteFlows(w, new FlowCounters(Busy, new FlowTableFill(300, 65536, 12), new FlowDecoderStats(118, 3, 90, 5, 1, 8_990, 1_000_000), Malformed(truncated: 2, range: 1)));
            w.WriteEndObject();
        }
        using var doc = JsonDocument.Parse(stream.ToArray());

        var counters = doc.RootElement.GetProperty("datapath_counters");
        Assert.Equal(FlowCounters.DatapathCounters.Count, counters.EnumerateObject().Count());
        Assert.Equal(4000, counters.GetProperty("redirected").GetInt64());
        Assert.Equal(3, counters.GetProperty("drop_invalid_sip").GetInt64());
        Assert.Equal(4, counters.GetProperty("ringbuf_full").GetInt64());
        var flows = doc.RootElement.GetProperty("flows");
        Assert.Equal(120, flows.GetProperty("records_reported").GetInt64());
        Assert.Equal(9000, flows.GetProperty("packets_aggregated").GetInt64());
        Assert.Equal(4, flows.GetProperty("records_lost_ringbuf_full").GetInt64());
        Assert.Equal(12, flows.GetProperty("table").GetProperty("evicted").GetInt64());
        var decoder = flows.GetProperty("decoder");
        Assert.Equal(118, decoder.GetProperty("decoded").GetInt64());
        Assert.Equal(2, decoder.GetProperty("malformed_by_reason").GetProperty("truncated").GetInt64());

        var line = Palisade.Cli.ClientCommands.FlowsLine(Encoding.UTF8.GetString(stream.ToArray()));

        Assert.Equal("flows:   120 records reported, 9000 packets aggregated, 4 lost (ring buffer full); 2 not tracked (table full); table 300/65536 (12 evicted); " +
            "118 decoded, 3 malformed, 5 without their process", line);
    }

    [Fact]
    public void AStatusWithoutFlowsPrintsNoFlowsLine()
    {
        Assert.Null(Palisade.Cli.ClientCommands.FlowsLine("{\"ready\":true}"));
    }

    [Fact]
    public void EveryRefusedRecordIsCountedUnderItsReason()
    {
        var decoder = new FlowDecoder(new FakeEndpoints(), new FakeProcesses(), Boot, _ => Assert.Fail("no flow expected"));
        var good = Bytes(Tcp("10.244.0.7", 40000, "10.244.0.9", 80));
        var otherType = Tcp("10.244.0.7", 40000, "10.244.0.9", 80);
        otherType.Hdr.Type = 2;
        var small = Tcp("10.244.0.7", 40000, "10.244.0.9", 80);
        small.Hdr.Size = 16;
        var verdict = Tcp("10.244.0.7", 40000, "10.244.0.9", 80);
        verdict.Verdict = 200;

        foreach (var record in new[] { good[..100], [], Bytes(otherType), Bytes(small), Bytes(verdict) })
        {
            decoder.OnRecord(record);
        }

        Assert.Equal(2, decoder.MalformedBy(FlowRecordError.Truncated));
        Assert.Equal(1, decoder.MalformedBy(FlowRecordError.NotAFlow));
        Assert.Equal(1, decoder.MalformedBy(FlowRecordError.SizeMismatch));
        Assert.Equal(1, decoder.MalformedBy(FlowRecordError.OutOfRange));
        Assert.Equal(5, decoder.Stats.Malformed);
    }

    [Fact]
    public void ARecordClaimingMorePacketsThanACounterHoldsLeavesTheCountersPositive()
    {
        var decoder = new FlowDecoder(new FakeEndpoints(), new FakeProcesses(), Boot, _ => { });
        var r = Tcp("10.244.0.7", 40000, "10.244.0.9", 80);
        r.Packets = ulong.MaxValue;
        r.Bytes = ulong.MaxValue;

        decoder.OnRecord(Bytes(r));

        Assert.Equal(long.MaxValue, decoder.Stats.AggregatedPackets);
        Assert.Equal(long.MaxValue, decoder.Stats.Bytes);
    }
}
