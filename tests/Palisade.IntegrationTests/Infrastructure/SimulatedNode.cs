using System.Globalization;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// A network namespace standing for another node of the cluster, for native-routing tests: a
/// veth between the root namespace ("our node") and it, with a node address on each end (IPv4
/// and IPv6), its own pod CIDRs with one "remote pod" address of each family on its loopback,
/// and, once <see cref="RouteBackTo"/> names our pod CIDRs, routes back to them via our node
/// address. The remote pod CIDRs sit inside ranges blackholed in the root namespace (a covering
/// prefix, so the agent's more specific route via the node wins while it exists and nothing
/// leaves the machine when it does not). Dispose removes the namespace, the veth (and with it
/// every route through it) and the blackholes.
/// </summary>
internal sealed class SimulatedNode : IDisposable
{
    // 10.219.0.0/16 (fd00:219::/32) for node links, 10.220.0.0/16 (fd00:220::/32) for remote
    // pod CIDRs: used by no other test, blackholed while any test holds them.
    private const string LinkRangeV4 = "10.219.0.0/16", LinkRangeV6 = "fd00:219::/32";
    private const string PodRangeV4 = "10.220.0.0/16", PodRangeV6 = "fd00:220::/32";

    private readonly List<(string Marker, string Cidr)> _blackholes = [];
    private bool _namespaceMade;

    public SimulatedNode()
    {
        Kernel.RequireRoot();
        var n = Random.Shared.Next(1, 250);
        string id;
        do
        {
            id = Random.Shared.Next(0x10000, 0xfffff).ToString("x5", CultureInfo.InvariantCulture);
        }
        while (File.Exists(TestNetwork.NetnsPath("pal-node2-" + id)));
        Namespace = "pal-node2-" + id;
        HostInterface = "plnode" + id;
        NodeInterface = "eth0";
        OurAddress = string.Create(CultureInfo.InvariantCulture, $"10.219.{n}.1");
        NodeAddress = string.Create(CultureInfo.InvariantCulture, $"10.219.{n}.2");
        OurAddressV6 = string.Create(CultureInfo.InvariantCulture, $"fd00:219:{n:x}::1");
        NodeAddressV6 = string.Create(CultureInfo.InvariantCulture, $"fd00:219:{n:x}::2");
        PodCidr = string.Create(CultureInfo.InvariantCulture, $"10.220.{n}.0/24");
        PodCidrV6 = string.Create(CultureInfo.InvariantCulture, $"fd00:220:{n:x}::/64");
        RemotePod = string.Create(CultureInfo.InvariantCulture, $"10.220.{n}.5");
        RemotePodV6 = string.Create(CultureInfo.InvariantCulture, $"fd00:220:{n:x}::5");
        try
        {
            foreach (var range in new[] { LinkRangeV4, LinkRangeV6, PodRangeV4, PodRangeV6 })
            {
                _blackholes.Add((BlackholeRoute.Acquire(range), range));
            }
            Command.Check("ip", "netns", "add", Namespace);
            _namespaceMade = true;
            Command.Check("ip", "-n", Namespace, "link", "set", "lo", "up");
            Command.Check("ip", "link", "add", HostInterface, "type", "veth", "peer", "name", NodeInterface, "netns", Namespace);
            // nodad: the addresses are usable at once, no duplicate detection to wait out.
            Command.Check("ip", "addr", "add", OurAddress + "/30", "dev", HostInterface);
            Command.Check("ip", "-6", "addr", "add", OurAddressV6 + "/64", "dev", HostInterface, "nodad");
            Command.Check("ip", "-n", Namespace, "addr", "add", NodeAddress + "/30", "dev", NodeInterface);
            Command.Check("ip", "-n", Namespace, "-6", "addr", "add", NodeAddressV6 + "/64", "dev", NodeInterface, "nodad");
            Command.Check("ip", "-n", Namespace, "addr", "add", RemotePod + "/32", "dev", "lo");
            Command.Check("ip", "-n", Namespace, "-6", "addr", "add", RemotePodV6 + "/128", "dev", "lo", "nodad");
            Command.Check("ip", "link", "set", HostInterface, "up");
            Command.Check("ip", "-n", Namespace, "link", "set", NodeInterface, "up");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The namespace standing for the other node.</summary>
    public string Namespace { get; }

    /// <summary>Our end of the link, in the root namespace.</summary>
    public string HostInterface { get; }

    public string NodeInterface { get; }

    /// <summary>Our node's address on the link (the other node routes our pod CIDR via it).</summary>
    public string OurAddress { get; }

    public string OurAddressV6 { get; }

    /// <summary>The other node's address: where our routes for its pod CIDRs point.</summary>
    public string NodeAddress { get; }

    public string NodeAddressV6 { get; }

    public string PodCidr { get; }

    public string PodCidrV6 { get; }

    /// <summary>A pod address of the other node (on its loopback: the node answers for its pod).</summary>
    public string RemotePod { get; }

    public string RemotePodV6 { get; }

    /// <summary>The agent's --remote-nodes value for this node: one entry per family, as the setting requires.</summary>
    public string RemoteNodesSetting(string name) => $"{name}@{NodeAddress}={PodCidr};{name}-v6@{NodeAddressV6}={PodCidrV6}";

    /// <summary>
    /// Routes our pod CIDRs via our node address inside the other node, as its agent would, with
    /// the remote pod's address as the source: what the other node sends our pods comes from its pod.
    /// </summary>
    public void RouteBackTo(string podCidr, string podCidrV6)
    {
        Command.Check("ip", "-n", Namespace, "route", "add", podCidr, "via", OurAddress, "src", RemotePod);
        Command.Check("ip", "-n", Namespace, "-6", "route", "add", podCidrV6, "via", OurAddressV6, "src", RemotePodV6);
    }

    /// <summary>Runs a command inside the other node.</summary>
    public CommandResult Exec(params string[] command) => Command.Run("ip", ["netns", "exec", Namespace, .. command]);

    public void Dispose()
    {
        // Deleting one end deletes the pair, and the kernel drops every route through it
        // (the agent's routes for the remote pod CIDRs included).
        Command.Run("ip", "link", "del", HostInterface);
        if (_namespaceMade)
        {
            Command.Run("ip", "netns", "delete", Namespace);
            _namespaceMade = false;
        }
        foreach (var (marker, cidr) in _blackholes)
        {
            BlackholeRoute.Release(marker, cidr);
        }
        _blackholes.Clear();
    }
}
