using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Palisade.Datapath.Flows;
using Palisade.Events;

namespace Palisade.Agent;

/// <summary>The agent's counters as one JSON document (GET /v1/status): sensors, cache, exporters, memory.</summary>
internal static class AgentStatus
{
    public static string Json(AgentReadiness readiness, Palisade.Runtime.ProcessSensor? sensor, KubernetesStatus? kubernetes, EventHub hub, ExportService exports,
        IReadOnlyDictionary<string, string> invalidPolicyFiles, ElasticsearchLogs? shippedLogs = null, DatapathService? datapath = null, FlowCounters? flows = null, NetworkPolicy.NetworkPolicyService? networkPolicy = null, ConntrackCollector? conntrack = null, ServiceLbService? services = null)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteBoolean("ready", readiness.Ready);
            if (sensor is not null)
            {
                var s = sensor.Stats();
                w.WriteStartObject("process_sensor");
                w.WriteNumber("kernel_execs", s.KernelExecs);
                w.WriteNumber("kernel_exits", s.KernelExits);
                w.WriteNumber("kernel_forks", s.KernelForks);
                w.WriteNumber("kernel_lost_exec", s.LostExec);
                w.WriteNumber("kernel_lost_exit", s.LostExit);
                w.WriteNumber("kernel_lost_fork", s.LostFork);
                w.WriteNumber("kernel_process_map_full", s.ProcessMapFull);
                w.WriteNumber("ringbuf_records", s.RingBufferRecords);
                w.WriteNumber("consumer_errors", s.ConsumerErrors);
                w.WriteNumber("decoded_execs", s.Decoder.Exec);
                w.WriteNumber("decoded_exits", s.Decoder.Exit);
                w.WriteNumber("decoded_forks", s.Decoder.Fork);
                w.WriteNumber("malformed_records", s.Decoder.Malformed);
                w.WriteNumber("exits_of_unknown_processes", s.Decoder.ExitUnknown);
                w.WriteEndObject();
                w.WriteStartObject("process_cache");
                w.WriteNumber("size", s.Cache.Count);
                w.WriteNumber("capacity", sensor.Cache.Capacity);
                w.WriteNumber("hits", s.Cache.Hits);
                w.WriteNumber("misses", s.Cache.Misses);
                w.WriteNumber("evicted_after_grace", s.Cache.EvictedAfterGrace);
                w.WriteNumber("evicted_for_capacity", s.Cache.EvictedForCapacity);
                w.WriteNumber("pending_forks", s.Cache.PendingForks);
                w.WriteEndObject();
            }
            w.WriteStartObject("invalid_policy_files");
            foreach (var (file, error) in invalidPolicyFiles.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                w.WriteString(file, error);
            }
            w.WriteEndObject();
            w.WriteNumber("events_published", hub.Published);
            w.WriteStartArray("exporters");
            foreach (var sub in hub.Subscriptions)
            {
                var sink = exports.Sinks.FirstOrDefault(k => k.Subscription == sub);
                w.WriteStartObject();
                w.WriteString("name", sub.Name);
                w.WriteNumber("queued", sub.Queued);
                w.WriteNumber("queue_depth", sub.Depth);
                w.WriteNumber("queue_capacity", sub.Capacity);
                w.WriteNumber("dropped_queue_full", sub.Dropped);
                w.WriteNumber("written", sink?.Written ?? 0);
                w.WriteNumber("failed", sink?.Failed ?? 0);
                w.WriteNumber("filtered", sink?.Filtered ?? 0);
                if (sink is not null)
                {
                    w.WriteStartObject("dropped");
                    foreach (var (reason, n) in sink.Drops)
                    {
                        w.WriteNumber(reason, n);
                    }
                    w.WriteEndObject();
                }
                if (sink is Palisade.Exporters.Elasticsearch.ElasticsearchSink es)
                {
                    WriteBulk(w, es.Client);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (shippedLogs is not null)
            {
                w.WriteStartObject("elasticsearch_logs");
                w.WriteNumber("dropped_queue_full", shippedLogs.Dropped);
                WriteBulk(w, shippedLogs.Client);
                w.WriteEndObject();
            }
            if (kubernetes is { } k)
            {
                WriteKubernetes(w, k);
            }
            datapath?.WriteStatus(w);
            conntrack?.WriteStatus(w);
            services?.WriteStatus(w);
            if (networkPolicy is not null)
            {
                NetworkPolicy.NetworkPolicyJson.WriteStatus(w, networkPolicy.Engine, networkPolicy.PolicyDir);
            }
            if (flows is not null)
            {
                WriteFlows(w, flows);
            }
            var gc = GC.GetGCMemoryInfo();
            w.WriteStartObject("memory");
            w.WriteNumber("working_set_bytes", Environment.WorkingSet);
            w.WriteNumber("gc_heap_bytes", gc.HeapSizeBytes);
            w.WriteNumber("gc_committed_bytes", gc.TotalCommittedBytes);
            w.WriteNumber("gc_gen2_collections", GC.CollectionCount(2));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The flow counters of a running agent (null when neither the datapath nor the flow decoder runs).</summary>
    public static FlowCounters? ReadFlows(IServiceProvider services) =>
        FlowCounters.Read(services.GetService<KernelDatapath>(), services.GetService<FlowSensorService>(), withTable: true);

    /// <summary>
    /// "datapath_counters": every pal_net_stats counter by name; "flows": what became of the
    /// packets observed for flows, the aggregation table, and what the decoder made of the records.
    /// </summary>
    internal static void WriteFlows(Utf8JsonWriter w, FlowCounters c)
    {
        if (c.Datapath is { } k)
        {
            w.WriteStartObject("datapath_counters");
            foreach (var counter in FlowCounters.DatapathCounters)
            {
                w.WriteNumber(System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(counter.ToString()), k.GetValueOrDefault(counter));
            }
            w.WriteEndObject();
        }
        w.WriteStartObject("flows");
        if (c.Datapath is { } kernel)
        {
            w.WriteNumber("records_reported", kernel.GetValueOrDefault(Palisade.Datapath.Abi.DatapathCounter.FlowRecords));
            w.WriteNumber("packets_aggregated", kernel.GetValueOrDefault(Palisade.Datapath.Abi.DatapathCounter.FlowAggregated));
            w.WriteNumber("records_lost_ringbuf_full", kernel.GetValueOrDefault(Palisade.Datapath.Abi.DatapathCounter.RingbufFull));
            w.WriteNumber("table_full", kernel.GetValueOrDefault(Palisade.Datapath.Abi.DatapathCounter.FlowTableFull));
        }
        if (c.Table is { } table)
        {
            w.WriteStartObject("table");
            w.WriteNumber("entries", table.Entries);
            w.WriteNumber("capacity", table.Capacity);
            w.WriteNumber("evicted", table.Evicted);
            w.WriteEndObject();
        }
        if (c.Decoder is { } d)
        {
            w.WriteStartObject("decoder");
            w.WriteNumber("decoded", d.Decoded);
            w.WriteNumber("malformed", d.Malformed);
            if (c.Malformed is { } malformed)
            {
                w.WriteStartObject("malformed_by_reason");
                foreach (var (reason, n) in malformed)
                {
                    w.WriteNumber(AgentMetrics.FlowRecordErrorName(reason), n);
                }
                w.WriteEndObject();
            }
            w.WriteNumber("with_process", d.WithProcess);
            w.WriteNumber("process_misses", d.ProcessMisses);
            w.WriteNumber("endpoint_misses", d.EndpointMisses);
            w.WriteNumber("aggregated_packets", d.AggregatedPackets);
            w.WriteNumber("bytes", d.Bytes);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void WriteKubernetes(Utf8JsonWriter w, KubernetesStatus k)
    {
        w.WriteStartObject("kubernetes");
        w.WriteString("state", k.State);
        w.WriteNumber("pods", k.Pods.Count);
        w.WriteBoolean("pods_synced", k.Pods.IsSynced);
        if (k.Gate is { } gate)
        {
            w.WriteStartObject("pod_context");
            w.WriteNumber("held_events", gate.Held);
            w.WriteNumber("waiting_processes", gate.Pending);
            w.WriteNumber("resolved_late", gate.ResolvedLate);
            w.WriteNumber("expired", gate.Expired);
            w.WriteEndObject();
        }
        w.WriteStartArray("informers");
        foreach (var (name, s) in k.Informers)
        {
            w.WriteStartObject();
            w.WriteString("resource", name);
            w.WriteString("resource_version", s.ResourceVersion);
            w.WriteNumber("lists", s.Lists);
            w.WriteNumber("watches", s.Watches);
            w.WriteNumber("events", s.Events);
            w.WriteNumber("relists", s.Relists);
            w.WriteNumber("bookmarks", s.Bookmarks);
            w.WriteNumber("errors", s.Errors);
            if (s.LastError is { } error)
            {
                w.WriteString("last_error", error);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (k.Reporter is { } r)
        {
            w.WriteStartObject("status_reports");
            w.WriteNumber("patched", r.Patched);
            w.WriteNumber("events", r.EventsCreated);
            w.WriteNumber("failed", r.Failures);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void WriteBulk(Utf8JsonWriter w, Palisade.Exporters.Elasticsearch.BulkClient c)
    {
        w.WriteNumber("indexed", c.Indexed);
        w.WriteNumber("duplicates", c.Duplicates);
        w.WriteNumber("dead_lettered", c.DeadLettered);
        w.WriteNumber("retries", c.Retries);
        w.WriteNumber("requests", c.Requests);
        w.WriteNumber("spooled_bytes", c.SpooledBytes);
        w.WriteNumber("spool_dropped", c.SpoolDropped);
        if (c.LastError is { } error)
        {
            w.WriteString("last_error", error);
        }
    }
}
