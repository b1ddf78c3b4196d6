using System.Buffers;
using System.Text.Json;
using Google.Protobuf;
using Palisade.Api.V1;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Filters;
using FieldFilter = Palisade.Exporters.Filters.FieldFilter;

namespace Palisade.Agent.Api;

/// <summary>
/// Turns events into API messages and API filters into export filters. The message is built
/// from the same Tetragon JSON the file sink writes (one encoder, so the stream and the
/// file can never disagree); the proto's field names are those JSON names.
/// </summary>
public static class EventMessages
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));
    private static readonly JsonFormatter ProtoNames = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true).WithFormatDefaultValues(false));

    public static GetEventsResponse ToMessage(PalisadeEvent e, string nodeName, TetragonJsonOptions options, IReadOnlyList<FieldFilter> fields)
    {
        var buffer = new ArrayBufferWriter<byte>(2048);
        using (var w = new Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.WriteFiltered(w, e, nodeName, options, fields);
        }
        return Parser.Parse<GetEventsResponse>(System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    /// <summary>The message as Tetragon-style JSON (proto field names), for `palisade getevents -o json`.</summary>
    public static string ToJson(IMessage message) => ProtoNames.Format(message);

    /// <summary>Allow/deny lists of a request as an export filter; bad ones throw <see cref="FilterException"/> naming the field.</summary>
    public static ExportFilter ToFilter(GetEventsRequest request) => new(
        [.. request.AllowList.Select((f, i) => EventFilter.Parse(ProtoNames.Format(f), $"allow_list[{i}]"))],
        [.. request.DenyList.Select((f, i) => EventFilter.Parse(ProtoNames.Format(f), $"deny_list[{i}]"))]);

    public static IReadOnlyList<FieldFilter> ToFieldFilters(GetEventsRequest request) =>
        [.. request.FieldFilters.Select((f, i) => FieldFilter.Parse(ProtoNames.Format(f), $"field_filters[{i}]"))];
}
