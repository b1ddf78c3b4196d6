using System.Net;

namespace Palisade.Datapath.Endpoints;

/// <summary>What an endpoint's interfaces are made from: its names, addresses, gateways and MTU.</summary>
public sealed record InterfaceSpec(
    AttachmentId Attachment,
    string Netns,
    string HostIfName,
    IPAddress? IPv4,
    IPAddress? IPv6,
    IPAddress? GatewayV4,
    IPAddress? GatewayV6,
    int Mtu);

/// <summary>What creating the interfaces produced: the host end's index and both MACs, and the namespace's inode.</summary>
public sealed record CreatedInterfaces(int HostIfIndex, byte[] HostMac, byte[] PodMac, uint NetnsInode);

/// <summary>
/// The kernel side of an endpoint outside BPF: the veth pair, addresses, routes and
/// neighbor entries in both namespaces. <see cref="VethInterfaces"/> does it over netlink;
/// tests that need no kernel fake it.
/// </summary>
public interface IEndpointInterfaces
{
    /// <summary>Creates everything, or nothing: on failure what was made is removed before the exception.</summary>
    CreatedInterfaces Create(InterfaceSpec spec);

    /// <summary>Removes the host end (the pod end, the routes and neighbor entries go with it); no error when it is gone.</summary>
    void Delete(Endpoint endpoint);

    /// <summary>What is wrong with the endpoint's interfaces, one line per problem; empty when all is in place.</summary>
    IReadOnlyList<string> Check(Endpoint endpoint, IPAddress? gatewayV4, IPAddress? gatewayV6);

    /// <summary>The index of the host end when it exists (restart adoption), else null.</summary>
    int? HostIfIndex(string hostIfName);
}

/// <summary>The host-side interface name of an attachment.</summary>
public static class EndpointNames
{
    /// <summary>Prefix of host veth names; what follows is a hash of the attachment.</summary>
    public const string HostPrefix = "pal";

    /// <summary>Longest interface name Linux takes (IFNAMSIZ - 1).</summary>
    public const int MaxInterfaceName = 15;

    /// <summary>"pal" and 11 hex digits of SHA-256(container id, ifname): 14 characters, stable across restarts.</summary>
    public static string HostInterface(AttachmentId attachment)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{attachment.ContainerId}\0{attachment.IfName}"));
        return HostPrefix + Convert.ToHexStringLower(hash)[..11];
    }

    /// <summary>Null when <paramref name="name"/> can be an interface name, else why not.</summary>
    public static string? InvalidInterfaceName(string name)
    {
        if (name.Length == 0)
        {
            return "it is empty";
        }
        if (name.Length > MaxInterfaceName)
        {
            return $"it is {name.Length} characters long; Linux allows at most {MaxInterfaceName}";
        }
        if (name is "." or ".." || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            return "it contains '/', ':', white space or a control character, or is '.' or '..'";
        }
        return null;
    }
}
