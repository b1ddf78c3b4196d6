using System.Globalization;
using Palisade.Events;

namespace Palisade.Cli.Observe;

/// <summary>
/// `observe`'s human formats, after `hubble observe`: compact (one line per flow:
/// "TIME: SOURCE -> DESTINATION WHAT VERDICT (SUMMARY)", then the owning process) and table
/// (the same columns under a header).
/// </summary>
internal static class FlowText
{
    private const string Red = "\u001b[31m", Green = "\u001b[32m", Yellow = "\u001b[33m", Cyan = "\u001b[36m", Reset = "\u001b[0m";

    public static readonly string TableHeader = Row("TIMESTAMP", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY", "PROCESS");

    public static string Compact(ObservedFlow o, bool color)
    {
        var f = o.Flow;
        var verdict = FlowNames.Verdict(f.Verdict);
        var line = $"{Time(f.Time)}: {Side(f.Source, f.IP?.Source, SourcePort(f))} -> {Side(f.Destination, f.IP?.Destination, DestinationPort(f))} {What(f)} {Paint(verdict, VerdictColor(f.Verdict), color)}";
        if (f.Summary is { Length: > 0 } summary)
        {
            line += $" ({summary})";
        }
        if (Process(f) is { } process)
        {
            line += " " + Paint(process, Cyan, color);
        }
        return line;
    }

    public static string TableRow(ObservedFlow o)
    {
        var f = o.Flow;
        return Row(Time(f.Time), Side(f.Source, f.IP?.Source, SourcePort(f)), Side(f.Destination, f.IP?.Destination, DestinationPort(f)),
            What(f), FlowNames.Verdict(f.Verdict), f.Summary ?? "", Process(f) ?? "");
    }

    private static string Row(string time, string source, string destination, string type, string verdict, string summary, string process) =>
        $"{time,-20} {source,-36} {destination,-36} {type,-24} {verdict,-10} {summary,-24} {process}".TrimEnd();

    private static string Time(DateTimeOffset t) =>
        t == DateTimeOffset.MinValue ? "-" : t.ToUniversalTime().ToString("MMM dd HH:mm:ss.fff", CultureInfo.InvariantCulture);

    private static ushort SourcePort(FlowEvent f) => f.L4.Protocol is L4Protocol.Tcp or L4Protocol.Udp ? f.L4.SourcePort : (ushort)0;

    private static ushort DestinationPort(FlowEvent f) => f.L4.Protocol is L4Protocol.Tcp or L4Protocol.Udp ? f.L4.DestinationPort : (ushort)0;

    // Hubble's way to name a side: ns/pod (else the address), the port, then the identity or its reserved name.
    private static string Side(FlowEndpoint? e, string? ip, ushort port)
    {
        var who = e?.PodName is { Length: > 0 } pod ? (e.Namespace is { Length: > 0 } ns ? $"{ns}/{pod}" : pod) : ip is { Length: > 0 } ? ip : "?";
        if (port != 0)
        {
            who = who.Contains(':', StringComparison.Ordinal) && e?.PodName is not { Length: > 0 } ? $"[{who}]:{port}" : $"{who}:{port}";
        }
        var reserved = e?.Labels.FirstOrDefault(l => l.StartsWith("reserved:", StringComparison.Ordinal));
        if (reserved is not null)
        {
            return $"{who} ({reserved["reserved:".Length..]})";
        }
        return e is { Identity: not 0 } ? $"{who} (ID:{e.Identity})" : who;
    }

    // The TYPE column: the drop reason, "policy-verdict DIRECTION", or the trace point as Hubble writes it ("to-endpoint").
    private static string What(FlowEvent f)
    {
        if (f.Verdict == FlowVerdict.Dropped)
        {
            return FlowNames.DropReason(f.DropReason);
        }
        if (f.EventType is { Type: FlowEventType.PolicyVerdict })
        {
            return f.TrafficDirection == TrafficDirection.Unknown ? "policy-verdict" : $"policy-verdict {FlowNames.Direction(f.TrafficDirection)}";
        }
        return f.TraceObservationPoint == TraceObservationPoint.Unknown
            ? (f.EventType is { } t ? FlowEventType.Name(t.Type) ?? t.Type.ToString(CultureInfo.InvariantCulture) : "flow")
            : FlowNames.ObservationPoint(f.TraceObservationPoint).ToLowerInvariant().Replace('_', '-');
    }

    private static string? Process(FlowEvent f) =>
        f.Process is { } p ? $"pid={p.Pid} {p.Binary}{(p.Arguments.Length > 0 ? " " + p.Arguments : "")}" : null;

    private static string VerdictColor(FlowVerdict v) => v switch
    {
        FlowVerdict.Dropped or FlowVerdict.Error => Red,
        FlowVerdict.Audit => Yellow,
        _ => Green,
    };

    private static string Paint(string text, string code, bool color) => color ? code + text + Reset : text;
}
