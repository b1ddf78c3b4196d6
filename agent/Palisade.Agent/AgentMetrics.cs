using Microsoft.Extensions.Hosting;
using Palisade.Agent.Configuration;
using Palisade.Datapath.Abi;
using Palisade.Events;
using Prometheus;

namespace Palisade.Agent;

/// <summary>
/// Prometheus metrics (GET /metrics on the health server). Per-event series come from a hub
/// subscription of their own (so a slow scrape never touches the sensors); everything else
/// is read from the components' counters just before each scrape. Names and labels are
/// listed in docs/metrics.md.
/// </summary>
internal sealed class AgentMetrics : IHostedService
{
    private readonly AgentOptions _options;
    private readonly EventHub _hub;
    // Owners of what the metrics read; null in tests that measure only the event counters.
    private readonly KernelSetupService? _kernel;
    private readonly ProcessSensorService? _processes;
    private readonly PolicyService? _policyService;
    private readonly KubernetesService? _kubernetes;
    private readonly KernelDatapath? _datapath;
    private readonly FlowSensorService? _flowSensor;
    private readonly ExportService _exports;
    private readonly Counter _events, _flows, _drops, _policyEvents, _policyActions, _kernelLost, _userLost, _exportSent, _exportFailed, _exportDropped,
        _exportFiltered, _cacheEvictions, _cacheLookups, _published, _metricsOverflow;
    private readonly Gauge _ringPending, _ringCapacity, _mapEntries, _mapCapacity;
    private readonly Counter _podContext, _k8sInformer, _k8sStatus;
    private readonly Gauge _pods;
    private readonly Counter _flowRecords, _flowTableFull, _flowTableEvicted, _datapathPackets, _datapathNoL4, _flowDecodeErrors, _flowUnresolved;
    private readonly Gauge _queueDepth, _queueCapacity, _spooled, _cacheSize, _cacheCapacity, _policies, _policyMemory, _probe, _build;
    // Label sets seen per metric (compared by value: no key string built per event).
    private readonly Dictionary<string, HashSet<string[]>> _seriesSeen = new(StringComparer.Ordinal);
    private readonly string[] _labels;
    private EventSubscription? _subscription;
    private Task? _run;

    public AgentMetrics(AgentOptions options, EventHub hub, ExportService exports, KernelSetupService? kernel = null, ProcessSensorService? processes = null,
        PolicyService? policies = null, KubernetesService? kubernetes = null, KernelDatapath? datapath = null, FlowSensorService? flowSensor = null)
    {
        _datapath = datapath;
        _flowSensor = flowSensor;
        _options = options;
        _hub = hub;
        _kernel = kernel;
        _processes = processes;
        _policyService = policies;
        _kubernetes = kubernetes;
        _exports = exports;
        Registry = Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(Registry);
        _labels = [.. new[] { "namespace", "workload", "pod", "binary" }.Where(options.MetricsLabels.Contains)];
        _events = f.CreateCounter("palisade_events_total", "Events exported by type (and the labels chosen by --metrics-label-filter).", ["type", .. _labels]);
        _flows = f.CreateCounter("palisade_flows_total", "Network flows the datapath reported, by Hubble's verdict (FORWARDED, DROPPED, AUDIT, ...) and traffic direction.", "verdict", "direction");
        _drops = f.CreateCounter("palisade_drop_count_total", "Dropped flows by Hubble's drop reason (POLICY_DENIED, ...) and traffic direction.", "reason", "direction");
        _flowRecords = f.CreateCounter("palisade_flow_records_total", "What the datapath did with each packet it observed for flows: reported (a flow record written), aggregated (counted into its connection's next record), ringbuf_full (the record was lost).", "outcome");
        _flowTableFull = f.CreateCounter("palisade_flow_table_full_total", "Connections the datapath could not track in its flow-aggregation table (each of their packets is reported on its own).");
        _flowTableEvicted = f.CreateCounter("palisade_flow_table_evictions_total", "Connections the flow-aggregation table (pal_flows, an LRU) evicted to make room; counted at most every 10 s.");
        _datapathPackets = f.CreateCounter("palisade_datapath_packets_total", "Packets the endpoint programs handled, by action (forwarded, redirected, to_stack, passed_l2, no_endpoint, dropped) and, for drops, Hubble's drop reason.", "action", "reason");
        _datapathNoL4 = f.CreateCounter("palisade_datapath_packets_without_l4_total", "Packets handled without a TCP/UDP/ICMP header to read, by reason: fragment (not the first), unknown_protocol.", "reason");
        _flowDecodeErrors = f.CreateCounter("palisade_flow_decode_errors_total", "Flow records the agent refused, by reason: truncated, not_a_flow, size_mismatch, out_of_range.", "reason");
        _flowUnresolved = f.CreateCounter("palisade_flow_unresolved_total", "Flows exported without a part the record named, by what: process (not in the process cache), endpoint (gone before the record was read).", "what");
        _policyEvents = f.CreateCounter("palisade_policy_events_total", "Policy events that reached user space, by policy, hook and action.", "policy", "hook", "action");
        _policyActions = f.CreateCounter("palisade_policy_actions_total", "What policies did in the kernel, per policy: matched, posted, killed, signalled, overridden, monitored, rate_limited, lost.", "policy", "action");
        _kernelLost = f.CreateCounter("palisade_bpf_lost_events_total", "Events the kernel could not hand to user space, by sensor and reason.", "sensor", "reason");
        _userLost = f.CreateCounter("palisade_userspace_lost_events_total", "Records user space could not use, by reason.", "reason");
        _ringPending = f.CreateGauge("palisade_bpf_ringbuf_pending_bytes", "Bytes in a BPF ring buffer not yet read by user space; near the capacity, events are lost.", "map");
        _ringCapacity = f.CreateGauge("palisade_bpf_ringbuf_capacity_bytes", "Size of a BPF ring buffer (--rb-size for the process sensor).", "map");
        _mapEntries = f.CreateGauge("palisade_bpf_map_entries", "Entries in a BPF hash/LRU/LPM map (counted at most every 10 s).", "map");
        _mapCapacity = f.CreateGauge("palisade_bpf_map_capacity", "Most entries a BPF hash/LRU/LPM map holds.", "map");
        _published = f.CreateCounter("palisade_events_published_total", "Events the sensors published to the exporters.");
        _exportSent = f.CreateCounter("palisade_export_sent_total", "Events a sink wrote out (for Elasticsearch: written to its spool).", "sink");
        _exportFailed = f.CreateCounter("palisade_export_failed_total", "Events a sink could not encode or write.", "sink");
        _exportDropped = f.CreateCounter("palisade_export_dropped_total", "Events a sink lost, by reason: queue_full, rate_limited, encode_failed, write_failed, spool_full.", "sink", "reason");
        _exportFiltered = f.CreateCounter("palisade_export_filtered_total", "Events a sink's allow/deny filters kept out (asked for, not a loss).", "sink");
        _queueDepth = f.CreateGauge("palisade_export_queue_depth", "Events waiting in a sink's queue.", "sink");
        _queueCapacity = f.CreateGauge("palisade_export_queue_capacity", "Size of a sink's queue.", "sink");
        _spooled = f.CreateGauge("palisade_export_spooled_bytes", "Bytes waiting in a sink's disk spool (Elasticsearch).", "sink");
        _cacheSize = f.CreateGauge("palisade_process_cache_size", "Process records in the cache.");
        _cacheCapacity = f.CreateGauge("palisade_process_cache_capacity", "Most process records the cache keeps.");
        _cacheEvictions = f.CreateCounter("palisade_process_cache_evictions_total", "Process records evicted, by reason: grace (expired) or capacity.", "reason");
        _cacheLookups = f.CreateCounter("palisade_process_cache_lookups_total", "Process cache lookups by result (hit, miss).", "result");
        _podContext = f.CreateCounter("palisade_pod_context_total", "Container processes whose events were held until their Pod was seen, by result: resolved_late, expired (sent without pod context after --kubernetes-pod-wait).", "result");
        _k8sInformer = f.CreateCounter("palisade_kubernetes_informer_total", "Kubernetes list/watch activity per resource: lists, watches, events, relists (410 Gone), errors, bookmarks.", "resource", "what");
        _pods = f.CreateGauge("palisade_kubernetes_pods", "Pods on this node the agent knows.");
        _k8sStatus = f.CreateCounter("palisade_kubernetes_status_writes_total", "Policy status reports written to the API server, by result: patched, event, failed.", "result");
        _policies = f.CreateGauge("palisade_policies", "Loaded TracingPolicies by state.", "state");
        _policyMemory = f.CreateGauge("palisade_policy_kernel_memory_bytes", "Estimated kernel memory of a policy's map entries.", "policy");
        _probe = f.CreateGauge("palisade_kernel_feature", "1 when the start-up probe found the kernel feature working, else 0.", "feature");
        _build = f.CreateGauge("palisade_build_info", "Always 1; the labels say which build runs.", "version", "runtime");
        _metricsOverflow = f.CreateCounter("palisade_metrics_series_overflow_total", "Events counted under label value \"other\" because a metric reached --metrics-max-series.", "metric");
        _build.WithLabels(typeof(AgentMetrics).Assembly.GetName().Version?.ToString(3) ?? "0.0.0", Environment.Version.ToString()).Set(1);
        foreach (var policyState in new[] { "enabled", "partially_enabled", "error", "disabled" })
        {
            _policies.WithLabels(policyState).Set(0);
        }
        Registry.AddBeforeCollectCallback(Collect);
    }

    public CollectorRegistry Registry { get; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = _hub.Subscribe("metrics", _options.EventQueueSize);
        _run = Task.Run(CountAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _subscription?.Dispose();
        if (_run is not null)
        {
            await _run.ConfigureAwait(false);
        }
    }

    private async Task CountAsync()
    {
        var reader = _subscription!.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var e))
            {
                Count(e);
            }
        }
    }

    /// <summary>Counts one event in the per-event series (what the subscription loop does with each).</summary>
    internal void Count(PalisadeEvent e)
    {
        var p = e.Process;
        // A flow no local process owns is labelled with its local endpoint's pod.
        var endpoint = e is FlowEvent flow ? (flow.TrafficDirection == TrafficDirection.Ingress ? flow.Destination : flow.Source) : null;
        // A fresh array each time: the library keeps the label values it is given.
        var values = new string[_labels.Length + 1];
        values[0] = TypeName(e.Kind);
        for (var i = 0; i < _labels.Length; i++)
        {
            values[i + 1] = _labels[i] switch
            {
                "namespace" => p?.Pod?.Namespace ?? endpoint?.Namespace ?? "",
                "workload" => p?.Pod?.Workload ?? "",
                "pod" => p?.Pod?.Name ?? endpoint?.PodName ?? "",
                _ => p?.Binary ?? "",
            };
        }
        _events.WithLabels(Bounded("palisade_events_total", values)).Inc();
        if (e is ProcessPolicyEvent pe)
        {
            string[] policy = [pe.PolicyName, pe.FunctionName, pe.Monitored ? "KPROBE_ACTION_MONITOR" : pe.Action];
            _policyEvents.WithLabels(Bounded("palisade_policy_events_total", policy)).Inc();
        }
        else if (e is FlowEvent f)
        {
            CountFlow(f);
        }
    }

    // Label values are enum names (a closed set), so these series need no bound; the children
    // are kept so a flow costs a dictionary lookup, not a label array.
    private readonly Dictionary<(FlowVerdict, TrafficDirection), Counter.Child> _flowSeries = [];
    private readonly Dictionary<(DropReason, TrafficDirection), Counter.Child> _dropSeries = [];

    private void CountFlow(FlowEvent f)
    {
        var key = (f.Verdict, f.TrafficDirection);
        if (!_flowSeries.TryGetValue(key, out var flows))
        {
            _flowSeries[key] = flows = _flows.WithLabels(FlowNames.Verdict(f.Verdict), FlowNames.Direction(f.TrafficDirection));
        }
        flows.Inc();
        if (f.Verdict == FlowVerdict.Dropped)
        {
            var reason = (f.DropReason, f.TrafficDirection);
            if (!_dropSeries.TryGetValue(reason, out var drops))
            {
                _dropSeries[reason] = drops = _drops.WithLabels(FlowNames.DropReason(f.DropReason), FlowNames.Direction(f.TrafficDirection));
            }
            drops.Inc();
        }
    }

    // Past the bound, new label sets collapse into "other" (type/first label kept): memory and
    // Prometheus stay bounded whatever runs on the node.
    private string[] Bounded(string metric, string[] values)
    {
        if (!_seriesSeen.TryGetValue(metric, out var seen))
        {
            _seriesSeen[metric] = seen = new HashSet<string[]>(LabelValues.Comparer);
        }
        if (seen.Contains(values))
        {
            return values;
        }
        if (seen.Count < _options.MetricsMaxSeries)
        {
            seen.Add(values);
            return values;
        }
        _metricsOverflow.WithLabels(metric).Inc();
        return [values[0], .. values.Skip(1).Select(_ => "other")];
    }

    private sealed class LabelValues : IEqualityComparer<string[]>
    {
        public static readonly LabelValues Comparer = new();

        public bool Equals(string[]? x, string[]? y) => x.AsSpan().SequenceEqual(y, StringComparer.Ordinal);

        public int GetHashCode(string[] values)
        {
            var hash = new HashCode();
            foreach (var v in values)
            {
                hash.Add(v, StringComparer.Ordinal);
            }
            return hash.ToHashCode();
        }
    }

    internal static string TypeName(EventKind kind) => kind switch
    {
        EventKind.ProcessExec => "process_exec",
        EventKind.ProcessExit => "process_exit",
        EventKind.ProcessKprobe => "process_kprobe",
        EventKind.ProcessTracepoint => "process_tracepoint",
        EventKind.ProcessUprobe => "process_uprobe",
        EventKind.ProcessLsm => "process_lsm",
        EventKind.Flow => "flow",
        _ => kind.ToString(),
    };

    private static void Set(ICounter counter, double value)
    {
        if (value > counter.Value)
        {
            counter.IncTo(value);
        }
    }

    private void CollectKubernetes()
    {
        if (_kubernetes?.Status is not { } k)
        {
            return;
        }
        _pods.Set(k.Pods.Count);
        if (k.Gate is { } gate)
        {
            Set(_podContext.WithLabels("resolved_late"), gate.ResolvedLate);
            Set(_podContext.WithLabels("expired"), gate.Expired);
        }
        foreach (var (name, stats) in k.Informers)
        {
            Set(_k8sInformer.WithLabels(name, "lists"), stats.Lists);
            Set(_k8sInformer.WithLabels(name, "watches"), stats.Watches);
            Set(_k8sInformer.WithLabels(name, "events"), stats.Events);
            Set(_k8sInformer.WithLabels(name, "relists"), stats.Relists);
            Set(_k8sInformer.WithLabels(name, "errors"), stats.Errors);
            Set(_k8sInformer.WithLabels(name, "bookmarks"), stats.Bookmarks);
        }
        if (k.Reporter is { } r)
        {
            Set(_k8sStatus.WithLabels("patched"), r.Patched);
            Set(_k8sStatus.WithLabels("event"), r.EventsCreated);
            Set(_k8sStatus.WithLabels("failed"), r.Failures);
        }
    }

    private DateTime _mapsCounted, _flowTableCounted;

    /// <summary>Kernel actions and their Hubble drop reasons, in the order of palisade_datapath_packets_total's series.</summary>
    private static readonly (DatapathCounter Counter, string Action, DropReason Reason)[] PacketActions =
    [
        (DatapathCounter.Forwarded, "forwarded", DropReason.Unknown),
        (DatapathCounter.Redirected, "redirected", DropReason.Unknown),
        (DatapathCounter.ToStack, "to_stack", DropReason.Unknown),
        (DatapathCounter.PassedL2, "passed_l2", DropReason.Unknown),
        (DatapathCounter.NoEndpoint, "no_endpoint", DropReason.Unknown),
        (DatapathCounter.DropInvalidSip, "dropped", (DropReason)NetDropReason.InvalidSip),
        (DatapathCounter.DropInvalid, "dropped", (DropReason)NetDropReason.Invalid),
        (DatapathCounter.DropWriteError, "dropped", (DropReason)NetDropReason.WriteError),
        (DatapathCounter.PolicyDenied, "dropped", (DropReason)NetDropReason.PolicyDenied),
        (DatapathCounter.PolicyDeny, "dropped", (DropReason)NetDropReason.PolicyDeny),
        (DatapathCounter.PolicyAudit, "audited", DropReason.Unknown),
    ];

    /// <summary>The flow path's series from one reading of its counters (what each scrape does; tests call it with made-up counters).</summary>
    internal void CollectFlows(FlowCounters c)
    {
        if (c.Datapath is { } k)
        {
            Set(_flowRecords.WithLabels("reported"), k[DatapathCounter.FlowRecords]);
            Set(_flowRecords.WithLabels("aggregated"), k[DatapathCounter.FlowAggregated]);
            Set(_flowRecords.WithLabels("ringbuf_full"), k[DatapathCounter.RingbufFull]);
            Set(_flowTableFull, k[DatapathCounter.FlowTableFull]);
            foreach (var (counter, action, reason) in PacketActions)
            {
                Set(_datapathPackets.WithLabels(action, reason == DropReason.Unknown ? "" : FlowNames.DropReason(reason)), k[counter]);
            }
            Set(_datapathNoL4.WithLabels("fragment"), k[DatapathCounter.Fragment]);
            Set(_datapathNoL4.WithLabels("unknown_protocol"), k[DatapathCounter.UnknownL4]);
        }
        if (c.Table is { } table)
        {
            _mapEntries.WithLabels("pal_flows").Set(table.Entries);
            _mapCapacity.WithLabels("pal_flows").Set(table.Capacity);
            Set(_flowTableEvicted, table.Evicted);
        }
        if (c.Malformed is { } malformed)
        {
            foreach (var (reason, n) in malformed)
            {
                Set(_flowDecodeErrors.WithLabels(FlowRecordErrorName(reason)), n);
            }
        }
        if (c.Decoder is { } d)
        {
            Set(_flowUnresolved.WithLabels("process"), d.ProcessMisses);
            Set(_flowUnresolved.WithLabels("endpoint"), d.EndpointMisses);
        }
    }

    internal static string FlowRecordErrorName(Palisade.Datapath.Flows.FlowRecordError reason) => reason switch
    {
        Palisade.Datapath.Flows.FlowRecordError.Truncated => "truncated",
        Palisade.Datapath.Flows.FlowRecordError.NotAFlow => "not_a_flow",
        Palisade.Datapath.Flows.FlowRecordError.SizeMismatch => "size_mismatch",
        _ => "out_of_range",
    };

    private void Collect()
    {
        Set(_published, _hub.Published);
        CollectKubernetes();
        CollectMaps();
        var countTable = DateTime.UtcNow - _flowTableCounted >= TimeSpan.FromSeconds(10);
        if (FlowCounters.Read(_datapath, _flowSensor, countTable) is { } flows)
        {
            _flowTableCounted = countTable ? DateTime.UtcNow : _flowTableCounted;
            CollectFlows(flows);
        }
        if (_processes?.Sensor is { } sensor)
        {
            var s = sensor.Stats();
            Set(_kernelLost.WithLabels("process", "exec"), s.LostExec);
            Set(_kernelLost.WithLabels("process", "exit"), s.LostExit);
            Set(_kernelLost.WithLabels("process", "fork"), s.LostFork);
            Set(_kernelLost.WithLabels("process", "process_map_full"), s.ProcessMapFull);
            Set(_userLost.WithLabels("malformed"), s.Decoder.Malformed);
            Set(_userLost.WithLabels("consumer_error"), s.ConsumerErrors);
            Set(_userLost.WithLabels("exit_of_unknown_process"), s.Decoder.ExitUnknown);
            _cacheSize.Set(s.Cache.Count);
            _cacheCapacity.Set(sensor.Cache.Capacity);
            Set(_cacheEvictions.WithLabels("grace"), s.Cache.EvictedAfterGrace);
            Set(_cacheEvictions.WithLabels("capacity"), s.Cache.EvictedForCapacity);
            Set(_cacheLookups.WithLabels("hit"), s.Cache.Hits);
            Set(_cacheLookups.WithLabels("miss"), s.Cache.Misses);
        }
        foreach (var sub in _hub.Subscriptions)
        {
            _queueDepth.WithLabels(sub.Name).Set(sub.Depth);
            _queueCapacity.WithLabels(sub.Name).Set(sub.Capacity);
            Set(_exportDropped.WithLabels(sub.Name, "queue_full"), sub.Dropped);
        }
        foreach (var sink in _exports.Sinks)
        {
            Set(_exportSent.WithLabels(sink.Name), sink.Written);
            Set(_exportFailed.WithLabels(sink.Name), sink.Failed);
            Set(_exportFiltered.WithLabels(sink.Name), sink.Filtered);
            foreach (var (reason, n) in sink.Drops)
            {
                Set(_exportDropped.WithLabels(sink.Name, reason), n);
            }
            if (sink is Palisade.Exporters.Elasticsearch.ElasticsearchSink es)
            {
                _spooled.WithLabels(sink.Name).Set(es.Client.SpooledBytes);
                Set(_exportDropped.WithLabels(sink.Name, "spool_full"), es.Client.SpoolDropped);
            }
        }
        if (_policyService?.Engine is { } engine)
        {
            var list = engine.List();
            foreach (var state in new[] { "enabled", "partially_enabled", "error", "disabled" })
            {
                _policies.WithLabels(state).Set(list.Count(p => p.State == state));
            }
            var live = list.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var labels in _policyMemory.GetAllLabelValues().Where(l => !live.Contains(l[0])).ToList())
            {
                _policyMemory.RemoveLabelled(labels);
            }
            foreach (var labels in _policyActions.GetAllLabelValues().Where(l => !live.Contains(l[0])).ToList())
            {
                _policyActions.RemoveLabelled(labels);
            }
            foreach (var p in list)
            {
                _policyMemory.WithLabels(p.Name).Set(p.KernelMemoryBytes);
                var c = p.Counters;
                foreach (var (action, value) in new (string, ulong)[]
                {
                    ("matched", c.Matched), ("posted", c.Posted), ("killed", c.Killed), ("signalled", c.Signalled),
                    ("overridden", c.Overridden), ("monitored", c.Monitored), ("rate_limited", c.RateLimited), ("lost", c.Lost),
                })
                {
                    var child = _policyActions.WithLabels(p.Name, action);
                    if (value < child.Value)
                    {
                        // The policy was deleted and added again: its kernel counters restarted.
                        _policyActions.RemoveLabelled(p.Name, action);
                        child = _policyActions.WithLabels(p.Name, action);
                    }
                    Set(child, value);
                }
            }
        }
        if (_kernel?.Probe is { } probe)
        {
            foreach (var feature in probe.Features)
            {
                _probe.WithLabels(feature.Name).Set(feature.Available ? 1 : 0);
            }
        }
    }

    // Ring-buffer fill on every scrape (two reads of mapped pages); map entry counts iterate
    // keys, one syscall each, so at most every 10 s.
    private void CollectMaps()
    {
        var rings = _processes?.Sensor?.RingBufferUsage() ?? [];
        foreach (var (map, pending, capacity) in rings)
        {
            _ringPending.WithLabels(map).Set(pending);
            _ringCapacity.WithLabels(map).Set(capacity);
        }
        if (DateTime.UtcNow - _mapsCounted < TimeSpan.FromSeconds(10))
        {
            return;
        }
        _mapsCounted = DateTime.UtcNow;
        try
        {
            foreach (var (map, entries, capacity) in (_processes?.Sensor?.MapUsage() ?? []).Concat(_policyService?.Engine?.MapUsage() ?? []))
            {
                _mapEntries.WithLabels(map).Set(entries);
                _mapCapacity.WithLabels(map).Set(capacity);
            }
        }
        catch (Palisade.Bpf.BpfException)
        {
            // A sensor stopping during the scrape: the next scrape counts again.
        }
    }
}
