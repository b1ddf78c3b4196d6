using System.Net;
using System.Net.Sockets;
using Palisade.Datapath.Netlink;

namespace Palisade.Datapath.Endpoints;

/// <summary>
/// The host's side of pod networking: a dummy device (palisade_host by default) holding each
/// pod CIDR's gateway as a /32 (/128), so pods reach the host at their gateway and the host
/// answers for it; and IPv4/IPv6 forwarding on. It stays when the agent stops: pods keep
/// their gateway while no agent runs.
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
            host.CreateDummy(name);
            link = host.Link(name) ?? throw new NetlinkException("RTM_GETLINK", $"{name}: gone right after it was created", Errno.ENODEV);
        }
        else if (link.Kind != "dummy")
        {
            throw new InvalidOperationException($"host device {name} exists and is a {link.Kind ?? "device of unknown kind"}, not a dummy; the agent will not take it over. Fix: remove it, or choose another name with --datapath-host-device.");
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

    /// <summary>Removes the device (tests, and a node leaving pod networking); false when it was not there.</summary>
    public static bool Remove(string name)
    {
        using var host = Rtnetlink.OpenHost();
        return host.DeleteLink(name);
    }
}
