using System.Net;
using System.Net.Sockets;

namespace Palisade.Policies.Services;

/// <summary>What the compiler needs to know about the node it compiles for.</summary>
public sealed record ServiceCompileOptions
{
    /// <summary>This node's name, as EndpointSlices' nodeName spell it; Local traffic policies keep only its backends. Null: no backend is local.</summary>
    public string? NodeName { get; init; }

    /// <summary>The addresses NodePort frontends listen on (each NodePort Service port gets one frontend per address of the Service's families).</summary>
    public IReadOnlyList<IPAddress> NodeAddresses { get; init; } = [];

    /// <summary>The algorithm of Services without the service.cilium.io/lb-algorithm annotation.</summary>
    public LbAlgorithm DefaultAlgorithm { get; init; } = LbAlgorithm.Random;
}

/// <summary>The frontends to program, sorted by <see cref="ServiceFrontend.Key"/>, and what the compiler could not honour.</summary>
public sealed record ServiceCompilation(IReadOnlyList<ServiceFrontend> Frontends, IReadOnlyList<string> Problems);

/// <summary>
/// Turns Services and EndpointSlices into the frontends the BPF load balancer programs, with the
/// semantics of kube-proxy: one frontend per Service port and address (cluster IPs, node addresses
/// for node ports, external IPs, load balancer IPs), backends from the slices' ports of the same
/// name, readiness and terminating fallback, and the traffic policies. Pure and deterministic:
/// the same input in any order gives the same frontends; no input makes it throw.
/// </summary>
public static class ServiceCompiler
{
    public static ServiceCompilation Compile(IEnumerable<ServiceManifest> services, IEnumerable<EndpointSliceManifest> slices, ServiceCompileOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(slices);
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>();

        // The slices of each Service, in name order so that duplicates resolve the same way every time.
        var slicesOf = slices
            .Where(s => s is not null)
            .GroupBy(s => (s.Namespace, s.ServiceName))
            .ToDictionary(g => g.Key, g => g.OrderBy(s => s.Name, StringComparer.Ordinal).ToList());

        var claimed = new Dictionary<string, (ServiceFrontend Frontend, ServiceManifest Owner)>(StringComparer.Ordinal);
        var seen = new HashSet<(string, string)>();
        var missingNodeName = false;
        foreach (var service in services.Where(s => s is not null).OrderBy(s => s.Namespace, StringComparer.Ordinal).ThenBy(s => s.Name, StringComparer.Ordinal))
        {
            if (!seen.Add((service.Namespace, service.Name)))
            {
                problems.Add($"Service {service.Namespace}/{service.Name} is given more than once; the first is used.");
                continue;
            }
            if (service.Type == ServiceType.ExternalName || service.Headless)
            {
                continue;
            }
            var serviceSlices = slicesOf.TryGetValue((service.Namespace, service.Name), out var list) ? list : [];
            var families = Families(service);
            var own = new HashSet<string>(StringComparer.Ordinal);
            foreach (var port in service.Ports)
            {
                var backendsByFamily = new Dictionary<AddressFamily, List<Candidate>>();
                foreach (var (address, number, kind) in FrontendAddresses(service, port, families, options))
                {
                    var local = kind == FrontendKind.ClusterIP
                        ? service.InternalTrafficPolicy == TrafficPolicy.Local
                        : service.ExternalTrafficPolicy == TrafficPolicy.Local;
                    if (local && options.NodeName is null && !missingNodeName)
                    {
                        missingNodeName = true;
                        problems.Add($"Service {service.Namespace}/{service.Name} has a Local traffic policy, but the node's name is not known: its Local frontends (and those of every other Local Service) get no backends.");
                    }
                    if (!backendsByFamily.TryGetValue(address.AddressFamily, out var candidates))
                    {
                        candidates = Candidates(serviceSlices, port, address.AddressFamily);
                        backendsByFamily[address.AddressFamily] = candidates;
                    }
                    var (active, terminating) = Select(candidates, local, options.NodeName, service.PublishNotReadyAddresses);
                    var frontend = new ServiceFrontend(
                        new ServicePortName(service.Namespace, service.Name, port.Name),
                        address,
                        number,
                        port.Protocol,
                        kind,
                        active,
                        terminating,
                        service.SessionAffinity == SessionAffinity.ClientIP ? service.AffinityTimeoutSeconds : 0,
                        service.Algorithm == LbAlgorithm.Default ? options.DefaultAlgorithm : service.Algorithm);
                    if (!own.Add(frontend.Key))
                    {
                        continue; // the same address:port twice in one Service (an external IP that is also its cluster IP): the first kind keeps it
                    }
                    if (claimed.TryGetValue(frontend.Key, out var first))
                    {
                        problems.Add($"{frontend.Key} is claimed by {Name(first.Owner)} ({Describe(first.Frontend)}) and by {Name(service)} ({Describe(frontend)}): " +
                            $"{Name(first.Owner)} keeps it (the first by namespace and name), {Name(service)} gets no frontend there. Fix: give one of them another address or port.");
                        continue;
                    }
                    claimed[frontend.Key] = (frontend, service);
                }
            }
        }
        var frontends = claimed.Values.Select(c => c.Frontend).OrderBy(f => f.Key, StringComparer.Ordinal).ToList();
        return new ServiceCompilation(frontends, problems);
    }

    private static string Name(ServiceManifest s) => $"{s.Namespace}/{s.Name}";

    private static string Describe(ServiceFrontend f) => $"{(f.Service.PortName.Length == 0 ? "its port" : $"port {f.Service.PortName}")}, {f.Kind}";

    // The families the Service is served in: ipFamilies, else those of its cluster IPs, else any (a file without either).
    private static HashSet<AddressFamily>? Families(ServiceManifest service)
    {
        if (service.IpFamilies.Count > 0)
        {
            return [.. service.IpFamilies];
        }
        if (service.ClusterIPs.Count > 0)
        {
            return [.. service.ClusterIPs.Select(a => a.AddressFamily)];
        }
        return null;
    }

    private static IEnumerable<(IPAddress Address, ushort Port, FrontendKind Kind)> FrontendAddresses(ServiceManifest service, ServiceManifestPort port, HashSet<AddressFamily>? families, ServiceCompileOptions options)
    {
        foreach (var ip in service.ClusterIPs)
        {
            yield return (ip, port.Port, FrontendKind.ClusterIP);
        }
        if (service.Type is ServiceType.NodePort or ServiceType.LoadBalancer && port.NodePort != 0)
        {
            foreach (var ip in (options.NodeAddresses ?? []).Where(a => a is not null).Distinct())
            {
                if (families is null || families.Contains(ip.AddressFamily))
                {
                    yield return (ip, port.NodePort, FrontendKind.NodePort);
                }
            }
        }
        foreach (var ip in service.ExternalIPs)
        {
            yield return (ip, port.Port, FrontendKind.ExternalIP);
        }
        if (service.Type == ServiceType.LoadBalancer)
        {
            foreach (var ip in service.LoadBalancerIPs)
            {
                yield return (ip, port.Port, FrontendKind.LoadBalancer);
            }
        }
    }

    private sealed record Candidate(ServiceBackend Backend, SliceEndpoint Endpoint);

    // Every endpoint of the Service's slices of this family, at the slice port of the same name and protocol; address:port once.
    private static List<Candidate> Candidates(List<EndpointSliceManifest> slices, ServiceManifestPort port, AddressFamily family)
    {
        var byKey = new Dictionary<string, Candidate>(StringComparer.Ordinal);
        foreach (var slice in slices)
        {
            if (slice.AddressType != family)
            {
                continue;
            }
            foreach (var slicePort in slice.Ports)
            {
                if (slicePort.Name != port.Name || slicePort.Protocol != port.Protocol || slicePort.Port is not ushort number || number == 0)
                {
                    continue;
                }
                foreach (var endpoint in slice.Endpoints)
                {
                    // Addresses are fungible: the first is the endpoint's, as kube-proxy reads it.
                    if (endpoint.Addresses.Count == 0 || endpoint.Addresses[0] is not { } address || address.AddressFamily != family)
                    {
                        continue;
                    }
                    var backend = new ServiceBackend(address, number, endpoint.NodeName, endpoint.PodName, endpoint.Terminating);
                    var candidate = new Candidate(backend, endpoint);
                    if (!byKey.TryGetValue(backend.Key, out var known) || Rank(endpoint) > Rank(known.Endpoint))
                    {
                        byKey[backend.Key] = candidate; // the same address:port in two slices: the readier one counts
                    }
                }
            }
        }
        return [.. byKey.Values.OrderBy(c => c.Backend.Address, AddressComparer.Instance).ThenBy(c => c.Backend.Port)];
    }

    private static int Rank(SliceEndpoint e) => (e.Ready ? 4 : 0) + (e.Serving ? 2 : 0) + (e.Terminating ? 0 : 1);

    // kube-proxy's CategorizeEndpoints: ready endpoints (all, with publishNotReadyAddresses) get new
    // connections; when none is, the serving terminating ones do. The other terminating ones are
    // kept for the connections they have. Local policies first keep only this node's endpoints.
    private static (IReadOnlyList<ServiceBackend> Active, IReadOnlyList<ServiceBackend> Terminating) Select(List<Candidate> candidates, bool local, string? nodeName, bool publishNotReady)
    {
        IEnumerable<Candidate> pool = candidates;
        if (local)
        {
            pool = nodeName is null ? [] : candidates.Where(c => string.Equals(c.Endpoint.NodeName, nodeName, StringComparison.Ordinal));
        }
        var eligible = pool.ToList();
        var active = eligible.Where(c => publishNotReady || c.Endpoint.Ready).ToList();
        if (active.Count == 0)
        {
            active = [.. eligible.Where(c => c.Endpoint.Serving && c.Endpoint.Terminating)];
        }
        var terminating = eligible.Where(c => c.Endpoint.Terminating && !active.Contains(c)).Select(c => c.Backend).ToList();
        return ([.. active.Select(c => c.Backend)], terminating);
    }

    private sealed class AddressComparer : IComparer<IPAddress>
    {
        public static readonly AddressComparer Instance = new();

        public int Compare(IPAddress? x, IPAddress? y)
        {
            if (ReferenceEquals(x, y))
            {
                return 0;
            }
            if (x is null || y is null)
            {
                return x is null ? -1 : 1;
            }
            Span<byte> a = stackalloc byte[16];
            Span<byte> b = stackalloc byte[16];
            x.TryWriteBytes(a, out var na);
            y.TryWriteBytes(b, out var nb);
            var c = na.CompareTo(nb);
            return c != 0 ? c : a[..na].SequenceCompareTo(b[..nb]);
        }
    }
}
