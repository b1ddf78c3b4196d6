using System.IO.Compression;
using System.Text.Json;
using Palisade.Events;
using Palisade.Exporters;

namespace Palisade.Tests;

/// <summary>The JSON file sink under rotation: every event on exactly one whole line, in some file.</summary>
public sealed class JsonFileSinkTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pal-sink-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static ProcessExecEvent Event(int i) => new()
    {
        Time = DateTimeOffset.UnixEpoch.AddSeconds(i),
        Process = new ProcessRecord
        {
            ExecId = $"id-{i}", Pid = (uint)i, Ktime = (ulong)i, StartTime = DateTimeOffset.UnixEpoch, Binary = "/usr/bin/true",
            Arguments = new string('a', i % 300),
        },
    };

    private async Task<JsonFileSink> Run(int events, FileRotation rotation)
    {
        var hub = new EventHub();
        var sink = new JsonFileSink(hub.Subscribe("file", events + 1), "node", Path.Combine(_dir, "events.json"), rotation: rotation);
        sink.Start();
        for (var i = 0; i < events; i++)
        {
            hub.Publish(Event(i));
            if (i % 500 == 0)
            {
                await Task.Delay(5); // several write batches, so rotation happens between them
            }
        }
        await sink.DisposeAsync();
        return sink;
    }

    private List<string> Lines(string file)
    {
        using var stream = File.OpenRead(file);
        using var text = file.EndsWith(".gz", StringComparison.Ordinal)
            ? new StreamReader(new GZipStream(stream, CompressionMode.Decompress))
            : new StreamReader(stream);
        var content = text.ReadToEnd();
        Assert.True(content.Length == 0 || content.EndsWith('\n'), $"{file} ends in the middle of a line");
        return content.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RotationUnderLoadLosesAndTearsNothing(bool compress)
    {
        var sink = await Run(20_000, new FileRotation(256 * 1024, 0, compress, FileRotation.DefaultMode, TimeSpan.Zero));
        Assert.True(sink.Rotations >= 5, $"only {sink.Rotations} rotations");
        var files = Directory.GetFiles(_dir).Order(StringComparer.Ordinal).ToList();
        Assert.DoesNotContain(files, f => f.EndsWith(".tmp", StringComparison.Ordinal));
        var pids = new HashSet<uint>();
        foreach (var file in files)
        {
            Assert.Equal(compress || file.EndsWith("events.json", StringComparison.Ordinal), file.EndsWith(".gz", StringComparison.Ordinal) || file.EndsWith("events.json", StringComparison.Ordinal));
            Assert.Equal(FileRotation.DefaultMode, File.GetUnixFileMode(file));
            foreach (var line in Lines(file))
            {
                using var doc = JsonDocument.Parse(line);
                Assert.True(pids.Add(doc.RootElement.GetProperty("process_exec").GetProperty("process").GetProperty("pid").GetUInt32()));
            }
        }
        Assert.Equal(20_000, pids.Count);
        Assert.Equal(20_000, sink.Written);
    }

    [Fact]
    public async Task OnlyMaxBackupsRotatedFilesAreKept()
    {
        await Run(20_000, new FileRotation(128 * 1024, 2, false, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, TimeSpan.Zero));
        var names = Directory.GetFiles(_dir).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["events.json", "events.json.1", "events.json.2"], names);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(Path.Combine(_dir, "events.json.1")));
    }
}
