using System.Buffers;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Elastic.Transport;

namespace Palisade.Exporters.Elasticsearch;

/// <summary>
/// The _bulk client under every Elasticsearch export (events, agent logs): items (an action
/// line and a document line each, already encoded) go through an on-disk spool first
/// (<see cref="BulkSpool"/>), so an outage or a restart loses nothing; a sender replays the
/// spool in order in batches (count, bytes, time), gzipped, with exponential backoff and
/// jitter. Per item: 2xx is done, 409 (op "create" of an _id already there) is done and
/// counted as a duplicate, 429 and 5xx are retried, anything else (mapping errors) goes to
/// the dead-letter file with the reason. Installs its index template first.
/// </summary>
public sealed class BulkClient : IAsyncDisposable
{
    private readonly ElasticsearchOptions _options;
    private readonly string _spoolDir;
    private readonly string _templateName;
    private readonly string _templateBody;
    private readonly string _what;
    private readonly ITransport _transport;
    private readonly NodePool _pool;
    private readonly BulkSpool _spool;
    private readonly string _deadLetterPath;
    private readonly MemoryStream _body = new();
    private readonly SemaphoreSlim _dataReady = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private readonly Action<string>? _log;
    private Task? _sender;
    private bool _templateInstalled;
    private long _indexed, _duplicates, _deadLettered, _retries, _requests;
    private volatile string? _lastError;

    /// <param name="options">URL, batching, auth, TLS (the --elasticsearch-* settings).</param>
    /// <param name="spoolDir">This client's own spool directory (also holds dead-letter.jsonl).</param>
    /// <param name="templateName">Name of the index template installed on start.</param>
    /// <param name="templateBody">The template (JSON).</param>
    /// <param name="what">What is shipped ("events", "agent logs"), for messages.</param>
    public BulkClient(ElasticsearchOptions options, string spoolDir, string templateName, string templateBody, string what,
        Action<string>? log = null)
    {
        _options = options;
        _spoolDir = spoolDir;
        _templateName = templateName;
        _templateBody = templateBody;
        _what = what;
        _log = log;
        _spool = new BulkSpool(spoolDir, options.SpoolMaxBytes);
        _deadLetterPath = Path.Combine(Path.GetFullPath(spoolDir), "dead-letter.jsonl");
        _pool = options.Nodes.Count == 1 ? new SingleNodePool(options.Nodes[0]) : new StaticNodePool(options.Nodes, randomize: false);
        _transport = new DistributedTransport(Configure(options, _pool));
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

    /// <summary>The nodes requests go to, with the transport's alive/dead marks.</summary>
    public IReadOnlyCollection<Node> Nodes => _pool.Nodes;

    public void Start() => _sender ??= Task.Run(SendLoopAsync);

    /// <summary>Appends an item's action line: op "create" (a replayed _id answers 409, never a second copy) into <paramref name="index"/>.</summary>
    public static void WriteCreateAction(ArrayBufferWriter<byte> buffer, Utf8JsonWriter json, string index, string id)
    {
        json.Reset(buffer);
        json.WriteStartObject();
        json.WriteStartObject("create");
        json.WriteString("_index", index);
        json.WriteString("_id", id);
        json.WriteEndObject();
        json.WriteEndObject();
        json.Flush();
        buffer.Write("\n"u8);
    }

    /// <summary>Spools whole items (action and document lines) and wakes the sender.</summary>
    public void Append(ReadOnlySpan<byte> items)
    {
        _spool.Append(items);
        _dataReady.Release();
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
                    _log?.Invoke($"Elasticsearch export of {_what}: {e.Message}; {_what} are spooled in {_spoolDir} and retried");
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
        var response = await _transport.RequestAsync<BytesResponse>(new EndpointPath(Elastic.Transport.HttpMethod.PUT, $"/_index_template/{_templateName}"),
            PostData.String(_templateBody), null, null, token).ConfigureAwait(false);
        var status = Status(response, $"installing index template {_templateName}");
        if (status is 429 or >= 500)
        {
            throw new RetryException($"installing index template {_templateName}: HTTP {status}");
        }
        if (status is < 200 or >= 300)
        {
            // Not allowed to manage templates (a least-privilege key): index anyway, the
            // cluster's own template applies. Say so once.
            _log?.Invoke($"Elasticsearch export of {_what}: could not install index template {_templateName} (HTTP {status}); indexing without it");
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
        // large-object-heap churn); items go into it directly. The transport gzips it when
        // elasticsearch-compress is on, and fails over to the next node on connection errors
        // and 502/503/504, marking the failed node dead for its dead timeout.
        _body.SetLength(0);
        foreach (var item in items)
        {
            _body.Write(item.Span);
        }
        Interlocked.Increment(ref _requests);
        var response = await _transport.RequestAsync<BytesResponse>(new EndpointPath(Elastic.Transport.HttpMethod.POST, "/_bulk"),
            PostData.ReadOnlyMemory(_body.GetBuffer().AsMemory(0, (int)_body.Length)), null, BulkRequest, token).ConfigureAwait(false);
        var status = Status(response, "_bulk");
        var body = response.Body ?? [];
        if (status is 429 or >= 500)
        {
            throw new RetryException($"_bulk: HTTP {status}");
        }
        if (status is < 200 or >= 300)
        {
            // 401/403/400 on the whole request: a configuration problem, not this data's.
            // Keep the events and retry; the error is in the log and the status.
            throw new RetryException($"_bulk: HTTP {status}: {Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 300)))}");
        }
        return HandleItems(items, body);
    }

    private static readonly RequestConfiguration BulkRequest = new() { ContentType = "application/x-ndjson", Accept = "application/json" };

    /// <summary>The HTTP status, or a retryable error when no node answered at all.</summary>
    private static int Status(BytesResponse response, string what)
    {
        if (response.ApiCallDetails.HttpStatusCode is { } status)
        {
            return status;
        }
        var e = response.ApiCallDetails.OriginalException;
        throw new RetryException($"{what}: no Elasticsearch node answered ({e?.GetBaseException().Message ?? "unreachable"})");
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

    private static AuthorizationHeader? Authorization(ElasticsearchOptions o)
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
            return new ApiKey(apiKey);
        }
        if (Secret(o.BearerTokenFile, "ELASTICSEARCH_BEARER_TOKEN") is { } token)
        {
            return new BearerToken(token);
        }
        if (o.Username is not null)
        {
            var password = Secret(o.PasswordFile, "ELASTICSEARCH_PASSWORD") ?? string.Empty;
            return new BasicAuthentication(o.Username, password);
        }
        return null;
    }

    /// <summary>'Authorization: Bearer TOKEN' (the transport has API key and basic auth types of its own).</summary>
    private sealed class BearerToken(string token) : AuthorizationHeader
    {
        public override string AuthScheme => "Bearer";

        public override bool TryGetAuthorizationParameters(out string value)
        {
            value = token;
            return true;
        }
    }

    private static TransportConfigurationDescriptor Configure(ElasticsearchOptions o, NodePool pool)
    {
        var config = new TransportConfigurationDescriptor(pool)
            .EnableHttpCompression(o.Compress)
            .RequestTimeout(TimeSpan.FromSeconds(30))
            .DeadTimeout(o.DeadTimeout)
            .MaxDeadTimeout(o.DeadTimeout * 30)
            // Our own backoff retries a whole batch; the transport tries each node once per request.
            .MaximumRetries(Math.Max(0, o.Nodes.Count - 1))
            .DisablePing(o.Nodes.Count == 1);
        if (Authorization(o) is { } auth)
        {
            config = config.Authentication(auth);
        }
        if (o.CaFile is { } caFile)
        {
            var ca = X509CertificateLoader.LoadCertificateFromFile(caFile);
            config = config.ServerCertificateValidationCallback((_, certificate, _, errors) =>
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
            });
        }
        return config;
    }

    /// <summary>Gives the sender a moment to send what is spooled, then stops; what is left stays spooled for the next start.</summary>
    public async ValueTask DisposeAsync()
    {
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
        (_transport as IDisposable)?.Dispose();
        _stop.Dispose();
        _dataReady.Dispose();
        await _body.DisposeAsync().ConfigureAwait(false);
    }
}
