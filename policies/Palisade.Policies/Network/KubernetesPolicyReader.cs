using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Palisade.Policies.Network;

/// <summary>
/// Reads the spec of a networking.k8s.io/v1 NetworkPolicy with the checks the Kubernetes API
/// server applies (pkg/apis/networking/validation): peers, ports, endPort, protocols, ipBlock.
/// </summary>
internal static class KubernetesPolicyReader
{
    private static readonly string[] SpecFields = ["podSelector", "policyTypes", "ingress", "egress"];
    private static readonly string[] IngressFields = ["from", "ports"];
    private static readonly string[] EgressFields = ["to", "ports"];
    private static readonly string[] PeerFields = ["podSelector", "namespaceSelector", "ipBlock"];
    private static readonly string[] IpBlockFields = ["cidr", "except"];
    private static readonly string[] PortFields = ["protocol", "port", "endPort"];

    public static KubernetesNetworkPolicy? Read(NetworkFieldReader f, YamlMappingNode doc, PolicyRef policy, IReadOnlyDictionary<string, string> labels, string source)
    {
        var r = f.R;
        if (NodeReader.Field(doc, "specs") is { } specs)
        {
            r.Error("specs", "is a Cilium field; a NetworkPolicy has one spec. Fix: rename it to spec, or make the policy a CiliumNetworkPolicy (cilium.io/v2).", specs);
        }
        var specNode = NodeReader.Field(doc, "spec");
        if (specNode is null)
        {
            r.Error("spec", "is required: a NetworkPolicy needs at least a podSelector (podSelector: {} selects every pod of the namespace).", doc);
            return null;
        }
        var spec = r.Mapping(specNode, "spec", SpecFields);
        if (spec is null)
        {
            return null;
        }
        var podSelectorNode = NodeReader.Field(spec, "podSelector");
        if (podSelectorNode is null)
        {
            r.Error("spec.podSelector", "is required. Fix: podSelector: {} selects every pod of the namespace; matchLabels selects some.", spec);
        }
        var podSelector = f.Selector(podSelectorNode, "spec.podSelector");
        var ingress = f.List(spec, "spec", "ingress", (n, p) => Rule(f, n, p, TrafficDirection.Ingress));
        var egress = f.List(spec, "spec", "egress", (n, p) => Rule(f, n, p, TrafficDirection.Egress));
        // The API server's defaulting: Egress joins Ingress only when the policy has egress rules.
        var types = PolicyTypes(f, spec, egressGiven: NodeReader.Field(spec, "egress") is YamlSequenceNode { Children.Count: > 0 });
        if (!types.Contains(TrafficDirection.Ingress) && ingress.Count > 0)
        {
            f.Warn("spec.ingress", "has rules, but policyTypes does not list Ingress, so they have no effect (Kubernetes ignores them too). Fix: add Ingress to policyTypes, or remove the rules.", NodeReader.Field(spec, "ingress"));
        }
        if (!types.Contains(TrafficDirection.Egress) && egress.Count > 0)
        {
            f.Warn("spec.egress", "has rules, but policyTypes does not list Egress, so they have no effect (Kubernetes ignores them too). Fix: add Egress to policyTypes, or remove the rules.", NodeReader.Field(spec, "egress"));
        }
        return podSelector is null ? null : new KubernetesNetworkPolicy(policy, labels, source, podSelector, types, ingress, egress);
    }

    // Kubernetes' default (SetDefaults_NetworkPolicy): Ingress always, Egress when there are egress rules.
    private static List<TrafficDirection> PolicyTypes(NetworkFieldReader f, YamlMappingNode spec, bool egressGiven)
    {
        var node = NodeReader.Field(spec, "policyTypes");
        if (NetworkFieldReader.IsNull(node))
        {
            return egressGiven ? [TrafficDirection.Ingress, TrafficDirection.Egress] : [TrafficDirection.Ingress];
        }
        var result = new List<TrafficDirection>();
        var texts = f.R.Strings(spec, "spec", "policyTypes");
        for (var i = 0; i < texts.Count; i++)
        {
            var t = texts[i];
            if (!Enum.TryParse<TrafficDirection>(t, ignoreCase: false, out var dir) || !NetworkVocabulary.PolicyTypes.Contains(t))
            {
                f.R.Error($"spec.policyTypes[{i}]", $"\"{t}\" is not a policy type." + Suggestions.For(t, NetworkVocabulary.PolicyTypes), node);
                continue;
            }
            if (result.Contains(dir))
            {
                f.R.Error($"spec.policyTypes[{i}]", $"lists {t} twice. Fix: list each type once.", node);
                continue;
            }
            result.Add(dir);
        }
        if (texts.Count == 0 && node is YamlSequenceNode)
        {
            // An explicit empty list: the API server fills in the default as for a missing one.
            return egressGiven ? [TrafficDirection.Ingress, TrafficDirection.Egress] : [TrafficDirection.Ingress];
        }
        return result;
    }

    private static KubernetesRule? Rule(NetworkFieldReader f, YamlNode node, string p, TrafficDirection direction)
    {
        var peersField = direction == TrafficDirection.Ingress ? "from" : "to";
        if (NetworkFieldReader.IsNull(node))
        {
            return new KubernetesRule(p, direction, [], []);
        }
        var map = f.R.Mapping(node, p, direction == TrafficDirection.Ingress ? IngressFields : EgressFields);
        if (map is null)
        {
            return null;
        }
        var peers = f.List(map, p, peersField, (n, pp) => Peer(f, n, pp));
        var ports = f.List(map, p, "ports", (n, pp) => Port(f, n, pp));
        return new KubernetesRule(p, direction, peers, ports);
    }

    private static KubernetesPeer? Peer(NetworkFieldReader f, YamlNode node, string p)
    {
        var map = f.R.Mapping(node, p, PeerFields);
        if (map is null)
        {
            return null;
        }
        var pods = f.Selector(NodeReader.Field(map, "podSelector"), $"{p}.podSelector");
        var namespaces = f.Selector(NodeReader.Field(map, "namespaceSelector"), $"{p}.namespaceSelector");
        IpBlock? block = null;
        if (NodeReader.Field(map, "ipBlock") is { } blockNode)
        {
            if (f.R.Mapping(blockNode, $"{p}.ipBlock", IpBlockFields) is { } b)
            {
                block = f.Block(b, $"{p}.ipBlock", "cidr", "except", allowBareAddress: false);
            }
            if (NodeReader.Field(map, "podSelector") is not null || NodeReader.Field(map, "namespaceSelector") is not null)
            {
                f.R.Error(p, "may not combine ipBlock with podSelector or namespaceSelector. Fix: make them two peers (two \"- \" entries), which are ORed.", map);
                return null;
            }
        }
        if (map.Children.Count == 0)
        {
            f.R.Error(p, "must specify a peer: podSelector, namespaceSelector or ipBlock. Fix: to match every source or destination, leave out the from/to list instead.", map);
            return null;
        }
        return new KubernetesPeer(p, pods, namespaces, block);
    }

    private static KubernetesPort? Port(NetworkFieldReader f, YamlNode node, string p)
    {
        var r = f.R;
        var map = r.Mapping(node, p, PortFields);
        if (map is null)
        {
            return null;
        }
        var protocol = L4Protocol.Tcp;
        if (r.String(map, p, "protocol") is { } protoText)
        {
            if (NetworkVocabulary.KubernetesProtocols.Contains(protoText))
            {
                protocol = NetworkVocabulary.Protocol(protoText)!.Value;
            }
            else
            {
                r.Error($"{p}.protocol", $"\"{protoText}\" is not a NetworkPolicy protocol." + Suggestions.For(protoText, NetworkVocabulary.KubernetesProtocols), NodeReader.Field(map, "protocol"));
                return null;
            }
        }
        PortValue? port = null;
        var portNode = NodeReader.Field(map, "port");
        if (r.String(map, p, "port") is { } portText)
        {
            if (NetworkVocabulary.Digits().IsMatch(portText))
            {
                if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is < 1 or > 65535)
                {
                    r.Error($"{p}.port", $"{portText} is not a port number: use 1 to 65535, or a named port of the pods.", portNode);
                    return null;
                }
                if (NetworkFieldReader.IsQuoted(portNode))
                {
                    f.Warn($"{p}.port", $"\"{portText}\" is quoted, which makes it a port name for Kubernetes, and the API server refuses it. It is read as the number {n}: write port: {n}.", portNode);
                }
                port = new PortValue(n, null);
            }
            else if (NetworkVocabulary.IsPortName(portText))
            {
                port = new PortValue(0, portText);
            }
            else
            {
                r.Error($"{p}.port", $"\"{portText}\" is neither a port number (1 to 65535) nor a port name (at most 15 lower-case letters, digits and '-', with a letter).", portNode);
                return null;
            }
        }
        int? endPort = null;
        var endNode = NodeReader.Field(map, "endPort");
        if (r.String(map, p, "endPort") is { } endText)
        {
            if (!NetworkVocabulary.Digits().IsMatch(endText) || !int.TryParse(endText, NumberStyles.None, CultureInfo.InvariantCulture, out var e) || e is < 1 or > 65535)
            {
                r.Error($"{p}.endPort", $"\"{endText}\" is not a port number: endPort must be from 1 to 65535.", endNode);
                return null;
            }
            if (NetworkFieldReader.IsQuoted(endNode))
            {
                f.Warn($"{p}.endPort", $"\"{endText}\" is quoted, but endPort is a number; the API server refuses the string. Fix: endPort: {e}.", endNode);
            }
            if (port is null)
            {
                r.Error($"{p}.endPort", "needs port: endPort ends the range that port starts. Fix: add port, e.g. port: 32000 with endPort: 32768.", endNode);
                return null;
            }
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
        return new KubernetesPort(p, protocol, port, endPort);
    }
}
