using YamlDotNet.RepresentationModel;

namespace Palisade.Policies.Network;

/// <summary>
/// Reads CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2) with the field
/// names and checks of Cilium's pkg/policy/api (rule_validation.go), and records each part
/// Palisade cannot enforce yet as an <see cref="UnsupportedPart"/>.
/// </summary>
internal static class CiliumPolicyReader
{
    private static readonly string[] RuleFields = ["endpointSelector", "nodeSelector", "ingress", "ingressDeny", "egress", "egressDeny", "labels", "enableDefaultDeny", "description", "log"];
    private static readonly string[] IngressFields = ["fromEndpoints", "fromRequires", "fromCIDR", "fromCIDRSet", "fromEntities", "fromGroups", "fromNodes", "toPorts", "icmps", "authentication"];
    private static readonly string[] IngressDenyFields = ["fromEndpoints", "fromRequires", "fromCIDR", "fromCIDRSet", "fromEntities", "fromGroups", "fromNodes", "toPorts", "icmps"];
    private static readonly string[] EgressFields = ["toEndpoints", "toRequires", "toCIDR", "toCIDRSet", "toEntities", "toServices", "toGroups", "toNodes", "toFQDNs", "toPorts", "icmps", "authentication"];
    private static readonly string[] EgressDenyFields = ["toEndpoints", "toRequires", "toCIDR", "toCIDRSet", "toEntities", "toServices", "toGroups", "toNodes", "toPorts", "icmps"];
    private static readonly string[] CidrRuleFields = ["cidr", "cidrGroupRef", "cidrGroupSelector", "except"];
    private static readonly string[] FqdnFields = ["matchName", "matchPattern"];
    private static readonly string[] ServiceFields = ["k8sService", "k8sServiceSelector"];
    private static readonly string[] GroupFields = ["aws"];
    private static readonly string[] DefaultDenyFields = ["ingress", "egress"];
    private static readonly string[] LogFields = ["value"];
    private static readonly string[] AuthenticationFields = ["mode"];
    private static readonly string[] RuleLabelFields = ["key", "value", "source"];

    public static CiliumPolicy? Read(NetworkFieldReader f, YamlMappingNode doc, PolicyRef policy, IReadOnlyDictionary<string, string> labels, string source)
    {
        var r = f.R;
        var specNode = NodeReader.Field(doc, "spec");
        var specsNode = NodeReader.Field(doc, "specs");
        var rules = new List<CiliumRule>();
        if (specNode is null && specsNode is null)
        {
            r.Error("spec", $"is required: a {policy.Kind} needs spec (one rule) or specs (a list of rules), each with an endpointSelector{(policy.Kind == NetworkPolicyKind.CiliumClusterwideNetworkPolicy ? " or nodeSelector" : "")} and ingress or egress rules.", doc);
            return null;
        }
        if (specNode is not null && Rule(f, specNode, "spec", policy) is { } one)
        {
            rules.Add(one);
        }
        if (specsNode is not null)
        {
            if (specsNode is YamlSequenceNode { Children.Count: 0 } && specNode is null)
            {
                r.Error("specs", "is empty: the policy has no rule. Fix: add at least one rule to specs, or use spec.", specsNode);
            }
            rules.AddRange(f.List(doc, "", "specs", (n, p) => Rule(f, n, p, policy)));
        }
        if (rules.Count == 0 && r.Errors.Count == 0)
        {
            r.Error(specNode is null ? "specs" : "spec", "holds no rule. Fix: give spec (one rule) or specs (a list of rules), each with an endpointSelector and ingress or egress rules.", specNode ?? specsNode ?? doc);
        }
        return new CiliumPolicy(policy, labels, source, [.. f.Unsupported], rules);
    }

    private static CiliumRule? Rule(NetworkFieldReader f, YamlNode node, string p, PolicyRef policy)
    {
        var r = f.R;
        var map = r.Mapping(node, p, RuleFields);
        if (map is null)
        {
            return null;
        }
        var endpointNode = NodeReader.Field(map, "endpointSelector");
        var nodeNode = NodeReader.Field(map, "nodeSelector");
        if (endpointNode is null && nodeNode is null)
        {
            r.Error($"{p}.endpointSelector", policy.Kind == NetworkPolicyKind.CiliumClusterwideNetworkPolicy
                ? "is required, or nodeSelector: say which endpoints (endpointSelector: {} for every one) or which nodes (nodeSelector) the rule applies to."
                : "is required: say which pods of the namespace the rule applies to (endpointSelector: {} for every one).", map);
        }
        if (endpointNode is not null && nodeNode is not null)
        {
            r.Error(p, "has both endpointSelector and nodeSelector; a rule applies to endpoints or to nodes, not both. Fix: split it into two rules.", nodeNode);
        }
        if (nodeNode is not null && policy.Kind == NetworkPolicyKind.CiliumNetworkPolicy)
        {
            r.Error($"{p}.nodeSelector", "is allowed only in a CiliumClusterwideNetworkPolicy (host policies are cluster-wide). Fix: change the kind, or use endpointSelector.", nodeNode);
        }
        var endpointSelector = f.Selector(endpointNode, $"{p}.endpointSelector");
        var nodeSelector = f.Selector(nodeNode, $"{p}.nodeSelector");
        if (endpointSelector is not null && policy.Namespace is { } ns && endpointSelector.MatchLabels.Where(kv => IsNamespaceKey(kv.Key)).Any(kv => kv.Value != ns))
        {
            f.Warn($"{p}.endpointSelector", $"names a namespace other than {ns}; a CiliumNetworkPolicy applies only in its own namespace, so Cilium ignores that namespace and applies the rule to pods of {ns}, as Palisade does. Fix: move the policy to that namespace, or use a CiliumClusterwideNetworkPolicy.", endpointNode);
        }
        var ingress = f.List(map, p, "ingress", (n, pp) => PeerRule(f, n, pp, TrafficDirection.Ingress, RuleAction.Allow));
        var ingressDeny = f.List(map, p, "ingressDeny", (n, pp) => PeerRule(f, n, pp, TrafficDirection.Ingress, RuleAction.Deny));
        var egress = f.List(map, p, "egress", (n, pp) => PeerRule(f, n, pp, TrafficDirection.Egress, RuleAction.Allow));
        var egressDeny = f.List(map, p, "egressDeny", (n, pp) => PeerRule(f, n, pp, TrafficDirection.Egress, RuleAction.Deny));
        if (new[] { "ingress", "ingressDeny", "egress", "egressDeny" }.All(k => NodeReader.Field(map, k) is not YamlSequenceNode { Children.Count: > 0 }))
        {
            r.Error(p, "has no ingress, ingressDeny, egress or egressDeny rule, so it does nothing (Cilium rejects it too). Fix: to deny all ingress, write ingress: [{}]; to allow, list the peers.", map);
        }
        bool? denyIngress = null, denyEgress = null;
        if (r.Mapping(NodeReader.Field(map, "enableDefaultDeny"), $"{p}.enableDefaultDeny", DefaultDenyFields) is { } dd)
        {
            denyIngress = NodeReader.Field(dd, "ingress") is null ? null : r.Bool(dd, $"{p}.enableDefaultDeny", "ingress");
            denyEgress = NodeReader.Field(dd, "egress") is null ? null : r.Bool(dd, $"{p}.enableDefaultDeny", "egress");
        }
        string? log = null;
        if (r.Mapping(NodeReader.Field(map, "log"), $"{p}.log", LogFields) is { } lm)
        {
            log = r.String(lm, $"{p}.log", "value");
            if (log is { Length: > 32 } || (log is not null && log.Any(char.IsControl)))
            {
                r.Error($"{p}.log.value", $"\"{log}\" must be at most 32 printable characters (it is copied into every flow this policy decides).", NodeReader.Field(lm, "value"));
            }
        }
        return new CiliumRule(p, endpointSelector, nodeSelector, ingress, ingressDeny, egress, egressDeny, RuleLabels(f, map, p),
            denyIngress, denyEgress, r.String(map, p, "description"), log);
    }

    internal static bool IsNamespaceKey(string key) => key is NetworkVocabulary.NamespaceLabel or "io.kubernetes.pod.namespace" or "any:io.kubernetes.pod.namespace";

    // Cilium's LabelArray: each label a "source:key=value" string or a {key, value, source} object.
    private static List<string> RuleLabels(NetworkFieldReader f, YamlMappingNode map, string p)
    {
        var result = new List<string>();
        if (NodeReader.Field(map, "labels") is not { } node || NetworkFieldReader.IsNull(node))
        {
            return result;
        }
        if (node is not YamlSequenceNode seq)
        {
            f.R.Error($"{p}.labels", $"must be a list of labels (\"key=value\" strings or key/value/source objects), not {NodeReader.Describe(node)}.", node);
            return result;
        }
        for (var i = 0; i < seq.Children.Count; i++)
        {
            var at = $"{p}.labels[{i}]";
            switch (seq.Children[i])
            {
                case YamlScalarNode { Value: { Length: > 0 } text }:
                    result.Add(text);
                    break;
                case YamlMappingNode m when f.R.Mapping(m, at, RuleLabelFields) is not null:
                    var key = f.R.String(m, at, "key", required: true);
                    var source = f.R.String(m, at, "source");
                    var value = f.R.String(m, at, "value");
                    if (key is not null)
                    {
                        result.Add($"{(source is null ? "" : source + ":")}{key}{(string.IsNullOrEmpty(value) ? "" : "=" + value)}");
                    }
                    break;
                default:
                    f.R.Error(at, $"must be a label, \"key=value\" or {{key: ..., value: ...}}, not {NodeReader.Describe(seq.Children[i])}.", seq.Children[i]);
                    break;
            }
        }
        return result;
    }

    private static CiliumPeerRule? PeerRule(NetworkFieldReader f, YamlNode node, string p, TrafficDirection direction, RuleAction action)
    {
        var r = f.R;
        var ingress = direction == TrafficDirection.Ingress;
        var deny = action == RuleAction.Deny;
        var fields = (ingress, deny) switch
        {
            (true, false) => IngressFields,
            (true, true) => IngressDenyFields,
            (false, false) => EgressFields,
            _ => EgressDenyFields,
        };
        if (NetworkFieldReader.IsNull(node))
        {
            return new CiliumPeerRule(p, direction, action, [], [], [], [], [], [], [], null, false);
        }
        var map = r.Mapping(node, p, fields);
        if (map is null)
        {
            return null;
        }
        var from = ingress ? "from" : "to";
        // Cilium accepts one kind of peer per entry ("combining X and Y is not supported yet").
        var peerKinds = new[] { "Endpoints", "CIDR", "CIDRSet", "Entities", "Nodes", "Groups", "Services", "FQDNs" }
            .Select(k => from + k).Where(k => fields.Contains(k) && NodeReader.Field(map, k) is YamlSequenceNode { Children.Count: > 0 }).ToList();
        if (peerKinds.Count == 2 && peerKinds.Contains(from + "CIDR") && peerKinds.Contains(from + "CIDRSet"))
        {
            // Both are CIDR peers, ORed like any two peers; Cilium's own example cidr.yaml writes them so.
            f.Warn(p, $"combines {from}CIDR and {from}CIDRSet in one entry. Palisade reads both (they are ORed), but recent Cilium versions reject the combination. Fix: move {from}CIDR into an entry of its own, or into {from}CIDRSet.", map);
        }
        else if (peerKinds.Count > 1)
        {
            r.Error(p, $"combines {string.Join(" and ", peerKinds)} in one entry, which Cilium does not support (it rejects the policy). Fix: write one entry per kind of peer; entries are ORed.", map);
        }
        var unsupportedEffect = deny ? UnsupportedEffect.DeniesAllPeers : UnsupportedEffect.AllowsNothing;
        var effectText = deny
            ? "this deny rule denies its ports to every peer instead, so it never denies less than it says"
            : "this rule allows nothing until it is supported, so the policy never allows more than it says";

        var endpoints = Selectors(f, map, p, from + "Endpoints");
        var requires = Selectors(f, map, p, from + "Requires");
        var nodes = Selectors(f, map, p, from + "Nodes");
        var cidrs = new List<IpBlock>();
        var cidrNodes = NodeReader.Field(map, from + "CIDR") as YamlSequenceNode;
        var cidrTexts = r.Strings(map, p, from + "CIDR");
        for (var i = 0; i < cidrTexts.Count; i++)
        {
            var at = $"{p}.{from}CIDR[{i}]";
            if (f.Cidr(cidrTexts[i], at, cidrNodes?.Children.ElementAtOrDefault(i), allowBareAddress: true) is { } c)
            {
                cidrs.Add(new IpBlock(at, c, []));
            }
        }
        var unsupportedPeers = false;
        cidrs.AddRange(f.List(map, p, from + "CIDRSet", (n, at) =>
        {
            var m = r.Mapping(n, at, CidrRuleFields);
            if (m is null)
            {
                return null;
            }
            var groupRef = NodeReader.Field(m, "cidrGroupRef");
            var groupSelector = NodeReader.Field(m, "cidrGroupSelector");
            var set = new[] { NodeReader.Field(m, "cidr"), groupRef, groupSelector }.Count(x => x is not null);
            if (set != 1)
            {
                r.Error(at, "must set exactly one of cidr, cidrGroupRef or cidrGroupSelector.", m);
                return null;
            }
            if (groupRef is not null || groupSelector is not null)
            {
                _ = groupSelector is null ? r.String(m, at, "cidrGroupRef") : null;
                _ = f.Selector(groupSelector, $"{at}.cidrGroupSelector");
                unsupportedPeers = true;
                f.NotSupported($"{at}.{(groupRef is not null ? "cidrGroupRef" : "cidrGroupSelector")}", "CiliumCIDRGroup references", unsupportedEffect,
                    $"CIDR groups (CiliumCIDRGroup objects) are not read yet; {effectText}. Fix for now: list the CIDRs in cidr.");
                return null;
            }
            return f.Block(m, at, "cidr", "except", allowBareAddress: false);
        }));
        var entities = new List<PathedEntity>();
        var entityTexts = r.Strings(map, p, from + "Entities");
        var entityNodes = NodeReader.Field(map, from + "Entities") as YamlSequenceNode;
        for (var i = 0; i < entityTexts.Count; i++)
        {
            var at = $"{p}.{from}Entities[{i}]";
            if (NetworkVocabulary.Entities.ContainsKey(entityTexts[i]))
            {
                entities.Add(new PathedEntity(at, entityTexts[i]));
            }
            else
            {
                r.Error(at, $"\"{entityTexts[i]}\" is not an entity." + Suggestions.For(entityTexts[i], NetworkVocabulary.Entities.Keys), entityNodes?.Children.ElementAtOrDefault(i));
            }
        }
        if (Unsupported(f, map, p, from + "Groups", GroupFields, "cloud provider groups (AWS security groups)", unsupportedEffect,
            $"Palisade does not resolve cloud groups to addresses; {effectText}. Fix for now: list the group's CIDRs in {from}CIDR."))
        {
            unsupportedPeers = true;
        }
        if (!ingress && Unsupported(f, map, p, "toServices", ServiceFields, "toServices", unsupportedEffect,
            $"peers named by Kubernetes Service are not resolved yet; {effectText}. Fix for now: select the service's pods with toEndpoints, or its external addresses with toCIDR."))
        {
            unsupportedPeers = true;
        }
        if (!ingress && !deny && Unsupported(f, map, p, "toFQDNs", FqdnFields, "toFQDNs", unsupportedEffect,
            $"DNS-name peers need a DNS proxy that Palisade does not have yet; {effectText}. Fix for now: list the addresses in toCIDR."))
        {
            unsupportedPeers = true;
        }
        string? authentication = null;
        if (!deny && r.Mapping(NodeReader.Field(map, "authentication"), $"{p}.authentication", AuthenticationFields) is { } auth)
        {
            authentication = r.String(auth, $"{p}.authentication", "mode", required: true);
            if (authentication is not null && !NetworkVocabulary.AuthenticationModes.Contains(authentication))
            {
                r.Error($"{p}.authentication.mode", $"\"{authentication}\" is not an authentication mode." + Suggestions.For(authentication, NetworkVocabulary.AuthenticationModes), NodeReader.Field(auth, "mode"));
            }
            else if (authentication is "required" or "test-always-fail")
            {
                f.NotSupported($"{p}.authentication", "mutual authentication", UnsupportedEffect.AllowsNothing,
                    $"authentication mode \"{authentication}\" needs mutual TLS between the peers, which Palisade does not do yet; this rule allows nothing until it is supported.");
            }
        }
        var toPorts = f.List(map, p, "toPorts", (n, at) => CiliumPortReader.PortRule(f, n, at, ingress, deny));
        var icmps = CiliumPortReader.Icmps(f, map, p);
        if (toPorts.Count > 0 && NodeReader.Field(map, "icmps") is YamlSequenceNode { Children.Count: > 0 } icmpNode)
        {
            r.Error($"{p}.icmps", "cannot be in the same entry as toPorts (Cilium rejects it). Fix: move icmps into an entry of its own.", icmpNode);
        }
        return new CiliumPeerRule(p, direction, action, endpoints, requires, nodes, cidrs, entities, toPorts, icmps, authentication, unsupportedPeers);
    }

    private static List<PathedSelector> Selectors(NetworkFieldReader f, YamlMappingNode map, string p, string field) =>
        [.. f.List(map, p, field, (n, at) => f.Selector(n, at) is { } s ? new PathedSelector(at, s) : null)];

    // Reads a list of objects Palisade does not enforce yet (checking their field names), and records it.
    private static bool Unsupported(NetworkFieldReader f, YamlMappingNode map, string p, string field, string[] fields, string feature, UnsupportedEffect effect, string message)
    {
        if (NodeReader.Field(map, field) is not YamlSequenceNode { Children.Count: > 0 })
        {
            _ = f.List(map, p, field, (n, at) => f.R.Mapping(n, at, fields));
            return false;
        }
        var items = f.List(map, p, field, (n, at) => f.R.Mapping(n, at, fields));
        if (items.Count == 0)
        {
            return false;
        }
        f.NotSupported($"{p}.{field}", feature, effect, message);
        return true;
    }
}
