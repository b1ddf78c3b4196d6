using Palisade.Events;

namespace Palisade.Exporters;

/// <summary>One line per event in the style of `tetra getevents -o compact`.</summary>
public static class CompactFormat
{
    private const string Blue = "\u001b[34m", Cyan = "\u001b[36m", Red = "\u001b[31m", Magenta = "\u001b[35m", Reset = "\u001b[0m";

    public static string Format(PalisadeEvent e, string nodeName, bool color, Filters.Redactor? redactor = null)
    {
        string Paint(string code, string text) => color ? code + text + Reset : text;
        var p = e.Process;
        var where = Paint(Magenta, p.Pod is { } pod ? $"{pod.Namespace}/{pod.Name}" : nodeName);
        var binary = Paint(Magenta, p.Binary);
        var args = Paint(Cyan, MaybeQuote(redactor is null ? p.Arguments : redactor.Arguments(p)));
        return e switch
        {
            ProcessExecEvent => Trim($"{Paint(Blue, "🚀 process")} {where} {binary} {args}"),
            ProcessExitEvent exit => $"{Paint(Blue, "💥 exit   ")} {where} {binary} {args} {Paint(Red, exit.Signal ?? exit.Status.ToString(System.Globalization.CultureInfo.InvariantCulture))}",
            ProcessPolicyEvent pe => Trim($"{Paint(pe.Action == "KPROBE_ACTION_SIGKILL" ? Red : Blue, PolicyVerb(pe))} {where} {binary} {Paint(Cyan, PolicyDetail(pe))}"),
            _ => $"{e.Kind} {where} {binary}",
        };
    }

    public static string RateLimitInfo(long dropped, bool color) =>
        (color ? Red : "") + "🧊 rate-limit" + (color ? Reset : "") + $" {dropped} events dropped by the export rate limit";

    private static string PolicyVerb(ProcessPolicyEvent e) => e.Action switch
    {
        "KPROBE_ACTION_SIGKILL" => "💀 kill   ",
        "KPROBE_ACTION_SIGNAL" => "📶 signal ",
        "KPROBE_ACTION_OVERRIDE" => "⛔ refuse ",
        _ when e.Monitored => "👁 monitor",
        _ => e.HookKind == EventKind.ProcessTracepoint ? "🔎 tp     " : "🔎 syscall",
    };

    private static string PolicyDetail(ProcessPolicyEvent e)
    {
        var first = e.Args.FirstOrDefault(a => a.Text is not null || a.Sock is not null);
        var what = first?.Sock is { } s ? $"{s.DAddr}:{s.DPort}" : first?.Text ?? "";
        return $"{e.FunctionName} {what} [{e.PolicyName}]".Replace("  ", " ", StringComparison.Ordinal);
    }

    // tetra prints the arguments as they are unless they contain a line break.
    private static string MaybeQuote(string args) =>
        args.Contains('\n', StringComparison.Ordinal) ? System.Text.Json.JsonSerializer.Serialize(args) : args;

    private static string Trim(string line) => line.TrimEnd();
}
