using System.Text.Json.Serialization;

namespace Palisade.Bpf.Probe;

/// <summary>Whether one kernel feature works here, and the evidence.</summary>
public sealed record ProbeResult(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("available")] bool Available,
    [property: JsonPropertyName("detail")] string Detail);

/// <summary>What the probe found on this kernel.</summary>
public sealed record ProbeReport(
    [property: JsonPropertyName("kernel_release")] string KernelRelease,
    [property: JsonPropertyName("lockdown")] string Lockdown,
    [property: JsonPropertyName("features")] IReadOnlyList<ProbeResult> Features,
    [property: JsonPropertyName("duration_ms")] long DurationMs)
{
    /// <summary>True when <paramref name="feature"/> (a <see cref="KernelFeature"/> name) was seen working.</summary>
    public bool IsAvailable(string feature) => Find(feature)?.Available ?? false;

    public ProbeResult? Find(string feature) => Features.FirstOrDefault(f => f.Name == feature);

    /// <summary>A fixed-width table, one feature a line.</summary>
    public string ToTable()
    {
        var width = Math.Max(20, Features.Max(f => f.Name.Length) + 2);
        var lines = new List<string>
        {
            $"kernel {KernelRelease}, lockdown: {Lockdown}, probed in {DurationMs} ms",
            $"{"FEATURE".PadRight(width)}{"STATUS",-14}DETAIL",
        };
        lines.AddRange(Features.Select(f => $"{f.Name.PadRight(width)}{(f.Available ? "available" : "unavailable"),-14}{f.Detail}"));
        return string.Join(Environment.NewLine, lines);
    }
}

[JsonSerializable(typeof(ProbeReport))]
[JsonSourceGenerationOptions(WriteIndented = true)]
public sealed partial class ProbeReportJsonContext : JsonSerializerContext;
