using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Palisade.Policies.Network;

/// <summary>The three policy kinds Palisade reads, as their YAML names them.</summary>
public enum NetworkPolicyKind
{
    NetworkPolicy,
    CiliumNetworkPolicy,
    CiliumClusterwideNetworkPolicy,
}

/// <summary>Which way traffic goes relative to the selected endpoint.</summary>
public enum TrafficDirection
{
    Ingress,
    Egress,
}

/// <summary>What a rule does with the traffic it matches.</summary>
public enum RuleAction
{
    Allow,
    Deny,
}

/// <summary>
/// A transport protocol as policies name it. <see cref="Any"/> is Cilium's ANY (TCP, UDP and
/// SCTP); VRRP and IGMP are Cilium's port-less "extended" protocols, for host policies.
/// </summary>
public enum L4Protocol
{
    Any,
    Tcp,
    Udp,
    Sctp,
    Vrrp,
    Igmp,
}

/// <summary>An IP family, for ICMP rules.</summary>
public enum IpFamily
{
    IPv4,
    IPv6,
}

/// <summary>Who made the policy: a one-line reference used in statuses and verdicts.</summary>
public sealed record PolicyRef(NetworkPolicyKind Kind, string? Namespace, string Name)
{
    public override string ToString() => Namespace is null ? $"{Kind} {Name}" : $"{Kind} {Namespace}/{Name}";
}

/// <summary>An IP prefix in canonical form (host bits cleared).</summary>
public readonly record struct CidrPrefix(IPAddress Address, int Length)
{
    public AddressFamily Family => Address.AddressFamily;

    public int MaxLength => Family == AddressFamily.InterNetwork ? 32 : 128;

    /// <summary>The address as a number (IPv4 in the low 32 bits): ordering and containment without allocating.</summary>
    public UInt128 First => KeyOf(Address);

    /// <summary>The last address of the prefix as a number.</summary>
    public UInt128 Last => First | HostMask;

    private UInt128 HostMask => (MaxLength - Length) switch
    {
        <= 0 => UInt128.Zero,
        >= 128 => UInt128.MaxValue,
        var bits => (UInt128.One << bits) - 1,
    };

    /// <summary>True when <paramref name="other"/> lies inside this prefix (equal counts).</summary>
    public bool Contains(CidrPrefix other) =>
        other.Family == Family && other.Length >= Length && (other.First & ~HostMask) == First;

    private static UInt128 KeyOf(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var n);
        UInt128 key = 0;
        for (var i = 0; i < n; i++)
        {
            key = (key << 8) | bytes[i];
        }
        return key;
    }

    public override string ToString() => $"{Address}/{Length.ToString(CultureInfo.InvariantCulture)}";

    internal static IPAddress Mask(IPAddress address, int length)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(length - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        return new IPAddress(bytes);
    }
}

/// <summary>A port as written: a number (0 = every port) or a container port name.</summary>
public sealed record PortValue(int Number, string? Name)
{
    public bool IsNamed => Name is not null;

    public override string ToString() => Name ?? Number.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The names policies use and what they mean: kinds, entities, protocols, ICMP types.</summary>
public static partial class NetworkVocabulary
{
    public const string KubernetesApiVersion = "networking.k8s.io/v1";
    public const string CiliumApiVersion = "cilium.io/v2";

    /// <summary>The pod label holding the pod's namespace, as Cilium's identities carry it.</summary>
    public const string NamespaceLabel = "k8s:io.kubernetes.pod.namespace";

    /// <summary>Prefix of the pod labels that mirror the namespace's own labels (Cilium).</summary>
    public const string NamespaceLabelsPrefix = "io.cilium.k8s.namespace.labels.";

    /// <summary>The namespace a namespaced policy gets when its file names none, as kubectl does.</summary>
    public const string DefaultNamespace = "default";

    public static readonly IReadOnlyList<string> Kinds = [nameof(NetworkPolicyKind.NetworkPolicy), nameof(NetworkPolicyKind.CiliumNetworkPolicy), nameof(NetworkPolicyKind.CiliumClusterwideNetworkPolicy)];

    /// <summary>Cilium's entities (pkg/policy/api/entity.go) with what each selects.</summary>
    public static readonly IReadOnlyDictionary<string, string> Entities = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["all"] = "every peer, inside and outside the cluster",
        ["world"] = "every peer outside the cluster (IPv4 and IPv6)",
        ["world-ipv4"] = "IPv4 peers outside the cluster",
        ["world-ipv6"] = "IPv6 peers outside the cluster",
        ["cluster"] = "every peer inside the cluster: pods, the host, remote nodes, health, init, ingress, unmanaged and kube-apiserver",
        ["host"] = "the local node",
        ["remote-node"] = "the other nodes of the cluster",
        ["kube-apiserver"] = "the Kubernetes API server",
        ["init"] = "endpoints whose identity is not resolved yet",
        ["health"] = "the agents' health endpoints",
        ["unmanaged"] = "pods not managed by the agent",
        ["ingress"] = "the L7 ingress proxy",
        ["none"] = "nothing (a selector that never matches)",
    };

    public static readonly IReadOnlyList<string> KubernetesProtocols = ["TCP", "UDP", "SCTP"];

    public static readonly IReadOnlyList<string> CiliumProtocols = ["TCP", "UDP", "SCTP", "ANY", "VRRP", "IGMP"];

    public static readonly IReadOnlyList<string> LabelOperators = ["In", "NotIn", "Exists", "DoesNotExist"];

    public static readonly IReadOnlyList<string> PolicyTypes = ["Ingress", "Egress"];

    public static readonly IReadOnlyList<string> AuthenticationModes = ["disabled", "required", "test-always-fail"];

    /// <summary>ICMP type names Cilium accepts for IPv4 (pkg/policy/api/icmp.go).</summary>
    public static readonly IReadOnlyDictionary<string, byte> IcmpV4Types = new Dictionary<string, byte>(StringComparer.Ordinal)
    {
        ["EchoReply"] = 0, ["DestinationUnreachable"] = 3, ["Redirect"] = 5, ["Echo"] = 8, ["EchoRequest"] = 8,
        ["RouterAdvertisement"] = 9, ["RouterSelection"] = 10, ["TimeExceeded"] = 11, ["ParameterProblem"] = 12,
        ["Timestamp"] = 13, ["TimestampReply"] = 14, ["Photuris"] = 40, ["ExtendedEchoRequest"] = 42, ["ExtendedEchoReply"] = 43,
    };

    /// <summary>ICMPv6 type names Cilium accepts.</summary>
    public static readonly IReadOnlyDictionary<string, byte> IcmpV6Types = new Dictionary<string, byte>(StringComparer.Ordinal)
    {
        ["DestinationUnreachable"] = 1, ["PacketTooBig"] = 2, ["TimeExceeded"] = 3, ["ParameterProblem"] = 4,
        ["EchoRequest"] = 128, ["EchoReply"] = 129, ["MulticastListenerQuery"] = 130, ["MulticastListenerReport"] = 131,
        ["MulticastListenerDone"] = 132, ["RouterSolicitation"] = 133, ["RouterAdvertisement"] = 134,
        ["NeighborSolicitation"] = 135, ["NeighborAdvertisement"] = 136, ["RedirectMessage"] = 137, ["RouterRenumbering"] = 138,
        ["ICMPNodeInformationQuery"] = 139, ["ICMPNodeInformationResponse"] = 140, ["InverseNeighborDiscoverySolicitation"] = 141,
        ["InverseNeighborDiscoveryAdvertisement"] = 142, ["HomeAgentAddressDiscoveryRequest"] = 144, ["HomeAgentAddressDiscoveryReply"] = 145,
        ["MobilePrefixSolicitation"] = 146, ["MobilePrefixAdvertisement"] = 147, ["DuplicateAddressRequestCodeSuffix"] = 157,
        ["DuplicateAddressConfirmationCodeSuffix"] = 158, ["ExtendedEchoRequest"] = 160, ["ExtendedEchoReply"] = 161,
    };

    /// <summary>Cilium's limit on ports per toPorts entry and fields per icmps entry (rule_validation.go).</summary>
    public const int MaxPortsPerRule = 40;

    public static L4Protocol? Protocol(string name) => name switch
    {
        "TCP" => L4Protocol.Tcp,
        "UDP" => L4Protocol.Udp,
        "SCTP" => L4Protocol.Sctp,
        "ANY" => L4Protocol.Any,
        "VRRP" => L4Protocol.Vrrp,
        "IGMP" => L4Protocol.Igmp,
        _ => null,
    };

    public static string Name(this L4Protocol protocol) => protocol.ToString().ToUpperInvariant();

    /// <summary>
    /// Parses "a.b.c.d/n" or "x::y/n" strictly (no zones, no shorthand IPv4 such as "10/8",
    /// no leading zeros); <paramref name="allowBareAddress"/> also takes an address alone
    /// (a host prefix), as Cilium's fromCIDR/toCIDR do. <paramref name="hadHostBits"/> says
    /// the address had bits set past the prefix (accepted, then cleared).
    /// </summary>
    public static bool TryParseCidr(string text, bool allowBareAddress, out CidrPrefix prefix, out bool hadHostBits, out string why)
    {
        prefix = default;
        hadHostBits = false;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];
        if (slash < 0 && !allowBareAddress)
        {
            why = "has no prefix length";
            return false;
        }
        if (!TryParseAddress(addressText, out var address))
        {
            why = $"\"{addressText}\" is not an IPv4 or IPv6 address";
            return false;
        }
        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var length = max;
        if (slash >= 0)
        {
            var lengthText = text[(slash + 1)..];
            if (!Digits().IsMatch(lengthText) || !int.TryParse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > max)
            {
                why = $"the prefix length \"{lengthText}\" is not a number from 0 to {max}";
                return false;
            }
        }
        var masked = CidrPrefix.Mask(address, length);
        hadHostBits = !masked.Equals(address);
        prefix = new CidrPrefix(masked, length);
        why = "";
        return true;
    }

    private static bool TryParseAddress(string text, out IPAddress address)
    {
        address = IPAddress.None;
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return !text.Contains('%', StringComparison.Ordinal) && IPAddress.TryParse(text, out address!) && address.AddressFamily == AddressFamily.InterNetworkV6;
        }
        return DottedQuad().IsMatch(text) && IPAddress.TryParse(text, out address!);
    }

    /// <summary>An IANA service name as Kubernetes checks a named port: 1-15 of [a-z0-9-], a letter, no "--", no '-' at either end.</summary>
    public static bool IsPortName(string text) =>
        text.Length is >= 1 and <= 15 && PortName().IsMatch(text) && !text.Contains("--", StringComparison.Ordinal) && text.Any(char.IsAsciiLetterLower);

    /// <summary>A label value as Kubernetes checks it: empty, or up to 63 of [A-Za-z0-9-_.] starting and ending alphanumeric.</summary>
    public static bool IsLabelValue(string text) => text.Length <= 63 && LabelValue().IsMatch(text);

    [GeneratedRegex(@"^[0-9]+$")]
    internal static partial Regex Digits();

    [GeneratedRegex(@"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$")]
    private static partial Regex DottedQuad();

    [GeneratedRegex(@"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")]
    private static partial Regex PortName();

    [GeneratedRegex(@"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
    private static partial Regex LabelValue();
}
