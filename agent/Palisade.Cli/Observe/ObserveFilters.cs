using System.Globalization;
using System.Text.RegularExpressions;
using Palisade.Api.V1;
using Palisade.Events;
using ApiFlowFilter = Palisade.Api.V1.FlowFilter;

namespace Palisade.Cli.Observe;

/// <summary>A bad `observe` flag: the message names the flag, the value and what works.</summary>
internal sealed class ObserveUsageException(string message) : Exception(message);

/// <summary>The filter flags of `palisade observe`, as `hubble observe` takes them.</summary>
internal sealed record ObserveFlags
{
    public IReadOnlyList<string> Pod { get; init; } = [];
    public IReadOnlyList<string> FromPod { get; init; } = [];
    public IReadOnlyList<string> ToPod { get; init; } = [];
    public IReadOnlyList<string> Namespace { get; init; } = [];
    public IReadOnlyList<string> FromNamespace { get; init; } = [];
    public IReadOnlyList<string> ToNamespace { get; init; } = [];
    public IReadOnlyList<string> Label { get; init; } = [];
    public IReadOnlyList<string> FromLabel { get; init; } = [];
    public IReadOnlyList<string> ToLabel { get; init; } = [];
    public IReadOnlyList<string> Ip { get; init; } = [];
    public IReadOnlyList<string> FromIp { get; init; } = [];
    public IReadOnlyList<string> ToIp { get; init; } = [];
    public IReadOnlyList<string> Port { get; init; } = [];
    public IReadOnlyList<string> FromPort { get; init; } = [];
    public IReadOnlyList<string> ToPort { get; init; } = [];
    public IReadOnlyList<string> Protocol { get; init; } = [];
    public IReadOnlyList<string> Verdict { get; init; } = [];
    public IReadOnlyList<string> Type { get; init; } = [];
    public IReadOnlyList<string> TrafficDirection { get; init; } = [];
    public IReadOnlyList<string> Uuid { get; init; } = [];
}

/// <summary>
/// Turns `observe` flags into a GetFlows whitelist the way `hubble observe` does: a flag
/// without a side (--pod, --ip, --label, --port, --namespace) makes two filters, one with it
/// as the source and one as the destination; --from-X and --to-X go into both; the rest
/// (protocol, verdict, type) too. A pod without a namespace is in --namespace (if one was
/// given) or "default".
/// </summary>
internal static partial class ObserveFilters
{
    public static IReadOnlyList<ApiFlowFilter> Whitelist(ObserveFlags f)
    {
        var left = new ApiFlowFilter();
        var right = new ApiFlowFilter();
        var sided = false;
        var defaultNs = f.Namespace.Count == 1 ? f.Namespace[0] : "default";
        string Pod(string p) => p.Contains('/', StringComparison.Ordinal) ? p : $"{defaultNs}/{p}";
        string Ns(string n) => n.TrimEnd('/') + "/";

        void Either(IEnumerable<string> values, Func<ApiFlowFilter, Google.Protobuf.Collections.RepeatedField<string>> source,
            Func<ApiFlowFilter, Google.Protobuf.Collections.RepeatedField<string>> destination)
        {
            foreach (var v in values)
            {
                source(left).Add(v);
                destination(right).Add(v);
                sided = true;
            }
        }

        void Both(IEnumerable<string> values, Func<ApiFlowFilter, Google.Protobuf.Collections.RepeatedField<string>> field)
        {
            foreach (var v in values)
            {
                field(left).Add(v);
                field(right).Add(v);
            }
        }

        Either(f.Pod.Select(Pod), x => x.SourcePod, x => x.DestinationPod);
        // --namespace alone selects the namespace; with pods it only names the pods' namespace.
        if (f.Pod.Count + f.FromPod.Count + f.ToPod.Count == 0)
        {
            Either(f.Namespace.Select(Ns), x => x.SourcePod, x => x.DestinationPod);
        }
        Either(f.Label, x => x.SourceLabel, x => x.DestinationLabel);
        Either(f.Ip, x => x.SourceIp, x => x.DestinationIp);
        Either(f.Port, x => x.SourcePort, x => x.DestinationPort);
        Both(f.FromPod.Select(Pod).Concat(f.FromNamespace.Select(Ns)), x => x.SourcePod);
        Both(f.ToPod.Select(Pod).Concat(f.ToNamespace.Select(Ns)), x => x.DestinationPod);
        Both(f.FromLabel, x => x.SourceLabel);
        Both(f.ToLabel, x => x.DestinationLabel);
        Both(f.FromIp, x => x.SourceIp);
        Both(f.ToIp, x => x.DestinationIp);
        Both(f.FromPort, x => x.SourcePort);
        Both(f.ToPort, x => x.DestinationPort);
        Both(f.Protocol, x => x.Protocol);
        Both(f.Uuid, x => x.Uuid);
        foreach (var v in f.Verdict)
        {
            var verdict = Verdict(v);
            left.Verdict.Add(verdict);
            right.Verdict.Add(verdict);
        }
        foreach (var t in f.Type)
        {
            var type = EventType(t);
            left.EventType.Add(type);
            right.EventType.Add(type.Clone());
        }
        foreach (var d in f.TrafficDirection)
        {
            var direction = d.ToLowerInvariant() switch
            {
                "ingress" => Palisade.Api.V1.TrafficDirection.Ingress,
                "egress" => Palisade.Api.V1.TrafficDirection.Egress,
                _ => throw new ObserveUsageException($"--traffic-direction: \"{d}\" is not a direction; use ingress or egress."),
            };
            left.TrafficDirection.Add(direction);
            right.TrafficDirection.Add(direction);
        }
        if (left.Equals(new ApiFlowFilter()))
        {
            return [];
        }
        return sided ? [left, right] : [left];
    }

    private static Verdict Verdict(string v)
    {
        foreach (var verdict in Enum.GetValues<FlowVerdict>())
        {
            if (verdict != FlowVerdict.Unknown && string.Equals(FlowNames.Verdict(verdict), v, StringComparison.OrdinalIgnoreCase))
            {
                return (Verdict)verdict;
            }
        }
        throw new ObserveUsageException($"--verdict: \"{v}\" is not a verdict; use FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED or TRANSLATED.");
    }

    private static EventTypeFilter EventType(string t) => t.ToLowerInvariant() switch
    {
        "drop" => new EventTypeFilter { Type = FlowEventType.Drop },
        "trace" => new EventTypeFilter { Type = FlowEventType.Trace },
        "policy-verdict" => new EventTypeFilter { Type = FlowEventType.PolicyVerdict },
        _ => throw new ObserveUsageException($"--type: \"{t}\" is not a flow type this agent reports; use drop, trace or policy-verdict."),
    };

    /// <summary>--since/--until: a time (RFC 3339) or a duration before <paramref name="now"/> ("30s", "5m", "1h30m", as Go writes them).</summary>
    public static DateTimeOffset Time(string flag, string value, DateTimeOffset now)
    {
        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return time;
        }
        var parts = DurationPart().Matches(value);
        if (value.Length > 0 && parts.Sum(m => m.Length) == value.Length)
        {
            var total = TimeSpan.Zero;
            foreach (Match m in parts)
            {
                var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                total += m.Groups[2].Value switch
                {
                    "h" => TimeSpan.FromHours(n),
                    "m" => TimeSpan.FromMinutes(n),
                    "s" => TimeSpan.FromSeconds(n),
                    "ms" => TimeSpan.FromMilliseconds(n),
                    _ => TimeSpan.FromMicroseconds(n),
                };
            }
            return now - total;
        }
        throw new ObserveUsageException($"{flag}: \"{value}\" is neither a duration (30s, 5m, 1h30m) nor a time (2026-12-02T05:00:00Z).");
    }

    [GeneratedRegex(@"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs)")]
    private static partial Regex DurationPart();
}
