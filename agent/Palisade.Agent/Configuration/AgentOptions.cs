using System.Net;

namespace Palisade.Agent.Configuration;

/// <summary>The agent's resolved, validated settings.</summary>
public sealed record AgentOptions
{
    public required string LogLevel { get; init; }

    public required string LogFormat { get; init; }

    /// <summary>Where the health endpoints listen; null when turned off.</summary>
    public required IPEndPoint? HealthServerEndpoint { get; init; }

    public required string NodeName { get; init; }

    /// <summary>Null when no file export is configured.</summary>
    public required string? ExportFilename { get; init; }

    /// <summary>Rotation of the JSON file.</summary>
    public Palisade.Exporters.FileRotation ExportFileRotation { get; init; } = Palisade.Exporters.FileRotation.Default;

    public required string ExportStdout { get; init; }

    public required int EventQueueSize { get; init; }

    public required bool EnableAncestors { get; init; }

    /// <summary>enable-ancestors as Tetragon lists it: base, kprobe, tracepoint, uprobe, lsm.</summary>
    public IReadOnlySet<string> AncestorEventTypes { get; init; } = new HashSet<string>();

    /// <summary>cluster_name on every event; null: none.</summary>
    public string? ClusterName { get; init; }

    /// <summary>Where /metrics is also served on its own (metrics-server); null: not.</summary>
    public IPEndPoint? MetricsServerEndpoint { get; init; }

    /// <summary>Pod annotations on events (enable-pod-annotations).</summary>
    public bool EnablePodAnnotations { get; init; }

    /// <summary>user.name of host processes from the host's passwd file (username-metadata=unix).</summary>
    public bool UsernameMetadata { get; init; }

    /// <summary>How often the process cache is swept (process-cache-gc-interval).</summary>
    public TimeSpan ProcessCacheGcInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A file the agent's logs also go to (log-file); null: stderr only.</summary>
    public string? LogFile { get; init; }

    /// <summary>One TracingPolicy file loaded at start (tracing-policy); null: none.</summary>
    public string? TracingPolicyFile { get; init; }

    /// <summary>What the configuration holds that does nothing here (Tetragon keys that do not apply), logged at start.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    public required bool EnableProcessCred { get; init; }

    public required bool EnableProcessNs { get; init; }

    public required int ProcessCacheSize { get; init; }

    public required TimeSpan ProcessCacheGrace { get; init; }

    public required int ProcessArgsMax { get; init; }

    public required int RingBufferSize { get; init; }

    public required string ProcFs { get; init; }

    /// <summary>Sensors stay pinned under <see cref="BpfDir"/> when the agent exits, and are adopted at start.</summary>
    public bool KeepSensorsOnExit { get; init; }

    /// <summary>enable-flows: the pod datapath writes flow records.</summary>
    public bool EnableFlows { get; init; } = true;

    /// <summary>flow-report-interval: a quiet but active connection is reported again after this long; zero: never.</summary>
    public TimeSpan FlowReportInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Where the pins of <see cref="KeepSensorsOnExit"/> live (on a bpffs).</summary>
    public string BpfDir { get; init; } = Palisade.Runtime.SensorPins.DefaultDirectory;

    /// <summary>Null when no policy directory is configured.</summary>
    public string? TracingPolicyDir { get; init; }

    /// <summary>Labels a policy from the directory must carry (all of them); empty: no filter.</summary>
    public IReadOnlyDictionary<string, string> TracingPolicySelector { get; init; } = new Dictionary<string, string>();

    /// <summary>network-policy-dir: NetworkPolicy/CNP/CCNP files; null: none.</summary>
    public string? NetworkPolicyDir { get; init; }

    /// <summary>policy-enforcement, policy-audit-mode and policy-audit-namespaces as given at start (switchable live through the API).</summary>
    public global::Palisade.Agent.NetworkPolicy.NetworkPolicySettings NetworkPolicy { get; init; } = global::Palisade.Agent.NetworkPolicy.NetworkPolicySettings.Default;

    /// <summary>This node's labels on every event (node_labels); the Kubernetes watcher of this node's Node fills them.</summary>
    public global::Palisade.Events.NodeLabels NodeLabels { get; } = new();

    /// <summary>Names the rule of a flow's PolicyRule in flow JSON; the network-policy engine plugs in when it starts.</summary>
    public global::Palisade.Agent.NetworkPolicy.FlowPolicyRules PolicyRules { get; } = new();

    /// <summary>Watch the Kubernetes API (policies, pods, node) and report policy status.</summary>
    public bool Kubernetes { get; init; }

    /// <summary>kubeconfig file; null: in-cluster service account.</summary>
    public string? Kubeconfig { get; init; }

    public TimeSpan KubernetesPodWait { get; init; } = TimeSpan.FromSeconds(3);

    public TimeSpan KubernetesResync { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Filters, field filters and rate limit of the local sinks (file, stdout) and Elasticsearch.</summary>
    public Palisade.Exporters.SinkPipeline ExportPipeline { get; init; } = Palisade.Exporters.SinkPipeline.PassAll;

    /// <summary>Masks secrets in arguments in every sink; null: none.</summary>
    public Palisade.Exporters.Filters.Redactor? Redactor { get; init; }

    /// <summary>Null when no Elasticsearch export is configured.</summary>
    public Palisade.Exporters.Elasticsearch.ElasticsearchOptions? Elasticsearch { get; init; }

    /// <summary>Data stream the agent's own logs ship to; null when --elasticsearch-logs is off.</summary>
    public string? ElasticsearchLogsIndex { get; init; }

    /// <summary>gRPC API address: unix:///path or host:port; null: off.</summary>
    public string? ServerAddress { get; init; }

    /// <summary>The TCP endpoint of <see cref="ServerAddress"/>; null for a unix socket.</summary>
    public IPEndPoint? ServerEndpoint { get; init; }

    public string? ServerTlsCertFile { get; init; }

    public string? ServerTlsKeyFile { get; init; }

    /// <summary>PEM CA bundles for client certificates (server-tls-client-ca-files); empty: no client certificates asked for.</summary>
    public IReadOnlyList<string> ServerTlsClientCaFiles { get; init; } = [];

    /// <summary>Mutual TLS: a client without a certificate from <see cref="ServerTlsClientCaFiles"/> is refused.</summary>
    public bool ServerTlsRequireClientCert { get; init; }

    /// <summary>Labels on per-event metrics (namespace, workload, pod, binary).</summary>
    public IReadOnlyList<string> MetricsLabels { get; init; } = ["namespace", "workload", "binary"];

    public int MetricsMaxSeries { get; init; } = 2000;

    /// <summary>Pod networking (endpoint socket, IPAM, CNI conflist); null when no pod CIDR is configured.</summary>
    public DatapathOptions? Datapath { get; init; }

    /// <summary>Services in BPF (socket-LB); null: off (no service-dir, kube-proxy-replacement false).</summary>
    public ServiceLbOptions? Services { get; init; }

    /// <summary>Setting key -> where its value came from (default, file, env, flag), for the start-up log.</summary>
    public required IReadOnlyDictionary<string, string> Sources { get; init; }
}
