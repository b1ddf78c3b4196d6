using Palisade.Datapath;
using Palisade.Datapath.Bpf;

namespace Palisade.Agent;

/// <summary>
/// The agent's pod datapath: one <see cref="EndpointDatapath"/> (bpf/net/endpoint.bpf.c) that
/// serves as both the endpoint and the node datapath, loaded when pod networking starts.
/// Its flow records go on the process sensor's ring buffer (so a flow follows the exec of its
/// process on one reader) and it reads the socket-owner table of the flow sensor; its maps
/// are pinned under BPF_DIR/net always, since pods must keep talking while the agent restarts.
/// </summary>
internal sealed class KernelDatapath(Configuration.AgentOptions options, ProcessSensorService processes, FlowSensorService flows) : IDisposable
{
    private readonly Lock _gate = new();
    private EndpointDatapath? _datapath;

    /// <summary>The loaded datapath; null before pod networking started.</summary>
    public EndpointDatapath? Loaded => _datapath;

    /// <summary>Where the datapath's maps are pinned.</summary>
    public string PinDirectory => Path.Combine(options.BpfDir, "net");

    /// <summary>Loads the datapath once (adopting what an earlier agent pinned) and returns it.</summary>
    public EndpointDatapath Open()
    {
        lock (_gate)
        {
            return _datapath ??= EndpointDatapath.Open(new EndpointDatapathOptions
            {
                PinDirectory = PinDirectory,
                EventRing = processes.Sensor?.EventMap,
                WakeupBytes = processes.Sensor?.WakeupBytes ?? 0,
                FlowRecords = options.EnableFlows,
                ReportInterval = options.FlowReportInterval,
                SocketOwners = flows.SocketOwners?.OwnerMap,
            });
        }
    }

    /// <summary>The parts DatapathService builds pod networking from, over this datapath.</summary>
    public DatapathParts Parts() => new()
    {
        EndpointDatapath = Open,
        NodeDatapath = Open,
        // The gateways and every address of the node itself: traffic the node sends to a pod
        // (kubelet probes, host processes) must have the host identity, not world, under a policy.
        HostAddresses = addresses => Open().SetHostAddresses(addresses.Concat(EndpointDatapath.NodeAddresses()).Distinct()),
        PolicyDatapath = () => Open(),
    };

    /// <summary>Closes the agent's handles; the pinned maps and the tc filters stay, so pods keep working.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _datapath?.Dispose();
            _datapath = null;
        }
    }
}
