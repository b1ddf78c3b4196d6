using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>The real agent's JSON file rotating under an exec storm: lines counted = events written.</summary>
public sealed partial class ExportRotationTests : IDisposable
{
    private readonly string _dir;

    public ExportRotationTests()
    {
        Kernel.Require();
        _dir = Directory.CreateTempSubdirectory("pal-rot-").FullName;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [GeneratedRegex(@"Exporter file: (\d+) events written, (\d+) dropped \(queue full\), (\d+) failed")]
    private static partial Regex Summary();

    [Fact]
    public void TheFileRotatesUnderLoadWithoutLosingOrTearingALine()
    {
        var file = Path.Combine(_dir, "events.json");
        using var agent = AgentProcess.Start("--export-filename", file, "--export-file-max-size-mb", "1", "--export-file-max-backups", "0",
            "--event-queue-size", "1000000");
        agent.WaitReady();
        var storm = Command.Run(TimeSpan.FromMinutes(5), Helpers.Path("execstorm"), "4000", "2", "/bin/true");
        Assert.Equal(0, storm.ExitCode);
        Assert.True(agent.Terminate(), agent.Log);

        var summary = Summary().Match(agent.Log);
        Assert.True(summary.Success, agent.Log);
        var written = long.Parse(summary.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.Equal("0", summary.Groups[2].Value);
        Assert.Equal("0", summary.Groups[3].Value);

        var files = Directory.GetFiles(_dir);
        Assert.True(files.Length >= 4, $"expected several rotations, got {string.Join(", ", files)}");
        long lines = 0;
        foreach (var f in files)
        {
            var text = File.ReadAllText(f);
            Assert.True(text.EndsWith('\n'), $"{f} ends in the middle of a line");
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                using var _ = JsonDocument.Parse(line); // every line is a whole JSON object
                lines++;
            }
            Assert.True(new FileInfo(f).Length <= 1024 * 1024 + 128 * 1024, $"{f} is {new FileInfo(f).Length} bytes");
        }
        Assert.Equal(written, lines);
        Assert.True(written >= 8000, $"only {written} events for 4000 execs");
    }
}
