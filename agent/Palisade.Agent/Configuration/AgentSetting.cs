namespace Palisade.Agent.Configuration;

/// <summary>
/// One user-facing agent setting. The same key is the YAML key, the file name in
/// --config-dir, the flag (--key) and, upper-cased with '_' for '-', the environment
/// variable PALISADE_KEY. docs/configuration.md documents each (a test checks it does).
/// <see cref="Aliases"/> are other names of the same setting in files, --config-dir and flags
/// (Tetragon's name where ours differs, or ours where Tetragon's is the key).
/// </summary>
public sealed record AgentSetting(string Key, string Default, string Description, IReadOnlyList<string>? Allowed = null, IReadOnlyList<string>? Aliases = null)
{
    /// <summary>The environment variable that sets it.</summary>
    public string EnvironmentVariable => "PALISADE_" + Key.Replace('-', '_').ToUpperInvariant();

    /// <summary>The command-line flag that sets it.</summary>
    public string Flag => "--" + Key;
}

/// <summary>Every setting the agent reads, with its default. Names follow Tetragon's flags where the concept is shared.</summary>
public static class AgentSettings
{
    public static readonly AgentSetting LogLevel = new(
        "log-level", "info", "Minimum level of the agent's own logs (written to stderr).",
        ["trace", "debug", "info", "warn", "error"]);

    public static readonly AgentSetting LogFormat = new(
        "log-format", "text", "Format of the agent's own logs: human-readable text or one JSON object per line (Serilog compact JSON).",
        ["text", "json"]);

    public static readonly AgentSetting HealthServerAddress = new(
        "health-server-address", "127.0.0.1:6789",
        "host:port of the HTTP endpoints /healthz, /readyz and /v1/probe. ':PORT' listens on every address; an empty value turns the server off.");

    public static readonly AgentSetting NodeName = new(
        "node-name", "", "Name of this node in events (node_name, exec_id). Empty: the NODE_NAME environment variable (set by the Helm chart), else the host name.");

    public static readonly AgentSetting ExportFilename = new(
        "export-filename", "", "File that receives every event as Tetragon-compatible JSON lines (mode 0600). Empty: no file.");

    public static readonly AgentSetting ExportFileMaxSizeMb = new(
        "export-file-max-size-mb", "10", "Size in MiB past which the JSON file is rotated to NAME.1 (older backups shift to .2, .3, ...). Rotation never splits a line.");

    public static readonly AgentSetting ExportFileMaxBackups = new(
        "export-file-max-backups", "5", "Rotated files kept; the oldest beyond this is deleted. 0 keeps all.");

    public static readonly AgentSetting ExportFileCompress = new(
        "export-file-compress", "false", "Gzip rotated files (NAME.1.gz).", ["true", "false"]);

    public static readonly AgentSetting ExportFilePerm = new(
        "export-file-perm", "600", "Octal permissions of the JSON file and its rotated copies when created.");

    public static readonly AgentSetting ExportFileRotationInterval = new(
        "export-file-rotation-interval", "0s", "Also rotate a non-empty file this long after it was opened (e.g. 1h); 0s: by size only.");

    public static readonly AgentSetting ExportStdout = new(
        "export-stdout", "none", "Events on stdout: none, compact (one readable line each, like `tetra getevents -o compact`) or json.",
        ["none", "compact", "json"]);

    public static readonly AgentSetting EventQueueSize = new(
        "event-queue-size", "10000", "Events each exporter may have waiting; past that its new events are dropped and counted, the others go on.");

    public static readonly AgentSetting EnableAncestors = new(
        "enable-ancestors", "", "Event types that get every ancestor beyond the parent (Tetragon's list): base (process_exec and process_exit; required by the others), kprobe, tracepoint, uprobe, lsm. true means base, false or empty none.");

    public static readonly AgentSetting EnableProcessCred = new(
        "enable-process-cred", "false", "Add capabilities (cap) and all user and group ids (process_credentials) to process objects in events.", ["true", "false"]);

    public static readonly AgentSetting EnableProcessNs = new(
        "enable-process-ns", "false", "Add namespace inode numbers (ns) to process objects in events.", ["true", "false"]);

    public static readonly AgentSetting ProcessCacheSize = new(
        "process-cache-size", "65536", "Most process records kept for enrichment; past it the oldest go first, finished ones before running ones.");

    public static readonly AgentSetting ProcessCacheGrace = new(
        "process-cache-grace", "5s", "How long a process record stays after the process and all its children are gone, for events that arrive late (e.g. 500ms, 5s, 2m).");

    public static readonly AgentSetting ProcessArgsMax = new(
        "process-args-max", "4096", "Bytes of the argument list captured per exec (256 to 8191); longer lists are cut and flagged truncArgs.");

    public static readonly AgentSetting RingBufferSize = new(
        "rb-size", "8M", "Size of the process sensor's ring buffer: a power of two, at least 4K (suffixes K, M).");

    public static readonly AgentSetting ProcFs = new(
        "procfs", "/proc", "Where the host's /proc is mounted (in a container: the host's /proc mounted elsewhere).");

    public static readonly AgentSetting KeepSensorsOnExit = new(
        "keep-sensors-on-exit", "false", "Leave the sensors' programs, maps and links pinned under --bpf-dir when the agent exits, so policies keep enforcing while it is down (upgrade, crash); the next agent adopts them. false: everything detaches on exit, and pins of an earlier run are removed at start.", ["true", "false"]);

    public static readonly AgentSetting BpfDir = new(
        "bpf-dir", "/sys/fs/bpf/palisade", "bpffs directory for the pins of --keep-sensors-on-exit (bpffs is mounted at /sys/fs/bpf when missing).");

    public static readonly AgentSetting TracingPolicyDir = new(
        "tracing-policy-dir", "", "Directory of TracingPolicy YAML files loaded at start; adding, editing or removing a file there applies live. Empty: none.");

    public static readonly AgentSetting NetworkPolicyDir = new(
        "network-policy-dir", "", "Directory of NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy files (*.yaml, *.yml, *.json; several documents per file); adding, editing or removing a file applies live. A file with errors keeps its last good version in force. Empty: none (policies from the Kubernetes API still apply).");

    public static readonly AgentSetting PolicyEnforcement = new(
        "policy-enforcement", "default", "When endpoints drop what no policy allows (Cilium's enable-policy): default (a direction once a policy selects the endpoint for it), always (every endpoint, both directions, policy or not), never (nothing is enforced).",
        ["default", "always", "never"], ["enable-policy"]);

    public static readonly AgentSetting PolicyAuditMode = new(
        "policy-audit-mode", "false", "Network policy audit mode for every endpoint: verdicts are reported (AUDIT) but nothing is dropped. Switch it live with `palisade policy audit --all on|off`.", ["true", "false"]);

    public static readonly AgentSetting PolicyAuditNamespaces = new(
        "policy-audit-namespaces", "", "Comma-separated namespaces whose endpoints run network policy in audit mode (AUDIT, nothing dropped). Switch live with `palisade policy audit --namespaces ns1,ns2`; single policies with the label palisade.io/policy-audit-mode: \"true\". Empty: none.");

    public static readonly AgentSetting TracingPolicySelector = new(
        "tracing-policy-selector", "", "Label selector (key=value[,key=value]) a policy in --tracing-policy-dir must match to be loaded; the others are skipped and logged. Empty: load all.");

    public static readonly AgentSetting Kubernetes = new(
        "kubernetes", "auto", "Watch the Kubernetes API: TracingPolicy and TracingPolicyNamespaced objects are enforced, events get their pod, each policy's status on this node is written back. auto: on when running in a pod or when kubeconfig is set.", ["auto", "true", "false"],
        ["enable-k8s-api"]);

    public static readonly AgentSetting Kubeconfig = new(
        "kubeconfig", "", "Path of a kubeconfig file to reach the API server with (development, or an agent outside the cluster). Empty: the pod's service account.",
        Aliases: ["k8s-kubeconfig-path"]);

    public static readonly AgentSetting TracingPolicy = new(
        "tracing-policy", "", "One TracingPolicy YAML file loaded at start, beside --tracing-policy-dir (Tetragon's flag). Empty: none.");

    public static readonly AgentSetting ClusterName = new(
        "cluster-name", "", "Name of the cluster, written as cluster_name on every event (Tetragon's flag). Empty: no cluster_name.");

    public static readonly AgentSetting MetricsServer = new(
        "metrics-server", "", "host:port where /metrics is also served, on its own (Tetragon's flag, e.g. :2112), so Prometheus can scrape it while the health server stays on loopback. Empty: /metrics only on health-server-address.");

    public static readonly AgentSetting EnablePodAnnotations = new(
        "enable-pod-annotations", "false", "Add the pod's annotations (pod.pod_annotations) to events of container processes (Tetragon's flag).", ["true", "false"]);

    public static readonly AgentSetting UsernameMetadata = new(
        "username-metadata", "disabled", "Resolve the uid of a host process to a user name (process.user.name) from the host's passwd file (Tetragon's flag): disabled, or unix. Only processes in the host's mount and user namespaces get a name.", ["disabled", "unix"]);

    public static readonly AgentSetting ProcessCacheGcInterval = new(
        "process-cache-gc-interval", "1s", "How often the process cache is swept for records past process-cache-grace (Tetragon's flag; e.g. 1s, 30s).");

    public static readonly AgentSetting LogFile = new(
        "log-file", "", "Also write the agent's own logs to this file (same format as log-format), rotated at 10 MiB with 5 backups. Empty: stderr only.");

    public static readonly AgentSetting Debug = new(
        "debug", "false", "Tetragon's -d: true is log-level debug.", ["true", "false"]);

    public static readonly AgentSetting KubernetesPodWait = new(
        "kubernetes-pod-wait", "3s", "How long a container process's events are held when its Pod object has not been seen yet, so they still get pod context; past it they go out without it (counted in palisade_pod_context_total{result=\"expired\"}).");

    public static readonly AgentSetting KubernetesResync = new(
        "kubernetes-resync", "10m", "How often every watched object is handed to the agent again, as a safety net. 0: never.");

    public static readonly AgentSetting ExportAllowlist = new(
        "export-allowlist", "", "Export only events matching one of these filters (Tetragon's format: one JSON object per line, e.g. {\"event_set\":[\"PROCESS_EXEC\"],\"namespace\":[\"default\"]}). Applies to the file, stdout and Elasticsearch. Empty: all.");

    public static readonly AgentSetting ExportDenylist = new(
        "export-denylist", "", "Never export events matching one of these filters (same format as export-allowlist; deny wins over allow). Empty: none.");

    public static readonly AgentSetting FieldFilters = new(
        "field-filters", "", "Keep or drop event fields, one JSON object per line: {\"event_set\":[\"PROCESS_EXEC\"],\"fields\":\"process.binary,process.arguments\",\"action\":\"INCLUDE\"}. Empty: all fields.");

    public static readonly AgentSetting RedactionFilters = new(
        "redaction-filters", "", "Mask secrets in process arguments in every sink, one JSON object per line: {\"binary_regex\":[\"mysql\"],\"redact\":[\"(?:-p|--password)[= ]?(\\\\S+)\"]}; each capture group becomes *****. Empty: none.");

    public static readonly AgentSetting ExportRateLimit = new(
        "export-rate-limit", "-1", "Most events per minute each sink exports; the rest are dropped, counted and reported in rate_limit_info events. -1: no limit.");

    public static readonly AgentSetting ElasticsearchUrl = new(
        "elasticsearch-url", "", "Elasticsearch node URL(s) (http:// or https://) to index events into with the _bulk API; several, comma-separated, fail over to one another (a failed node is left out for a minute, then longer). Empty: no Elasticsearch export (unless elasticsearch-cloud-id).");

    public static readonly AgentSetting ElasticsearchCloudId = new(
        "elasticsearch-cloud-id", "", "Elastic Cloud deployment's Cloud ID (NAME:BASE64, from the console); decodes to the deployment's https:// Elasticsearch URL. Instead of elasticsearch-url, not with it.");

    public static readonly AgentSetting ElasticsearchIndex = new(
        "elasticsearch-index", "palisade-events", "Data stream name, or index prefix in daily mode (NAME-yyyy.MM.dd). An index template for it is installed on start.");

    public static readonly AgentSetting ElasticsearchIndexMode = new(
        "elasticsearch-index-mode", "data-stream", "data-stream (one data stream, ILM-friendly) or daily (one index per UTC day).", ["data-stream", "daily"]);

    public static readonly AgentSetting ElasticsearchLogs = new(
        "elasticsearch-logs", "false", "Also ship the agent's own logs (at log-level) to Elasticsearch, as ECS log documents into the elasticsearch-logs-index data stream, through the same spooled bulk client (spool in elasticsearch-spool-dir/logs). Needs elasticsearch-url.", ["true", "false"]);

    public static readonly AgentSetting ElasticsearchLogsIndex = new(
        "elasticsearch-logs-index", "palisade-logs", "Data stream for the agent's logs (elasticsearch-logs). An index template for it is installed on start.");

    public static readonly AgentSetting ElasticsearchSpoolDir = new(
        "elasticsearch-spool-dir", "/var/lib/palisade/elasticsearch", "Where events wait on disk while Elasticsearch is unreachable; replayed in order on recovery and after restarts. The dead-letter file lives here too.");

    public static readonly AgentSetting ElasticsearchSpoolMaxSize = new(
        "elasticsearch-spool-max-size", "1G", "Most bytes the spool may hold; past it the oldest spooled events are dropped (counted). Suffixes K, M, G.");

    public static readonly AgentSetting ElasticsearchBatchSize = new(
        "elasticsearch-batch-size", "1000", "Most events in one _bulk request.");

    public static readonly AgentSetting ElasticsearchBatchBytes = new(
        "elasticsearch-batch-bytes", "5M", "Most bytes (uncompressed) in one _bulk request. Suffixes K, M.");

    public static readonly AgentSetting ElasticsearchFlushInterval = new(
        "elasticsearch-flush-interval", "1s", "Longest an event waits for its batch to fill before it is sent.");

    public static readonly AgentSetting ElasticsearchCompress = new(
        "elasticsearch-compress", "true", "Gzip _bulk request bodies.", ["true", "false"]);

    public static readonly AgentSetting ElasticsearchUsername = new(
        "elasticsearch-username", "", "Basic-auth user; the password comes from elasticsearch-password-file or the ELASTICSEARCH_PASSWORD environment variable.");

    public static readonly AgentSetting ElasticsearchPasswordFile = new(
        "elasticsearch-password-file", "", "File holding the basic-auth password (a mounted Secret). Never logged.");

    public static readonly AgentSetting ElasticsearchApiKeyFile = new(
        "elasticsearch-api-key-file", "", "File holding an API key (the base64 id:key form), sent as 'Authorization: ApiKey'. Or set ELASTICSEARCH_API_KEY.");

    public static readonly AgentSetting ElasticsearchBearerTokenFile = new(
        "elasticsearch-bearer-token-file", "", "File holding a bearer token, sent as 'Authorization: Bearer'. Or set ELASTICSEARCH_BEARER_TOKEN.");

    public static readonly AgentSetting ElasticsearchCaFile = new(
        "elasticsearch-ca-file", "", "PEM file of the CA that signed Elasticsearch's certificate. Empty: the system trust store.");

    public static readonly AgentSetting ServerAddress = new(
        "server-address", "unix:///var/run/palisade/palisade.sock", "Where the gRPC API listens: unix:///path (created mode 0600, root only) or host:port for TCP (then server-tls-cert-file and server-tls-key-file are required unless the host is loopback). Empty: no gRPC API.");

    public static readonly AgentSetting ServerTlsCertFile = new(
        "server-tls-cert-file", "", "PEM certificate for the gRPC API on TCP.");

    public static readonly AgentSetting ServerTlsKeyFile = new(
        "server-tls-key-file", "", "PEM private key for server-tls-cert-file.");

    public static readonly AgentSetting ServerTlsClientCaFiles = new(
        "server-tls-client-ca-files", "", "Comma-separated PEM CA bundles that sign the gRPC API's client certificates (Tetragon's flag). A client that presents a certificate must chain to one of them.");

    public static readonly AgentSetting ServerTlsRequireClientCert = new(
        "server-tls-require-client-cert", "false", "Mutual TLS on the gRPC API: refuse a client without a certificate signed by server-tls-client-ca-files (Tetragon's flag).", ["true", "false"]);

    public static readonly AgentSetting MetricsLabelFilter = new(
        "metrics-label-filter", "namespace,workload,binary", "Labels on per-event metrics, any of namespace, workload, pod, binary. Fewer labels, fewer series.");

    public static readonly AgentSetting MetricsMaxSeries = new(
        "metrics-max-series", "2000", "Most label sets one per-event metric may grow; events beyond it are counted under the value \"other\" so a busy node cannot blow up Prometheus.");

    /// <summary>Settings that select where other settings come from; read before everything else.</summary>
    public static readonly AgentSetting ConfigFile = new(
        "config-file", "/etc/palisade/palisade.yaml", "YAML file of settings (keys as in this table). Missing is fine for the default path, an error for a path given explicitly.");

    public static readonly AgentSetting EnableFlows = new(
        "enable-flows", "true", "With pod networking: the datapath writes flow records (Hubble-style flows, aggregated per connection). false: no flows and no flow table, forwarding unchanged, the datapath's counters still count.", ["true", "false"]);

    public static readonly AgentSetting FlowReportInterval = new(
        "flow-report-interval", "5s", "A connection that carries traffic but nothing new (no new TCP flag, no drop) is reported again after this long, with its packets and bytes since (Cilium's monitor-aggregation-interval). 0: only first packet, new flags, close and drops.");

    public static readonly AgentSetting ConfigDir = new(
        "config-dir", "", "Directory where each file is one setting: the file name is the key, the content the value (a Kubernetes ConfigMap mounted as a volume).");

    public static readonly IReadOnlyList<AgentSetting> All =
    [
        LogLevel, LogFormat, HealthServerAddress, NodeName, Kubernetes, Kubeconfig, KubernetesPodWait, KubernetesResync, ExportFilename, ExportFileMaxSizeMb, ExportFileMaxBackups, ExportFileCompress, ExportFilePerm,
        ExportFileRotationInterval, ExportStdout, EventQueueSize, EnableAncestors, EnableProcessCred, EnableProcessNs,
        ProcessCacheSize, ProcessCacheGrace, ProcessCacheGcInterval, ProcessArgsMax, RingBufferSize, ProcFs, KeepSensorsOnExit, BpfDir, TracingPolicyDir, TracingPolicy, TracingPolicySelector,
        NetworkPolicyDir, PolicyEnforcement, PolicyAuditMode, PolicyAuditNamespaces,
        ClusterName, MetricsServer, EnablePodAnnotations, UsernameMetadata, LogFile, Debug,
        ExportAllowlist, ExportDenylist, FieldFilters, RedactionFilters, ExportRateLimit,
        ElasticsearchUrl, ElasticsearchCloudId, ElasticsearchIndex, ElasticsearchIndexMode, ElasticsearchLogs, ElasticsearchLogsIndex, ElasticsearchSpoolDir, ElasticsearchSpoolMaxSize, ElasticsearchBatchSize,
        ElasticsearchBatchBytes, ElasticsearchFlushInterval, ElasticsearchCompress, ElasticsearchUsername, ElasticsearchPasswordFile,
        ElasticsearchApiKeyFile, ElasticsearchBearerTokenFile, ElasticsearchCaFile,
        ServerAddress, ServerTlsCertFile, ServerTlsKeyFile, ServerTlsClientCaFiles, ServerTlsRequireClientCert, MetricsLabelFilter, MetricsMaxSeries,
        .. DatapathSettings.All,
        .. ServiceSettings.All,
        EnableFlows, FlowReportInterval,
        ConfigFile, ConfigDir,
    ];

    /// <summary>The setting <paramref name="key"/> names, by its key or an alias.</summary>
    public static AgentSetting? Find(string key) => ByName.GetValueOrDefault(key);

    private static readonly Dictionary<string, AgentSetting> ByName = All
        .SelectMany(s => (s.Aliases ?? []).Prepend(s.Key).Select(name => KeyValuePair.Create(name, s)))
        .ToDictionary(StringComparer.Ordinal);
}
