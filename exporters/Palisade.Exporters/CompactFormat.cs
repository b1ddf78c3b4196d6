using System.Text.Json;
using Palisade.Events;

namespace Palisade.Exporters;

/// <summary>
/// One line per event in the style of `tetra getevents -o compact`: icon and verb, ns/pod (or
/// the node), binary, arguments and details; a flow as its two sides, protocol, direction
/// and verdict. Renders our events (stdout sink) and the Tetragon-shaped JSON of API messages
/// (`palisade getevents`) the same way.
/// </summary>
public static class CompactFormat
{
    private const string Blue = "\u001b[34m", Cyan = "\u001b[36m", Red = "\u001b[31m", Magenta = "\u001b[35m", Reset = "\u001b[0m";

    public static string Format(PalisadeEvent e, string nodeName, bool color, Filters.Redactor? redactor = null)
    {
        if (e is FlowEvent flow)
        {
            return Flow(flow, nodeName, color, redactor);
        }
        if (e.Process is not { } p)
        {
            return $"{e.Kind} {nodeName}";
        }
        var where = p.Pod is { } pod ? $"{pod.Namespace}/{pod.Name}" : nodeName;
        var args = redactor is null ? p.Arguments : redactor.Arguments(p);
        return e switch
        {
            ProcessExecEvent => Line("process_exec", where, p.Binary, args, null, null, false, null, color),
            ProcessExitEvent exit => Line("process_exit", where, p.Binary, args,
                exit.Signal ?? exit.Status.ToString(System.Globalization.CultureInfo.InvariantCulture), null, false, null, color),
            ProcessPolicyEvent pe => Line(pe.HookKind == EventKind.ProcessTracepoint ? "process_tracepoint" : "process_kprobe", where, p.Binary, args,
                null, pe.Action, pe.Monitored, PolicyDetail(pe), color),
            _ => $"{e.Kind} {where} {p.Binary}",
        };
    }

    /// <summary>Renders one event in Tetragon's JSON shape (what the gRPC stream carries).</summary>
    public static string Format(JsonElement root, bool color)
    {
        var node = root.TryGetProperty("node_name", out var n) ? n.GetString() ?? "" : "";
        foreach (var property in root.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.Object)
            {
                continue;
            }
            var body = property.Value;
            if (property.Name == "flow")
            {
                return FlowFromJson(body, node, color);
            }
            if (property.Name == "rate_limit_info")
            {
                return RateLimitInfo(body.TryGetProperty("number_of_dropped_process_events", out var d) ? long.Parse(d.ToString(), System.Globalization.CultureInfo.InvariantCulture) : 0, color);
            }
            var process = body.TryGetProperty("process", out var pr) ? pr : default;
            string Get(JsonElement e, string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) ? v.ToString() : "";
            var pod = process.ValueKind == JsonValueKind.Object && process.TryGetProperty("pod", out var po) ? po : default;
            var where = pod.ValueKind == JsonValueKind.Object ? $"{Get(pod, "namespace")}/{Get(pod, "name")}" : node;
            var binary = Get(process, "binary");
            var args = Get(process, "arguments");
            switch (property.Name)
            {
                case "process_exec":
                    return Line(property.Name, where, binary, args, null, null, false, null, color);
                case "process_exit":
                    var signal = Get(body, "signal");
                    return Line(property.Name, where, binary, args, signal.Length > 0 ? signal : Get(body, "status") is { Length: > 0 } s ? s : "0", null, false, null, color);
                default:
                    var function = Get(body, "function_name") is { Length: > 0 } f ? f : Get(body, "symbol") is { Length: > 0 } sym ? sym : $"{Get(body, "subsys")}/{Get(body, "event")}";
                    var what = "";
                    if (body.TryGetProperty("args", out var list))
                    {
                        foreach (var a in list.EnumerateArray())
                        {
                            if (a.TryGetProperty("sock_arg", out var sock))
                            {
                                what = $"{Get(sock, "daddr")}:{Get(sock, "dport")}";
                                break;
                            }
                            foreach (var key in new[] { "file_arg", "path_arg", "linux_binprm_arg" })
                            {
                                if (a.TryGetProperty(key, out var file))
                                {
                                    what = Get(file, "path");
                                }
                            }
                            if (what.Length == 0 && a.TryGetProperty("string_arg", out var str))
                            {
                                what = str.GetString() ?? "";
                            }
                            if (what.Length > 0)
                            {
                                break;
                            }
                        }
                    }
                    var detail = $"{function} {what} [{Get(body, "policy_name")}]".Replace("  ", " ", StringComparison.Ordinal);
                    return Line(property.Name, where, binary, args, null, Get(body, "action"), false, detail, color);
            }
        }
        return root.GetRawText();
    }

    private static string Line(string type, string where, string binary, string args, string? exit, string? action, bool monitored, string? detail, bool color)
    {
        string Paint(string code, string text) => color ? code + text + Reset : text;
        var w = Paint(Magenta, where);
        var b = Paint(Magenta, binary);
        var a = Paint(Cyan, MaybeQuote(args));
        return type switch
        {
            "process_exec" => Trim($"{Paint(Blue, "🚀 process")} {w} {b} {a}"),
            "process_exit" => $"{Paint(Blue, "💥 exit   ")} {w} {b} {a} {Paint(Red, exit ?? "0")}",
            _ => Trim($"{Paint(action == "KPROBE_ACTION_SIGKILL" && !monitored ? Red : Blue, PolicyVerb(type, action, monitored))} {w} {b} {Paint(Cyan, detail ?? "")}"),
        };
    }

    private static string Flow(FlowEvent f, string nodeName, bool color, Filters.Redactor? redactor)
    {
        var (sport, dport) = f.L4.Protocol is L4Protocol.Tcp or L4Protocol.Udp ? (f.L4.SourcePort, f.L4.DestinationPort) : ((ushort)0, (ushort)0);
        var l4 = FlowNames.Protocol(f.L4.Protocol);
        if (f.L4.Protocol == L4Protocol.Tcp && f.L4.Flags != TcpFlags.None)
        {
            l4 += " " + string.Join(',', HubbleJson.FlagNames(f.L4.Flags));
        }
        else if (f.L4.Protocol is L4Protocol.Icmpv4 or L4Protocol.Icmpv6)
        {
            l4 += $" {f.L4.IcmpType}/{f.L4.IcmpCode}";
        }
        var process = f.Process is { } p ? $"{p.Binary} {(redactor is null ? p.Arguments : redactor.Arguments(p))}" : null;
        return FlowLine(nodeName,
            Peer(f.Source?.Namespace, f.Source?.PodName, f.IP?.Source, sport), Peer(f.Destination?.Namespace, f.Destination?.PodName, f.IP?.Destination, dport),
            l4, f.TrafficDirection == TrafficDirection.Unknown ? null : FlowNames.Direction(f.TrafficDirection), FlowNames.Verdict(f.Verdict),
            f.DropReason == DropReason.Unknown ? null : FlowNames.DropReason(f.DropReason), process, color);
    }

    private static string FlowFromJson(JsonElement flow, string node, bool color)
    {
        static string Get(JsonElement e, string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) ? v.ToString() : "";
        static JsonElement Child(JsonElement e, string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) ? v : default;
        var ip = Child(flow, "IP");
        var l4 = Child(flow, "l4");
        var protocol = l4.ValueKind == JsonValueKind.Object ? l4.EnumerateObject().FirstOrDefault() : default;
        var ports = protocol.Value;
        var what = protocol.Name?.ToLowerInvariant() ?? "";
        if (Child(ports, "flags") is { ValueKind: JsonValueKind.Object } flags)
        {
            what += " " + string.Join(',', flags.EnumerateObject().Where(f => f.Value.ValueKind == JsonValueKind.True).Select(f => f.Name));
        }
        else if (what.StartsWith("icmp", StringComparison.Ordinal))
        {
            what += $" {(Get(ports, "type") is { Length: > 0 } t ? t : "0")}/{(Get(ports, "code") is { Length: > 0 } c ? c : "0")}";
        }
        static uint Port(JsonElement e, string name) => uint.TryParse(Get(e, name), System.Globalization.CultureInfo.InvariantCulture, out var p) ? p : 0;
        var src = Child(flow, "source");
        var dst = Child(flow, "destination");
        var process = Child(flow, "process");
        return FlowLine(node,
            Peer(Get(src, "namespace"), Get(src, "pod_name"), Get(ip, "source"), Port(ports, "source_port")),
            Peer(Get(dst, "namespace"), Get(dst, "pod_name"), Get(ip, "destination"), Port(ports, "destination_port")),
            what, Get(flow, "traffic_direction") is { Length: > 0 } d ? d : null, Get(flow, "verdict") is { Length: > 0 } v ? v : "VERDICT_UNKNOWN",
            Get(flow, "drop_reason_desc") is { Length: > 0 } r ? r : null,
            process.ValueKind == JsonValueKind.Object ? $"{Get(process, "binary")} {Get(process, "arguments")}" : null, color);
    }

    // Hubble's way to name a side: the pod when known, else the address; then the port.
    private static string Peer(string? ns, string? pod, string? ip, uint port)
    {
        var who = !string.IsNullOrEmpty(pod) ? (string.IsNullOrEmpty(ns) ? pod : $"{ns}/{pod}") : string.IsNullOrEmpty(ip) ? "?" : ip;
        return port != 0 ? (who.Contains(':', StringComparison.Ordinal) ? $"[{who}]:{port}" : $"{who}:{port}") : who;
    }

    private static string FlowLine(string node, string source, string destination, string l4, string? direction, string verdict, string? reason, string? process, bool color)
    {
        string Paint(string code, string text) => color ? code + text + Reset : text;
        var (icon, paint) = verdict switch
        {
            "DROPPED" => ("🚫 drop   ", Red),
            "AUDIT" => ("👁 audit  ", Blue),
            _ => ("🌐 flow   ", Blue),
        };
        var line = $"{Paint(paint, icon)} {Paint(Magenta, node)} {source} -> {destination} {l4}".TrimEnd();
        if (direction is not null)
        {
            line += " " + direction;
        }
        line += " " + Paint(paint, reason is null ? verdict : $"{verdict} {reason}");
        if (process is not null)
        {
            line += " " + Paint(Cyan, MaybeQuote(process.TrimEnd()));
        }
        return line;
    }

    public static string RateLimitInfo(long dropped, bool color) =>
        (color ? Red : "") + "🧊 rate-limit" + (color ? Reset : "") + $" {dropped} events dropped by the export rate limit";

    private static string PolicyVerb(string type, string? action, bool monitored) => action switch
    {
        _ when monitored => "👁 monitor",
        "KPROBE_ACTION_SIGKILL" => "💀 kill   ",
        "KPROBE_ACTION_SIGNAL" => "📶 signal ",
        "KPROBE_ACTION_OVERRIDE" => "⛔ refuse ",
        _ => type == "process_tracepoint" ? "🔎 tp     " : "🔎 syscall",
    };

    private static string PolicyDetail(ProcessPolicyEvent e)
    {
        var first = e.Args.FirstOrDefault(a => a.Text is not null || a.Sock is not null);
        var what = first?.Sock is { } s ? $"{s.DAddr}:{s.DPort}" : first?.Text ?? "";
        return $"{e.FunctionName} {what} [{e.PolicyName}]".Replace("  ", " ", StringComparison.Ordinal);
    }

    // tetra prints the arguments as they are unless they contain a line break.
    private static string MaybeQuote(string args) =>
        args.Contains('\n', StringComparison.Ordinal) ? JsonSerializer.Serialize(args) : args;

    private static string Trim(string line) => line.TrimEnd();
}
