using System.Text.RegularExpressions;

namespace Palisade.Agent.NetworkPolicy;

/// <summary>Reads a comma-separated list of namespaces (policy-audit-namespaces, `palisade policy audit --namespaces`).</summary>
public static partial class AuditNamespaces
{
    public static HashSet<string> Parse(string text, string field, List<string> errors)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!NamespaceName().IsMatch(part))
            {
                errors.Add($"{field}: \"{part}\" is not a namespace name (lower-case letters, digits and '-', at most 63 characters). Fix: a comma-separated list such as \"shop,payments\".");
                continue;
            }
            result.Add(part);
        }
        return result;
    }

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex NamespaceName();
}

/// <summary>
/// The flow encoders' view of the network-policy engine: encoding options are made before the
/// engine exists, so they hold this and the engine plugs itself in when it starts.
/// </summary>
public sealed class FlowPolicyRules : Palisade.Events.IFlowPolicyResolver
{
    public Palisade.Events.IFlowPolicyResolver? Target { get; set; }

    public Palisade.Events.FlowPolicyMatch? Resolve(uint rule) => Target?.Resolve(rule);
}
