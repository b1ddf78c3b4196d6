namespace Palisade.Policies.Network.Compilation;

/// <summary>A policy verdict as Hubble names it.</summary>
public enum PolicyVerdict
{
    Forwarded,
    Dropped,
    Audit,
}

/// <summary>Why a packet was dropped (Hubble's drop reasons); None when it was not.</summary>
public enum PolicyDropReason
{
    None,

    /// <summary>No rule allowed it (default deny), Cilium's POLICY_DENIED.</summary>
    PolicyDenied,

    /// <summary>A deny rule matched, Cilium's POLICY_DENY.</summary>
    PolicyDeny,
}

/// <summary>The verdict of one direction of one endpoint, the map entry that decided it (null: the direction's default) and its rules.</summary>
public sealed record DirectionVerdict(PolicyDirection Direction, PolicyVerdict Verdict, PolicyDropReason Reason, PolicyMapEntry? Entry, IReadOnlyList<RuleOrigin> Rules, string Why)
{
    public override string ToString() => $"{Direction.ToString().ToLowerInvariant()}: {Verdict} ({Why})";
}

/// <summary>The verdict for a connection from one identity to another: egress at the source, then ingress at the destination.</summary>
public sealed record Explanation(PolicyVerdict Verdict, PolicyDropReason Reason, DirectionVerdict? Egress, DirectionVerdict? Ingress)
{
    /// <summary>The rules that decided the verdict: those of the step that dropped, or of both steps.</summary>
    public IReadOnlyList<RuleOrigin> DecidingRules =>
        Egress is { Verdict: PolicyVerdict.Dropped } e ? e.Rules
        : [.. (Egress?.Rules ?? []).Concat(Ingress?.Rules ?? [])];

    public override string ToString() => $"{Verdict}{(Reason == PolicyDropReason.None ? "" : $" {Reason}")}: {string.Join("; ", new[] { Egress, Ingress }.Where(x => x is not null))}";
}

/// <summary>
/// The verdict the datapath gives, computed from the compiled entries with the lookup of
/// bpf/include/pal_netpol.h, so that an explanation cannot disagree with the map.
/// </summary>
public static class PolicyExplainer
{
    /// <summary>
    /// Explains traffic from <paramref name="fromIdentity"/> to <paramref name="toIdentity"/> on
    /// <paramref name="protocol"/>/<paramref name="port"/> (ICMP: the type). A null policy is a
    /// side that is not a local endpoint: it checks nothing.
    /// </summary>
    public static Explanation Explain(EndpointPolicy? from, uint fromIdentity, EndpointPolicy? to, uint toIdentity, byte protocol, ushort port)
    {
        var egress = from is null ? null : Decide(from, PolicyDirection.Egress, toIdentity, protocol, port);
        if (egress is { Verdict: PolicyVerdict.Dropped })
        {
            return new Explanation(PolicyVerdict.Dropped, egress.Reason, egress, null);
        }
        var ingress = to is null ? null : Decide(to, PolicyDirection.Ingress, fromIdentity, protocol, port);
        if (ingress is { Verdict: PolicyVerdict.Dropped })
        {
            return new Explanation(PolicyVerdict.Dropped, ingress.Reason, egress, ingress);
        }
        var audit = egress?.Verdict == PolicyVerdict.Audit || ingress?.Verdict == PolicyVerdict.Audit;
        return new Explanation(audit ? PolicyVerdict.Audit : PolicyVerdict.Forwarded, PolicyDropReason.None, egress, ingress);
    }

    /// <summary>One direction of one endpoint: the two lookups (identity, then identity 0) and the ranking of pal_netpol.h.</summary>
    public static DirectionVerdict Decide(EndpointPolicy policy, PolicyDirection direction, uint remote, byte protocol, ushort port)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var mode = policy.For(direction).Mode;
        if (mode == DirectionMode.Off)
        {
            return new DirectionVerdict(direction, PolicyVerdict.Forwarded, PolicyDropReason.None, null, [], "no policy selects this endpoint for " + direction.ToString().ToLowerInvariant());
        }
        var a = Lookup(policy.Entries, direction, remote, protocol, port);
        var b = remote == ReservedIdentities.Any ? null : Lookup(policy.Entries, direction, ReservedIdentities.Any, protocol, port);
        PolicyMapEntry? chosen =
            First(a, b, e => e.IsDeny && !e.IsAudit)
            ?? First(a, b, e => e.IsDeny)
            ?? (a is null ? b : b is null ? a : b.L4Prefix > a.L4Prefix ? b : a);
        if (chosen is null)
        {
            return mode == DirectionMode.Audit
                ? new DirectionVerdict(direction, PolicyVerdict.Audit, PolicyDropReason.None, null, policy.For(direction).EnabledBy, "audit mode: no rule allows it, passed")
                : new DirectionVerdict(direction, PolicyVerdict.Dropped, PolicyDropReason.PolicyDenied, null, policy.For(direction).EnabledBy, "no rule allows it (default deny)");
        }
        var rules = chosen.RuleRefs.Select(r => policy.Rules[r]).OfType<RuleOrigin>().ToList();
        if (chosen.IsDeny)
        {
            return chosen.IsAudit
                ? new DirectionVerdict(direction, PolicyVerdict.Audit, PolicyDropReason.None, chosen, rules, "audit mode: a deny rule matches, passed")
                : new DirectionVerdict(direction, PolicyVerdict.Dropped, PolicyDropReason.PolicyDeny, chosen, rules, "a deny rule matches");
        }
        return new DirectionVerdict(direction, PolicyVerdict.Forwarded, PolicyDropReason.None, chosen, rules,
            rules.Count == 0 ? "no policy enables default deny for this direction" : "allowed");
    }

    private static PolicyMapEntry? First(PolicyMapEntry? a, PolicyMapEntry? b, Func<PolicyMapEntry, bool> test) =>
        a is not null && test(a) ? a : b is not null && test(b) ? b : null;

    // The LPM lookup: of the entries of this identity and direction covering the packet, the longest.
    private static PolicyMapEntry? Lookup(IReadOnlyList<PolicyMapEntry> entries, PolicyDirection direction, uint identity, byte protocol, ushort port)
    {
        PolicyMapEntry? best = null;
        foreach (var e in entries)
        {
            if (e.Identity == identity && e.Direction == direction && e.Covers(protocol, port) && (best is null || e.L4Prefix > best.L4Prefix))
            {
                best = e;
            }
        }
        return best;
    }
}
