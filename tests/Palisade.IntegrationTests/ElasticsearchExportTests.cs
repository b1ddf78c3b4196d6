using System.Text;
using System.Text.Json;
using Palisade.Exporters.Elasticsearch;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Testing;

namespace Palisade.IntegrationTests;

/// <summary>
/// The real agent indexing into a loopback _bulk server through a 30 s outage with an agent
/// restart in the middle: every event the agent saw is indexed exactly once, in order, and
/// the spool ends empty.
/// </summary>
public sealed class ElasticsearchExportTests : IDisposable
{
    private readonly string _dir;

    public ElasticsearchExportTests()
    {
        Kernel.Require();
        _dir = Directory.CreateTempSubdirectory("pal-es-it-").FullName;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void AnOutageAndARestartLoseAndDuplicateNothing()
    {
        using var es = new FakeElasticsearch { Reject429Every = 40 };
        var file = Path.Combine(_dir, "events.json");
        var spool = Path.Combine(_dir, "spool");
        string[] args = ["--export-filename", file, "--elasticsearch-url", es.Url.ToString(), "--elasticsearch-spool-dir", spool,
            "--elasticsearch-flush-interval", "200ms", "--elasticsearch-batch-size", "200", "--export-denylist", """{"binary_regex":["^/usr/bin/(?!true$)"]}"""];
        var load = new CancellationTokenSource();
        var sequence = 0;
        var loader = new Thread(() =>
        {
            while (!load.IsCancellationRequested)
            {
                var n = Interlocked.Increment(ref sequence);
                Command.Run("/usr/bin/true", n == 1 ? "MAPPING-ERROR" : $"es-load-{n}");
                Thread.Sleep(40);
            }
        });

        // The load starts once the agent is ready (its sensor attached): the execs before it,
        // the marked one above all, would never be seen, so never exported.
        var first = AgentProcess.Start(args);
        first.WaitReady();
        loader.Start();
        Assert.True(Command.WaitUntil(() => es.MappingErrorCount > 0 && es.Created.Count > 0, TimeSpan.FromSeconds(60)),
            "the marked exec never reached Elasticsearch before the outage:\n" + first.Log);
        Thread.Sleep(2000);                     // more load indexed before the outage: the scenario, not a wait for readiness
        es.Stop();                              // outage starts
        Thread.Sleep(8000);
        Assert.True(first.Terminate(), first.Log); // agent restarts during the outage
        first.Dispose();
        Assert.NotEmpty(Directory.GetFiles(spool, "seg-*"));
        using var second = AgentProcess.Start(args);
        second.WaitReady();
        Thread.Sleep(20000);
        es.Start();                             // recovery after 30 s
        Thread.Sleep(4000);
        load.Cancel();
        loader.Join();
        second.WaitConsumed();                  // the last execs' events are queued, so the spool check below sees them

        long Spooled()
        {
            using var s = JsonDocument.Parse(second.Get("/v1/status"));
            var e = s.RootElement.GetProperty("exporters").EnumerateArray().Single(x => x.GetProperty("name").GetString() == "elasticsearch");
            return e.GetProperty("spooled_bytes").GetInt64() + e.GetProperty("queue_depth").GetInt64();
        }
        Assert.True(Command.WaitUntil(() => Spooled() == 0, TimeSpan.FromSeconds(60)), second.Log);
        Assert.True(second.Terminate(), second.Log);

        // Every event in the file (both agents') is in Elasticsearch exactly once, in file order.
        var lines = File.ReadAllLines(file);
        static string Id(string line)
        {
            using var doc = JsonDocument.Parse(line);
            return ElasticsearchSink.DocumentId(doc.RootElement);
        }
        var ids = lines.Select(Id).ToList();
        var mapping = lines.Where(l => l.Contains("MAPPING-ERROR", StringComparison.Ordinal)).Select(Id).ToHashSet();
        Assert.NotEmpty(mapping);
        var expected = ids.Where(id => !mapping.Contains(id)).ToList();
        Assert.True(expected.Count > 300, $"only {expected.Count} events");
        Assert.Equal(expected.Count, es.Created.Count);
        Assert.Equal(expected.ToHashSet(), es.Created.ToHashSet());
        Assert.Equal(ids, es.FirstSeen.Where(ids.Contains)); // sent in the order the agent saw them
        Assert.True(es.Rejected429 > 0, "the server never pushed back");
        Assert.Equal(mapping.Order(), es.MappingErrors.Distinct().Order());
        var dead = File.ReadAllLines(Path.Combine(spool, "dead-letter.jsonl"));
        Assert.All(dead, d => Assert.Contains("mapper_parsing_exception", d, StringComparison.Ordinal));
        Assert.Empty(Directory.GetFiles(spool, "seg-*"));
    }

    [Fact]
    public void AgentLogsShipToTheirOwnDataStreamFromStartToStop()
    {
        using var es = new FakeElasticsearch();
        var spool = Path.Combine(_dir, "spool");
        using var agent = AgentProcess.Start("--elasticsearch-url", es.Url.ToString(), "--elasticsearch-spool-dir", spool,
            "--elasticsearch-flush-interval", "200ms", "--elasticsearch-logs", "true");
        agent.WaitReady();
        List<string> Logs() => [.. es.Created.Select(es.Document).Where(d => d.Contains("\"dataset\":\"palisade.agent\"", StringComparison.Ordinal))];
        Assert.True(Command.WaitUntil(() => Logs().Any(d => d.Contains("Palisade agent", StringComparison.Ordinal) && d.Contains("starting", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20)), agent.Log);
        Assert.Contains("palisade-logs", es.Templates);
        Assert.True(agent.Terminate(), agent.Log);
        // The last line is logged after the host stopped; the shipper outlives the logger, so it ships too.
        var logs = Logs();
        Assert.Contains(logs, d => d.Contains("Palisade agent stopped", StringComparison.Ordinal));
        using var start = JsonDocument.Parse(logs.First(d => d.Contains("starting", StringComparison.Ordinal)));
        Assert.Equal("info", start.RootElement.GetProperty("log").GetProperty("level").GetString());
        Assert.Equal("palisade-agent", start.RootElement.GetProperty("service").GetProperty("name").GetString());
        Assert.Empty(Directory.GetFiles(Path.Combine(spool, "logs"), "seg-*"));
    }
}
