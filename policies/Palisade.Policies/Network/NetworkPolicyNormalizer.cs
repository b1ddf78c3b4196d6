namespace Palisade.Policies.Network;

/// <summary>
/// Turns a parsed policy into flat rules over identity selectors, with the namespace scope of
/// each selector made explicit the way Kubernetes and Cilium define it, so that the compiler
/// needs no knowledge of the three YAML dialects. Pure and total: any parsed policy normalises.
/// </summary>
public static class NetworkPolicyNormalizer
{
    private const string AnyNamespaceKey = "any:io.kubernetes.pod.namespace";
    private const string K8sNamespaceLabelsPrefix = "k8s:" + NetworkVocabulary.NamespaceLabelsPrefix;
    private const string AnyNamespaceLabelsPrefix = "any:" + NetworkVocabulary.NamespaceLabelsPrefix;

    public static NormalizedPolicy Normalize(NetworkPolicyResource policy) => policy switch
    {
        KubernetesNetworkPolicy k => new NormalizedPolicy(k.Ref, k.Source, [Kubernetes(k)], []),
        CiliumPolicy c => new NormalizedPolicy(c.Ref, c.Source, [.. c.Rules.Select(r => Cilium(c, r))], c.Unsupported),
        _ => throw new ArgumentException($"unknown policy type {policy.GetType().Name}", nameof(policy)),
    };

    // NetworkPolicy: the subject is podSelector in the policy's namespace; each rule allows
    // every (peer, port) pair of its lists; an empty list means every peer or every port.
    private static NormalizedRuleSet Kubernetes(KubernetesNetworkPolicy k)
    {
        var ns = k.Ref.Namespace ?? NetworkVocabulary.DefaultNamespace;
        var subject = new PolicySubject(SubjectKind.Endpoints, Qualified(k.PodSelector, "k8s", "", NamespaceIs(ns)));
        var rules = new List<NetworkRule>();
        foreach (var rule in k.PolicyTypes.Contains(TrafficDirection.Ingress) ? k.Ingress : [])
        {
            Expand(k, rule, ns, rules);
        }
        foreach (var rule in k.PolicyTypes.Contains(TrafficDirection.Egress) ? k.Egress : [])
        {
            Expand(k, rule, ns, rules);
        }
        return new NormalizedRuleSet("spec", subject, k.PolicyTypes.Contains(TrafficDirection.Ingress), k.PolicyTypes.Contains(TrafficDirection.Egress), rules, [], null);
    }

    private static void Expand(KubernetesNetworkPolicy k, KubernetesRule rule, string ns, List<NetworkRule> into)
    {
        var peers = rule.Peers.Count == 0 ? [(Peer: (Peer)new EntityPeer("all"), Path: (string?)null)] : rule.Peers.Select(p => (Peer: KubernetesPeer(p, ns), Path: (string?)p.Path)).ToList();
        var ports = rule.Ports.Count == 0 ? [(L4: (L4Match)AnyTraffic.Instance, Path: (string?)null)] : rule.Ports.Select(p => (L4: KubernetesPort(p), Path: (string?)p.Path)).ToList();
        foreach (var peer in peers)
        {
            foreach (var port in ports)
            {
                into.Add(new NetworkRule(rule.Direction, RuleAction.Allow, peer.Peer, port.L4, new RuleOrigin(k.Ref, k.Source, rule.Path, peer.Path, port.Path)));
            }
        }
    }

    // podSelector alone: pods of the policy's namespace. namespaceSelector alone: every pod of
    // the matching namespaces. Both: matching pods of matching namespaces. Namespace labels are
    // tested through the io.cilium.k8s.namespace.labels.* labels every pod identity carries.
    private static Peer KubernetesPeer(KubernetesPeer p, string ns)
    {
        if (p.IpBlock is { } block)
        {
            return new CidrPeer(block.Cidr, block.Except);
        }
        var requirements = new List<LabelRequirement>();
        if (p.PodSelector is { } pods)
        {
            requirements.AddRange(Qualified(pods, "k8s", "").Requirements);
        }
        if (p.NamespaceSelector is { } namespaces)
        {
            requirements.AddRange(Qualified(namespaces, "k8s", NetworkVocabulary.NamespaceLabelsPrefix).Requirements);
            requirements.Add(new LabelRequirement(NetworkVocabulary.NamespaceLabel, "Exists", []));
        }
        else
        {
            requirements.Add(NamespaceIs(ns));
        }
        return new EndpointPeer(new IdentitySelector(requirements));
    }

    private static L4Match KubernetesPort(KubernetesPort p) => p.Port switch
    {
        null => new PortMatch(p.Protocol, 0, 65535),
        { IsNamed: true } named => new NamedPortMatch(p.Protocol, named.Name!),
        { } n => new PortMatch(p.Protocol, n.Number, p.EndPort ?? n.Number),
    };

    private static NormalizedRuleSet Cilium(CiliumPolicy c, CiliumRule rule)
    {
        var ns = c.Ref.Kind == NetworkPolicyKind.CiliumNetworkPolicy ? c.Ref.Namespace ?? NetworkVocabulary.DefaultNamespace : null;
        PolicySubject subject;
        var matchesInit = false;
        if (rule.NodeSelector is { } nodes)
        {
            subject = new PolicySubject(SubjectKind.Nodes, Qualified(nodes, "any", ""));
        }
        else
        {
            var selector = Qualified(rule.EndpointSelector ?? new LabelSelector(new Dictionary<string, string>(), []), "any", "");
            matchesInit = selector.Tests("reserved:init");
            if (ns is not null)
            {
                // Cilium replaces any namespace the selector names with the policy's own.
                selector = new IdentitySelector([.. selector.Requirements.Where(r => r.Key != NetworkVocabulary.NamespaceLabel || r.Operator != "In"), NamespaceIs(ns)]);
            }
            subject = new PolicySubject(SubjectKind.Endpoints, selector);
        }
        var rules = new List<NetworkRule>();
        var requirements = new List<PeerRequirement>();
        foreach (var entry in rule.Ingress.Concat(rule.IngressDeny).Concat(rule.Egress).Concat(rule.EgressDeny))
        {
            Expand(c, entry, ns, matchesInit, rules, requirements);
        }
        var denyIngress = rule.DefaultDenyIngress ?? (rule.Ingress.Count > 0 || rule.IngressDeny.Count > 0);
        var denyEgress = rule.DefaultDenyEgress ?? (rule.Egress.Count > 0 || rule.EgressDeny.Count > 0);
        return new NormalizedRuleSet(rule.Path, subject, denyIngress, denyEgress, rules, requirements, rule.Log);
    }

    private static void Expand(CiliumPolicy c, CiliumPeerRule entry, string? ns, bool matchesInit, List<NetworkRule> into, List<PeerRequirement> requirements)
    {
        foreach (var req in entry.Requires)
        {
            requirements.Add(new PeerRequirement(entry.Direction, entry.Action, CiliumPeerSelector(req.Selector, ns, matchesInit, reservedStays: false),
                new RuleOrigin(c.Ref, c.Source, entry.Path, req.Path, null)));
        }
        var unsupportedHere = c.Unsupported.Where(u => u.Path.StartsWith(entry.Path + ".", StringComparison.Ordinal)).ToList();
        if (entry.Action == RuleAction.Allow && unsupportedHere.Any(u => u.Path == entry.Path + ".authentication"))
        {
            return; // mutual authentication is not enforced yet: the entry allows nothing
        }
        var peers = new List<(Peer Peer, string? Path)>();
        peers.AddRange(entry.Endpoints.Select(e => ((Peer)new EndpointPeer(CiliumPeerSelector(e.Selector, ns, matchesInit, reservedStays: true)), (string?)e.Path)));
        peers.AddRange(entry.Nodes.Select(n => ((Peer)new NodePeer(Qualified(n.Selector, "any", "")), (string?)n.Path)));
        peers.AddRange(entry.Cidrs.Select(b => ((Peer)new CidrPeer(b.Cidr, b.Except), (string?)b.Path)));
        peers.AddRange(entry.Entities.Select(e => ((Peer)new EntityPeer(e.Entity), (string?)e.Path)));
        if (entry.HasUnsupportedPeers && entry.Action == RuleAction.Deny)
        {
            // A deny whose peers cannot be resolved yet denies its ports to every peer: never less than written.
            peers.Add((new EntityPeer("all"), unsupportedHere.FirstOrDefault(u => u.Effect == UnsupportedEffect.DeniesAllPeers)?.Path));
        }
        if (entry.WildcardPeer && (entry.ToPorts.Count > 0 || entry.Icmps.Count > 0))
        {
            peers.Add((new EntityPeer("all"), null)); // ports without peers: from or to any peer
        }
        var l4 = new List<(L4Match L4, string? Path)>();
        if (entry.ToPorts.Count == 0 && entry.Icmps.Count == 0)
        {
            l4.Add((AnyTraffic.Instance, null));
        }
        foreach (var portRule in entry.ToPorts.Where(pr => !pr.HasUnsupportedParts))
        {
            l4.AddRange(portRule.Ports.Select(p => (CiliumPort(p), (string?)p.Path)));
        }
        l4.AddRange(entry.Icmps.Select(i => ((L4Match)new IcmpMatch(i.Family, i.Type), (string?)i.Path)));
        foreach (var peer in peers)
        {
            foreach (var match in l4)
            {
                into.Add(new NetworkRule(entry.Direction, entry.Action, peer.Peer, match.L4, new RuleOrigin(c.Ref, c.Source, entry.Path, peer.Path, match.Path)));
            }
        }
    }

    private static L4Match CiliumPort(CiliumPort p) => p switch
    {
        { Protocol: L4Protocol.Vrrp or L4Protocol.Igmp } => new ProtocolMatch(p.Protocol),
        { Port.IsNamed: true } => new NamedPortMatch(p.Protocol, p.Port.Name!),
        { Port.Number: 0 } => new PortMatch(p.Protocol, 0, 65535),
        _ => new PortMatch(p.Protocol, p.Port.Number, p.EndPort ?? p.Port.Number),
    };

    /// <summary>
    /// Cilium's scoping of a peer selector (pkg/k8s/apis/cilium.io/utils getEndpointSelector):
    /// a selector on reserved: labels stays as written; one that names no namespace is limited to
    /// the policy's namespace (a CiliumNetworkPolicy), unless it tests namespace labels, or to
    /// pods of any namespace (a clusterwide policy, except for rules on initializing endpoints).
    /// </summary>
    private static IdentitySelector CiliumPeerSelector(LabelSelector selector, string? ns, bool matchesInit, bool reservedStays)
    {
        var q = Qualified(selector, "any", "");
        if (reservedStays && q.Requirements.Any(r => r.Key.StartsWith("reserved:", StringComparison.Ordinal)))
        {
            return q;
        }
        if (q.Tests(NetworkVocabulary.NamespaceLabel) || q.Tests(AnyNamespaceKey))
        {
            return q;
        }
        if (ns is null)
        {
            return matchesInit ? q : new IdentitySelector([.. q.Requirements, new LabelRequirement(NetworkVocabulary.NamespaceLabel, "Exists", [])]);
        }
        if (q.Requirements.Any(r => r.Key.StartsWith(K8sNamespaceLabelsPrefix, StringComparison.Ordinal) || r.Key.StartsWith(AnyNamespaceLabelsPrefix, StringComparison.Ordinal)))
        {
            return q;
        }
        return new IdentitySelector([.. q.Requirements, NamespaceIs(ns)]);
    }

    private static LabelRequirement NamespaceIs(string ns) => new(NetworkVocabulary.NamespaceLabel, "In", [ns]);

    /// <summary>
    /// The selector as requirements on source-qualified keys: a key without a source gets
    /// <paramref name="source"/> and <paramref name="prefix"/> (e.g. k8s and the namespace-labels
    /// prefix for a namespaceSelector); matchLabels first, sorted, then the expressions.
    /// </summary>
    private static IdentitySelector Qualified(LabelSelector selector, string source, string prefix, params LabelRequirement[] extra)
    {
        string Key(string key) => key.Contains(':', StringComparison.Ordinal) && prefix.Length == 0 ? key : $"{source}:{prefix}{key}";
        var requirements = selector.MatchLabels.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new LabelRequirement(Key(kv.Key), "In", [kv.Value]))
            .Concat(selector.MatchExpressions.Select(e => new LabelRequirement(Key(e.Key), e.Operator, e.Values)))
            .Concat(extra);
        return new IdentitySelector([.. requirements]);
    }
}
