using System.Globalization;
using System.Net;
using Palisade.Datapath;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>
/// Pods as the endpoint setup will make them, built with `ip` for the datapath tests: per pod
/// a namespace and a veth pair (pod side eth0 with a /32 and /128, default routes via the
/// gateway with a permanent neighbour entry for it at the host veth's MAC; host side
/// with no address), in the root namespace a /32 and /128 route per pod on its host veth
/// with a permanent neighbour entry, and the gateway addresses on a host device (palisade_host's stand-in). Names
/// are unique per instance; blackhole routes for the test pod CIDRs keep every packet on
/// the machine; everything is removed on dispose, also after a failure.
/// </summary>
internal sealed class TestPods : IDisposable
{
    public const string PodCidr4 = "10.213.0.0/16";
    public const string PodCidr6 = "fd00:213::/64";

    private readonly List<string> _namespaces = [];
    private string? _blackhole4;
    private string? _blackhole6;
    private bool _hostDevice;

    public TestPods(int count)
    {
        try
        {
            _blackhole4 = BlackholeRoute.Acquire(PodCidr4);
            _blackhole6 = BlackholeRoute.Acquire(PodCidr6);
            string id;
            do
            {
                id = Random.Shared.Next(0x1000, 0xffff).ToString("x4", CultureInfo.InvariantCulture);
            }
            while (File.Exists(TestNetwork.NetnsPath($"pal-{id}-p0")) || Directory.Exists($"/sys/class/net/palh{id}"));
            Id = id;
            Subnet = Random.Shared.Next(1, 250);
            HostDevice = $"palh{id}";
            Gateway4 = IPAddress.Parse($"10.213.{Subnet}.1");
            Gateway6 = IPAddress.Parse($"fd00:213::{Subnet:x}:1");
            // This kernel has no dummy driver (CONFIG_DUMMY is off); a veth pair with both ends
            // up carries the gateway addresses as well, and nothing is sent on it.
            Command.Check("ip", "link", "add", HostDevice, "type", "veth", "peer", "name", HostDevice + "x");
            _hostDevice = true;
            Command.Check("ip", "link", "set", HostDevice + "x", "up");
            Command.Check("ip", "addr", "add", Gateway4 + "/32", "dev", HostDevice);
            Command.Check("ip", "addr", "add", Gateway6 + "/128", "dev", HostDevice, "nodad");
            Command.Check("ip", "link", "set", HostDevice, "up");
            for (var i = 0; i < count; i++)
            {
                Pods.Add(CreatePod(i));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Id { get; } = "";
    public int Subnet { get; }
    public string HostDevice { get; } = "";
    public IPAddress Gateway4 { get; } = IPAddress.None;
    public IPAddress Gateway6 { get; } = IPAddress.IPv6None;
    public List<Endpoint> Pods { get; } = [];

    /// <summary>The pod's namespace name (for `ip netns exec`).</summary>
    public static string Namespace(Endpoint pod) => Path.GetFileName(pod.Netns);

    private Endpoint CreatePod(int i)
    {
        var ns = $"pal-{Id}-p{i}";
        var host = $"pal{Id}p{i}";
        var hostMac = $"02:aa:{Id[..2]}:{Id[2..]}:{Subnet:x2}:{2 * i:x2}";
        var podMac = $"02:bb:{Id[..2]}:{Id[2..]}:{Subnet:x2}:{2 * i + 1:x2}";
        var v4 = IPAddress.Parse($"10.213.{Subnet}.{10 + i}");
        var v6 = IPAddress.Parse($"fd00:213::{Subnet:x}:{10 + i:x}");
        Command.Check("ip", "netns", "add", ns);
        _namespaces.Add(ns);
        Command.Check("ip", "-n", ns, "link", "set", "lo", "up");
        Command.Check("ip", "link", "add", host, "address", hostMac, "type", "veth", "peer", "name", "eth0", "address", podMac, "netns", ns);
        Command.Check("ip", "-n", ns, "addr", "add", v4 + "/32", "dev", "eth0");
        Command.Check("ip", "-n", ns, "addr", "add", v6 + "/128", "dev", "eth0", "nodad");
        Command.Check("ip", "-n", ns, "link", "set", "eth0", "up");
        Command.Check("ip", "link", "set", host, "up");
        Command.Check("ip", "-n", ns, "route", "add", Gateway4.ToString(), "dev", "eth0", "scope", "link");
        Command.Check("ip", "-n", ns, "route", "add", "default", "via", Gateway4.ToString(), "dev", "eth0");
        Command.Check("ip", "-n", ns, "-6", "route", "add", Gateway6.ToString(), "dev", "eth0");
        Command.Check("ip", "-n", ns, "-6", "route", "add", "default", "via", Gateway6.ToString(), "dev", "eth0");
        Command.Check("ip", "-n", ns, "neigh", "add", Gateway4.ToString(), "lladdr", hostMac, "dev", "eth0", "nud", "permanent");
        Command.Check("ip", "-n", ns, "-6", "neigh", "add", Gateway6.ToString(), "lladdr", hostMac, "dev", "eth0", "nud", "permanent");
        Command.Check("ip", "route", "add", v4 + "/32", "dev", host);
        Command.Check("ip", "-6", "route", "add", v6 + "/128", "dev", host);
        Command.Check("ip", "neigh", "add", v4.ToString(), "lladdr", podMac, "dev", host, "nud", "permanent");
        Command.Check("ip", "-6", "neigh", "add", v6.ToString(), "lladdr", podMac, "dev", host, "nud", "permanent");
        var netns = TestNetwork.NetnsPath(ns);
        return new Endpoint
        {
            Id = (uint)(100 + i),
            ContainerId = $"test-{Id}-{i}",
            IfName = "eth0",
            Netns = netns,
            NetnsInode = uint.Parse(Command.Check("stat", "-L", "-c", "%i", netns).Trim(), CultureInfo.InvariantCulture),
            PodNamespace = "default",
            PodName = $"pod-{i}",
            HostIfName = host,
            HostIfIndex = int.Parse(File.ReadAllText($"/sys/class/net/{host}/ifindex").Trim(), CultureInfo.InvariantCulture),
            HostMac = Convert.FromHexString(hostMac.Replace(":", "", StringComparison.Ordinal)),
            PodMac = Convert.FromHexString(podMac.Replace(":", "", StringComparison.Ordinal)),
            IPv4 = v4,
            IPv6 = v6,
            Identity = (uint)(20000 + i),
            Created = DateTimeOffset.UtcNow,
        };
    }

    /// <summary>Pings <paramref name="target"/> from <paramref name="pod"/> (null: from the host).</summary>
    public static CommandResult Ping(Endpoint? pod, IPAddress target, int count = 3, string interval = "0.2", IPAddress? source = null)
    {
        var args = new List<string>();
        if (pod is not null)
        {
            args.AddRange(["netns", "exec", Namespace(pod)]);
        }
        args.AddRange(["ping", target.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "-6" : "-4",
            "-c", count.ToString(CultureInfo.InvariantCulture), "-i", interval, "-W", "2"]);
        if (source is not null)
        {
            args.AddRange(["-I", source.ToString()]);
        }
        args.Add(target.ToString());
        return pod is null ? Command.Run(TimeSpan.FromSeconds(120), args[0], [.. args.Skip(1)]) : Command.Run(TimeSpan.FromSeconds(120), "ip", [.. args]);
    }

    public void Dispose()
    {
        // Deleting a namespace deletes its eth0 and with it the host veth, its routes and neighbours.
        foreach (var ns in _namespaces)
        {
            Command.Run("ip", "netns", "delete", ns);
        }
        _namespaces.Clear();
        if (_hostDevice)
        {
            Command.Run("ip", "link", "delete", HostDevice);
            _hostDevice = false;
        }
        if (_blackhole6 is { } m6)
        {
            BlackholeRoute.Release(m6, PodCidr6);
            _blackhole6 = null;
        }
        if (_blackhole4 is { } m4)
        {
            BlackholeRoute.Release(m4, PodCidr4);
            _blackhole4 = null;
        }
    }
}
