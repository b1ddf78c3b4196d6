using System.Text;
using Palisade.Agent.Configuration;
using Palisade.Events;
using Palisade.Exporters.Elasticsearch;
using Palisade.Testing;

namespace Palisade.Tests;

/// <summary>
/// The Elasticsearch export over Elastic.Transport: several nodes with failover and dead-node
/// marking, Cloud ID decoding, and the settings that choose the nodes.
/// </summary>
public sealed class ElasticsearchTransportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pal-est-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static ProcessExecEvent Event(int i) => new()
    {
        Time = DateTimeOffset.UnixEpoch.AddSeconds(i),
        Process = new ProcessRecord
        {
            ExecId = $"id-{i}", Pid = (uint)(1000 + i), Ktime = (ulong)i, StartTime = DateTimeOffset.UnixEpoch, Binary = "/usr/bin/true",
            Arguments = $"seq-{i}", Cwd = "/tmp",
        },
    };

    private static async Task Until(Func<bool> condition, string what)
    {
        for (var i = 0; i < 800 && !condition(); i++)
        {
            await Task.Delay(25, TestContext.Current.CancellationToken);
        }
        Assert.True(condition(), $"timed out waiting for {what}");
    }

    [Fact]
    public async Task ANodeThatDiesMidStreamIsMarkedDeadAndEveryEventIsIndexedOnceAcrossTheCluster()
    {
        using var a = new FakeElasticsearch();
        using var b = new FakeElasticsearch(a);
        var options = new ElasticsearchOptions
        {
            Nodes = [a.Url, b.Url], SpoolDir = Path.Combine(_dir, "spool"), FlushInterval = TimeSpan.FromMilliseconds(20), BatchSize = 10,
            MaxBackoff = TimeSpan.FromMilliseconds(200),
            // Far longer than the test: a dead node must stay out for all of it.
            DeadTimeout = TimeSpan.FromMinutes(30),
        };
        var hub = new EventHub();
        var sink = new ElasticsearchSink(hub.Subscribe("es", 10_000), "node", options);
        sink.Start();
        for (var i = 0; i < 200; i++)
        {
            hub.Publish(Event(i));
        }
        // Node a dies after it answered a few _bulk requests, with more events still coming.
        await Until(() => a.BulkRequests >= 3, "node a to answer 3 _bulk requests");
        a.Stop();
        for (var i = 200; i < 400; i++)
        {
            hub.Publish(Event(i));
        }
        await Until(() => sink.Client.Indexed + sink.Client.Duplicates == 400, "every event indexed or found already there");
        var dead = sink.Client.Nodes.Single(n => n.Uri.Port == a.Port);
        Assert.False(dead.IsAlive);
        Assert.True(dead.DeadUntil > DateTimeOffset.UtcNow);
        Assert.True(sink.Client.Nodes.Single(n => n.Uri.Port == b.Port).IsAlive);

        // Node a comes back, but it is dead until its timeout: nothing more goes to it.
        a.Start();
        var answeredByA = a.BulkRequests;
        for (var i = 400; i < 500; i++)
        {
            hub.Publish(Event(i));
        }
        await Until(() => sink.Client.Indexed + sink.Client.Duplicates == 500, "the last 100 events");
        await sink.DisposeAsync();

        Assert.Equal(answeredByA, a.BulkRequests);
        Assert.True(b.BulkRequests > 0);
        // One cluster: the union of what the nodes created has each event exactly once.
        var created = a.Created;
        Assert.Equal(created.Count, created.Distinct().Count());
        Assert.Equal(500, created.Count);
        // A batch node a created just as it died never got its answer back; the retry through
        // node b finds those ids already there (409s), which the client counts as duplicates,
        // not as new documents. At most one batch can be caught that way.
        Assert.Equal(created.Count, sink.Client.Indexed + sink.Client.Duplicates);
        Assert.Equal(a.Conflicts + b.Conflicts, sink.Client.Duplicates);
        Assert.InRange(sink.Client.Duplicates, 0, options.BatchSize);
        Assert.Equal(0, sink.Client.DeadLettered);
        Assert.Equal(0, sink.Client.SpooledBytes);
    }

    [Fact]
    public async Task AReplayedCreateOfAnIdTheClusterHasIsADuplicateNotAFailure()
    {
        using var a = new FakeElasticsearch();
        using var b = new FakeElasticsearch(a);
        var hub = new EventHub();
        var first = new ElasticsearchSink(hub.Subscribe("es1", 100), "node", new ElasticsearchOptions
        {
            Nodes = [a.Url], SpoolDir = Path.Combine(_dir, "s1"), FlushInterval = TimeSpan.FromMilliseconds(20),
        });
        var second = new ElasticsearchSink(hub.Subscribe("es2", 100), "node", new ElasticsearchOptions
        {
            Nodes = [b.Url], SpoolDir = Path.Combine(_dir, "s2"), FlushInterval = TimeSpan.FromMilliseconds(20),
        });
        first.Start();
        hub.Publish(Event(1));
        await Until(() => first.Client.Indexed == 1, "indexed through node a");
        second.Start();
        await Until(() => second.Client.Duplicates == 1, "the same event through node b found already there");
        await first.DisposeAsync();
        await second.DisposeAsync();
        Assert.Equal(0, second.Client.Indexed);
        Assert.Equal(0, second.Client.DeadLettered);
        Assert.Single(a.Created);
    }

    private static string Encode(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void CloudIdDecodesToTheElasticsearchUrlAsElasticsClientsDo()
    {
        Assert.Equal(new Uri("https://es-uuid.us-east-1.aws.found.io/"),
            CloudId.Decode("my-deployment:" + Encode("us-east-1.aws.found.io$es-uuid$kibana-uuid")));
        Assert.Equal(new Uri("https://es-uuid.europe-west1.gcp.cloud.es.io:9243/"),
            CloudId.Decode("prod:" + Encode("europe-west1.gcp.cloud.es.io:9243$es-uuid$kb")));
        // Without a Kibana part, and with a name holding a colon of its own.
        Assert.Equal(new Uri("https://abc.host.example/"), CloudId.Decode("name:with:colon:" + Encode("host.example$abc")));
    }

    [Theory]
    [InlineData("no-colon-at-all", "no ':' followed by the base64 part")]
    [InlineData("name:", "no ':' followed by the base64 part")]
    [InlineData("name:not*base64!", "the part after ':' is not base64 text")]
    [InlineData("name:aG9zdC5leGFtcGxl", "not HOST$ES_UUID$KIBANA_UUID")] // "host.example": no $ES_UUID
    [InlineData("name:JGVzLXV1aWQ=", "not HOST$ES_UUID$KIBANA_UUID")] // "$es-uuid": no host
    [InlineData("name:aG9zdCBuYW1lJGVz", "is not a host name")] // "host name$es"
    public void BadCloudIdsSayWhatIsWrongAndTheFix(string cloudId, string expected)
    {
        var e = Assert.Throws<FormatException>(() => CloudId.Decode(cloudId));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains("Fix:", e.Message, StringComparison.Ordinal);
    }

    private static AgentOptions Resolve(params (string Key, string Value)[] values) =>
        AgentConfiguration.Resolve([new SettingsLayer("flags", values.ToDictionary(v => v.Key, v => v.Value))]);

    [Fact]
    public void UrlSettingTakesACommaSeparatedListOfNodes()
    {
        var es = Resolve(("elasticsearch-url", "https://es-0:9200, https://es-1:9200,http://10.0.0.7:9200")).Elasticsearch!;
        Assert.Equal([new Uri("https://es-0:9200"), new Uri("https://es-1:9200"), new Uri("http://10.0.0.7:9200")], es.Nodes);
        Assert.Equal(new Uri("https://es-0:9200"), es.Url);
        Assert.Equal([new Uri("https://es:9200")], Resolve(("elasticsearch-url", "https://es:9200")).Elasticsearch!.Nodes);
    }

    [Fact]
    public void CloudIdSettingResolvesToItsUrl()
    {
        var es = Resolve(("elasticsearch-cloud-id", "prod:" + Encode("eu.cloud.es.io$abc123$kb"))).Elasticsearch!;
        Assert.Equal([new Uri("https://abc123.eu.cloud.es.io/")], es.Nodes);
    }

    [Theory]
    [InlineData("https://es-0:9200,ftp://es-1:9200", null, "elasticsearch-url: \"ftp://es-1:9200\" is not an http:// or https:// URL")]
    [InlineData("https://es-0:9200,,https://es-1:9200", null, "has an empty entry. Fix:")]
    [InlineData("https://es-0:9200,https://es-0:9200", null, "\"https://es-0:9200\" is listed twice")]
    [InlineData("https://es-0:9200,https://u:p@es-1:9200", null, "credentials in the URL would be logged")]
    [InlineData("https://es:9200", "prod:ZXUuY2xvdWQuZXMuaW8kYWJjJGti", "elasticsearch-url/elasticsearch-cloud-id: both are set")]
    [InlineData(null, "prod:%%%", "elasticsearch-cloud-id: \"prod:%%%\" is not a Cloud ID: the part after ':' is not base64 text")]
    public void BadNodeSettingsNameTheValueAndTheFix(string? url, string? cloudId, string expected)
    {
        var values = new List<(string, string)>();
        if (url is not null)
        {
            values.Add(("elasticsearch-url", url));
        }
        if (cloudId is not null)
        {
            values.Add(("elasticsearch-cloud-id", cloudId));
        }
        var e = Assert.Throws<AgentConfigurationException>(() => Resolve([.. values]));
        Assert.Contains(e.Errors, error => error.Contains(expected, StringComparison.Ordinal));
    }
}
