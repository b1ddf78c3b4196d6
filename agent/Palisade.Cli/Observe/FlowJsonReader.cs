using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json;
using Palisade.Events;

namespace Palisade.Cli.Observe;

/// <summary>One flow read back from a JSON line, with the node that saw it.</summary>
internal sealed record ObservedFlow(FlowEvent Flow, string NodeName);

/// <summary>
/// Reads flows back from JSON lines in Hubble's GetFlowsResponse shape
/// (<c>{"flow":{...},"node_name":..,"time":..}</c>): what the agent's JSON export writes for a
/// flow, what `palisade observe -o json` prints, and what `hubble observe -o json` prints.
/// Lines of other events (process_exec, ...) are not flows and read as null.
/// </summary>
internal static class FlowJsonReader
{
    private static readonly FrozenDictionary<string, FlowVerdict> Verdicts = Names<FlowVerdict>(FlowNames.Verdict);
    private static readonly FrozenDictionary<string, TrafficDirection> Directions = Names<TrafficDirection>(FlowNames.Direction);
    private static readonly FrozenDictionary<string, TraceObservationPoint> Points = Names<TraceObservationPoint>(FlowNames.ObservationPoint);
    private static readonly FrozenDictionary<string, FlowType> Types = Names<FlowType>(FlowNames.Type);
    private static readonly FrozenDictionary<string, IpVersion> Versions = Names<IpVersion>(FlowNames.IpVersion);
    private static readonly FrozenDictionary<string, DropReason> Reasons = Names<DropReason>(FlowNames.DropReason);

    private static FrozenDictionary<string, T> Names<T>(Func<T, string> name) where T : struct, Enum =>
        System.Enum.GetValues<T>().DistinctBy(name).ToFrozenDictionary(name, v => v);

    /// <summary>The flow of one line, null when the line is another event; <see cref="JsonException"/> when it is not JSON or a field has the wrong type.</summary>
    public static ObservedFlow? Read(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("flow", out var f) || f.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        var node = Str(root, "node_name") ?? Str(f, "node_name") ?? "";
        var time = Str(f, "time") ?? Str(root, "time");
        var flow = new FlowEvent
        {
            Time = time is null ? DateTimeOffset.MinValue : DateTimeOffset.Parse(time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
            Uuid = Str(f, "uuid") ?? "",
            Verdict = Enum(f, "verdict", Verdicts),
            DropReason = Enum(f, "drop_reason_desc", Reasons),
            IP = Child(f, "IP") is { } ip ? new FlowIp(Str(ip, "source") ?? "", Str(ip, "destination") ?? "", Enum(ip, "ipVersion", Versions)) : null,
            L4 = L4(Child(f, "l4")),
            Source = Endpoint(Child(f, "source")),
            Destination = Endpoint(Child(f, "destination")),
            Type = Enum(f, "Type", Types),
            EventType = Child(f, "event_type") is { } et ? new FlowEventType(Int(et, "type"), Int(et, "sub_type")) : null,
            TrafficDirection = Enum(f, "traffic_direction", Directions),
            IsReply = f.TryGetProperty("is_reply", out var reply) && reply.ValueKind is JsonValueKind.True or JsonValueKind.False ? reply.GetBoolean() : null,
            TraceObservationPoint = Enum(f, "trace_observation_point", Points),
            Interface = Child(f, "interface") is { } nic ? new FlowInterface(UInt(nic, "index"), Str(nic, "name") ?? "") : null,
            Summary = Str(f, "Summary"),
            Process = Process(Child(f, "process"), time),
        };
        return new ObservedFlow(flow, node);
    }

    private static JsonElement? Child(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Object ? v : null;

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    // protojson writes 64-bit numbers as strings; 32-bit ones as numbers.
    private static int Int(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ValueKind switch
    {
        JsonValueKind.Number => v.GetInt32(),
        JsonValueKind.String => int.Parse(v.GetString()!, CultureInfo.InvariantCulture),
        _ => 0,
    } : 0;

    // uint32 fields (endpoint ids, identities, interface indexes, pids) use the whole range: an
    // identity past 2^31 read as int32 made the whole line unreadable (found by the flows fuzz target).
    private static uint UInt(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ValueKind switch
    {
        JsonValueKind.Number => v.GetUInt32(),
        JsonValueKind.String => uint.Parse(v.GetString()!, CultureInfo.InvariantCulture),
        _ => 0,
    } : 0;

    private static T Enum<T>(JsonElement e, string name, FrozenDictionary<string, T> names) where T : struct, Enum =>
        Str(e, name) is { } text && names.TryGetValue(text, out var value) ? value : default;

    private static FlowL4 L4(JsonElement? l4)
    {
        if (l4 is not { } e)
        {
            return default;
        }
        if (Child(e, "TCP") is { } tcp)
        {
            var flags = TcpFlags.None;
            if (Child(tcp, "flags") is { } f)
            {
                string[] names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"];
                for (var bit = 0; bit < names.Length; bit++)
                {
                    if (f.TryGetProperty(names[bit], out var set) && set.ValueKind == JsonValueKind.True)
                    {
                        flags |= (TcpFlags)(1 << bit);
                    }
                }
            }
            return FlowL4.Tcp((ushort)Int(tcp, "source_port"), (ushort)Int(tcp, "destination_port"), flags);
        }
        if (Child(e, "UDP") is { } udp)
        {
            return FlowL4.Udp((ushort)Int(udp, "source_port"), (ushort)Int(udp, "destination_port"));
        }
        if (Child(e, "ICMPv4") is { } v4)
        {
            return FlowL4.Icmpv4((byte)Int(v4, "type"), (byte)Int(v4, "code"));
        }
        return Child(e, "ICMPv6") is { } v6 ? FlowL4.Icmpv6((byte)Int(v6, "type"), (byte)Int(v6, "code")) : default;
    }

    private static FlowEndpoint? Endpoint(JsonElement? endpoint)
    {
        if (endpoint is not { } e)
        {
            return null;
        }
        var labels = e.TryGetProperty("labels", out var l) && l.ValueKind == JsonValueKind.Array
            ? l.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToList()
            : [];
        return new FlowEndpoint
        {
            ID = UInt(e, "ID"),
            Identity = UInt(e, "identity"),
            Namespace = Str(e, "namespace"),
            PodName = Str(e, "pod_name"),
            Labels = labels,
        };
    }

    private static ProcessRecord? Process(JsonElement? process, string? time)
    {
        if (process is not { } p)
        {
            return null;
        }
        return new ProcessRecord
        {
            ExecId = Str(p, "exec_id") ?? "",
            Pid = UInt(p, "pid"),
            Ktime = 0,
            StartTime = time is null ? DateTimeOffset.MinValue : DateTimeOffset.Parse(time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
            Binary = Str(p, "binary") ?? "",
            Arguments = Str(p, "arguments") ?? "",
        };
    }
}
