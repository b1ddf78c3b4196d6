using System.Net;

namespace Palisade.Policies.Services;

/// <summary>The transport of a service port, numbered as IPPROTO_* (what the BPF maps key on).</summary>
public enum L4Protocol : byte
{
    Tcp = 6,
    Udp = 17,
    Sctp = 132,
}

/// <summary>How a frontend address is reached; decides which traffic policy applies to it.</summary>
public enum FrontendKind : byte
{
    /// <summary>spec.clusterIP(s): internalTrafficPolicy applies.</summary>
    ClusterIP = 1,

    /// <summary>A node address with spec.ports[].nodePort: externalTrafficPolicy applies.</summary>
    NodePort = 2,

    /// <summary>spec.externalIPs: externalTrafficPolicy applies.</summary>
    ExternalIP = 3,

    /// <summary>status.loadBalancer.ingress[].ip: externalTrafficPolicy applies.</summary>
    LoadBalancer = 4,
}

/// <summary>How a backend is chosen for a new connection.</summary>
public enum LbAlgorithm : byte
{
    /// <summary>The agent's global setting (--service-lb-algorithm).</summary>
    Default = 0,
    Random = 1,
    Maglev = 2,
}

/// <summary>Which service and port a frontend belongs to, as flows and metrics name it.</summary>
public readonly record struct ServicePortName(string Namespace, string Name, string PortName)
{
    public override string ToString() => PortName.Length == 0 ? $"{Namespace}/{Name}" : $"{Namespace}/{Name}:{PortName}";
}

/// <summary>One backend of a frontend: a pod (or any endpoint) address and its target port.</summary>
/// <param name="NodeName">EndpointSlice endpoints[].nodeName; null when the slice does not say.</param>
/// <param name="Terminating">conditions.terminating: kept for flows that have it, not given new ones.</param>
/// <param name="Weight">Maglev weight; 1 unless an annotation says otherwise.</param>
public sealed record ServiceBackend(IPAddress Address, ushort Port, string? NodeName = null, string? PodName = null, bool Terminating = false, uint Weight = 1)
{
    /// <summary>The name every node spells the same, for Maglev: address:port.</summary>
    public string Key => Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Address}]:{Port}" : $"{Address}:{Port}";
}

/// <summary>
/// One address:port/protocol that the datapath translates, with the backends new connections to
/// it may get (already filtered by traffic policy and readiness) and those that are terminating.
/// Backends has the family of Address (a dual-stack service has one frontend per family).
/// </summary>
public sealed record ServiceFrontend(
    ServicePortName Service,
    IPAddress Address,
    ushort Port,
    L4Protocol Protocol,
    FrontendKind Kind,
    IReadOnlyList<ServiceBackend> Backends,
    IReadOnlyList<ServiceBackend> TerminatingBackends,
    uint AffinityTimeoutSeconds = 0,
    LbAlgorithm Algorithm = LbAlgorithm.Default)
{
    /// <summary>address:port/PROTO, as logs and the status show a frontend.</summary>
    public string Key => (Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Address}]:{Port}" : $"{Address}:{Port}") + "/" + Protocol.ToString().ToUpperInvariant();
}
