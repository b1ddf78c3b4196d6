using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Palisade.Events;

namespace Palisade.Exporters.Elasticsearch;

/// <summary>Where and how events are indexed (the --elasticsearch-* settings).</summary>
public sealed record ElasticsearchOptions
{
    /// <summary>The first node (where a single URL or a Cloud ID points).</summary>
    public Uri Url => Nodes[0];
    /// <summary>Every node URL (elasticsearch-url, comma-separated, or the one a Cloud ID decodes to); requests fail over between them.</summary>
    public required IReadOnlyList<Uri> Nodes { get; init; }
    /// <summary>How long a node that failed is left out before it is tried again (doubling per failure, up to 30 times this).</summary>
    public TimeSpan DeadTimeout { get; init; } = TimeSpan.FromMinutes(1);
    public string Index { get; init; } = "palisade-events";
    /// <summary>One index per UTC day (NAME-yyyy.MM.dd) instead of a data stream.</summary>
    public bool DailyIndices { get; init; }
    public string SpoolDir { get; init; } = "/var/lib/palisade/elasticsearch";
    public long SpoolMaxBytes { get; init; } = 1L << 30;
    public int BatchSize { get; init; } = 1000;
    public int BatchBytes { get; init; } = 5 << 20;
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(1);
    public bool Compress { get; init; } = true;
    public string? Username { get; init; }
    public string? PasswordFile { get; init; }
    public string? ApiKeyFile { get; init; }
    public string? BearerTokenFile { get; init; }
    public string? CaFile { get; init; }
    /// <summary>Longest wait between retries (exponential backoff with jitter up to this).</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Indexes events into Elasticsearch: each event becomes an ECS document (the Tetragon event
/// kept whole under `palisade`) with op "create" and an _id derived from what identifies the
/// event, so a replayed item that was already indexed comes back 409 and counts as done.
/// Spooling, batching, retries and the dead-letter file are the <see cref="BulkClient"/>'s.
/// </summary>
public sealed class ElasticsearchSink : EventSink
{
    private readonly ElasticsearchOptions _options;
    private readonly BulkClient _client;
    private readonly ArrayBufferWriter<byte> _scratch = new(4096);
    private readonly Utf8JsonWriter _scratchJson;

    public ElasticsearchSink(EventSubscription subscription, string nodeName, ElasticsearchOptions options, TetragonJsonOptions? jsonOptions = null,
        SinkPipeline? pipeline = null, Action<string>? log = null)
        : base(subscription, nodeName, jsonOptions, pipeline)
    {
        _options = options;
        _client = new BulkClient(options, options.SpoolDir, options.Index, EcsDocument.IndexTemplate(options.Index, !options.DailyIndices), "events", log);
        _scratchJson = new Utf8JsonWriter(_scratch, TetragonJson.WriterOptions);
    }

    /// <summary>The spool, sender and counters under this sink.</summary>
    public BulkClient Client => _client;

    /// <summary>
    /// The _id of an event, from what identifies it and never changes: node, type, exec_id,
    /// time (ns), and for policy events the policy, hook and action. Content that may differ
    /// between two encodings of one event (reference counts, late pod data) is left out, so
    /// the id can be recomputed from any export of the event (see the JSON overload).
    /// </summary>
    public static string DocumentId(string node, string type, string execId, string time, string? policy = null, string? hook = null, string? action = null)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{node}|{type}|{execId}|{time}|{policy}|{hook}|{action}"), hash);
        return Convert.ToBase64String(hash[..20]).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>The _id of an event given as a Tetragon JSON line (e.g. from the file export), for cross-referencing.</summary>
    public static string DocumentId(JsonElement line)
    {
        var body = line.EnumerateObject().First(p => p.Value.ValueKind == JsonValueKind.Object);
        string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.GetString() : null;
        // A flow is identified by its uuid; a process event by its process.
        var execId = body.Name == "flow" ? Text(body.Value, "uuid") ?? ""
            : body.Value.TryGetProperty("process", out var p) ? Text(p, "exec_id") ?? "" : "";
        var hook = Text(body.Value, "function_name") ?? Text(body.Value, "symbol") ?? Text(body.Value, "event");
        return DocumentId(Text(line, "node_name") ?? "", body.Name, execId, Text(line, "time") ?? "", Text(body.Value, "policy_name"), hook, Text(body.Value, "action"));
    }

    private string DocumentId(PalisadeEvent e)
    {
        Span<byte> time = stackalloc byte[40];
        var t = Encoding.UTF8.GetString(time[..TetragonJson.FormatTime(e.Time, time)]);
        return e switch
        {
            ProcessExecEvent exec => DocumentId(NodeName, "process_exec", exec.Process.ExecId, t),
            ProcessExitEvent exit => DocumentId(NodeName, "process_exit", exit.Process.ExecId, t),
            ProcessPolicyEvent pe => DocumentId(NodeName, TetragonJson.EventKey(pe.HookKind), pe.Process.ExecId, t, pe.PolicyName,
                pe.HookKind == EventKind.ProcessTracepoint ? pe.EventName : pe.FunctionName, pe.HookKind == EventKind.ProcessUprobe ? null : pe.Action),
            FlowEvent flow => DocumentId(NodeName, "flow", flow.Uuid, t),
            _ => DocumentId(NodeName, e.Kind.ToString(), e.Process?.ExecId ?? "", t),
        };
    }


    public override void Start()
    {
        base.Start();
        _client.Start();
    }

    protected override void EncodeLine(PalisadeEvent e, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        _scratch.ResetWrittenCount();
        JsonLine(e, _scratch, _scratchJson);
        var tetragon = _scratch.WrittenSpan[..^1]; // without the newline
        WriteAction(buffer, json, DocumentId(e), e.Time);
        json.Reset(buffer);
        EcsDocument.Write(json, e, tetragon, NodeName, JsonOptions);
        json.Flush();
        buffer.Write("\n"u8);
    }

    protected override void EncodeRateLimitInfo(long dropped, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        _scratch.ResetWrittenCount();
        base.EncodeRateLimitInfo(dropped, _scratch, _scratchJson);
        var tetragon = _scratch.WrittenSpan[..^1];
        var now = DateTimeOffset.UtcNow;
        WriteAction(buffer, json, DocumentId(NodeName, "rate_limit_info", "", now.ToString("O", System.Globalization.CultureInfo.InvariantCulture), dropped.ToString(System.Globalization.CultureInfo.InvariantCulture)), now);
        json.Reset(buffer);
        json.WriteStartObject();
        TetragonJson.WriteTime(json, "@timestamp", now);
        json.WriteStartObject("event");
        json.WriteString("kind", "metric");
        json.WriteString("action", "rate_limit_info");
        json.WriteString("dataset", "palisade.events");
        json.WriteEndObject();
        json.WriteStartObject("host");
        json.WriteString("name", NodeName);
        json.WriteEndObject();
        json.WritePropertyName("palisade");
        json.WriteRawValue(tetragon, skipInputValidation: true);
        json.WriteEndObject();
        json.Flush();
        buffer.Write("\n"u8);
    }

    private void WriteAction(ArrayBufferWriter<byte> buffer, Utf8JsonWriter json, string id, DateTimeOffset time) =>
        BulkClient.WriteCreateAction(buffer, json, _options.DailyIndices ? $"{_options.Index}-{time.UtcDateTime:yyyy.MM.dd}" : _options.Index, id);

    protected override ValueTask WriteAsync(ReadOnlyMemory<byte> lines)
    {
        _client.Append(lines.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Drains the queue into the spool, gives the sender a moment to catch up, then stops; what is left stays spooled for the next start.</summary>
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        await _client.DisposeAsync().ConfigureAwait(false);
        await _scratchJson.DisposeAsync().ConfigureAwait(false);
    }
}
