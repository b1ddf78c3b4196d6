using System.Collections.Concurrent;
using System.Net;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;
using Palisade.Datapath.Identity;
using Palisade.Datapath.Ipam;

namespace Palisade.Tests.Datapath;

/// <summary>Interfaces that exist only in memory: what the endpoint logic does, without a kernel.</summary>
internal sealed class FakeInterfaces : IEndpointInterfaces
{
    private int _nextIndex = 100;

    public ConcurrentDictionary<string, InterfaceSpec> Links { get; } = new(StringComparer.Ordinal);

    public List<string> Problems { get; } = [];

    public Exception? FailCreate { get; set; }

    public CreatedInterfaces Create(InterfaceSpec spec)
    {
        if (FailCreate is { } e)
        {
            throw e;
        }
        Links[spec.HostIfName] = spec;
        return new CreatedInterfaces(Interlocked.Increment(ref _nextIndex), [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 4026530000);
    }

    public void Delete(Endpoint endpoint) => Links.TryRemove(endpoint.HostIfName, out _);

    public IReadOnlyList<string> Check(Endpoint endpoint, IPAddress? gatewayV4, IPAddress? gatewayV6) =>
        Links.ContainsKey(endpoint.HostIfName) ? Problems : [$"host interface {endpoint.HostIfName} does not exist"];

    public int? HostIfIndex(string hostIfName) => Links.ContainsKey(hostIfName) ? 200 : null;
}

/// <summary>A datapath that records what it was given.</summary>
internal sealed class FakeDatapath : IEndpointDatapath
{
    public ConcurrentDictionary<uint, Endpoint> Installed { get; } = new();

    public List<uint> Removed { get; } = [];

    public Exception? FailInstall { get; set; }

    public string? Missing { get; set; }

    public void Install(Endpoint endpoint)
    {
        if (FailInstall is { } e)
        {
            throw e;
        }
        Installed[endpoint.Id] = endpoint;
    }

    public void Remove(Endpoint endpoint)
    {
        lock (Removed)
        {
            Removed.Add(endpoint.Id);
        }
        Installed.TryRemove(endpoint.Id, out _);
    }

    public string? Check(Endpoint endpoint) => Missing;
}

/// <summary>A node's endpoints over fakes, with its state in a temporary directory that outlives one "agent run".</summary>
internal sealed class EndpointNode
{
    public EndpointNode(TempDirectory dir, FakeInterfaces? interfaces = null, FakeDatapath? datapath = null, IIdentityBackend? identities = null, params string[] cidrs)
    {
        Interfaces = interfaces ?? new FakeInterfaces();
        Datapath = datapath ?? new FakeDatapath();
        Ipam = NodeIpam.Open([.. (cidrs.Length == 0 ? ["10.214.0.0/24", "fd00:214::/64"] : cidrs).Select(IPNetwork.Parse)], dir.Sub("ipam"));
        Endpoints = new NodeEndpoints(new NodeEndpointsOptions
        {
            Ipam = Ipam,
            Identities = identities ?? IdentityAllocator.Open(dir.Sub("endpoints/identities.json")),
            Registry = new EndpointRegistry(dir.Sub("endpoints/registry")),
            Interfaces = Interfaces,
            Datapath = Datapath,
            DelQueueDirectory = dir.Sub("del-queue"),
        });
        Api = new EndpointApi(Endpoints);
    }

    public FakeInterfaces Interfaces { get; }
    public FakeDatapath Datapath { get; }
    public NodeIpam Ipam { get; }
    public NodeEndpoints Endpoints { get; }
    public EndpointApi Api { get; }
}
