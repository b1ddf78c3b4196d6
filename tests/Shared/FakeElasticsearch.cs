using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Palisade.Testing;

/// <summary>
/// A loopback Elasticsearch that implements what the exporter uses: PUT _index_template/NAME,
/// POST _bulk (gzip or plain) with real per-item results: 201 created, 409 when the _id
/// exists (op "create"), 429 for every Nth new item (retried by the client), 400
/// mapper_parsing_exception for documents containing "MAPPING-ERROR". It can be stopped and
/// started again on the same port to simulate an outage. Several can be nodes of one cluster
/// (<see cref="FakeElasticsearch(FakeElasticsearch)"/>): they share the documents, so a
/// create of an _id any of them has is a 409, as in Elasticsearch. Answers GET/HEAD / (the
/// transport's ping) like Elasticsearch does.
/// </summary>
public sealed class FakeElasticsearch : IDisposable
{
    private readonly Lock _gate;
    private readonly Dictionary<string, string> _docs;
    private readonly List<string> _createdOrder;
    private readonly List<string> _firstSeenOrder;
    private readonly HashSet<string> _seen;
    private HttpListener? _listener;
    private Task? _loop;
    private long _newItems;

    public FakeElasticsearch()
    {
        _gate = new();
        _docs = new(StringComparer.Ordinal);
        _createdOrder = [];
        _firstSeenOrder = [];
        _seen = new(StringComparer.Ordinal);
        var (listener, port) = Palisade.Tests.Shared.LoopbackHttp.Start();
        (_listener, Port) = (listener, port);
        _loop = Task.Run(() => Serve(listener));
    }

    /// <summary>Another node of <paramref name="cluster"/>'s cluster: same documents, own port, own request counts.</summary>
    public FakeElasticsearch(FakeElasticsearch cluster)
    {
        _gate = cluster._gate;
        _docs = cluster._docs;
        _createdOrder = cluster._createdOrder;
        _firstSeenOrder = cluster._firstSeenOrder;
        _seen = cluster._seen;
        var (listener, port) = Palisade.Tests.Shared.LoopbackHttp.Start();
        (_listener, Port) = (listener, port);
        _loop = Task.Run(() => Serve(listener));
    }

    public int Port { get; }

    public Uri Url => new($"http://127.0.0.1:{Port}/");

    /// <summary>Every Nth item never seen before gets a 429 (0: never).</summary>
    public int Reject429Every { get; set; }

    private int _bulkRequests;

    /// <summary>_bulk requests this node answered (safe to read while the server runs).</summary>
    public int BulkRequests => Volatile.Read(ref _bulkRequests);

    public int Rejected429 { get; private set; }

    public int Conflicts { get; private set; }

    public List<string> Templates { get; } = [];

    public List<string> MappingErrors { get; } = [];

    /// <summary>How many items got a mapping error so far (safe to read while the server runs).</summary>
    public int MappingErrorCount
    {
        get
        {
            lock (_gate)
            {
                return MappingErrors.Count;
            }
        }
    }

    public List<string> AuthorizationHeaders { get; } = [];

    public bool Running => _listener is not null;

    /// <summary>Ids in the order they were created (each once).</summary>
    public IReadOnlyList<string> Created
    {
        get
        {
            lock (_gate)
            {
                return [.. _createdOrder];
            }
        }
    }

    /// <summary>Ids in the order they were first sent (the client's sending order).</summary>
    public IReadOnlyList<string> FirstSeen
    {
        get
        {
            lock (_gate)
            {
                return [.. _firstSeenOrder];
            }
        }
    }

    public string Document(string id)
    {
        lock (_gate)
        {
            return _docs[id];
        }
    }

    public void Start()
    {
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        listener.Start();
        _listener = listener;
        _loop = Task.Run(() => Serve(listener));
    }

    public void Stop()
    {
        var listener = _listener;
        _listener = null;
        try
        {
            listener?.Stop();
        }
        catch (HttpListenerException)
        {
        }
        try
        {
            listener?.Close();
        }
        catch (HttpListenerException)
        {
            // The managed HttpListener can fail to unregister a prefix on a port it was restarted
            // on (Start after Stop, as a node that dies and comes back): "Address already in
            // use" from Close. The listener is stopped either way; the node is down.
        }
        try
        {
            _loop?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }

    private async Task Serve(HttpListener listener)
    {
        while (listener.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            try
            {
                Handle(ctx);
            }
            catch (Exception e)
            {
                ctx.Response.StatusCode = 500;
                var bytes = Encoding.UTF8.GetBytes(e.ToString());
                ctx.Response.OutputStream.Write(bytes);
            }
            finally
            {
                try
                {
                    ctx.Response.Close();
                }
                catch (HttpListenerException)
                {
                }
            }
        }
    }

    private void Handle(HttpListenerContext ctx)
    {
        var path = ctx.Request.Url!.AbsolutePath;
        Stream body = ctx.Request.InputStream;
        if (ctx.Request.Headers["Content-Encoding"] == "gzip")
        {
            body = new GZipStream(body, CompressionMode.Decompress);
        }
        var text = new StreamReader(body, Encoding.UTF8).ReadToEnd();
        lock (_gate)
        {
            AuthorizationHeaders.Add(ctx.Request.Headers["Authorization"] ?? "");
        }
        if (ctx.Request.HttpMethod == "PUT" && path.StartsWith("/_index_template/", StringComparison.Ordinal))
        {
            JsonDocument.Parse(text).Dispose();
            lock (_gate)
            {
                Templates.Add(path["/_index_template/".Length..]);
            }
            Reply(ctx, 200, "{\"acknowledged\":true}");
            return;
        }
        if (ctx.Request.HttpMethod == "POST" && path.EndsWith("/_bulk", StringComparison.Ordinal))
        {
            Reply(ctx, 200, Bulk(text));
            return;
        }
        if (ctx.Request.HttpMethod is "GET" or "HEAD" && path == "/")
        {
            Reply(ctx, 200, "{\"name\":\"fake\",\"cluster_name\":\"fake\",\"version\":{\"number\":\"8.17.0\"},\"tagline\":\"You Know, for Search\"}");
            return;
        }
        Reply(ctx, 404, "{\"error\":\"not found\"}");
    }

    private string Bulk(string ndjson)
    {
        var lines = ndjson.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var items = new StringBuilder();
        var errors = false;
        lock (_gate)
        {
            Interlocked.Increment(ref _bulkRequests);
            for (var i = 0; i + 1 < lines.Length; i += 2)
            {
                using var action = JsonDocument.Parse(lines[i]);
                var op = action.RootElement.GetProperty("create");
                var id = op.GetProperty("_id").GetString()!;
                var index = op.GetProperty("_index").GetString()!;
                var doc = lines[i + 1];
                JsonDocument.Parse(doc).Dispose();
                if (_seen.Add(id))
                {
                    _firstSeenOrder.Add(id);
                }
                int status;
                string? error = null;
                if (_docs.ContainsKey(id))
                {
                    status = 409;
                    Conflicts++;
                    error = "{\"type\":\"version_conflict_engine_exception\",\"reason\":\"document already exists\"}";
                }
                else if (doc.Contains("MAPPING-ERROR", StringComparison.Ordinal))
                {
                    status = 400;
                    MappingErrors.Add(id);
                    error = "{\"type\":\"mapper_parsing_exception\",\"reason\":\"failed to parse field [process.args]\"}";
                }
                else if (Reject429Every > 0 && ++_newItems % Reject429Every == 0)
                {
                    status = 429;
                    Rejected429++;
                    error = "{\"type\":\"es_rejected_execution_exception\",\"reason\":\"rejected execution\"}";
                }
                else
                {
                    status = 201;
                    _docs[id] = doc;
                    _createdOrder.Add(id);
                }
                errors |= status >= 300;
                if (items.Length > 0)
                {
                    items.Append(',');
                }
                items.Append("{\"create\":{\"_index\":").Append(JsonSerializer.Serialize(index)).Append(",\"_id\":").Append(JsonSerializer.Serialize(id))
                    .Append(",\"status\":").Append(status);
                if (error is not null)
                {
                    items.Append(",\"error\":").Append(error);
                }
                items.Append("}}");
            }
        }
        return $"{{\"took\":1,\"errors\":{(errors ? "true" : "false")},\"items\":[{items}]}}";
    }

    private static void Reply(HttpListenerContext ctx, int status, string json)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        var bytes = Encoding.UTF8.GetBytes(json);
        if (ctx.Request.HttpMethod == "HEAD")
        {
            return;
        }
        ctx.Response.ContentLength64 = bytes.Length;
        ctx.Response.OutputStream.Write(bytes);
    }

    public void Dispose() => Stop();
}
