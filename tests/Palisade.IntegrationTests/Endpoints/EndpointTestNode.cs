using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;
using Palisade.Datapath.Identity;
using Palisade.Datapath.Ipam;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Endpoints;

/// <summary>A datapath that records installs and removals (the BPF one is tested on its own).</summary>
internal sealed class RecordingDatapath : IEndpointDatapath
{
    public ConcurrentDictionary<uint, Endpoint> Installed { get; } = new();

    public ConcurrentQueue<string> Calls { get; } = new();

    public void Install(Endpoint endpoint)
    {
        Installed[endpoint.Id] = endpoint;
        Calls.Enqueue($"install {endpoint.Id}");
    }

    public void Remove(Endpoint endpoint)
    {
        Installed.TryRemove(endpoint.Id, out _);
        Calls.Enqueue($"remove {endpoint.Id}");
    }

    public string? Check(Endpoint endpoint) => Installed.ContainsKey(endpoint.Id) ? null : $"endpoint {endpoint.Id} is not installed";
}

/// <summary>
/// One test's node: pod CIDRs of its own inside the blackholed range, a host device of its own
/// for the gateways, state directories under /tmp, namespaces named for the test; real
/// netlink, a recording datapath. Dispose deletes every endpoint, namespace, device and file.
/// </summary>
internal sealed class EndpointTestNode : IDisposable
{
    private readonly PodCidrBlackhole.Hold _blackhole;
    private readonly List<string> _namespaces = [];

    public EndpointTestNode()
    {
        Kernel.RequireRoot();
        _blackhole = PodCidrBlackhole.Acquire();
        try
        {
            Id = Random.Shared.Next(0x1000, 0xffff).ToString("x4", CultureInfo.InvariantCulture);
            var subnet = Random.Shared.Next(1, 240);
            V4Cidr = IPNetwork.Parse($"10.214.{subnet}.0/24");
            V6Cidr = IPNetwork.Parse($"fd00:214:0:{subnet:x}::/64");
            HostDeviceName = $"palh{Id}";
            StateDirectory = Path.Combine(Path.GetTempPath(), $"palisade-ep-{Id}-{Guid.NewGuid():N}"[..32]);
            Directory.CreateDirectory(StateDirectory);
            Ipam = NodeIpam.Open([V4Cidr, V6Cidr], Path.Combine(StateDirectory, "ipam"));
            HostDevice.Ensure(HostDeviceName, [Ipam.IPv4!.Gateway, Ipam.IPv6!.Gateway]);
            Endpoints = Start(Datapath);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Id { get; } = "";
    public IPNetwork V4Cidr { get; }
    public IPNetwork V6Cidr { get; }
    public string HostDeviceName { get; } = "";
    public string StateDirectory { get; } = "";
    public NodeIpam Ipam { get; private set; } = null!;
    public RecordingDatapath Datapath { get; private set; } = new();
    public NodeEndpoints Endpoints { get; private set; } = null!;

    public string DelQueueDirectory => Path.Combine(StateDirectory, "del-queue");

    /// <summary>A new agent run over the same state: fresh IPAM, identities, registry and datapath, then Restore.</summary>
    public RestoreReport Restart()
    {
        Ipam = NodeIpam.Open([V4Cidr, V6Cidr], Path.Combine(StateDirectory, "ipam"));
        Datapath = new RecordingDatapath();
        Endpoints = Start(Datapath);
        return Endpoints.Restore();
    }

    private NodeEndpoints Start(IEndpointDatapath datapath) => new(new NodeEndpointsOptions
    {
        Ipam = Ipam,
        Identities = IdentityAllocator.Open(Path.Combine(StateDirectory, "endpoints", "identities.json")),
        Registry = new EndpointRegistry(Path.Combine(StateDirectory, "endpoints", "registry")),
        Interfaces = new VethInterfaces(),
        Datapath = datapath,
        DelQueueDirectory = DelQueueDirectory,
    });

    /// <summary>Creates a network namespace for a pod; returns its path.</summary>
    public string Namespace(int n)
    {
        var name = $"pal-ep-{Id}-{n}";
        Command.Check("ip", "netns", "add", name);
        _namespaces.Add(name);
        return $"/var/run/netns/{name}";
    }

    public static string NamespaceName(string path) => Path.GetFileName(path);

    public NodeEndpoints.AddSpec Spec(int n, string netns, string ifname = "eth0") =>
        new(new AttachmentId($"ctr-{Id}-{n}", ifname), netns, "shop", $"web-{n}", new Dictionary<string, string> { ["app"] = "web" });

    public void Dispose()
    {
        foreach (var endpoint in Endpoints?.All ?? [])
        {
            try
            {
                Endpoints!.Delete(new AttachmentId(endpoint.ContainerId, endpoint.IfName));
            }
#pragma warning disable CA1031 // cleanup goes on whatever one endpoint does
            catch (Exception)
#pragma warning restore CA1031
            {
                Command.Run("ip", "link", "del", endpoint.HostIfName);
            }
        }
        foreach (var ns in _namespaces)
        {
            Command.Run("ip", "netns", "delete", ns);
        }
        _namespaces.Clear();
        if (HostDeviceName.Length > 0)
        {
            Command.Run("ip", "link", "del", HostDeviceName);
        }
        if (StateDirectory.Length > 0 && Directory.Exists(StateDirectory))
        {
            Directory.Delete(StateDirectory, recursive: true);
        }
        PodCidrBlackhole.Release(_blackhole);
    }
}
