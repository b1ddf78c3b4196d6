using System.Text.Json;
using Palisade.Bpf.Probe;

namespace Palisade.Tests;

public sealed class ProbeReportTests
{
    private static readonly ProbeReport Report = new("6.18.0", "none",
    [
        new ProbeResult(KernelFeature.Tracepoint, true, "loaded and attached"),
        new ProbeResult(KernelFeature.Kprobe, false, "attach failed: ENOENT"),
    ], 12);

    [Fact]
    public void TableHasOneLinePerFeatureAfterTheHeader()
    {
        var lines = Report.ToTable().Split(Environment.NewLine);

        Assert.Equal("kernel 6.18.0, lockdown: none, probed in 12 ms", lines[0]);
        Assert.StartsWith("FEATURE", lines[1], StringComparison.Ordinal);
        Assert.Matches(@"^tracepoint\s+available\s+loaded and attached$", lines[2]);
        Assert.Matches(@"^kprobe\s+unavailable\s+attach failed: ENOENT$", lines[3]);
    }

    [Fact]
    public void JsonUsesSnakeCaseNames()
    {
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(Report, ProbeReportJsonContext.Default.ProbeReport));

        Assert.Equal("6.18.0", doc.RootElement.GetProperty("kernel_release").GetString());
        var kprobe = doc.RootElement.GetProperty("features")[1];
        Assert.Equal("kprobe", kprobe.GetProperty("name").GetString());
        Assert.False(kprobe.GetProperty("available").GetBoolean());
    }

    [Fact]
    public void UnknownFeaturesAreNotAvailable()
    {
        Assert.True(Report.IsAvailable(KernelFeature.Tracepoint));
        Assert.False(Report.IsAvailable(KernelFeature.Kprobe));
        Assert.False(Report.IsAvailable("no-such-feature"));
    }
}
