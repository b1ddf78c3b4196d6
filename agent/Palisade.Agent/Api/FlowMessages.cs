using Google.Protobuf.WellKnownTypes;
using Palisade.Api.V1;
using Palisade.Datapath.Flows;
using Palisade.Events;
using Palisade.Exporters;
using ApiFlowFilter = Palisade.Api.V1.FlowFilter;
using FlowFilter = Palisade.Datapath.Flows.FlowFilter;

namespace Palisade.Agent.Api;

/// <summary>GetFlows in and out: Hubble's filters of a request as a <see cref="FlowFilterSet"/>, the history a request selects, and flows as responses.</summary>
public static class FlowMessages
{
    /// <summary>The request's whitelist and blacklist; a bad value throws <see cref="FlowFilterException"/> naming it (e.g. "whitelist[0].source_ip").</summary>
    public static FlowFilterSet ToFilterSet(GetFlowsRequest request) => new(
        [.. request.Whitelist.Select((f, i) => ToFilter(f, $"whitelist[{i}]"))],
        [.. request.Blacklist.Select((f, i) => ToFilter(f, $"blacklist[{i}]"))]);

    public static FlowFilter ToFilter(ApiFlowFilter f, string where) => FlowFilter.Parse(new FlowFilter.Spec
    {
        Uuid = [.. f.Uuid],
        SourceIp = [.. f.SourceIp],
        SourcePod = [.. f.SourcePod],
        SourceLabel = [.. f.SourceLabel],
        DestinationIp = [.. f.DestinationIp],
        DestinationPod = [.. f.DestinationPod],
        DestinationLabel = [.. f.DestinationLabel],
        Verdict = [.. f.Verdict.Select(v => v == Verdict.Unknown
            ? throw new FlowFilterException($"{where}.verdict: VERDICT_UNKNOWN selects nothing; name a verdict such as FORWARDED or DROPPED.")
            : FlowNames.Verdict((FlowVerdict)v))],
        EventType = [.. f.EventType.Select(t => t.MatchSubType ? $"{t.Type}:{t.SubType}" : t.Type.ToString(System.Globalization.CultureInfo.InvariantCulture))],
        Protocol = [.. f.Protocol],
        SourcePort = [.. f.SourcePort],
        DestinationPort = [.. f.DestinationPort],
        Reply = [.. f.Reply],
        NodeName = [.. f.NodeName],
        TrafficDirection = [.. f.TrafficDirection.Select(d => d switch
        {
            Palisade.Api.V1.TrafficDirection.Ingress => "ingress",
            Palisade.Api.V1.TrafficDirection.Egress => "egress",
            _ => throw new FlowFilterException($"{where}.traffic_direction: TRAFFIC_DIRECTION_UNKNOWN selects nothing; use INGRESS or EGRESS."),
        })],
    }, where);

    /// <summary>
    /// What a request takes from the history: the flows in [since, until] that pass the
    /// filters, then the last (or, with first, the first) <c>number</c> of them (0: all; with
    /// follow and no since, none: the stream starts now).
    /// </summary>
    public static IReadOnlyList<FlowEvent> Select(IReadOnlyList<FlowEvent> history, GetFlowsRequest request, FlowFilterSet filter, string nodeName)
    {
        if (request.Follow && request.Number == 0 && request.Since is null)
        {
            // Hubble's follow without --last or --since starts at the newest flow: no history.
            return [];
        }
        var since = request.Since?.ToDateTimeOffset();
        var until = request.Until?.ToDateTimeOffset();
        var passing = history.Where(f => (since is null || f.Time >= since) && (until is null || f.Time <= until) && filter.Passes(f, nodeName)).ToList();
        if (request.Number == 0 || (ulong)passing.Count <= request.Number)
        {
            return passing;
        }
        var n = (int)request.Number;
        return request.First ? passing.GetRange(0, n) : passing.GetRange(passing.Count - n, n);
    }

    public static GetFlowsResponse ToResponse(FlowEvent flow, string nodeName, TetragonJsonOptions options) => new()
    {
        Flow = EventMessages.ToFlow(flow, nodeName, options),
        NodeName = nodeName,
        Time = Timestamp.FromDateTimeOffset(flow.Time),
    };

    public static GetFlowsResponse Lost(long count, string nodeName, DateTimeOffset now) => new()
    {
        LostEvents = new LostEvent { Source = 1, NumEventsLost = (ulong)count },
        NodeName = nodeName,
        Time = Timestamp.FromDateTimeOffset(now),
    };
}
