using System.Text.Json;
using Palisade.Events;

namespace Palisade.Exporters.Elasticsearch;

/// <summary>
/// A flow as an ECS document: event.* (category network, type connection plus allowed or
/// denied), network.*, source.* and destination.* (ip, port, and the pod where known),
/// process.* when a local process owns the socket, and the Hubble-shaped flow under "palisade".
/// </summary>
public static class EcsFlow
{
    public static void Write(Utf8JsonWriter w, FlowEvent f, ReadOnlySpan<byte> flowJson, string nodeName, TetragonJsonOptions options)
    {
        w.WriteStartObject();
        TetragonJson.WriteTime(w, "@timestamp", f.Time);
        w.WriteStartObject("ecs");
        w.WriteString("version", "8.11.0");
        w.WriteEndObject();
        WriteEvent(w, f);
        WriteNetwork(w, f);
        WriteSide(w, "source", f.IP?.Source, f.L4.Protocol is L4Protocol.Tcp or L4Protocol.Udp ? f.L4.SourcePort : (ushort)0, f.Source);
        WriteSide(w, "destination", f.IP?.Destination, f.L4.Protocol is L4Protocol.Tcp or L4Protocol.Udp ? f.L4.DestinationPort : (ushort)0, f.Destination);
        if (f.Process is { } p)
        {
            w.WriteStartObject("process");
            EcsDocument.WriteProcessFields(w, p, options);
            w.WriteEndObject();
        }
        EcsDocument.WriteHost(w, nodeName);
        if (f.Process is { } owner)
        {
            EcsDocument.WritePodContext(w, owner);
        }
        if (!string.IsNullOrEmpty(f.Summary))
        {
            w.WriteString("message", f.Summary);
        }
        w.WritePropertyName("palisade");
        w.WriteRawValue(flowJson, skipInputValidation: true);
        w.WriteEndObject();
    }

    private static void WriteEvent(Utf8JsonWriter w, FlowEvent f)
    {
        w.WriteStartObject("event");
        w.WriteString("kind", "event");
        w.WriteStartArray("category");
        w.WriteStringValue("network");
        w.WriteEndArray();
        w.WriteStartArray("type");
        w.WriteStringValue("connection");
        var denied = f.Verdict is FlowVerdict.Dropped or FlowVerdict.Error;
        if (f.Verdict is FlowVerdict.Forwarded or FlowVerdict.Redirected or FlowVerdict.Translated)
        {
            w.WriteStringValue("allowed");
        }
        else if (denied)
        {
            w.WriteStringValue("denied");
        }
        w.WriteEndArray();
        w.WriteString("action", "flow");
        w.WriteString("outcome", denied ? "failure" : f.Verdict == FlowVerdict.Unknown ? "unknown" : "success");
        if (f.DropReason != DropReason.Unknown)
        {
            w.WriteString("reason", FlowNames.DropReason(f.DropReason));
        }
        w.WriteString("id", f.Uuid);
        w.WriteString("module", "palisade");
        w.WriteString("dataset", "palisade.flows");
        TetragonJson.WriteTime(w, "created", DateTimeOffset.UtcNow);
        w.WriteEndObject();
    }

    private static void WriteNetwork(Utf8JsonWriter w, FlowEvent f)
    {
        w.WriteStartObject("network");
        var (transport, iana) = f.L4.Protocol switch
        {
            L4Protocol.Tcp => ("tcp", "6"),
            L4Protocol.Udp => ("udp", "17"),
            L4Protocol.Icmpv4 => ("icmp", "1"),
            L4Protocol.Icmpv6 => ("ipv6-icmp", "58"),
            _ => (null, null),
        };
        if (transport is not null)
        {
            w.WriteString("transport", transport);
            w.WriteString("iana_number", iana);
        }
        if (f.IP is { IpVersion: not IpVersion.NotUsed } ip)
        {
            w.WriteString("type", ip.IpVersion == IpVersion.IPv6 ? "ipv6" : "ipv4");
        }
        // ECS's network.direction takes ingress/egress as seen from the observer (the endpoint).
        w.WriteString("direction", f.TrafficDirection switch
        {
            TrafficDirection.Ingress => "ingress",
            TrafficDirection.Egress => "egress",
            _ => "unknown",
        });
        w.WriteEndObject();
    }

    private static void WriteSide(Utf8JsonWriter w, string name, string? ip, ushort port, FlowEndpoint? endpoint)
    {
        if (string.IsNullOrEmpty(ip) && endpoint is null)
        {
            return;
        }
        w.WriteStartObject(name);
        if (!string.IsNullOrEmpty(ip))
        {
            w.WriteString("ip", ip);
            w.WriteString("address", ip);
        }
        if (port != 0)
        {
            w.WriteNumber("port", port);
        }
        if (endpoint is { PodName.Length: > 0 } || endpoint is { Namespace.Length: > 0 })
        {
            // Not ECS fields: the pod behind this side, which ECS has no place for.
            w.WriteStartObject("kubernetes");
            if (!string.IsNullOrEmpty(endpoint.Namespace))
            {
                w.WriteString("namespace", endpoint.Namespace);
            }
            if (!string.IsNullOrEmpty(endpoint.PodName))
            {
                w.WriteStartObject("pod");
                w.WriteString("name", endpoint.PodName);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }
}
