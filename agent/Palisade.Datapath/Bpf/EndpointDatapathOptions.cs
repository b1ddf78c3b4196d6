using Palisade.Bpf;

namespace Palisade.Datapath.Bpf;

/// <summary>Settings of the pod datapath (bpf/net/endpoint.bpf.c), fixed before it loads.</summary>
public sealed record EndpointDatapathOptions
{
    /// <summary>Where the production agent pins the datapath's maps.</summary>
    public const string DefaultPinDirectory = "/sys/fs/bpf/palisade/net";

    /// <summary>
    /// bpffs directory for the maps; a restarted agent adopts what it finds there (same
    /// endpoints, counters, flow entries, ring buffer). Null: nothing pinned, and disposing
    /// the datapath detaches its programs (nothing could adopt them).
    /// </summary>
    public string? PinDirectory { get; init; } = DefaultPinDirectory;

    /// <summary>Connections x directions the flow-aggregation LRU holds; the least recently seen go first.</summary>
    public int FlowEntries { get; init; } = 65536;

    /// <summary>
    /// Connections the network-policy conntrack (pal_ct, an LRU) tracks: only connections of
    /// endpoints with a policy are tracked; when full the least recently used go first (and a
    /// connection whose entry went is checked against the policy again).
    /// </summary>
    public int ConntrackEntries { get; init; } = 262144;

    /// <summary>Prefixes the ipcache holds (Cilium's default: 512000).</summary>
    public int IpcacheEntries { get; init; } = 512000;

    /// <summary>Drop records of one flow come at most this often unless the reason changes.</summary>
    public TimeSpan DropReportInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The ring buffer for flow records: the process sensor's (pal_process_events of
    /// process.bpf.c), so a flow follows its process's exec on one ordered stream. Null: the
    /// datapath has its own.
    /// </summary>
    public BpfMap? EventRing { get; init; }

    /// <summary>
    /// A connection that carries traffic but nothing new (no new TCP flag, no drop) is
    /// reported again after this long, with the packets and bytes since its last record, so a
    /// long stream shows up while it runs (Cilium's monitor-aggregation-interval). Zero: never.
    /// </summary>
    public TimeSpan ReportInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// False: the programs write no flow records and keep no flow entries (the per-CPU
    /// counters still count packets and drops); forwarding is unchanged.
    /// </summary>
    public bool FlowRecords { get; init; } = true;

    /// <summary>
    /// Bytes waiting in the ring buffer before a flow record wakes its reader; 0 wakes it on
    /// every record. A reader that also polls (the process sensor's) should pass its own
    /// threshold: a wakeup per record costs a context switch per connection state change.
    /// </summary>
    public uint WakeupBytes { get; init; }

    /// <summary>The socket-owner table of bpf/net/sock.bpf.c (pal_sock_owners); null: the datapath's own (empty unless shared by pin).</summary>
    public BpfMap? SocketOwners { get; init; }

    internal void Validate()
    {
        if (FlowEntries is < 1024 or > 16 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(FlowEntries), FlowEntries, "FlowEntries must be between 1024 and 16777216 (one entry per connection and direction).");
        }
        if (ConntrackEntries is < 1024 or > 16 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(ConntrackEntries), ConntrackEntries, "ConntrackEntries must be between 1024 and 16777216 (one entry per tracked connection).");
        }
        if (IpcacheEntries is < 1024 or > 16 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(IpcacheEntries), IpcacheEntries, "IpcacheEntries must be between 1024 and 16777216.");
        }
        if (DropReportInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(DropReportInterval), DropReportInterval, "DropReportInterval cannot be negative.");
        }
        if (ReportInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ReportInterval), ReportInterval, "ReportInterval cannot be negative (zero turns periodic reports off).");
        }
        if (PinDirectory is { } dir && !Path.IsPathRooted(dir))
        {
            throw new ArgumentException($"PinDirectory '{dir}' must be an absolute path under a bpffs mount (e.g. {DefaultPinDirectory}).", nameof(PinDirectory));
        }
    }
}
