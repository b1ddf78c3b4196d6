using System.Buffers;
using System.Text.Json;
using System.Threading.Channels;
using Palisade.Exporters;
using Palisade.Exporters.Elasticsearch;
using Serilog.Core;
using Serilog.Events;

namespace Palisade.Agent;

/// <summary>
/// Ships the agent's own logs to Elasticsearch (--elasticsearch-logs) as ECS log documents,
/// through the same spooled, retried <see cref="BulkClient"/> as events (own spool in
/// SPOOL-DIR/logs, own data stream). Logging never waits on it: records go into a bounded
/// queue, and when that is full the newest are dropped and counted.
/// </summary>
internal sealed class ElasticsearchLogs : ILogEventSink, IAsyncDisposable
{
    private const int QueueSize = 10_000;

    private readonly Channel<LogEvent> _queue = Channel.CreateBounded<LogEvent>(new BoundedChannelOptions(QueueSize)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait, // TryWrite refuses, so the drop is counted
    });
    private readonly BulkClient _client;
    private readonly string _node;
    private readonly string _index;
    private readonly string _idPrefix;
    private readonly Task _run;
    private long _sequence;
    private long _dropped;

    public ElasticsearchLogs(ElasticsearchOptions options, string index, string node)
    {
        _node = node;
        _index = index;
        // Unique per agent run and record: a replay from the spool after a restart carries
        // the same _id, so Elasticsearch answers 409 instead of indexing it twice.
        _idPrefix = $"{node}-{Environment.ProcessId}-{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}-";
        // The client's own trouble goes to stderr, never back into this logger: a failing
        // cluster must not feed itself more log records to ship.
        _client = new BulkClient(options, Path.Combine(options.SpoolDir, "logs"), index, IndexTemplate(index), "agent logs",
            message => Console.Error.WriteLine(message));
        _client.Start();
        _run = Task.Run(RunAsync);
    }

    /// <summary>Log records refused because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public BulkClient Client => _client;

    public void Emit(LogEvent logEvent)
    {
        if (!_queue.Writer.TryWrite(logEvent))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    private async Task RunAsync()
    {
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        using var json = new Utf8JsonWriter(buffer, TetragonJson.WriterOptions);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (buffer.WrittenCount < 64 * 1024 && _queue.Reader.TryRead(out var e))
            {
                var id = _idPrefix + Interlocked.Increment(ref _sequence).ToString(System.Globalization.CultureInfo.InvariantCulture);
                BulkClient.WriteCreateAction(buffer, json, _index, id);
                json.Reset(buffer);
                Write(json, e, _node);
                json.Flush();
                buffer.Write("\n"u8);
            }
            _client.Append(buffer.WrittenSpan);
            buffer.ResetWrittenCount();
        }
    }

    /// <summary>One log record as an ECS document.</summary>
    internal static void Write(Utf8JsonWriter w, LogEvent e, string node)
    {
        w.WriteStartObject();
        w.WriteString("@timestamp", e.Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteString("message", e.RenderMessage(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteStartObject("log");
        w.WriteString("level", e.Level switch
        {
            LogEventLevel.Verbose => "trace",
            LogEventLevel.Debug => "debug",
            LogEventLevel.Information => "info",
            LogEventLevel.Warning => "warn",
            LogEventLevel.Error => "error",
            _ => "fatal",
        });
        if (e.Properties.TryGetValue("SourceContext", out var source) && source is ScalarValue { Value: string logger })
        {
            w.WriteString("logger", logger);
        }
        w.WriteEndObject();
        w.WriteStartObject("event");
        w.WriteString("kind", "event");
        w.WriteString("dataset", "palisade.agent");
        w.WriteEndObject();
        w.WriteStartObject("host");
        w.WriteString("name", node);
        w.WriteEndObject();
        w.WriteStartObject("service");
        w.WriteString("name", "palisade-agent");
        w.WriteString("version", typeof(ElasticsearchLogs).Assembly.GetName().Version?.ToString(3));
        w.WriteEndObject();
        w.WriteStartObject("process");
        w.WriteNumber("pid", Environment.ProcessId);
        w.WriteEndObject();
        if (e.Exception is { } ex)
        {
            w.WriteStartObject("error");
            w.WriteString("type", ex.GetType().FullName);
            w.WriteString("message", ex.Message);
            w.WriteString("stack_trace", ex.ToString());
            w.WriteEndObject();
        }
        // The message template and its structured properties, for queries by field.
        w.WriteStartObject("palisade");
        w.WriteStartObject("log");
        w.WriteString("template", e.MessageTemplate.Text);
        foreach (var (name, value) in e.Properties)
        {
            if (name != "SourceContext")
            {
                w.WriteString(name, value is ScalarValue { Value: string s } ? s : value.ToString());
            }
        }
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    internal static string IndexTemplate(string index) => $$"""
    {
      "index_patterns": ["{{index}}*"],
      "priority": 200,
      "data_stream": {},
      "template": {
        "mappings": {
          "dynamic_templates": [ { "strings_as_keyword": { "match_mapping_type": "string", "mapping": { "type": "keyword", "ignore_above": 1024 } } } ],
          "properties": {
            "@timestamp": { "type": "date_nanos" },
            "message": { "type": "match_only_text" },
            "error": { "properties": { "message": { "type": "match_only_text" }, "stack_trace": { "type": "wildcard" } } },
            "process": { "properties": { "pid": { "type": "long" } } },
            "palisade": { "type": "flattened" }
          }
        }
      },
      "_meta": { "description": "Palisade agent logs (ECS); installed by the agent" }
    }
    """;

    /// <summary>Ships what is queued (giving the client a moment to send it), then stops; the rest stays spooled for the next start.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _run.ConfigureAwait(false);
        await _client.DisposeAsync().ConfigureAwait(false);
    }
}
