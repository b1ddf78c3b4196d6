using System.Net;
using System.Net.Sockets;
using Palisade.Datapath.Netlink;

namespace Palisade.Datapath.Endpoints;

/// <summary>
/// An endpoint's interfaces over rtnetlink, no `ip` and no bridge: a veth pair whose pod end
/// (CNI_IFNAME in CNI_NETNS) has the pod's /32 and /128, an on-link route to the gateway, a
/// default route via it and a permanent neighbor entry for it at the host end's MAC (so the
/// pod never ARPs or solicits for it); whose host end (pal...) has no address, is up with
/// rp_filter off, and is the target of a /32 (/128) route and a permanent neighbor entry per
/// pod address in the host namespace.
/// </summary>
public sealed class VethInterfaces(string procSys = "/proc/sys") : IEndpointInterfaces
{
    public CreatedInterfaces Create(InterfaceSpec spec)
    {
        uint inode;
        using var host = Rtnetlink.OpenHost();
        using var pod = OpenPod(spec.Netns, out inode);
        using var netnsFd = OpenNetns(spec.Netns);
        var hostMac = Mac.Random();
        var podMac = Mac.Random();
        try
        {
            host.CreateVeth(spec.HostIfName, hostMac, spec.Attachment.IfName, podMac, netnsFd.Fd, spec.Mtu);
        }
        catch (NetlinkException e) when (e.Errno == Errno.EEXIST)
        {
            if (host.Link(spec.HostIfName) is null)
            {
                throw new EndpointException(ErrorCodes.InvalidEnvironment, $"interface {spec.Attachment.IfName} exists already in {spec.Netns}",
                    $"CNI_IFNAME {spec.Attachment.IfName} is taken inside the container's namespace: another plugin made it, or the runtime called ADD twice. ({e.Message})");
            }
            // The name is a hash of this attachment, and no endpoint of ours holds it: an earlier
            // run died between creating the pair and recording the endpoint. Ours to replace.
            host.DeleteLink(spec.HostIfName);
            host.CreateVeth(spec.HostIfName, hostMac, spec.Attachment.IfName, podMac, netnsFd.Fd, spec.Mtu);
        }
        try
        {
            var hostLink = host.Link(spec.HostIfName) ?? throw new NetlinkException("RTM_GETLINK", $"{spec.HostIfName}: gone right after it was created", Errno.ENODEV);
            DisableReversePathFilter(spec.HostIfName);
            var podLink = pod.Link(spec.Attachment.IfName) ?? throw new NetlinkException("RTM_GETLINK", $"{spec.Attachment.IfName} in {spec.Netns}: gone right after it was created", Errno.ENODEV);
            pod.SetUp(podLink.Index, spec.Attachment.IfName);
            foreach (var (address, gateway) in Families(spec))
            {
                var bits = Bits(address);
                host.AddRoute(new IPNetwork(address, bits), null, hostLink.Index, onlink: false, replace: true, spec.HostIfName);
                host.SetPermanentNeighbor(hostLink.Index, address, podMac, spec.HostIfName);
                pod.AddAddress(podLink.Index, address, bits, replace: false, spec.Attachment.IfName);
                pod.AddRoute(new IPNetwork(gateway, bits), null, podLink.Index, onlink: false, replace: true, spec.Attachment.IfName);
                pod.AddRoute(new IPNetwork(address.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0),
                    gateway, podLink.Index, onlink: true, replace: true, spec.Attachment.IfName);
                pod.SetPermanentNeighbor(podLink.Index, gateway, hostMac, spec.Attachment.IfName);
            }
            return new CreatedInterfaces(hostLink.Index, hostMac, podMac, inode);
        }
        catch
        {
            // Deleting the host end deletes the pod end and every route and neighbor entry on either.
            host.DeleteLink(spec.HostIfName);
            throw;
        }
    }

    public void Delete(Endpoint endpoint)
    {
        // The pod end, and every route and neighbor entry through either end, go with the link.
        using var host = Rtnetlink.OpenHost();
        host.DeleteLink(endpoint.HostIfName);
    }

    public IReadOnlyList<string> Check(Endpoint endpoint, IPAddress? gatewayV4, IPAddress? gatewayV6)
    {
        var problems = new List<string>();
        using var host = Rtnetlink.OpenHost();
        var hostLink = host.Link(endpoint.HostIfName);
        if (hostLink is null)
        {
            problems.Add($"host interface {endpoint.HostIfName} does not exist");
        }
        else
        {
            if (!hostLink.IsUp)
            {
                problems.Add($"host interface {endpoint.HostIfName} is down");
            }
            foreach (var address in new[] { endpoint.IPv4, endpoint.IPv6 }.OfType<IPAddress>())
            {
                var routes = host.Routes(address.AddressFamily);
                if (!routes.Any(r => r.Destination.PrefixLength == Bits(address) && r.Destination.BaseAddress.Equals(address) && r.OutIndex == hostLink.Index))
                {
                    problems.Add($"host route {address}/{Bits(address)} dev {endpoint.HostIfName} is missing");
                }
                if (!host.Neighbors(address.AddressFamily).Any(n => n.Index == hostLink.Index && n.Address.Equals(address) && n.IsPermanent && n.Mac is { } m && m.AsSpan().SequenceEqual(endpoint.PodMac)))
                {
                    problems.Add($"host neighbor entry {address} lladdr {Mac.Format(endpoint.PodMac)} dev {endpoint.HostIfName} is missing");
                }
            }
        }
        Rtnetlink pod;
        try
        {
            pod = OpenPod(endpoint.Netns, out _);
        }
        catch (EndpointException e)
        {
            problems.Add(e.Message);
            return problems;
        }
        using (pod)
        {
            var podLink = pod.Link(endpoint.IfName);
            if (podLink is null)
            {
                problems.Add($"interface {endpoint.IfName} does not exist in {endpoint.Netns}");
                return problems;
            }
            if (!podLink.IsUp)
            {
                problems.Add($"interface {endpoint.IfName} in {endpoint.Netns} is down");
            }
            var addresses = pod.Addresses();
            foreach (var (address, gateway) in new[] { (endpoint.IPv4, gatewayV4), (endpoint.IPv6, gatewayV6) })
            {
                if (address is null)
                {
                    continue;
                }
                if (!addresses.Any(a => a.Index == podLink.Index && a.Address.Equals(address)))
                {
                    problems.Add($"interface {endpoint.IfName} in {endpoint.Netns} lacks its address {address}/{Bits(address)}");
                }
                if (gateway is not null && !pod.Routes(address.AddressFamily).Any(r => r.Destination.PrefixLength == 0 && Equals(r.Gateway, gateway) && r.OutIndex == podLink.Index))
                {
                    problems.Add($"default route via {gateway} dev {endpoint.IfName} is missing in {endpoint.Netns}");
                }
            }
        }
        return problems;
    }

    public int? HostIfIndex(string hostIfName)
    {
        using var host = Rtnetlink.OpenHost();
        return host.Link(hostIfName)?.Index;
    }

    private static IEnumerable<(IPAddress Address, IPAddress Gateway)> Families(InterfaceSpec spec)
    {
        if (spec.IPv4 is { } v4)
        {
            yield return (v4, spec.GatewayV4 ?? throw new ArgumentException("an IPv4 address needs an IPv4 gateway", nameof(spec)));
        }
        if (spec.IPv6 is { } v6)
        {
            yield return (v6, spec.GatewayV6 ?? throw new ArgumentException("an IPv6 address needs an IPv6 gateway", nameof(spec)));
        }
    }

    private static int Bits(IPAddress address) => address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;

    private void DisableReversePathFilter(string hostIfName)
    {
        // Traffic the BPF programs redirect into the host end does not match the reverse path
        // of the host's routes; with rp_filter on the kernel would drop it.
        File.WriteAllText(Path.Combine(procSys, "net/ipv4/conf", hostIfName, "rp_filter"), "0");
    }

    private static Rtnetlink OpenPod(string netns, out uint inode)
    {
        if (!File.Exists(netns))
        {
            throw new EndpointException(ErrorCodes.InvalidEnvironment, $"network namespace {netns} does not exist", "CNI_NETNS must name the container's network namespace, e.g. /var/run/netns/NAME or /proc/PID/ns/net");
        }
        uint found = 0;
        try
        {
            var socket = Palisade.Bpf.NetworkNamespace.Run(netns, () =>
            {
                // The namespace's inode keys the socket-owner table; read it here, inside it.
                var link = new FileInfo("/proc/thread-self/ns/net").LinkTarget ?? "";
                var open = link.IndexOf('[', StringComparison.Ordinal);
                _ = uint.TryParse(link.AsSpan(open + 1, Math.Max(0, link.Length - open - 2)), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out found);
                return Rtnetlink.OpenHere(netns);
            });
            inode = found;
            return socket;
        }
        catch (Palisade.Bpf.BpfException e)
        {
            throw new EndpointException(ErrorCodes.InvalidEnvironment, $"cannot enter network namespace {netns}", e.Message);
        }
    }

    private static SafeDescriptor OpenNetns(string netns)
    {
        var fd = Interop.Libc.Open(netns, Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC);
        if (fd < 0)
        {
            throw new EndpointException(ErrorCodes.InvalidEnvironment, $"cannot open network namespace {netns}", Errno.Name(System.Runtime.InteropServices.Marshal.GetLastPInvokeError()));
        }
        return new SafeDescriptor(fd);
    }
}
