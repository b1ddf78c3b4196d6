using System.Net;
using System.Net.Sockets;
using Palisade.Datapath.Netlink;

namespace Palisade.Datapath.Endpoints;

/// <summary>
/// The host's side of pod networking: a device (palisade_host by default) holding each pod
/// CIDR's gateway as a /32 (/128), so pods reach the host at their gateway and the host answers
/// for it; and IPv4/IPv6 forwarding on. Like Cilium's cilium_host it is one end of a veth pair
/// whose other end (palisade_net) stays in the host too: veth exists in every kernel that can
/// run pods, a dummy device only where CONFIG_DUMMY is built. An existing dummy of the name is
/// taken as well. It stays when the agent stops: pods keep their gateway while no agent runs.
/// </summary>
public static class HostDevice
{
    public const string DefaultName = "palisade_host";

    /// <summary>Creates (or finds) the device, sets it up and gives it the gateways; turns forwarding on for the families in use.</summary>
    public static int Ensure(string name, IReadOnlyList<IPAddress> gateways, string procSys = "/proc/sys")
    {
        using var host = Rtnetlink.OpenHost();
        var link = host.Link(name);
        if (link is null)
        {
            host.CreateVeth(name, Mac.Random(), PeerName(name), Mac.Random(), null, 1500);
            var peer = host.Link(PeerName(name)) ?? throw new NetlinkException("RTM_GETLINK", $"{PeerName(name)}: gone right after it was created", Errno.ENODEV);
            host.SetUp(peer.Index, peer.Name);
            link = host.Link(name) ?? throw new NetlinkException("RTM_GETLINK", $"{name}: gone right after it was created", Errno.ENODEV);
        }
        else if (link.Kind is not ("veth" or "dummy"))
        {
            throw new InvalidOperationException($"host device {name} exists and is a {link.Kind ?? "device of unknown kind"}, not the veth (or dummy) the agent makes; the agent will not take it over. Fix: remove it, or choose another name with --datapath-host-device.");
        }
        if (!link.IsUp)
        {
            host.SetUp(link.Index, name);
        }
        foreach (var gateway in gateways)
        {
            host.AddAddress(link.Index, gateway, gateway.AddressFamily == AddressFamily.InterNetwork ? 32 : 128, replace: true, name);
        }
        if (gateways.Any(g => g.AddressFamily == AddressFamily.InterNetwork))
        {
            File.WriteAllText(Path.Combine(procSys, "net/ipv4/ip_forward"), "1");
        }
        if (gateways.Any(g => g.AddressFamily == AddressFamily.InterNetworkV6))
        {
            File.WriteAllText(Path.Combine(procSys, "net/ipv6/conf/all/forwarding"), "1");
        }
        return link.Index;
    }

    /// <summary>The other end of the pair: palisade_host pairs with palisade_net, NAME with NAME_n.</summary>
    public static string PeerName(string name) =>
        name.EndsWith("_host", StringComparison.Ordinal) ? name[..^5] + "_net" : name[..Math.Min(name.Length, 13)] + "_n";

    /// <summary>Removes the device (tests, and a node leaving pod networking); false when it was not there.</summary>
    public static bool Remove(string name)
    {
        using var host = Rtnetlink.OpenHost();
        return host.DeleteLink(name);
    }
}
