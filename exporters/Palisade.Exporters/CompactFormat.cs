using System.Text.Json;
using Palisade.Events;

namespace Palisade.Exporters;

/// <summary>
/// One line per event in the style of `tetra getevents -o compact`: icon and verb, ns/pod (or
/// the node), binary, arguments and details. Renders our events (stdout sink) and the
/// Tetragon-shaped JSON of API messages (`palisade getevents`) the same way.
/// </summary>
public static class CompactFormat
{
    private const string Blue = "\u001b[34m", Cyan = "\u001b[36m", Red = "\u001b[31m", Magenta = "\u001b[35m", Reset = "\u001b[0m";

    public static string Format(PalisadeEvent e, string nodeName, bool color, Filters.Redactor? redactor = null)
    {
        var p = e.Process;
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
