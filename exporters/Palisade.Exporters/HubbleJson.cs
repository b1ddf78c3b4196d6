using Palisade.Events;

namespace Palisade.Exporters;

/// <summary>
/// Writes a flow's body in Hubble's JSON shape (protojson of Cilium's flow.Flow, proto field
/// names: "IP", "l4", "Type", "Summary"), so `hubble observe -o json` consumers read our
/// lines: zero values and empty strings omitted, enums by name, fields in the proto's
/// declaration order. Palisade adds "process": the local process that owns the socket.
/// </summary>
public static class HubbleJson
{
    /// <summary>The body under "flow"; node_name and time of the line are the caller's.</summary>
    public static void WriteFlow(BodyWriter w, FlowEvent f, string nodeName, TetragonJsonOptions options)
    {
        TetragonJson.WriteTime(w, "time", f.Time);
        TetragonJson.WriteNonEmpty(w, "uuid", f.Uuid);
        if (f.Verdict != FlowVerdict.Unknown)
        {
            w.WriteString("verdict", FlowNames.Verdict(f.Verdict));
        }
        if (f.IP is { } ip)
        {
            w.WriteStartObject("IP");
            TetragonJson.WriteNonEmpty(w, "source", ip.Source);
            TetragonJson.WriteNonEmpty(w, "destination", ip.Destination);
            if (ip.IpVersion != IpVersion.NotUsed)
            {
                w.WriteString("ipVersion", FlowNames.IpVersion(ip.IpVersion));
            }
            w.WriteEndObject();
        }
        WriteL4(w, f.L4);
        WriteEndpoint(w, "source", f.Source);
        WriteEndpoint(w, "destination", f.Destination);
        if (f.Type != FlowType.Unknown)
        {
            w.WriteString("Type", FlowNames.Type(f.Type));
        }
        TetragonJson.WriteNonEmpty(w, "node_name", nodeName);
        if (f.EventType is { } type)
        {
            w.WriteStartObject("event_type");
            if (type.Type != 0)
            {
                w.WriteNumber("type", type.Type);
            }
            if (type.SubType != 0)
            {
                w.WriteNumber("sub_type", type.SubType);
            }
            w.WriteEndObject();
        }
        if (f.TrafficDirection != TrafficDirection.Unknown)
        {
            w.WriteString("traffic_direction", FlowNames.Direction(f.TrafficDirection));
        }
        if (f.TraceObservationPoint != TraceObservationPoint.Unknown)
        {
            w.WriteString("trace_observation_point", FlowNames.ObservationPoint(f.TraceObservationPoint));
        }
        if (f.DropReason != DropReason.Unknown)
        {
            w.WriteString("drop_reason_desc", FlowNames.DropReason(f.DropReason));
        }
        if (f.IsReply is { } reply)
        {
            // A BoolValue in the proto: present (also when false) whenever it is known.
            w.WriteBoolean("is_reply", reply);
        }
        if (f.Interface is { } nic)
        {
            w.WriteStartObject("interface");
            TetragonJson.WriteNonZero(w, "index", nic.Index);
            TetragonJson.WriteNonEmpty(w, "name", nic.Name);
            w.WriteEndObject();
        }
        TetragonJson.WriteNonEmpty(w, "Summary", f.Summary);
        if (f.PolicyRule != 0 && options.PolicyRules?.Resolve(f.PolicyRule) is { } match)
        {
            if (FlowPolicyLists.JsonName(FlowPolicyLists.Of(f)) is { } list)
            {
                // Hubble's own lists, for consumers that read them: one Policy, the deciding rule's.
                w.WriteStartArray(list);
                w.WriteStartObject();
                w.WriteString("name", match.Name);
                TetragonJson.WriteNonEmpty(w, "namespace", match.Namespace);
                w.WriteStartArray("labels");
                foreach (var label in FlowPolicyLists.Labels(match))
                {
                    w.WriteStringValue(label);
                }
                w.WriteEndArray();
                w.WriteString("kind", match.Kind);
                w.WriteEndObject();
                w.WriteEndArray();
            }
            // Palisade: the policy and rule that allowed, audited or denied this flow (Cilium names it on policy verdicts only).
            w.WriteStartObject("policy_match");
            w.WriteString("name", match.Name);
            TetragonJson.WriteNonEmpty(w, "namespace", match.Namespace);
            w.WriteString("kind", match.Kind);
            TetragonJson.WriteNonEmpty(w, "file", match.File);
            w.WriteString("rule", match.Rule);
            w.WriteEndObject();
        }
        if (f.Process is { } p)
        {
            // Palisade: who owns the socket. The exec_id leads to the full process_exec.
            w.WriteStartObject("process");
            w.WriteString("exec_id", p.ExecId);
            w.WriteNumber("pid", p.Pid);
            TetragonJson.WriteNonEmpty(w, "binary", p.Binary);
            TetragonJson.WriteNonEmpty(w, "arguments", options.Redactor is { } redactor ? redactor.Arguments(p) : p.Arguments);
            w.WriteEndObject();
        }
    }

    /// <summary>The Layer4 oneof's JSON key for a protocol ("TCP", "UDP", "ICMPv4", "ICMPv6"); null for none.</summary>
    public static string? L4Key(L4Protocol protocol) => protocol switch
    {
        L4Protocol.Tcp => "TCP",
        L4Protocol.Udp => "UDP",
        L4Protocol.Icmpv4 => "ICMPv4",
        L4Protocol.Icmpv6 => "ICMPv6",
        _ => null,
    };

    /// <summary>The set flags by TCPFlags field name, in the proto's order.</summary>
    public static IEnumerable<string> FlagNames(TcpFlags flags)
    {
        for (var bit = 0; bit < FlagNamesInOrder.Length; bit++)
        {
            if (((int)flags & (1 << bit)) != 0)
            {
                yield return FlagNamesInOrder[bit];
            }
        }
    }

    private static readonly string[] FlagNamesInOrder = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"];

    private static void WriteL4(BodyWriter w, FlowL4 l4)
    {
        if (L4Key(l4.Protocol) is not { } key)
        {
            return;
        }
        w.WriteStartObject("l4");
        w.WriteStartObject(key);
        if (l4.Protocol is L4Protocol.Tcp or L4Protocol.Udp)
        {
            TetragonJson.WriteNonZero(w, "source_port", l4.SourcePort);
            TetragonJson.WriteNonZero(w, "destination_port", l4.DestinationPort);
            if (l4.Protocol == L4Protocol.Tcp && l4.Flags != TcpFlags.None)
            {
                w.WriteStartObject("flags");
                for (var bit = 0; bit < FlagNamesInOrder.Length; bit++)
                {
                    if (((int)l4.Flags & (1 << bit)) != 0)
                    {
                        w.WriteBoolean(FlagNamesInOrder[bit], true);
                    }
                }
                w.WriteEndObject();
            }
        }
        else
        {
            TetragonJson.WriteNonZero(w, "type", l4.IcmpType);
            TetragonJson.WriteNonZero(w, "code", l4.IcmpCode);
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteEndpoint(BodyWriter w, string name, FlowEndpoint? e)
    {
        if (e is null)
        {
            return;
        }
        w.WriteStartObject(name);
        TetragonJson.WriteNonZero(w, "ID", e.ID);
        TetragonJson.WriteNonZero(w, "identity", e.Identity);
        TetragonJson.WriteNonEmpty(w, "namespace", e.Namespace);
        if (e.Labels.Count > 0)
        {
            w.WriteStartArray("labels");
            foreach (var label in e.Labels)
            {
                w.WriteStringValue(label);
            }
            w.WriteEndArray();
        }
        TetragonJson.WriteNonEmpty(w, "pod_name", e.PodName);
        w.WriteEndObject();
    }
}
