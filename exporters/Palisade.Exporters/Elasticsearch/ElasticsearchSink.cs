using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Palisade.Events;

namespace Palisade.Exporters.Elasticsearch;

/// <summary>Where and how events are indexed (the --elasticsearch-* settings).</summary>
public sealed record ElasticsearchOptions
{
    public required Uri Url { get; init; }
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
/// Indexes events into Elasticsearch with the _bulk API. Every item goes through an on-disk
/// spool first (<see cref="BulkSpool"/>), so an outage or a restart loses nothing; a sender
/// replays the spool in order in batches (count, bytes, time), gzipped, with exponential
/// backoff and jitter. Items use op "create" with an _id derived from the event's content:
/// a replayed item that was already indexed comes back 409 and counts as done, so nothing is
/// indexed twice. Per item: 429 and 5xx are retried, other failures (mapping errors) go to
/// the dead-letter file with the reason.
/// </summary>
public sealed class ElasticsearchSink : EventSink
{
    private readonly ElasticsearchOptions _options;
    private readonly HttpClient _http;
    private readonly BulkSpool _spool;
    private readonly string _deadLetterPath;
    private readonly ArrayBufferWriter<byte> _scratch = new(4096);
    private readonly MemoryStream _body = new();
    private readonly Utf8JsonWriter _scratchJson;
    private readonly SemaphoreSlim _dataReady = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private readonly Action<string>? _log;
    private Task? _sender;
    private bool _templateInstalled;
    private long _indexed, _duplicates, _deadLettered, _retries, _requests;
    private volatile string? _lastError;

    public ElasticsearchSink(EventSubscription subscription, string nodeName, ElasticsearchOptions options, TetragonJsonOptions? jsonOptions = null,
        SinkPipeline? pipeline = null, HttpMessageHandler? handler = null, Action<string>? log = null)
        : base(subscription, nodeName, jsonOptions, pipeline)
    {
        _options = options;
        _log = log;
        _spool = new BulkSpool(options.SpoolDir, options.SpoolMaxBytes);
        _deadLetterPath = Path.Combine(Path.GetFullPath(options.SpoolDir), "dead-letter.jsonl");
        _scratchJson = new Utf8JsonWriter(_scratch, TetragonJson.WriterOptions);
        _http = new HttpClient(handler ?? CreateHandler(options), disposeHandler: true) { BaseAddress = options.Url, Timeout = TimeSpan.FromSeconds(30) };
        if (Authorization(options) is { } auth)
        {
            _http.DefaultRequestHeaders.Authorization = auth;
        }
        if (_spool.RecoveredBytes > 0)
        {
            _dataReady.Release();
        }
    }

    /// <summary>Items Elasticsearch created.</summary>
    public long Indexed => Interlocked.Read(ref _indexed);

    /// <summary>Replayed items Elasticsearch already had (409): done, not indexed twice.</summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    /// <summary>Items Elasticsearch refused for good (mapping errors, ...), written to the dead-letter file.</summary>
    public long DeadLettered => Interlocked.Read(ref _deadLettered);

    /// <summary>Retried requests and items (429, 5xx, unreachable).</summary>
    public long Retries => Interlocked.Read(ref _retries);

    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Bytes in the spool not yet acknowledged.</summary>
    public long SpooledBytes => _spool.PendingBytes;

    /// <summary>Items the full spool dropped (oldest first).</summary>
    public long SpoolDropped => _spool.Dropped;

    public string DeadLetterPath => _deadLetterPath;

    public string? LastError => _lastError;

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
        var execId = body.Value.TryGetProperty("process", out var p) ? Text(p, "exec_id") ?? "" : "";
        var hook = Text(body.Value, "function_name") ?? Text(body.Value, "symbol") ?? Text(body.Value, "event");
        return DocumentId(Text(line, "node_name") ?? "", body.Name, execId, Text(line, "time") ?? "", Text(body.Value, "policy_name"), hook, Text(body.Value, "action"));
    }

    private string DocumentId(PalisadeEvent e)
    {
        Span<byte> time = stackalloc byte[40];
        var t = Encoding.UTF8.GetString(time[..TetragonJson.FormatTime(e.Time, time)]);
        return e switch
        {
            ProcessExecEvent => DocumentId(NodeName, "process_exec", e.Process.ExecId, t),
            ProcessExitEvent => DocumentId(NodeName, "process_exit", e.Process.ExecId, t),
            ProcessPolicyEvent pe => DocumentId(NodeName, TetragonJson.EventKey(pe.HookKind), e.Process.ExecId, t, pe.PolicyName,
                pe.HookKind == EventKind.ProcessTracepoint ? pe.EventName : pe.FunctionName, pe.HookKind == EventKind.ProcessUprobe ? null : pe.Action),
            _ => DocumentId(NodeName, e.Kind.ToString(), e.Process.ExecId, t),
        };
    }

    public override void Start()
    {
        base.Start();
        _sender = Task.Run(SendLoopAsync);
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

    private void WriteAction(ArrayBufferWriter<byte> buffer, Utf8JsonWriter json, string id, DateTimeOffset time)
    {
        json.Reset(buffer);
        json.WriteStartObject();
        json.WriteStartObject("create");
        json.WriteString("_index", _options.DailyIndices ? $"{_options.Index}-{time.UtcDateTime:yyyy.MM.dd}" : _options.Index);
        json.WriteString("_id", id);
        json.WriteEndObject();
        json.WriteEndObject();
        json.Flush();
        buffer.Write("\n"u8);
    }

    protected override ValueTask WriteAsync(ReadOnlyMemory<byte> lines)
    {
        _spool.Append(lines.Span);
        _dataReady.Release();
        return ValueTask.CompletedTask;
    }

    private async Task SendLoopAsync()
    {
        var token = _stop.Token;
        var attempt = 0;
        while (!token.IsCancellationRequested)
        {
            try
            {
                if (!_templateInstalled)
                {
                    await InstallTemplateAsync(token).ConfigureAwait(false);
                }
                var (items, next) = _spool.Read(_options.BatchSize, _options.BatchBytes);
                if (items.Count == 0)
                {
                    await _dataReady.WaitAsync(token).ConfigureAwait(false);
                    continue;
                }
                if (items.Count < _options.BatchSize && items.Sum(i => i.Length) < _options.BatchBytes)
                {
                    // Let the batch fill for up to the flush interval: fewer, larger requests.
                    var until = DateTime.UtcNow + _options.FlushInterval;
                    // It stops lingering as soon as a full batch is waiting: under load, batches
                    // go out back to back.
                    while (DateTime.UtcNow < until && _spool.PendingItems < _options.BatchSize && _spool.PendingBytes < _options.BatchBytes
                        && await _dataReady.WaitAsync(until - DateTime.UtcNow, token).ConfigureAwait(false))
                    {
                    }
                    (items, next) = _spool.Read(_options.BatchSize, _options.BatchBytes);
                }
                await SendBatchAsync(items, token).ConfigureAwait(false);
                _spool.Commit(next);
                attempt = 0;
                _lastError = null;
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException or RetryException or JsonException)
            {
                _lastError = e.Message;
                Interlocked.Increment(ref _retries);
                if (attempt == 0)
                {
                    _log?.Invoke($"Elasticsearch export: {e.Message}; events are spooled in {_options.SpoolDir} and retried");
                }
                try
                {
                    await Task.Delay(Backoff(attempt++), token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    private TimeSpan Backoff(int attempt)
    {
        var ceiling = Math.Min(_options.MaxBackoff.TotalMilliseconds, 100 * Math.Pow(2, Math.Min(attempt, 20)));
        return TimeSpan.FromMilliseconds(ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2);
    }

    private sealed class RetryException(string message) : Exception(message);

    private async Task InstallTemplateAsync(CancellationToken token)
    {
        using var body = new StringContent(EcsDocument.IndexTemplate(_options.Index, !_options.DailyIndices), Encoding.UTF8, "application/json");
        using var response = await _http.PutAsync($"_index_template/{_options.Index}", body, token).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.TooManyRequests || (int)response.StatusCode >= 500)
        {
            throw new RetryException($"installing index template {_options.Index}: HTTP {(int)response.StatusCode}");
        }
        if (!response.IsSuccessStatusCode)
        {
            // Not allowed to manage templates (a least-privilege key): index anyway, the
            // cluster's own template applies. Say so once.
            _log?.Invoke($"Elasticsearch export: could not install index template {_options.Index} (HTTP {(int)response.StatusCode}); indexing without it");
        }
        _templateInstalled = true;
    }

    /// <summary>Sends the items until each is created, already there, or dead-lettered.</summary>
    private async Task SendBatchAsync(List<ReadOnlyMemory<byte>> items, CancellationToken token)
    {
        var pending = items;
        var attempt = 0;
        while (pending.Count > 0)
        {
            var retry = await SendOnceAsync(pending, token).ConfigureAwait(false);
            if (retry.Count == 0)
            {
                return;
            }
            Interlocked.Add(ref _retries, retry.Count);
            pending = retry;
            await Task.Delay(Backoff(attempt++), token).ConfigureAwait(false);
        }
    }

    private async Task<List<ReadOnlyMemory<byte>>> SendOnceAsync(List<ReadOnlyMemory<byte>> items, CancellationToken token)
    {
        // One request body buffer, reused (a batch is megabytes: a fresh one per request is
        // large-object-heap churn); items go into it directly, through gzip when asked.
        _body.SetLength(0);
        if (_options.Compress)
        {
            using var gzip = new System.IO.Compression.GZipStream(_body, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true);
            foreach (var item in items)
            {
                gzip.Write(item.Span);
            }
        }
        else
        {
            foreach (var item in items)
            {
                _body.Write(item.Span);
            }
        }
        var content = new ByteArrayContent(_body.GetBuffer(), 0, (int)_body.Length);
        if (_options.Compress)
        {
            content.Headers.ContentEncoding.Add("gzip");
        }
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        using (content)
        {
            Interlocked.Increment(ref _requests);
            using var response = await _http.PostAsync("_bulk", content, token).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(token).ConfigureAwait(false);
            if (response.StatusCode is HttpStatusCode.TooManyRequests || (int)response.StatusCode >= 500)
            {
                throw new RetryException($"_bulk: HTTP {(int)response.StatusCode}");
            }
            if (!response.IsSuccessStatusCode)
            {
                // 401/403/400 on the whole request: a configuration problem, not this data's.
                // Keep the events and retry; the error is in the log and the status.
                throw new RetryException($"_bulk: HTTP {(int)response.StatusCode}: {Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 300)))}");
            }
            return HandleItems(items, body);
        }
    }

    private List<ReadOnlyMemory<byte>> HandleItems(List<ReadOnlyMemory<byte>> items, byte[] body)
    {
        var retry = new List<ReadOnlyMemory<byte>>();
        using var doc = JsonDocument.Parse(body);
        if (!doc.RootElement.TryGetProperty("items", out var results) || results.GetArrayLength() != items.Count)
        {
            throw new RetryException("_bulk: response does not list one result per item");
        }
        var i = 0;
        foreach (var result in results.EnumerateArray())
        {
            var item = items[i++];
            var op = result.EnumerateObject().First().Value;
            var status = op.TryGetProperty("status", out var s) ? s.GetInt32() : 0;
            if (status is >= 200 and < 300)
            {
                Interlocked.Increment(ref _indexed);
            }
            else if (status == 409)
            {
                Interlocked.Increment(ref _duplicates);
            }
            else if (status is 429 or >= 500 or 0)
            {
                retry.Add(item);
            }
            else
            {
                DeadLetter(item, status, op.TryGetProperty("error", out var error) ? error.GetRawText() : "{}");
            }
        }
        return retry;
    }

    private void DeadLetter(ReadOnlyMemory<byte> item, int status, string error)
    {
        var span = item.Span;
        var newline = span.IndexOf((byte)'\n');
        using var stream = new FileStream(_deadLetterPath, new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        using var w = new Utf8JsonWriter(stream, TetragonJson.WriterOptions);
        w.WriteStartObject();
        TetragonJson.WriteTime(w, "time", DateTimeOffset.UtcNow);
        w.WriteNumber("status", status);
        w.WritePropertyName("error");
        w.WriteRawValue(error);
        w.WritePropertyName("action");
        w.WriteRawValue(span[..newline], skipInputValidation: true);
        w.WritePropertyName("document");
        w.WriteRawValue(span[(newline + 1)..^1], skipInputValidation: true);
        w.WriteEndObject();
        w.Flush();
        stream.Write("\n"u8);
        Interlocked.Increment(ref _deadLettered);
    }

    private static AuthenticationHeaderValue? Authorization(ElasticsearchOptions o)
    {
        static string? Secret(string? file, string env)
        {
            if (file is not null)
            {
                return File.Exists(file) ? File.ReadAllText(file).Trim()
                    : throw new InvalidOperationException($"Elasticsearch credentials file {file} does not exist. Fix: mount the Secret there or unset the setting.");
            }
            return Environment.GetEnvironmentVariable(env) is { Length: > 0 } v ? v : null;
        }
        if (Secret(o.ApiKeyFile, "ELASTICSEARCH_API_KEY") is { } apiKey)
        {
            return new AuthenticationHeaderValue("ApiKey", apiKey);
        }
        if (Secret(o.BearerTokenFile, "ELASTICSEARCH_BEARER_TOKEN") is { } token)
        {
            return new AuthenticationHeaderValue("Bearer", token);
        }
        if (o.Username is not null)
        {
            var password = Secret(o.PasswordFile, "ELASTICSEARCH_PASSWORD") ?? string.Empty;
            return new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{o.Username}:{password}")));
        }
        return null;
    }

    private static SocketsHttpHandler CreateHandler(ElasticsearchOptions o)
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), ConnectTimeout = TimeSpan.FromSeconds(5) };
        if (o.CaFile is { } caFile)
        {
            var ca = X509CertificateLoader.LoadCertificateFromFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null)
                {
                    return false;
                }
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                var nameOk = (errors & System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch) == 0;
                return nameOk && chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            };
        }
        return handler;
    }

    /// <summary>Drains the queue into the spool, gives the sender a moment to catch up, then stops; what is left stays spooled for the next start.</summary>
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(3);
        while (_spool.PendingBytes > 0 && _lastError is null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50).ConfigureAwait(false);
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_sender is not null)
        {
            await _sender.ConfigureAwait(false);
        }
        _spool.Dispose();
        _http.Dispose();
        _stop.Dispose();
        await _scratchJson.DisposeAsync().ConfigureAwait(false);
    }
}
