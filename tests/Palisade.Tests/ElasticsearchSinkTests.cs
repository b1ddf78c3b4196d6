using System.Text.Json;
using System.Text.Json.Nodes;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Elasticsearch;
using Palisade.Testing;

namespace Palisade.Tests;

/// <summary>The Elasticsearch sink against a loopback _bulk server: exactly once, in order, spooled through outages.</summary>
public sealed class ElasticsearchSinkTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pal-es-").FullName;
    private readonly FakeElasticsearch _es = new();

    public void Dispose()
    {
        _es.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static ProcessExecEvent Event(int i, string extra = "") => new()
    {
        Time = DateTimeOffset.UnixEpoch.AddSeconds(i),
        Process = new ProcessRecord
        {
            ExecId = $"id-{i}", Pid = (uint)(1000 + i), Ktime = (ulong)i, StartTime = DateTimeOffset.UnixEpoch, Binary = "/usr/bin/true",
            Arguments = $"seq-{i} {extra}".Trim(), Cwd = "/tmp",
            Pod = new PodInfo("default", "web-1", "uid-1", new Dictionary<string, string> { ["app"] = "web" }, "web", "Deployment", new ContainerInfo("c1", "main", ImageName: "nginx")),
        },
    };

    private ElasticsearchOptions Options(string? spool = null) => new()
    {
        Nodes = [_es.Url], SpoolDir = spool ?? Path.Combine(_dir, "spool"), FlushInterval = TimeSpan.FromMilliseconds(50), BatchSize = 50,
        MaxBackoff = TimeSpan.FromMilliseconds(200),
    };

    private static async Task Until(Func<bool> condition, string what)
    {
        for (var i = 0; i < 400 && !condition(); i++)
        {
            await Task.Delay(25, TestContext.Current.CancellationToken);
        }
        Assert.True(condition(), $"timed out waiting for {what}");
    }

    private static string IdOf(PalisadeEvent e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.Write(w, e, "node", TetragonJsonOptions.Default);
        }
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return ElasticsearchSink.DocumentId(doc.RootElement);
    }

    [Fact]
    public async Task IndexesEcsDocumentsRetries429sAndDeadLettersMappingErrors()
    {
        _es.Reject429Every = 7;
        var hub = new EventHub();
        var sink = new ElasticsearchSink(hub.Subscribe("es", 10_000), "node", Options());
        sink.Start();
        var events = Enumerable.Range(0, 300).Select(i => Event(i, i == 150 ? "MAPPING-ERROR" : "")).ToList();
        foreach (var e in events)
        {
            hub.Publish(e);
        }
        await Until(() => sink.Client.Indexed == 299 && sink.Client.DeadLettered == 1, "299 indexed and 1 dead-lettered");
        await sink.DisposeAsync();

        Assert.True(_es.Rejected429 > 0);
        Assert.Equal(299, _es.Created.Distinct().Count());
        Assert.Equal(events.Where((_, i) => i != 150).Select(IdOf).ToHashSet(), _es.Created.ToHashSet());
        Assert.Equal(events.Select(IdOf), _es.FirstSeen); // sent in publication order
        Assert.Contains("palisade-events", _es.Templates);

        var dead = JsonNode.Parse(File.ReadAllLines(sink.Client.DeadLetterPath).Single())!;
        Assert.Equal(400, (int)dead["status"]!);
        Assert.Equal("mapper_parsing_exception", (string?)dead["error"]!["type"]);
        Assert.Contains("MAPPING-ERROR", dead["document"]!.ToJsonString(), StringComparison.Ordinal);

        var doc = JsonNode.Parse(_es.Document(IdOf(events[3])))!;
        Assert.Equal("process_exec", (string?)doc["event"]!["action"]);
        Assert.Equal("start", (string?)doc["event"]!["type"]![0]);
        Assert.Equal("/usr/bin/true", (string?)doc["process"]!["executable"]);
        Assert.Equal("seq-3", (string?)doc["process"]!["args"]![1]);
        Assert.Equal("id-3", (string?)doc["process"]!["entity_id"]);
        Assert.Equal("/tmp", (string?)doc["process"]!["working_directory"]);
        Assert.Equal("default", (string?)doc["orchestrator"]!["namespace"]);
        Assert.Equal("web-1", (string?)doc["kubernetes"]!["pod"]!["name"]);
        Assert.Equal("c1", (string?)doc["container"]!["id"]);
        Assert.Equal("node", (string?)doc["host"]!["name"]);
        Assert.Equal("id-3", (string?)doc["palisade"]!["process_exec"]!["process"]!["exec_id"]);
    }

    [Fact]
    public async Task OutageSpoolsToDiskAndReplaysAfterRestartExactlyOnce()
    {
        var spool = Path.Combine(_dir, "spool");
        var hub = new EventHub();
        var first = new ElasticsearchSink(hub.Subscribe("es", 10_000), "node", Options(spool));
        first.Start();
        for (var i = 0; i < 100; i++)
        {
            hub.Publish(Event(i));
        }
        await Until(() => first.Client.Indexed == 100, "the first 100 indexed");
        _es.Stop();
        for (var i = 100; i < 250; i++)
        {
            hub.Publish(Event(i));
        }
        await Until(() => first.Client.SpooledBytes > 0 && first.Written == 250, "events spooled during the outage");
        await first.DisposeAsync(); // agent restart during the outage
        Assert.True(Directory.EnumerateFiles(spool, "seg-*").Any(), "the spool survives the stop");

        var hub2 = new EventHub();
        var second = new ElasticsearchSink(hub2.Subscribe("es", 10_000), "node", Options(spool));
        second.Start();
        for (var i = 250; i < 300; i++)
        {
            hub2.Publish(Event(i));
        }
        await Task.Delay(300, TestContext.Current.CancellationToken);
        _es.Start();
        await Until(() => second.Client.SpooledBytes == 0 && _es.Created.Count == 300, "replay after recovery");
        await second.DisposeAsync();

        Assert.Equal(Enumerable.Range(0, 300).Select(i => IdOf(Event(i))), _es.Created);
        Assert.Empty(Directory.EnumerateFiles(spool, "seg-*"));
    }

    [Fact]
    public async Task ReplayOfAcknowledgedItemsIsNotIndexedTwice()
    {
        var spool = Path.Combine(_dir, "spool");
        var hub = new EventHub();
        var sink = new ElasticsearchSink(hub.Subscribe("es", 100), "node", Options(spool));
        sink.Start();
        hub.Publish(Event(1));
        await Until(() => sink.Client.Indexed == 1, "indexed");
        await sink.DisposeAsync();
        // Same event again (a replay from a cursor that was not persisted, say): 409, counted, not re-created.
        var hub2 = new EventHub();
        var again = new ElasticsearchSink(hub2.Subscribe("es", 100), "node", Options(spool));
        again.Start();
        hub2.Publish(Event(1));
        await Until(() => again.Client.Duplicates == 1, "duplicate detected");
        await again.DisposeAsync();
        Assert.Single(_es.Created);
    }

    [Fact]
    public void SpoolDropsOldestPastItsBoundAndCountsIt()
    {
        var spool = new BulkSpool(Path.Combine(_dir, "small"), 64 * 1024);
        var item = System.Text.Encoding.UTF8.GetBytes("{\"create\":{}}\n{\"x\":\"" + new string('a', 1000) + "\"}\n");
        for (var i = 0; i < 200; i++)
        {
            spool.Append(item);
        }
        Assert.True(spool.Dropped > 0);
        Assert.True(spool.PendingBytes <= 64 * 1024);
        Assert.Equal(200, spool.Dropped + (spool.PendingBytes / item.Length));
        spool.Dispose();
    }

    [Fact]
    public void SpoolBatchesRunAcrossSegmentsAndCountPendingItems()
    {
        var dir = Path.Combine(_dir, "segments");
        // 64 KiB bound: 16 KiB segments, so 40 items of ~1 KiB fill three of them.
        var spool = new BulkSpool(dir, 64 * 1024);
        for (var i = 0; i < 40; i++)
        {
            spool.Append(System.Text.Encoding.UTF8.GetBytes($"{{\"create\":{{}}}}\n{{\"n\":{i},\"x\":\"{new string('a', 1000)}\"}}\n"));
        }
        Assert.True(Directory.GetFiles(dir, "seg-*").Length >= 3);
        Assert.Equal(40, spool.PendingItems);

        var (items, next) = spool.Read(30, 1 << 20);
        Assert.Equal(30, items.Count);
        Assert.Equal(30, next.Items);
        Assert.Contains("\"n\":29,", System.Text.Encoding.UTF8.GetString(items[29].Span), StringComparison.Ordinal);
        spool.Commit(next);
        Assert.Equal(10, spool.PendingItems);
        spool.Dispose();

        // A restart counts what is still pending; the acknowledged segments are gone.
        using var again = new BulkSpool(dir, 64 * 1024);
        Assert.Equal(10, again.PendingItems);
        var (rest, end) = again.Read(100, 1 << 20);
        Assert.Equal(10, rest.Count);
        Assert.Contains("\"n\":30,", System.Text.Encoding.UTF8.GetString(rest[0].Span), StringComparison.Ordinal);
        again.Commit(end);
        Assert.Equal(0, again.PendingItems);
        Assert.Equal(0, again.PendingBytes);
    }

    [Fact]
    public void SpoolIgnoresAHalfWrittenItemAfterACrash()
    {
        var dir = Path.Combine(_dir, "crash");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "seg-000000000001.ndjson"), "{\"create\":{}}\n{\"a\":1}\n{\"create\":{}}\n{\"a\":");
        using var spool = new BulkSpool(dir, 1 << 20);
        var (items, _) = spool.Read(10, 1 << 20);
        Assert.Single(items);
    }

    [Fact]
    public async Task SendsConfiguredCredentials()
    {
        var keyFile = Path.Combine(_dir, "key");
        File.WriteAllText(keyFile, "aWQ6a2V5\n");
        var hub = new EventHub();
        var sink = new ElasticsearchSink(hub.Subscribe("es", 10), "node", Options() with { ApiKeyFile = keyFile });
        sink.Start();
        hub.Publish(Event(1));
        await Until(() => sink.Client.Indexed == 1, "indexed");
        await sink.DisposeAsync();
        Assert.All(_es.AuthorizationHeaders, h => Assert.Equal("ApiKey aWQ6a2V5", h));
    }

    private static Serilog.Events.LogEvent LogRecord(string template, Exception? error, params (string Name, object Value)[] properties) => new(
        DateTimeOffset.UnixEpoch.AddSeconds(5), error is null ? Serilog.Events.LogEventLevel.Information : Serilog.Events.LogEventLevel.Error, error,
        new Serilog.Parsing.MessageTemplateParser().Parse(template),
        [.. properties.Select(p => new Serilog.Events.LogEventProperty(p.Name, new Serilog.Events.ScalarValue(p.Value)))]);

    [Fact]
    public void AgentLogRecordsBecomeEcsLogDocuments()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            Palisade.Agent.ElasticsearchLogs.Write(w, LogRecord("Policy {Name} failed to load", new InvalidOperationException("map full"),
                ("Name", "block-tmp"), ("SourceContext", "Palisade.Agent.PolicyService")), "node-1");
        }
        using var doc = System.Text.Json.JsonDocument.Parse(buffer.WrittenMemory);
        var root = doc.RootElement;
        Assert.Equal("1970-01-01T00:00:05.0000000Z", root.GetProperty("@timestamp").GetString());
        Assert.Equal("Policy \"block-tmp\" failed to load", root.GetProperty("message").GetString());
        Assert.Equal("error", root.GetProperty("log").GetProperty("level").GetString());
        Assert.Equal("Palisade.Agent.PolicyService", root.GetProperty("log").GetProperty("logger").GetString());
        Assert.Equal("palisade.agent", root.GetProperty("event").GetProperty("dataset").GetString());
        Assert.Equal("node-1", root.GetProperty("host").GetProperty("name").GetString());
        Assert.Equal("map full", root.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("System.InvalidOperationException", root.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("block-tmp", root.GetProperty("palisade").GetProperty("log").GetProperty("Name").GetString());
        Assert.Equal("Policy {Name} failed to load", root.GetProperty("palisade").GetProperty("log").GetProperty("template").GetString());
    }

    [Fact]
    public async Task AgentLogsShipThroughTheSpooledBulkClient()
    {
        var logs = new Palisade.Agent.ElasticsearchLogs(Options(), "palisade-logs", "node-1");
        for (var i = 0; i < 120; i++)
        {
            logs.Emit(LogRecord("line {N}", null, ("N", i)));
        }
        await Until(() => logs.Client.Indexed == 120, "120 log records indexed");
        await logs.DisposeAsync();
        Assert.Equal(120, _es.Created.Count);
        Assert.Contains("palisade-logs", _es.Templates);
        Assert.Equal(0, logs.Dropped);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "spool", "logs"), "seg-*"));
    }
}
