using System.Net;

namespace Palisade.Datapath;

/// <summary>
/// One endpoint: a container attachment (CNI's container id + ifname) with its addresses,
/// its veth pair and its security identity. The endpoint manager owns the set; the BPF
/// datapath gets each one through <see cref="IEndpointDatapath"/>.
/// </summary>
public sealed record Endpoint
{
    /// <summary>Node-local endpoint id (1..65535), stable for the endpoint's life.</summary>
    public required uint Id { get; init; }
    public required string ContainerId { get; init; }
    /// <summary>The interface name inside the container (CNI_IFNAME, usually eth0).</summary>
    public required string IfName { get; init; }
    /// <summary>Path of the container's network namespace (CNI_NETNS).</summary>
    public required string Netns { get; init; }
    /// <summary>Inode of that network namespace (the socket-owner table's key).</summary>
    public uint NetnsInode { get; init; }
    public string? PodNamespace { get; init; }
    public string? PodName { get; init; }
    /// <summary>Pod labels (standalone: PALISADE_LABELS; with Kubernetes: the Pod's).</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    /// <summary>Labels of the pod's namespace (default kubernetes.io/metadata.name=NAMESPACE).</summary>
    public IReadOnlyDictionary<string, string> NamespaceLabels { get; init; } = new Dictionary<string, string>();
    /// <summary>
    /// The pod's named ports, which network policies may name instead of a number (Kubernetes:
    /// the containers' ports that have a name; standalone: PALISADE_NAMED_PORTS).
    /// </summary>
    public IReadOnlyList<ContainerPort> NamedPorts { get; init; } = [];
    /// <summary>Security identity of the endpoint's labels.</summary>
    public uint Identity { get; init; }
    /// <summary>Host side of the veth pair.</summary>
    public required string HostIfName { get; init; }
    public int HostIfIndex { get; init; }
    public required byte[] HostMac { get; init; }
    /// <summary>MAC of the container side (IfName).</summary>
    public required byte[] PodMac { get; init; }
    public IPAddress? IPv4 { get; init; }
    public IPAddress? IPv6 { get; init; }
    public DateTimeOffset Created { get; init; }
}

/// <summary>A named port of a pod: its name (an IANA_SVC_NAME), "TCP", "UDP" or "SCTP", and the number.</summary>
public sealed record ContainerPort(string Name, string Protocol, int Port);

/// <summary>
/// What the endpoint manager needs of the BPF datapath. Implemented by the datapath's
/// loader over bpf/net; faked in tests that need no kernel.
/// </summary>
public interface IEndpointDatapath
{
    /// <summary>
    /// Writes the endpoint's map entries (addresses, identity, MACs) and attaches its tc
    /// programs on <see cref="Endpoint.HostIfIndex"/>; returns once both are in place.
    /// Idempotent: installing an endpoint again rewrites its entries.
    /// </summary>
    void Install(Endpoint endpoint);

    /// <summary>Removes what <see cref="Install"/> put in place; no error when it is gone already.</summary>
    void Remove(Endpoint endpoint);

    /// <summary>Null when the endpoint's entries and programs are in place, else what is missing.</summary>
    string? Check(Endpoint endpoint);
}

/// <summary>Looks endpoints up for flow decoding and the endpoint API.</summary>
public interface IEndpointDirectory
{
    Endpoint? ById(uint id);

    Endpoint? ByAddress(IPAddress address);

    IReadOnlyCollection<Endpoint> All { get; }
}

/// <summary>Another node of the cluster, for native routing: its address and pod CIDRs.</summary>
public sealed record RemoteNode(string Name, IPAddress NodeAddress, IReadOnlyList<IPNetwork> PodCidrs);

/// <summary>What the node manager needs of the BPF datapath for other nodes (ipcache entries).</summary>
public interface INodeDatapath
{
    /// <summary>Marks the node's address and pod CIDRs as remote-node traffic in the datapath's maps.</summary>
    void UpsertRemoteNode(RemoteNode node);

    void RemoveRemoteNode(RemoteNode node);
}
