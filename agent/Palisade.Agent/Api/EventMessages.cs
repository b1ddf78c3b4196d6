using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Palisade.Api.V1;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Filters;
using FieldFilter = Palisade.Exporters.Filters.FieldFilter;

namespace Palisade.Agent.Api;

/// <summary>
/// Turns events into API messages and API filters into export filters. A message is built
/// straight from the event, field by field as <see cref="TetragonJson"/> writes the same
/// event (the proto's field names are those JSON names, and a test holds the two equal),
/// then field filters drop what they leave out (<see cref="ProtoFieldMask"/>).
/// </summary>
public static partial class EventMessages
{
    private static readonly JsonFormatter ProtoNames = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true).WithFormatDefaultValues(false));

    /// <summary>The message for one event; <see cref="NotSupportedException"/> for an event the API has no message for.</summary>
    public static GetEventsResponse ToMessage(PalisadeEvent e, string nodeName, TetragonJsonOptions options, FieldMasks fields)
    {
        var response = new GetEventsResponse { NodeName = nodeName, Time = Time(e.Time), ClusterName = options.ClusterName ?? "" };
        if (options.NodeLabels?.Current is { Count: > 0 } labels)
        {
            foreach (var (label, value) in labels)
            {
                response.NodeLabels[label] = value;
            }
        }
        IMessage body;
        switch (e)
        {
            case ProcessExecEvent exec:
                body = response.ProcessExec = Exec(exec, options);
                break;
            case ProcessExitEvent exit:
                body = response.ProcessExit = Exit(exit, options);
                break;
            case ProcessPolicyEvent pe:
                body = Policy(response, pe, options);
                break;
            case FlowEvent flow:
                body = response.Flow = Flow(flow, nodeName, options);
                break;
            default:
                throw new NotSupportedException($"No API message for {e.GetType().Name}.");
        }
        if (fields.For(e.Kind) is { } mask)
        {
            ProtoFieldMask.Apply(body, mask);
        }
        return response;
    }

    /// <summary>The message for one event with field filters given as a list (builds their masks each call: for tests and one-offs).</summary>
    public static GetEventsResponse ToMessage(PalisadeEvent e, string nodeName, TetragonJsonOptions options, IReadOnlyList<FieldFilter> fields) =>
        ToMessage(e, nodeName, options, fields.Count == 0 ? FieldMasks.Empty : new FieldMasks(fields));

    /// <summary>The message as Tetragon-style JSON (proto field names), for `palisade getevents -o json`.</summary>
    public static string ToJson(IMessage message) => ProtoNames.Format(message);

    /// <summary>Allow/deny lists of a request as an export filter; bad ones throw <see cref="FilterException"/> naming the field.</summary>
    public static ExportFilter ToFilter(GetEventsRequest request) => new(
        [.. request.AllowList.Select((f, i) => EventFilter.Parse(ProtoNames.Format(f), $"allow_list[{i}]"))],
        [.. request.DenyList.Select((f, i) => EventFilter.Parse(ProtoNames.Format(f), $"deny_list[{i}]"))]);

    public static IReadOnlyList<FieldFilter> ToFieldFilters(GetEventsRequest request) =>
        [.. request.FieldFilters.Select((f, i) => FieldFilter.Parse(ProtoNames.Format(f), $"field_filters[{i}]"))];

    private static Timestamp Time(DateTimeOffset time) => Timestamp.FromDateTimeOffset(time);
}
