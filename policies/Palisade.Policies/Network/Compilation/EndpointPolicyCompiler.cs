using System.Net;
using System.Net.Sockets;

namespace Palisade.Policies.Network.Compilation;

/// <summary>
/// Compiles the normalised policies of a node into the policy map of one endpoint: per
/// direction its mode and the entries (identity, direction, protocol, port prefix) -> allow,
/// deny or audit, with the rule each comes from. Pure; the lookup the entries are written for
/// is the one bpf/include/pal_netpol.h describes and <see cref="PolicyExplainer"/> runs.
/// </summary>
public static class EndpointPolicyCompiler
{
    private const byte Tcp = 6, Udp = 17, Sctp = 132, Icmp = 1, Icmp6 = 58, Vrrp = 112, Igmp = 2;
    private static readonly CidrPrefix AnyIpv4 = new(IPAddress.Any, 0);
    private static readonly CidrPrefix AnyIpv6 = new(IPAddress.IPv6Any, 0);

    private enum Strength { Allow, AuditDeny, Deny }

    private sealed record Raw(uint Identity, PolicyDirection Direction, byte Protocol, ushort Port, byte L4Prefix, Strength Strength, uint Rule);

    public static EndpointPolicy Compile(CompilationInput input, PolicySubjectEndpoint endpoint, RuleTable rules, CidrIdentityAllocator cidrs)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(cidrs);
        var cidrIds = AllocateCidrs(input.Policies, cidrs);
        var universe = new Universe(input, cidrIds);
        var namespaceAudit = endpoint.Namespace is { } ns && input.Audit.Namespaces.Contains(ns);
        var selected = input.Policies
            .SelectMany(p => p.RuleSets.Select(s => (Policy: p, Set: s)))
            .Where(x => Selects(x.Set.Subject, endpoint))
            .ToList();
        var unsupported = selected.Select(x => x.Policy).Distinct().SelectMany(p => p.Unsupported).Distinct().ToList();
        var raw = new List<Raw>();
        var statuses = new List<RuleStatus>();
        var directions = new Dictionary<PolicyDirection, DirectionPolicy>();
        foreach (var direction in new[] { PolicyDirection.Ingress, PolicyDirection.Egress })
        {
            var traffic = direction == PolicyDirection.Ingress ? TrafficDirection.Ingress : TrafficDirection.Egress;
            var enabling = selected.Where(x => direction == PolicyDirection.Ingress ? x.Set.DefaultDenyIngress : x.Set.DefaultDenyEgress).ToList();
            var enabledBy = enabling.Select(x => new RuleOrigin(x.Policy.Policy, x.Policy.Source, x.Set.Path, null, null)).Distinct().ToList();
            var realDefaultDeny = !namespaceAudit && (input.Mode == EnforcementMode.Always || enabling.Any(x => !input.Audit.Policies.Contains(x.Policy.Policy)));
            var directionRules = selected.SelectMany(x => x.Set.Rules.Where(r => r.Direction == traffic).Select(r => (x.Policy, Rule: r))).ToList();
            var mode = input.Mode switch
            {
                EnforcementMode.Never => DirectionMode.Off,
                _ when realDefaultDeny => DirectionMode.Enforce,
                EnforcementMode.Always => DirectionMode.Audit, // always, in an audited namespace
                _ when enabling.Count > 0 => DirectionMode.Audit,
                _ when directionRules.Count > 0 => DirectionMode.Enforce, // deny rules without default deny: a wildcard allow below
                _ => DirectionMode.Off,
            };
            directions[direction] = new DirectionPolicy(mode, enabledBy);
            if (mode == DirectionMode.Off)
            {
                statuses.AddRange(directionRules.Select(x => new RuleStatus(x.Rule.Origin, 0, "policy enforcement is never: not enforced")));
                continue;
            }
            if (enabling.Count == 0 && input.Mode != EnforcementMode.Always)
            {
                raw.Add(new Raw(ReservedIdentities.Any, direction, 0, 0, 0, Strength.Allow, 0));
            }
            var requirements = selected.SelectMany(x => x.Set.Requirements).Where(r => r.Direction == traffic).ToList();
            foreach (var (policy, rule) in directionRules)
            {
                var audit = namespaceAudit || input.Audit.Policies.Contains(policy.Policy);
                if (rule.Action == RuleAction.Allow && audit && realDefaultDeny)
                {
                    statuses.Add(new RuleStatus(rule.Origin, 0, "audit mode: an audited policy's allow rules do not open traffic that enforced policies drop"));
                    continue;
                }
                var strength = rule.Action == RuleAction.Allow ? Strength.Allow : audit ? Strength.AuditDeny : Strength.Deny;
                var notes = new List<string>();
                var peers = universe.Resolve(rule.Peer, rule.Action, rule.Origin.Policy.Kind, notes);
                if (rule.Peer is EndpointPeer)
                {
                    var required = requirements.Where(r => r.Action == rule.Action).ToList();
                    peers = [.. peers.Where(id => required.All(r => universe.Matches(id, r.Selector)))];
                }
                var index = rules.Intern(rule.Origin);
                var before = raw.Count;
                foreach (var id in peers)
                {
                    foreach (var (proto, port, prefix) in L4(rule.L4, direction, id, endpoint, universe, notes))
                    {
                        raw.Add(new Raw(id, direction, proto, port, prefix, strength, index));
                    }
                }
                var count = raw.Count - before;
                if (count == 0 && notes.Count == 0)
                {
                    notes.Add($"{rule.Peer} matches no identity known now");
                }
                statuses.Add(new RuleStatus(rule.Origin, count, notes.Count == 0 ? null : string.Join("; ", notes.Distinct())));
            }
        }
        var entries = Resolve(raw);
        var cidrList = cidrIds.Select(kv => new CidrIdentity(kv.Key, kv.Value)).OrderBy(c => c.Identity).ToList();
        return new EndpointPolicy(directions[PolicyDirection.Ingress], directions[PolicyDirection.Egress], entries, rules, cidrList, statuses, unsupported);
    }

    private static bool Selects(PolicySubject subject, PolicySubjectEndpoint endpoint) =>
        (subject.Kind == SubjectKind.Nodes) == endpoint.IsHost && subject.Selector.Matches(endpoint.Labels);

    /// <summary>
    /// Whether any rule set of <paramref name="policy"/> applies to <paramref name="endpoint"/>.
    /// A policy that does not can change the endpoint's compilation only through the CIDR
    /// identities every policy contributes to (<see cref="CidrPrefixes"/>), so after a change
    /// that leaves those alone only the endpoints the old or new version selects need compiling.
    /// </summary>
    public static bool Selects(NormalizedPolicy policy, PolicySubjectEndpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(endpoint);
        return policy.RuleSets.Any(s => Selects(s.Subject, endpoint));
    }

    /// <summary>
    /// Every prefix the policies name (and the /0 of a family for world-ipv4/-ipv6): each gets a
    /// CIDR identity, so the ipcache is the same for every endpoint whatever policies select it.
    /// </summary>
    public static HashSet<CidrPrefix> CidrPrefixes(IReadOnlyList<NormalizedPolicy> policies)
    {
        ArgumentNullException.ThrowIfNull(policies);
        return [.. policies.SelectMany(p => p.Rules).SelectMany(PrefixesOf)];
    }

    private static IEnumerable<CidrPrefix> PrefixesOf(NetworkRule rule) => rule.Peer switch
    {
        CidrPeer c => c.Except.Prepend(c.Cidr),
        EntityPeer { Entity: "world-ipv4" } => [AnyIpv4],
        EntityPeer { Entity: "world-ipv6" } => [AnyIpv6],
        _ => [],
    };

    private static Dictionary<CidrPrefix, uint> AllocateCidrs(IReadOnlyList<NormalizedPolicy> policies, CidrIdentityAllocator cidrs)
    {
        // In the order the policies name them, so numbers follow the files.
        var result = new Dictionary<CidrPrefix, uint>();
        foreach (var prefix in policies.SelectMany(p => p.Rules).SelectMany(PrefixesOf))
        {
            result[prefix] = cidrs.IdentityOf(prefix);
        }
        return result;
    }

    private static IEnumerable<(byte Proto, ushort Port, byte Prefix)> L4(L4Match match, PolicyDirection direction, uint peer, PolicySubjectEndpoint endpoint, Universe universe, List<string> notes)
    {
        switch (match)
        {
            case AnyTraffic:
                yield return (0, 0, 0);
                break;
            case PortMatch p:
                foreach (var proto in Protocols(p.Protocol))
                {
                    if (p.EveryPort)
                    {
                        yield return (proto, 0, 8);
                        continue;
                    }
                    foreach (var (port, bits) in PortPrefixes.Split(p.First, p.Last))
                    {
                        yield return (proto, port, (byte)(8 + bits));
                    }
                }
                break;
            case NamedPortMatch n:
                // Ingress: the port of the endpoint itself; egress: the peer's (Cilium: per identity, and
                // every endpoint's for peers that are not endpoints).
                var ports = direction == PolicyDirection.Ingress ? endpoint.NamedPorts : universe.NamedPortsOf(peer);
                var found = ports.Where(np => np.Name == n.Name && (n.Protocol == L4Protocol.Any || np.Protocol == n.Protocol)).Distinct().ToList();
                if (found.Count == 0)
                {
                    notes.Add($"named port \"{n.Name}\" is not a port of {(direction == PolicyDirection.Ingress ? "this endpoint" : $"identity {peer}")}: nothing matched for it");
                }
                foreach (var np in found)
                {
                    foreach (var proto in Protocols(np.Protocol))
                    {
                        yield return (proto, (ushort)np.Port, 24);
                    }
                }
                break;
            case IcmpMatch i:
                yield return (i.Family == IpFamily.IPv6 ? Icmp6 : Icmp, i.Type, 24);
                break;
            case ProtocolMatch { Protocol: L4Protocol.Vrrp }:
                yield return (Vrrp, 0, 8);
                break;
            case ProtocolMatch { Protocol: L4Protocol.Igmp }:
                yield return (Igmp, 0, 8);
                break;
        }
    }

    private static byte[] Protocols(L4Protocol protocol) => protocol switch
    {
        L4Protocol.Tcp => [Tcp],
        L4Protocol.Udp => [Udp],
        L4Protocol.Sctp => [Sctp],
        L4Protocol.Vrrp => [Vrrp],
        L4Protocol.Igmp => [Igmp],
        _ => [Tcp, Udp, Sctp], // Cilium's ANY with a port: the port-carrying protocols
    };

    // One entry per key, strongest first (deny > audit deny > allow); then an allow (or audit
    // deny) that lies under a stronger entry of the same identity is dropped, because the LPM
    // lookup would return it instead of the deny. Entries of identity 0 need no such pass:
    // the datapath looks up both identities and ranks denies first.
    private static List<PolicyMapEntry> Resolve(List<Raw> raw)
    {
        var merged = raw
            .GroupBy(r => (r.Identity, r.Direction, r.Protocol, r.Port, r.L4Prefix))
            .Select(g =>
            {
                var strength = g.Max(r => r.Strength);
                var refs = g.Where(r => r.Strength == strength).Select(r => r.Rule).Distinct().Order().ToList();
                var flags = strength switch
                {
                    Strength.Deny => PolicyEntryFlags.Deny,
                    Strength.AuditDeny => PolicyEntryFlags.Deny | PolicyEntryFlags.Audit,
                    _ => PolicyEntryFlags.None,
                };
                return (Strength: strength, Entry: new PolicyMapEntry(g.Key.Identity, g.Key.Direction, g.Key.Protocol, g.Key.Port, g.Key.L4Prefix, flags, refs));
            })
            .ToList();
        var kept = new List<PolicyMapEntry>();
        foreach (var group in merged.GroupBy(m => (m.Entry.Identity, m.Entry.Direction)))
        {
            var list = group.ToList();
            foreach (var (strength, entry) in list)
            {
                var shadowed = list.Any(o => o.Strength > strength && !ReferenceEquals(o.Entry, entry) && entry.IsWithin(o.Entry));
                if (!shadowed)
                {
                    kept.Add(entry);
                }
            }
        }
        return [.. kept.OrderBy(e => e.Direction).ThenBy(e => e.Identity).ThenBy(e => e.Protocol).ThenBy(e => e.Port).ThenBy(e => e.L4Prefix)];
    }

    /// <summary>The identities a compilation can name, with their labels, and how each kind of peer maps onto them.</summary>
    private sealed class Universe
    {
        private readonly CompilationInput _input;
        private readonly Dictionary<CidrPrefix, uint> _cidrs;
        private readonly Dictionary<uint, IReadOnlyDictionary<string, string>> _labels = [];
        private readonly Dictionary<uint, IReadOnlyList<NamedPort>> _ports = [];
        private readonly IReadOnlyList<NamedPort> _allPorts;

        public Universe(CompilationInput input, Dictionary<CidrPrefix, uint> cidrs)
        {
            _input = input;
            _cidrs = cidrs;
            foreach (var (id, name) in ReservedIdentities.Names)
            {
                _labels[id] = new Dictionary<string, string>(StringComparer.Ordinal) { [$"reserved:{name}"] = "" };
            }
            foreach (var (prefix, id) in cidrs)
            {
                _labels[id] = new Dictionary<string, string>(StringComparer.Ordinal) { [$"cidr:{prefix}"] = "", ["reserved:world"] = "" };
            }
            foreach (var identity in input.Identities)
            {
                _labels[identity.Id] = identity.Labels;
                _ports[identity.Id] = identity.NamedPorts;
            }
            _allPorts = [.. input.Identities.SelectMany(i => i.NamedPorts).Distinct()];
        }

        // The CIDR identities sorted by (family, address): those inside a prefix are one run of
        // it, found by binary search, so a policy of N CIDR rules compiles in N log N, not N².
        private List<(CidrPrefix Prefix, uint Id)>? _sorted;

        private IEnumerable<(CidrPrefix Prefix, uint Id)> Inside(CidrPrefix outer)
        {
            _sorted ??= [.. _cidrs.Select(kv => (kv.Key, kv.Value)).OrderBy(x => x.Key.Family).ThenBy(x => x.Key.First).ThenBy(x => x.Key.Length)];
            var (start, end) = (outer.First, outer.Last);
            int lo = 0, hi = _sorted.Count;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                var x = _sorted[mid].Prefix;
                if (x.Family < outer.Family || (x.Family == outer.Family && x.First < start))
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }
            for (var i = lo; i < _sorted.Count && _sorted[i].Prefix.Family == outer.Family && _sorted[i].Prefix.First <= end; i++)
            {
                if (outer.Contains(_sorted[i].Prefix))
                {
                    yield return _sorted[i];
                }
            }
        }

        public bool Matches(uint id, IdentitySelector selector) => _labels.TryGetValue(id, out var labels) && selector.Matches(labels);

        public IReadOnlyList<NamedPort> NamedPortsOf(uint id) => _ports.TryGetValue(id, out var ports) ? ports : _allPorts;

        public List<uint> Resolve(Peer peer, RuleAction action, NetworkPolicyKind kind, List<string> notes)
        {
            switch (peer)
            {
                case EndpointPeer e:
                    return [.. _labels.Keys.Where(id => e.Selector.Matches(_labels[id])).Order()];
                case CidrPeer c:
                    var ids = Inside(c.Cidr).Where(kv => !c.Except.Any(x => x.Contains(kv.Prefix))).Select(kv => kv.Id).ToList();
                    if (kind == NetworkPolicyKind.NetworkPolicy)
                    {
                        ids.AddRange(PodsIn(c, action, notes));
                    }
                    return [.. ids.Order()];
                case EntityPeer en:
                    return Entity(en.Entity, notes);
                case NodePeer n:
                    return Nodes(n, action, notes);
                default:
                    notes.Add($"peer {peer} is not compiled");
                    return [];
            }
        }

        // Kubernetes: an ipBlock also selects pods by address. The map is keyed by identity, so an
        // identity counts only if all its addresses of the block's family are in the block (a
        // dual-stack pod's IPv6 address says nothing about an IPv4 block); one with pods on both
        // sides is left out of an allow (NetworkPolicy has no deny), never let in whole. An allowed
        // identity is allowed in every family: the entry cannot tell its IPv4 from its IPv6 traffic,
        // and the status says so.
        private IEnumerable<uint> PodsIn(CidrPeer c, RuleAction action, List<string> notes)
        {
            var family = c.Cidr.Family;
            foreach (var identity in _input.Identities.Where(i => i.Addresses is { Count: > 0 }))
            {
                var same = identity.Addresses!.Where(a => a.AddressFamily == family).ToList();
                if (same.Count == 0)
                {
                    continue;
                }
                var inside = same.Count(a => In(c, a));
                if (inside == same.Count || (inside > 0 && action == RuleAction.Deny))
                {
                    if (same.Count < identity.Addresses!.Count && action == RuleAction.Allow)
                    {
                        notes.Add($"identity {identity.Id} is allowed by its {FamilyName(family)} addresses in {c.Cidr}; the entry allows its {FamilyName(Other(family))} traffic too");
                    }
                    yield return identity.Id;
                }
                else if (inside > 0)
                {
                    notes.Add($"identity {identity.Id} has {inside} of {same.Count} {FamilyName(family)} addresses in {c.Cidr}: allows none of them");
                }
            }
        }

        private static AddressFamily Other(AddressFamily f) => f == AddressFamily.InterNetwork ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;

        private static string FamilyName(AddressFamily f) => f == AddressFamily.InterNetwork ? "IPv4" : "IPv6";

        private static bool In(CidrPeer c, IPAddress address)
        {
            var host = new CidrPrefix(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
            return c.Cidr.Contains(host) && !c.Except.Any(x => x.Contains(host));
        }

        private List<uint> Entity(string entity, List<string> notes)
        {
            switch (entity)
            {
                case "all": return [ReservedIdentities.Any];
                case "world": return [ReservedIdentities.World, .. _cidrs.Values.Order()];
                case "world-ipv4": return [.. _cidrs.Where(kv => kv.Key.Family == AddressFamily.InterNetwork).Select(kv => kv.Value).Order()];
                case "world-ipv6": return [.. _cidrs.Where(kv => kv.Key.Family == AddressFamily.InterNetworkV6).Select(kv => kv.Value).Order()];
                case "cluster":
                    return [ReservedIdentities.Host, ReservedIdentities.Unmanaged, ReservedIdentities.Health, ReservedIdentities.Init,
                        ReservedIdentities.RemoteNode, ReservedIdentities.KubeApiServer, .. _input.Identities.Select(i => i.Id).Order()];
                case "host": return [ReservedIdentities.Host];
                case "remote-node": return [ReservedIdentities.RemoteNode];
                case "kube-apiserver": return [ReservedIdentities.KubeApiServer];
                case "init": return [ReservedIdentities.Init];
                case "health": return [ReservedIdentities.Health];
                case "unmanaged": return [ReservedIdentities.Unmanaged];
                case "none": return [];
                default:
                    notes.Add($"entity \"{entity}\" has no identity in Palisade (no L7 ingress proxy): it matches nothing");
                    return [];
            }
        }

        // Remote nodes share identity 6: a selector that matches only some of them cannot be
        // written exactly, so an allow gets none of them and a deny all of them.
        private List<uint> Nodes(NodePeer n, RuleAction action, List<string> notes)
        {
            var result = new List<uint>();
            if (_input.Nodes.Any(x => x.IsLocal && n.Selector.Matches(x.Labels)))
            {
                result.Add(ReservedIdentities.Host);
            }
            var remote = _input.Nodes.Where(x => !x.IsLocal).ToList();
            var matched = remote.Count(x => n.Selector.Matches(x.Labels));
            if (matched > 0 && matched == remote.Count)
            {
                result.Add(ReservedIdentities.RemoteNode);
            }
            else if (matched > 0)
            {
                notes.Add($"selects {matched} of {remote.Count} remote nodes, which share one identity: " +
                    (action == RuleAction.Allow ? "allows none of them" : "denies all of them"));
                if (action == RuleAction.Deny)
                {
                    result.Add(ReservedIdentities.RemoteNode);
                }
            }
            return result;
        }
    }
}
