using System.Globalization;

namespace Palisade.Policies.Network;

/// <summary>
/// A conjunction of label requirements over an identity's labels, every key qualified with
/// its source as Cilium qualifies identity labels ("k8s:app", "reserved:host"); the source
/// "any" matches a label of any source. Empty selects every identity.
/// </summary>
public sealed record IdentitySelector(IReadOnlyList<LabelRequirement> Requirements)
{
    public static readonly IdentitySelector All = new([]);

    /// <summary>Whether an identity with <paramref name="labels"/> (keys "source:key") is selected.</summary>
    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        foreach (var r in Requirements)
        {
            var values = ValuesOf(labels, r.Key);
            var ok = r.Operator switch
            {
                "In" => values.Any(r.Values.Contains),
                "NotIn" => !values.Any(r.Values.Contains),
                "Exists" => values.Count > 0,
                "DoesNotExist" => values.Count == 0,
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>True when a requirement tests <paramref name="key"/> (source-qualified).</summary>
    public bool Tests(string key) => Requirements.Any(r => r.Key == key);

    private static List<string> ValuesOf(IReadOnlyDictionary<string, string> labels, string key)
    {
        var colon = key.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0 && key[..colon] == "any")
        {
            var name = key[(colon + 1)..];
            return [.. labels.Where(kv => kv.Key.IndexOf(':', StringComparison.Ordinal) is var c && c >= 0 && kv.Key[(c + 1)..] == name).Select(kv => kv.Value)];
        }
        return labels.TryGetValue(key, out var v) ? [v] : [];
    }

    public override string ToString() => Requirements.Count == 0 ? "(every identity)" : string.Join(", ", Requirements.Select(Describe));

    private static string Describe(LabelRequirement r) => r.Operator switch
    {
        "In" when r.Values.Count == 1 => $"{r.Key}={r.Values[0]}",
        "In" => $"{r.Key} in ({string.Join(",", r.Values)})",
        "NotIn" => $"{r.Key} notin ({string.Join(",", r.Values)})",
        "Exists" => r.Key,
        _ => $"!{r.Key}",
    };
}

/// <summary>What a rule set applies to: endpoints (pods and the agent's special endpoints) or the host endpoint of nodes.</summary>
public enum SubjectKind
{
    Endpoints,
    Nodes,
}

/// <summary>The endpoints (or nodes) a policy applies to, with its namespace scope folded into the selector.</summary>
public sealed record PolicySubject(SubjectKind Kind, IdentitySelector Selector)
{
    public override string ToString() => $"{(Kind == SubjectKind.Nodes ? "nodes" : "endpoints")} {Selector}";
}

/// <summary>The other side of a connection a rule names.</summary>
public abstract record Peer;

/// <summary>Endpoints (pods, and reserved identities for selectors on reserved: labels) by identity labels.</summary>
public sealed record EndpointPeer(IdentitySelector Selector) : Peer
{
    public override string ToString() => $"endpoints {Selector}";
}

/// <summary>Nodes by their node labels (fromNodes/toNodes).</summary>
public sealed record NodePeer(IdentitySelector Selector) : Peer
{
    public override string ToString() => $"nodes {Selector}";
}

/// <summary>One of Cilium's entities (see <see cref="NetworkVocabulary.Entities"/>); a NetworkPolicy rule without peers uses "all".</summary>
public sealed record EntityPeer(string Entity) : Peer
{
    public override string ToString() => $"entity {Entity}";
}

/// <summary>Addresses in <see cref="Cidr"/> outside every prefix of <see cref="Except"/>.</summary>
public sealed record CidrPeer(CidrPrefix Cidr, IReadOnlyList<CidrPrefix> Except) : Peer
{
    public override string ToString() => Except.Count == 0 ? $"cidr {Cidr}" : $"cidr {Cidr} except {string.Join(", ", Except)}";
}

/// <summary>The traffic a rule matches at layer 4.</summary>
public abstract record L4Match;

/// <summary>Every protocol and port, ICMP included (a rule without ports).</summary>
public sealed record AnyTraffic : L4Match
{
    public static readonly AnyTraffic Instance = new();

    public override string ToString() => "any";
}

/// <summary>Destination ports <see cref="First"/>..<see cref="Last"/> of <see cref="Protocol"/> (Any: TCP, UDP and SCTP).</summary>
public sealed record PortMatch(L4Protocol Protocol, int First, int Last) : L4Match
{
    public bool EveryPort => First == 0 && Last == 65535;

    public override string ToString() => EveryPort ? $"*/{Protocol.Name()}"
        : First == Last ? $"{First.ToString(CultureInfo.InvariantCulture)}/{Protocol.Name()}"
        : $"{First.ToString(CultureInfo.InvariantCulture)}-{Last.ToString(CultureInfo.InvariantCulture)}/{Protocol.Name()}";
}

/// <summary>A container port name, resolved per destination pod (ingress: the selected pod; egress: the peer).</summary>
public sealed record NamedPortMatch(L4Protocol Protocol, string Name) : L4Match
{
    public override string ToString() => $"{Name}/{Protocol.Name()}";
}

/// <summary>An ICMP or ICMPv6 type (any code).</summary>
public sealed record IcmpMatch(IpFamily Family, byte Type) : L4Match
{
    public override string ToString() => $"{(Family == IpFamily.IPv6 ? "icmpv6" : "icmp")} type {Type.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>A port-less IP protocol (VRRP, IGMP).</summary>
public sealed record ProtocolMatch(L4Protocol Protocol) : L4Match
{
    public override string ToString() => Protocol.Name();
}

/// <summary>
/// Where a rule was written: the policy, its file, the rule's path, and the peer and port
/// entries it came from. Verdicts name this ("allowed by CiliumNetworkPolicy default/l4-rule
/// spec.ingress[0] ...").
/// </summary>
public sealed record RuleOrigin(PolicyRef Policy, string Source, string Rule, string? Peer, string? Port)
{
    public override string ToString()
    {
        var parts = new[] { Peer, Port }.Where(x => x is not null).Select(x => x!.StartsWith(Rule + ".", StringComparison.Ordinal) ? x[(Rule.Length + 1)..] : x).ToList();
        return parts.Count == 0 ? $"{Policy} {Rule} ({Source})" : $"{Policy} {Rule} [{string.Join(", ", parts)}] ({Source})";
    }
}

/// <summary>One flat rule: direction, allow or deny, one peer, one L4 match, and its origin.</summary>
public sealed record NetworkRule(TrafficDirection Direction, RuleAction Action, Peer Peer, L4Match L4, RuleOrigin Origin)
{
    public override string ToString() => $"{Direction.ToString().ToLowerInvariant()} {Action.ToString().ToLowerInvariant()} {Peer} {L4}";
}

/// <summary>
/// A fromRequires/toRequires selector: it grants nothing; every endpoint peer of the rules of
/// the same direction and action that select the same subject must also match it (Cilium's
/// semantics, across policies).
/// </summary>
public sealed record PeerRequirement(TrafficDirection Direction, RuleAction Action, IdentitySelector Selector, RuleOrigin Origin);

/// <summary>
/// The rules of one subject: one per NetworkPolicy, one per spec of a Cilium policy.
/// DefaultDeny* says whether the subject drops what no rule allows in that direction.
/// </summary>
public sealed record NormalizedRuleSet(
    string Path,
    PolicySubject Subject,
    bool DefaultDenyIngress,
    bool DefaultDenyEgress,
    IReadOnlyList<NetworkRule> Rules,
    IReadOnlyList<PeerRequirement> Requirements,
    string? Log);

/// <summary>The normalised form of a policy the compiler consumes: its rule sets and the parts not enforced yet.</summary>
public sealed record NormalizedPolicy(PolicyRef Policy, string Source, IReadOnlyList<NormalizedRuleSet> RuleSets, IReadOnlyList<UnsupportedPart> Unsupported)
{
    public IEnumerable<NetworkRule> Rules => RuleSets.SelectMany(s => s.Rules);
}
