using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Palisade.Policies.Network;

/// <summary>Reads Cilium's toPorts entries (ports, ranges, named ports, L7 parts) and icmps entries.</summary>
internal static class CiliumPortReader
{
    private static readonly string[] PortRuleFields = ["ports", "terminatingTLS", "originatingTLS", "serverNames", "listener", "rules"];
    private static readonly string[] PortDenyRuleFields = ["ports"];
    private static readonly string[] PortFields = ["port", "endPort", "protocol"];
    private static readonly string[] L7Fields = ["http", "kafka", "dns", "l7proto", "l7"];
    private static readonly string[] IcmpRuleFields = ["fields"];
    private static readonly string[] IcmpFieldFields = ["family", "type"];

    private static readonly (string Field, string Feature)[] L7Kinds =
    [
        ("http", "L7 HTTP rules"), ("kafka", "L7 Kafka rules"), ("dns", "L7 DNS rules"), ("l7proto", "L7 proxy-library rules"), ("l7", "L7 proxy-library rules"),
    ];

    public static CiliumPortRule? PortRule(NetworkFieldReader f, YamlNode node, string p, bool ingress, bool deny)
    {
        var r = f.R;
        var map = r.Mapping(node, p, deny ? PortDenyRuleFields : PortRuleFields);
        if (map is null)
        {
            return null;
        }
        if (NodeReader.Field(map, "ports") is YamlSequenceNode { Children.Count: > NetworkVocabulary.MaxPortsPerRule } many)
        {
            r.Error($"{p}.ports", $"lists {many.Children.Count} ports; Cilium allows at most {NetworkVocabulary.MaxPortsPerRule} per toPorts entry. Fix: split them over several toPorts entries.", many);
        }
        var ports = f.List(map, p, "ports", (n, at) => Port(f, n, at));
        var unsupported = false;
        var rulesNode = NodeReader.Field(map, "rules");
        if (!deny && r.Mapping(rulesNode, $"{p}.rules", L7Fields) is { } rules)
        {
            var kinds = L7Kinds.Where(k => !NetworkFieldReader.IsNull(NodeReader.Field(rules, k.Field))).ToList();
            if (kinds.Count(k => k.Field != "l7") > 1)
            {
                r.Error($"{p}.rules", $"mixes {string.Join(" and ", kinds.Select(k => k.Field))}; a toPorts entry takes one kind of L7 rule (Cilium rejects the mix). Fix: one toPorts entry per protocol.", rules);
            }
            if (ingress && kinds.Any(k => k.Field == "dns"))
            {
                r.Error($"{p}.rules.dns", "DNS rules are allowed only on egress (they filter the names a pod may look up). Fix: move them to an egress rule.", NodeReader.Field(rules, "dns"));
            }
            if (kinds.Any(k => k.Field != "dns") && ports.FirstOrDefault(pp => pp.Protocol != L4Protocol.Tcp) is { } notTcp)
            {
                r.Error(notTcp.Path, $"is {notTcp.Protocol.Name()}, but L7 rules other than DNS apply only to TCP (Cilium rejects this). Fix: protocol: TCP.", map);
            }
            if (ports.Any(pp => pp.Port.Number == 0 && !pp.Port.IsNamed))
            {
                r.Error($"{p}.rules", "cannot be used with port 0 (every port): an L7 proxy needs a known port. Fix: list the ports.", rules);
            }
            if (kinds.Count > 0)
            {
                var first = kinds[0];
                unsupported = true;
                f.NotSupported($"{p}.rules.{first.Field}", first.Feature, UnsupportedEffect.AllowsNothing,
                    $"{first.Feature} need an L7 proxy that Palisade does not have yet. Enforcing only the ports would allow requests the rules forbid, so this toPorts entry allows nothing until L7 is supported; other entries and rules still apply.");
            }
        }
        if (!deny)
        {
            if (NodeReader.Field(map, "serverNames") is { } sni && r.Strings(map, p, "serverNames") is { Count: > 0 } names)
            {
                if (names.Any(n => n.Length == 0))
                {
                    r.Error($"{p}.serverNames", "has an empty server name (Cilium rejects it).", sni);
                }
                unsupported = true;
                f.NotSupported($"{p}.serverNames", "TLS server names (SNI)", UnsupportedEffect.AllowsNothing,
                    "matching the TLS server name needs the L7 proxy; this toPorts entry allows nothing until it is supported, so the policy never allows a server it does not name.");
            }
            foreach (var tls in new[] { "terminatingTLS", "originatingTLS", "listener" })
            {
                if (NodeReader.Field(map, tls) is YamlMappingNode)
                {
                    unsupported = true;
                    f.NotSupported($"{p}.{tls}", tls == "listener" ? "Envoy listeners" : "TLS interception", UnsupportedEffect.AllowsNothing,
                        $"{tls} hands the connection to the L7 proxy, which Palisade does not have yet; this toPorts entry allows nothing until it is supported.");
                }
                else if (NodeReader.Field(map, tls) is { } bad && !NetworkFieldReader.IsNull(bad))
                {
                    r.Error($"{p}.{tls}", $"must be a mapping, not {NodeReader.Describe(bad)}.", bad);
                }
            }
        }
        if (ports.Count == 0 && !unsupported && r.Errors.Count == 0)
        {
            f.Warn($"{p}.ports", "lists no port, so this toPorts entry allows nothing (Cilium reads it the same way). Fix: list the ports, or remove toPorts to allow every port.", map);
        }
        return new CiliumPortRule(p, ports, unsupported);
    }

    private static CiliumPort? Port(NetworkFieldReader f, YamlNode node, string p)
    {
        var r = f.R;
        var map = r.Mapping(node, p, PortFields);
        if (map is null)
        {
            return null;
        }
        var protocol = L4Protocol.Any;
        var protoNode = NodeReader.Field(map, "protocol");
        if (r.String(map, p, "protocol") is { Length: > 0 } protoText)
        {
            var upper = protoText.ToUpperInvariant();
            if (upper is "ICMP" or "ICMPV6")
            {
                r.Error($"{p}.protocol", $"{protoText} has no ports. Fix: match ICMP with an icmps entry, e.g. icmps: [{{fields: [{{type: 8, family: {(upper == "ICMP" ? "IPv4" : "IPv6")}}}]}}].", protoNode);
                return null;
            }
            if (NetworkVocabulary.Protocol(upper) is not { } known)
            {
                r.Error($"{p}.protocol", $"\"{protoText}\" is not a protocol." + Suggestions.For(protoText, NetworkVocabulary.CiliumProtocols), protoNode);
                return null;
            }
            if (upper != protoText)
            {
                f.Warn($"{p}.protocol", $"\"{protoText}\" is read as {upper}. The API server accepts only {upper}: fix the spelling before applying the file with kubectl.", protoNode);
            }
            protocol = known;
        }
        var portless = protocol is L4Protocol.Vrrp or L4Protocol.Igmp;
        var portNode = NodeReader.Field(map, "port");
        var portText = r.String(map, p, "port");
        PortValue port;
        if (string.IsNullOrEmpty(portText))
        {
            if (!portless)
            {
                r.Error($"{p}.port", $"is required for {protocol.Name()} (use \"0\" for every port).", portNode ?? map);
                return null;
            }
            port = new PortValue(0, null);
        }
        else if (NetworkVocabulary.Digits().IsMatch(portText))
        {
            if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > 65535)
            {
                r.Error($"{p}.port", $"{portText} is not a port number: use 0 (every port) to 65535, or a named port of the pods.", portNode);
                return null;
            }
            if (portless && n != 0)
            {
                r.Error($"{p}.port", $"must be empty or 0: {protocol.Name()} has no ports.", portNode);
                return null;
            }
            if (!NetworkFieldReader.IsQuoted(portNode))
            {
                f.Warn($"{p}.port", $"is the number {n}, but Cilium's port is a string and the API server refuses a number. Fix: port: \"{n}\".", portNode);
            }
            port = new PortValue(n, null);
        }
        else if (NetworkVocabulary.IsPortName(portText.ToLowerInvariant()) && !portless)
        {
            // Cilium compares port names case-insensitively and stores them lower-cased.
            port = new PortValue(0, portText.ToLowerInvariant());
        }
        else
        {
            r.Error($"{p}.port", $"\"{portText}\" is neither a port number (0 to 65535) nor a port name (at most 15 letters, digits and '-', with a letter).{(portText.Contains('_', StringComparison.Ordinal) ? " It looks like a placeholder left in the file." : "")} Fix: write the port number, e.g. port: \"443\".", portNode);
            return null;
        }
        int? endPort = null;
        var endNode = NodeReader.Field(map, "endPort");
        if (r.String(map, p, "endPort") is { } endText)
        {
            if (!NetworkVocabulary.Digits().IsMatch(endText) || !int.TryParse(endText, NumberStyles.None, CultureInfo.InvariantCulture, out var e) || e > 65535)
            {
                r.Error($"{p}.endPort", $"\"{endText}\" is not a port number: endPort must be from 0 to 65535.", endNode);
                return null;
            }
            if (NetworkFieldReader.IsQuoted(endNode))
            {
                f.Warn($"{p}.endPort", $"\"{endText}\" is quoted, but endPort is a number and the API server refuses the string. Fix: endPort: {e}.", endNode);
            }
            if (e != 0)
            {
                if (port.IsNamed)
                {
                    r.Error($"{p}.endPort", $"cannot follow the named port \"{port.Name}\": a range needs a numeric start. Fix: use a port number, or remove endPort.", endNode);
                    return null;
                }
                if (e < port.Number)
                {
                    r.Error($"{p}.endPort", $"{e} is below port {port.Number}: endPort must be greater than or equal to port. Fix: swap them, or correct the range.", endNode);
                    return null;
                }
                endPort = e;
            }
        }
        return new CiliumPort(p, port, endPort, protocol);
    }

    public static List<IcmpField> Icmps(NetworkFieldReader f, YamlMappingNode map, string p)
    {
        var r = f.R;
        var result = new List<IcmpField>();
        var rules = f.List(map, p, "icmps", (n, at) => r.Mapping(n, at, IcmpRuleFields) is { } m ? new PathedMapping(at, m) : null);
        foreach (var (at, m) in rules)
        {
            if (NodeReader.Field(m, "fields") is YamlSequenceNode { Children.Count: > NetworkVocabulary.MaxPortsPerRule } many)
            {
                r.Error($"{at}.fields", $"lists {many.Children.Count} types; Cilium allows at most {NetworkVocabulary.MaxPortsPerRule} per icmps entry. Fix: split them over several entries.", many);
            }
            result.AddRange(f.List(m, at, "fields", (n, fp) => Icmp(f, n, fp)));
        }
        return result;
    }

    private static IcmpField? Icmp(NetworkFieldReader f, YamlNode node, string p)
    {
        var r = f.R;
        var map = r.Mapping(node, p, IcmpFieldFields);
        if (map is null)
        {
            return null;
        }
        var family = IpFamily.IPv4;
        if (r.String(map, p, "family") is { Length: > 0 } familyText)
        {
            if (familyText is not ("IPv4" or "IPv6"))
            {
                r.Error($"{p}.family", $"\"{familyText}\" is not an IP family." + Suggestions.For(familyText, ["IPv4", "IPv6"]), NodeReader.Field(map, "family"));
                return null;
            }
            family = familyText == "IPv6" ? IpFamily.IPv6 : IpFamily.IPv4;
        }
        var typeText = r.String(map, p, "type", required: true);
        if (typeText is null)
        {
            return null;
        }
        var names = family == IpFamily.IPv6 ? NetworkVocabulary.IcmpV6Types : NetworkVocabulary.IcmpV4Types;
        if (NetworkVocabulary.Digits().IsMatch(typeText))
        {
            if (!byte.TryParse(typeText, NumberStyles.None, CultureInfo.InvariantCulture, out var type))
            {
                r.Error($"{p}.type", $"{typeText} is not an ICMP type: use 0 to 255, or a name such as {(family == IpFamily.IPv6 ? "EchoRequest" : "Echo")}.", NodeReader.Field(map, "type"));
                return null;
            }
            return new IcmpField(p, family, type);
        }
        if (names.TryGetValue(typeText, out var named))
        {
            return new IcmpField(p, family, named);
        }
        var other = family == IpFamily.IPv6 ? NetworkVocabulary.IcmpV4Types : NetworkVocabulary.IcmpV6Types;
        var hint = other.ContainsKey(typeText) ? $" It is an {(family == IpFamily.IPv6 ? "IPv4" : "IPv6")} type: set family accordingly." : Suggestions.For(typeText, names.Keys);
        r.Error($"{p}.type", $"\"{typeText}\" is not an {(family == IpFamily.IPv6 ? "ICMPv6" : "ICMP")} type name." + hint, NodeReader.Field(map, "type"));
        return null;
    }
}

/// <summary>A mapping with the path it was read at.</summary>
internal sealed record PathedMapping(string Path, YamlMappingNode Map);
