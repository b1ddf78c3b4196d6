using System.Globalization;
using System.Net;
using Palisade.Events;

namespace Palisade.Datapath.Flows;

/// <summary>A filter that cannot be built: the message names the field, the value and what would work.</summary>
public sealed class FlowFilterException(string message) : Exception(message);

/// <summary>
/// One of Hubble's FlowFilters: every field set must match (AND), and a field matches when any
/// of its values does (OR). Built once from its text values (<see cref="Parse"/>), then
/// matched against each flow.
/// </summary>
public sealed class FlowFilter
{
    private readonly List<PodName> _sourcePod = [], _destinationPod = [];
    private readonly List<LabelSelector> _sourceLabel = [], _destinationLabel = [];
    private readonly List<AddressMatch> _sourceIp = [], _destinationIp = [];
    private readonly List<ushort> _sourcePort = [], _destinationPort = [];
    private readonly List<L4Protocol> _protocol = [];
    private readonly List<FlowVerdict> _verdict = [];
    private readonly List<(int Type, int? SubType)> _eventType = [];
    private readonly List<TrafficDirection> _direction = [];
    private readonly List<bool> _reply = [];
    private readonly List<string> _uuid = [], _nodeName = [];

    /// <summary>Text values of one filter, as Hubble's FlowFilter fields carry them.</summary>
    public sealed record Spec
    {
        /// <summary>"namespace/pod-name-prefix", "namespace/" (the whole namespace) or "pod-name-prefix" (any namespace).</summary>
        public IReadOnlyList<string> SourcePod { get; init; } = [];
        public IReadOnlyList<string> DestinationPod { get; init; } = [];
        /// <summary>Label selectors: "key=value", "key!=value", "key", "!key", comma-separated to AND; a key may carry a source ("k8s:app=web").</summary>
        public IReadOnlyList<string> SourceLabel { get; init; } = [];
        public IReadOnlyList<string> DestinationLabel { get; init; } = [];
        /// <summary>An address or a CIDR.</summary>
        public IReadOnlyList<string> SourceIp { get; init; } = [];
        public IReadOnlyList<string> DestinationIp { get; init; } = [];
        public IReadOnlyList<string> SourcePort { get; init; } = [];
        public IReadOnlyList<string> DestinationPort { get; init; } = [];
        /// <summary>tcp, udp, icmpv4, icmpv6 (icmp: both).</summary>
        public IReadOnlyList<string> Protocol { get; init; } = [];
        /// <summary>Verdict names (FORWARDED, DROPPED, ...), any case.</summary>
        public IReadOnlyList<string> Verdict { get; init; } = [];
        /// <summary>drop, trace, policy-verdict, or a Cilium type number, optionally ":SUBTYPE".</summary>
        public IReadOnlyList<string> EventType { get; init; } = [];
        /// <summary>ingress or egress.</summary>
        public IReadOnlyList<string> TrafficDirection { get; init; } = [];
        public IReadOnlyList<bool> Reply { get; init; } = [];
        public IReadOnlyList<string> Uuid { get; init; } = [];
        public IReadOnlyList<string> NodeName { get; init; } = [];
    }

    private FlowFilter()
    {
    }

    /// <summary>True when the filter has no field set (it matches every flow).</summary>
    public bool IsEmpty { get; private set; } = true;

    /// <summary>Builds a filter; <see cref="FlowFilterException"/> names the first bad value. <paramref name="where"/> prefixes messages (e.g. "whitelist[0]").</summary>
    public static FlowFilter Parse(Spec spec, string where = "filter")
    {
        var f = new FlowFilter();
        string At(string field) => $"{where}.{field}";
        foreach (var v in spec.SourcePod)
        {
            f._sourcePod.Add(PodName.Parse(v, At("source_pod")));
        }
        foreach (var v in spec.DestinationPod)
        {
            f._destinationPod.Add(PodName.Parse(v, At("destination_pod")));
        }
        foreach (var v in spec.SourceLabel)
        {
            f._sourceLabel.Add(LabelSelector.Parse(v, At("source_label")));
        }
        foreach (var v in spec.DestinationLabel)
        {
            f._destinationLabel.Add(LabelSelector.Parse(v, At("destination_label")));
        }
        foreach (var v in spec.SourceIp)
        {
            f._sourceIp.Add(AddressMatch.Parse(v, At("source_ip")));
        }
        foreach (var v in spec.DestinationIp)
        {
            f._destinationIp.Add(AddressMatch.Parse(v, At("destination_ip")));
        }
        foreach (var v in spec.SourcePort)
        {
            f._sourcePort.Add(Port(v, At("source_port")));
        }
        foreach (var v in spec.DestinationPort)
        {
            f._destinationPort.Add(Port(v, At("destination_port")));
        }
        foreach (var v in spec.Protocol)
        {
            f._protocol.AddRange(Protocols(v, At("protocol")));
        }
        foreach (var v in spec.Verdict)
        {
            f._verdict.Add(Verdict(v, At("verdict")));
        }
        foreach (var v in spec.EventType)
        {
            f._eventType.Add(EventType(v, At("event_type")));
        }
        foreach (var v in spec.TrafficDirection)
        {
            f._direction.Add(v.ToLowerInvariant() switch
            {
                "ingress" => Events.TrafficDirection.Ingress,
                "egress" => Events.TrafficDirection.Egress,
                _ => throw new FlowFilterException($"{At("traffic_direction")}: \"{v}\" is not a direction; use ingress or egress."),
            });
        }
        f._reply.AddRange(spec.Reply);
        f._uuid.AddRange(spec.Uuid);
        f._nodeName.AddRange(spec.NodeName);
        f.IsEmpty = f._sourcePod.Count + f._destinationPod.Count + f._sourceLabel.Count + f._destinationLabel.Count + f._sourceIp.Count
            + f._destinationIp.Count + f._sourcePort.Count + f._destinationPort.Count + f._protocol.Count + f._verdict.Count
            + f._eventType.Count + f._direction.Count + f._reply.Count + f._uuid.Count + f._nodeName.Count == 0;
        return f;
    }

    /// <summary>True when <paramref name="flow"/>, seen on <paramref name="nodeName"/>, matches every field this filter sets.</summary>
    public bool Matches(FlowEvent flow, string nodeName)
    {
        return Any(_sourcePod, p => p.Matches(flow.Source))
            && Any(_destinationPod, p => p.Matches(flow.Destination))
            && Any(_sourceLabel, s => s.Matches(flow.Source))
            && Any(_destinationLabel, s => s.Matches(flow.Destination))
            && Any(_sourceIp, a => a.Matches(flow.IP?.Source))
            && Any(_destinationIp, a => a.Matches(flow.IP?.Destination))
            && Any(_sourcePort, p => HasPorts(flow) && flow.L4.SourcePort == p)
            && Any(_destinationPort, p => HasPorts(flow) && flow.L4.DestinationPort == p)
            && Any(_protocol, p => flow.L4.Protocol == p)
            && Any(_verdict, v => flow.Verdict == v)
            && Any(_eventType, t => flow.EventType is { } e && e.Type == t.Type && (t.SubType is not { } sub || e.SubType == sub))
            && Any(_direction, d => flow.TrafficDirection == d)
            && Any(_reply, r => flow.IsReply == r)
            && Any(_uuid, u => flow.Uuid == u)
            && Any(_nodeName, n => string.Equals(n, nodeName, StringComparison.Ordinal));
    }

    private static bool HasPorts(FlowEvent f) => f.L4.Protocol is L4Protocol.Tcp or L4Protocol.Udp;

    private static bool Any<T>(List<T> values, Func<T, bool> match)
    {
        if (values.Count == 0)
        {
            return true;
        }
        foreach (var v in values)
        {
            if (match(v))
            {
                return true;
            }
        }
        return false;
    }

    private static ushort Port(string v, string at) =>
        ushort.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p != 0
            ? p : throw new FlowFilterException($"{at}: \"{v}\" is not a port; use a number from 1 to 65535.");

    private static IEnumerable<L4Protocol> Protocols(string v, string at) => v.ToLowerInvariant() switch
    {
        "tcp" => [L4Protocol.Tcp],
        "udp" => [L4Protocol.Udp],
        "icmpv4" => [L4Protocol.Icmpv4],
        "icmpv6" => [L4Protocol.Icmpv6],
        "icmp" => [L4Protocol.Icmpv4, L4Protocol.Icmpv6],
        _ => throw new FlowFilterException($"{at}: \"{v}\" is not a protocol this datapath reports; use tcp, udp, icmp, icmpv4 or icmpv6."),
    };

    private static FlowVerdict Verdict(string v, string at)
    {
        foreach (var verdict in Enum.GetValues<FlowVerdict>())
        {
            if (verdict != FlowVerdict.Unknown && string.Equals(FlowNames.Verdict(verdict), v, StringComparison.OrdinalIgnoreCase))
            {
                return verdict;
            }
        }
        throw new FlowFilterException($"{at}: \"{v}\" is not a verdict; use FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED or TRANSLATED.");
    }

    private static (int, int?) EventType(string v, string at)
    {
        var parts = v.Split(':', 2);
        int type = parts[0].ToLowerInvariant() switch
        {
            "drop" => FlowEventType.Drop,
            "trace" => FlowEventType.Trace,
            "policy-verdict" => FlowEventType.PolicyVerdict,
            var n when int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var number) => number,
            _ => throw new FlowFilterException($"{at}: \"{v}\" is not an event type; use drop, trace or policy-verdict (optionally :SUBTYPE)."),
        };
        if (parts.Length == 1)
        {
            return (type, null);
        }
        return int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var sub)
            ? (type, sub) : throw new FlowFilterException($"{at}: \"{v}\": the sub-type after ':' must be a number.");
    }

    /// <summary>A pod name filter: namespace (or any) and a pod name prefix (or any).</summary>
    private sealed record PodName(string? Namespace, string Prefix)
    {
        public static PodName Parse(string v, string at)
        {
            if (v.Length == 0)
            {
                throw new FlowFilterException($"{at}: an empty pod filter matches nothing; use NAMESPACE/POD, NAMESPACE/ or POD.");
            }
            var slash = v.IndexOf('/', StringComparison.Ordinal);
            return slash < 0 ? new PodName(null, v) : new PodName(v[..slash], v[(slash + 1)..]);
        }

        public bool Matches(FlowEndpoint? e) =>
            e is not null && (Namespace is null || string.Equals(e.Namespace, Namespace, StringComparison.Ordinal))
            && (Prefix.Length == 0 || (e.PodName?.StartsWith(Prefix, StringComparison.Ordinal) ?? false));
    }

    /// <summary>An address or a network.</summary>
    private sealed record AddressMatch(IPNetwork Network)
    {
        public static AddressMatch Parse(string v, string at)
        {
            if (IPNetwork.TryParse(v, out var network))
            {
                return new AddressMatch(network);
            }
            if (IPAddress.TryParse(v, out var address))
            {
                return new AddressMatch(new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
            }
            throw new FlowFilterException($"{at}: \"{v}\" is not an IP address or CIDR (e.g. 10.244.1.7 or 10.244.0.0/16).");
        }

        public bool Matches(string? text) => text is not null && IPAddress.TryParse(text, out var a) && Network.Contains(a);
    }
}

/// <summary>Hubble's whitelist/blacklist pair: a flow passes when it matches any whitelist filter (or there is none) and no blacklist filter.</summary>
public sealed class FlowFilterSet(IReadOnlyList<FlowFilter> whitelist, IReadOnlyList<FlowFilter> blacklist)
{
    public static readonly FlowFilterSet All = new([], []);

    public bool Passes(FlowEvent flow, string nodeName)
    {
        if (whitelist.Count > 0 && !whitelist.Any(f => f.Matches(flow, nodeName)))
        {
            return false;
        }
        return !blacklist.Any(f => f.Matches(flow, nodeName));
    }
}
