using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using System.Web;

namespace Palisade.Tests.Shared;

/// <summary>
/// A loopback Kubernetes API server that speaks the real list/watch protocol for the kinds
/// the agent reads: JSON lists with metadata.resourceVersion and continue tokens, ?watch=1
/// streams of chunked newline-separated events, BOOKMARK events, timeoutSeconds, a global
/// resourceVersion counter, and 410 Gone (as an ERROR event, the way kube-apiserver does it)
/// for a watch that resumes from a compacted resourceVersion. It also takes merge patches on
/// status subresources and Event creations, and records them for assertions. Tests drive it:
/// create, update, delete objects, drop every watch, compact history.
/// </summary>
public sealed class FakeKubeApiServer : IDisposable
{
    private readonly Lock _gate = new();
    private readonly HttpListener _listener;
    private readonly Task _loop;
    private readonly Dictionary<string, Dictionary<string, JsonObject>> _collections = new(StringComparer.Ordinal);
    private readonly List<(long Rv, string Collection, string Type, JsonObject Object)> _history = [];
    private readonly List<Watch> _watches = [];
    private readonly CancellationTokenSource _stop = new();
    private long _rv = 100;
    private long _compactedBefore;
    private long _uid;

    private sealed class Watch(string collection, string? ns, Func<JsonObject, bool> filter, bool bookmarks)
    {
        public readonly string Collection = collection;
        public readonly string? Namespace = ns;
        public readonly Func<JsonObject, bool> Filter = filter;
        public readonly bool Bookmarks = bookmarks;
        public readonly Channel<string?> Lines = Channel.CreateUnbounded<string?>();
    }

    public FakeKubeApiServer()
    {
        (_listener, Port) = LoopbackHttp.Start();
        _loop = Task.Run(Serve);
    }

    public int Port { get; }

    public Uri Url => new($"http://127.0.0.1:{Port}");

    /// <summary>How often open watches get a BOOKMARK (when the client asked for them).</summary>
    public TimeSpan BookmarkEvery { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Every request, as "METHOD path?query".</summary>
    public List<string> Requests { get; } = [];

    /// <summary>Merge patches received: (path, body).</summary>
    public List<(string Path, string Body)> Patches { get; } = [];

    /// <summary>Event objects created.</summary>
    public List<JsonObject> Events { get; } = [];

    public int OpenWatches
    {
        get
        {
            lock (_gate)
            {
                return _watches.Count;
            }
        }
    }

    public long ResourceVersion => Interlocked.Read(ref _rv);

    /// <summary>Writes a kubeconfig that points at this server (no auth) and returns its path.</summary>
    public string WriteKubeconfig(string dir)
    {
        var path = Path.Combine(dir, "kubeconfig");
        File.WriteAllText(path, $$"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: fake
              cluster:
                server: {{Url}}
            contexts:
            - name: fake
              context:
                cluster: fake
                user: fake
            current-context: fake
            users:
            - name: fake
              user:
                token: test-token
            """);
        return path;
    }

    // ------------------------------------------------------------------ test controls

    /// <summary>Collection ids: "v1/pods", "cilium.io/v1alpha1/tracingpolicies", ...</summary>
    public JsonObject Create(string collection, JsonObject obj)
    {
        lock (_gate)
        {
            var meta = Meta(obj);
            meta["uid"] ??= $"00000000-0000-4000-8000-{Interlocked.Increment(ref _uid):D12}";
            meta["generation"] = 1L;
            meta["creationTimestamp"] = "2026-11-23T00:00:00Z";
            return Store(collection, obj, "ADDED");
        }
    }

    /// <summary>
    /// Stores an object without telling the watches, as a watch running behind would: clients
    /// learn of it only by a create that answers 409 or by a GET.
    /// </summary>
    public JsonObject CreateUnseen(string collection, JsonObject obj)
    {
        lock (_gate)
        {
            var meta = Meta(obj);
            meta["uid"] ??= $"00000000-0000-4000-8000-{Interlocked.Increment(ref _uid):D12}";
            meta["creationTimestamp"] ??= "2026-11-23T00:00:00Z";
            Meta(obj)["resourceVersion"] = (++_rv).ToString(System.Globalization.CultureInfo.InvariantCulture);
            Collection(collection)[KeyOf(obj)] = obj;
            _history.Add((_rv, collection, "ADDED", (JsonObject)obj.DeepClone()));
            return (JsonObject)obj.DeepClone();
        }
    }

    /// <summary>
    /// When set, every request is first offered to it with (method, path): a status code it
    /// returns is the answer (an API server that fails: 403, 500, 503), null lets the request
    /// through. <see cref="Stall"/> answers nothing until the client gives up.
    /// </summary>
    public Func<string, string, int?>? Fault { get; set; }

    /// <summary>A <see cref="Fault"/> answer: hold the request open without answering (a server that hangs).</summary>
    public const int Stall = -1;

    /// <summary>Objects in a collection (copies).</summary>
    public IReadOnlyList<JsonObject> All(string collection)
    {
        lock (_gate)
        {
            return [.. Collection(collection).Values.Select(o => (JsonObject)o.DeepClone())];
        }
    }

    /// <summary>Replaces an object (same name and namespace); spec changes bump generation.</summary>
    public JsonObject Update(string collection, JsonObject obj)
    {
        lock (_gate)
        {
            var key = KeyOf(obj);
            var old = Collection(collection)[key];
            var meta = Meta(obj);
            meta["uid"] = Meta(old)["uid"]!.GetValue<string>();
            meta["creationTimestamp"] = Meta(old)["creationTimestamp"]!.GetValue<string>();
            var generation = Meta(old)["generation"]?.GetValue<long>() ?? 1;
            meta["generation"] = JsonNode.DeepEquals(old["spec"], obj["spec"]) ? generation : generation + 1;
            obj["status"] ??= old["status"]?.DeepClone();
            return Store(collection, obj, "MODIFIED");
        }
    }

    public void Delete(string collection, string name, string? ns = null)
    {
        lock (_gate)
        {
            var key = ns is null ? name : $"{ns}/{name}";
            if (Collection(collection).Remove(key, out var old))
            {
                Meta(old)["resourceVersion"] = (++_rv).ToString(System.Globalization.CultureInfo.InvariantCulture);
                Publish(collection, "DELETED", old);
            }
        }
    }

    public JsonObject? Get(string collection, string name, string? ns = null)
    {
        lock (_gate)
        {
            return Collection(collection).TryGetValue(ns is null ? name : $"{ns}/{name}", out var o) ? (JsonObject)o.DeepClone() : null;
        }
    }

    /// <summary>Ends every open watch, as a dropped connection or an API server restart would.</summary>
    public void DropWatches()
    {
        lock (_gate)
        {
            foreach (var w in _watches)
            {
                w.Lines.Writer.TryWrite(null);
            }
        }
    }

    /// <summary>
    /// Drops every watch, makes <paramref name="changes"/> and forgets history in one step: no
    /// watch can resume in between and see them as events, so a client learns of them only from
    /// the 410 Gone of its next watch and the relist after it.
    /// </summary>
    public void ChangeUnseen(Action changes)
    {
        lock (_gate)
        {
            DropWatches();
            changes();
            Compact();
        }
    }

    /// <summary>Forgets history: a watch resuming from before now gets 410 Gone.</summary>
    public void Compact()
    {
        lock (_gate)
        {
            _compactedBefore = _rv + 1;
            _history.Clear();
        }
    }

    // ------------------------------------------------------------------ store

    private static JsonObject Meta(JsonObject obj) => (JsonObject)(obj["metadata"] ??= new JsonObject());

    private static string KeyOf(JsonObject obj)
    {
        var meta = Meta(obj);
        var name = meta["name"]!.GetValue<string>();
        return meta["namespace"]?.GetValue<string>() is { } ns ? $"{ns}/{name}" : name;
    }

    private Dictionary<string, JsonObject> Collection(string id)
    {
        if (!_collections.TryGetValue(id, out var c))
        {
            _collections[id] = c = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        }
        return c;
    }

    private JsonObject Store(string collection, JsonObject obj, string type)
    {
        Meta(obj)["resourceVersion"] = (++_rv).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Collection(collection)[KeyOf(obj)] = obj;
        Publish(collection, type, obj);
        return (JsonObject)obj.DeepClone();
    }

    private void Publish(string collection, string type, JsonObject obj)
    {
        _history.Add((_rv, collection, type, (JsonObject)obj.DeepClone()));
        foreach (var w in _watches.Where(w => w.Collection == collection && InNamespace(w.Namespace, obj) && w.Filter(obj)))
        {
            w.Lines.Writer.TryWrite(EventLine(type, obj));
        }
    }

    private static bool InNamespace(string? ns, JsonObject obj) => ns is null || Meta(obj)["namespace"]?.GetValue<string>() == ns;

    private static string EventLine(string type, JsonNode obj) =>
        new JsonObject { ["type"] = type, ["object"] = obj.DeepClone() }.ToJsonString() + "\n";

    // ------------------------------------------------------------------ HTTP

    private async Task Serve()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    private async Task Handle(HttpListenerContext ctx)
    {
        try
        {
            var path = ctx.Request.Url!.AbsolutePath;
            var query = HttpUtility.ParseQueryString(ctx.Request.Url.Query);
            lock (_gate)
            {
                Requests.Add($"{ctx.Request.HttpMethod} {ctx.Request.Url.PathAndQuery}");
            }
            var (collection, ns, name, sub) = Route(path);
            if (collection is null)
            {
                Reply(ctx, 404, Status(404, "NotFound", $"no route {path}"));
                return;
            }
            if (Fault?.Invoke(ctx.Request.HttpMethod, path) is { } fault)
            {
                if (fault == Stall)
                {
                    await Task.Delay(Timeout.Infinite, _stop.Token).ConfigureAwait(false);
                }
                Reply(ctx, fault, Status(fault, fault == 403 ? "Forbidden" : "InternalError", $"injected {fault}"));
                return;
            }
            switch (ctx.Request.HttpMethod)
            {
                case "GET" when name is null && (query["watch"] is "1" or "true"):
                    await WatchAsync(ctx, collection, ns, query).ConfigureAwait(false);
                    return;
                case "GET" when name is null:
                    List(ctx, collection, ns, query);
                    return;
                case "GET":
                    Reply(ctx, Get(collection, name, ns) is { } one ? 200 : 404, Get(collection, name, ns)?.ToJsonString() ?? Status(404, "NotFound", name));
                    return;
                case "PATCH" when sub == "status":
                    PatchStatus(ctx, collection, ns, name!);
                    return;
                case "PATCH" when name is not null && sub is null:
                    PatchObject(ctx, collection, ns, name);
                    return;
                case "DELETE" when name is not null:
                    DeleteObject(ctx, collection, ns, name);
                    return;
                case "POST" when collection == "v1/events":
                    using (var reader = new StreamReader(ctx.Request.InputStream))
                    {
                        var ev = JsonNode.Parse(reader.ReadToEnd())!.AsObject();
                        lock (_gate)
                        {
                            Events.Add(ev);
                        }
                        Meta(ev)["name"] ??= Meta(ev)["generateName"]?.GetValue<string>() + "x1";
                        Reply(ctx, 201, ev.ToJsonString());
                    }
                    return;
                case "POST" when name is null:
                    CreateObject(ctx, collection, ns);
                    return;
                default:
                    Reply(ctx, 405, Status(405, "MethodNotAllowed", ctx.Request.HttpMethod));
                    return;
            }
        }
        catch (OperationCanceledException)
        {
            // the server stops while a request stalls
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
        {
            // client went away
        }
        finally
        {
            try
            {
                ctx.Response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }
    }

    /// <summary>"/api/v1/namespaces/ns/pods/name/status" → ("v1/pods", "ns", "name", "status").</summary>
    private static (string? Collection, string? Namespace, string? Name, string? Sub) Route(string path)
    {
        var parts = path.Trim('/').Split('/');
        string groupVersion;
        int i;
        if (parts.Length >= 3 && parts[0] == "api")
        {
            groupVersion = parts[1];
            i = 2;
        }
        else if (parts.Length >= 4 && parts[0] == "apis")
        {
            groupVersion = $"{parts[1]}/{parts[2]}";
            i = 3;
        }
        else
        {
            return (null, null, null, null);
        }
        string? ns = null;
        if (parts.Length > i + 2 && parts[i] == "namespaces")
        {
            ns = parts[i + 1];
            i += 2;
        }
        var resource = parts[i];
        var name = parts.Length > i + 1 ? parts[i + 1] : null;
        var sub = parts.Length > i + 2 ? parts[i + 2] : null;
        return ($"{groupVersion}/{resource}", ns, name, sub);
    }

    private static Func<JsonObject, bool> FieldFilter(string? selector)
    {
        if (string.IsNullOrEmpty(selector))
        {
            return _ => true;
        }
        var terms = selector.Split(',').Select(t => t.Split('=', 2)).ToList();
        return obj => terms.All(t => Field(obj, t[0]) == t[1]);
    }

    private static string? Field(JsonObject obj, string dotted)
    {
        JsonNode? node = obj;
        foreach (var part in dotted.Split('.'))
        {
            node = node?[part];
        }
        return node?.GetValue<string>();
    }

    private void List(HttpListenerContext ctx, string collection, string? ns, System.Collections.Specialized.NameValueCollection query)
    {
        var filter = FieldFilter(query["fieldSelector"]);
        List<JsonObject> items;
        long rv;
        lock (_gate)
        {
            items = [.. Collection(collection).Values.Where(o => InNamespace(ns, o) && filter(o)).OrderBy(KeyOf, StringComparer.Ordinal).Select(o => (JsonObject)o.DeepClone())];
            rv = _rv;
        }
        var offset = int.TryParse(query["continue"], out var c) ? c : 0;
        var limit = int.TryParse(query["limit"], out var l) && l > 0 ? l : int.MaxValue;
        var page = items.Skip(offset).Take(limit).ToList();
        var meta = new JsonObject { ["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (offset + page.Count < items.Count)
        {
            meta["continue"] = (offset + page.Count).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        var list = new JsonObject { ["apiVersion"] = "v1", ["kind"] = "List", ["metadata"] = meta, ["items"] = new JsonArray([.. page]) };
        Reply(ctx, 200, list.ToJsonString());
    }

    private async Task WatchAsync(HttpListenerContext ctx, string collection, string? ns, System.Collections.Specialized.NameValueCollection query)
    {
        var filter = FieldFilter(query["fieldSelector"]);
        var bookmarks = query["allowWatchBookmarks"] is "true" or "1";
        var timeout = int.TryParse(query["timeoutSeconds"], out var t) ? TimeSpan.FromSeconds(t) : TimeSpan.FromMinutes(30);
        var from = long.TryParse(query["resourceVersion"], out var r) ? r : 0;
        var watch = new Watch(collection, ns, filter, bookmarks);
        lock (_gate)
        {
            if (from != 0 && from < _compactedBefore - 1)
            {
                // kube-apiserver answers 200 and sends one ERROR event with a 410 Status.
                watch.Lines.Writer.TryWrite(EventLine("ERROR", JsonNode.Parse(Status(410, "Expired", $"too old resource version: {from} ({_compactedBefore - 1})"))!));
                watch.Lines.Writer.TryWrite(null);
            }
            else
            {
                if (from == 0)
                {
                    // No resourceVersion: current state as ADDED events, then changes.
                    foreach (var o in Collection(collection).Values.Where(o => InNamespace(ns, o) && filter(o)))
                    {
                        watch.Lines.Writer.TryWrite(EventLine("ADDED", o));
                    }
                }
                else
                {
                    foreach (var h in _history.Where(h => h.Rv > from && h.Collection == collection && InNamespace(ns, h.Object) && filter(h.Object)))
                    {
                        watch.Lines.Writer.TryWrite(EventLine(h.Type, h.Object));
                    }
                }
                _watches.Add(watch);
            }
        }
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        ctx.Response.SendChunked = true;
        var output = ctx.Response.OutputStream;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        deadline.CancelAfter(timeout);
        try
        {
            await output.FlushAsync(deadline.Token).ConfigureAwait(false);
            while (true)
            {
                string? line;
                using (var tick = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token))
                {
                    tick.CancelAfter(BookmarkEvery);
                    try
                    {
                        line = await watch.Lines.Reader.ReadAsync(tick.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!deadline.IsCancellationRequested)
                    {
                        if (!bookmarks)
                        {
                            continue;
                        }
                        line = EventLine("BOOKMARK", new JsonObject
                        {
                            ["kind"] = "Bookmark",
                            ["apiVersion"] = "v1",
                            ["metadata"] = new JsonObject { ["resourceVersion"] = ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                        });
                    }
                }
                if (line is null)
                {
                    break;
                }
                var bytes = Encoding.UTF8.GetBytes(line);
                await output.WriteAsync(bytes, deadline.Token).ConfigureAwait(false);
                await output.FlushAsync(deadline.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // timeoutSeconds reached, or the server stops
        }
        finally
        {
            lock (_gate)
            {
                _watches.Remove(watch);
            }
        }
    }

    private void PatchStatus(HttpListenerContext ctx, string collection, string? ns, string name)
    {
        string body;
        using (var reader = new StreamReader(ctx.Request.InputStream))
        {
            body = reader.ReadToEnd();
        }
        lock (_gate)
        {
            Patches.Add((ctx.Request.Url!.AbsolutePath, body));
            var key = ns is null ? name : $"{ns}/{name}";
            if (!Collection(collection).TryGetValue(key, out var obj))
            {
                Reply(ctx, 404, Status(404, "NotFound", $"{collection} {key} not found"));
                return;
            }
            if (ctx.Request.ContentType?.StartsWith("application/merge-patch+json", StringComparison.Ordinal) != true)
            {
                Reply(ctx, 415, Status(415, "UnsupportedMediaType", ctx.Request.ContentType ?? ""));
                return;
            }
            var patch = JsonNode.Parse(body)!.AsObject();
            // Only the status subresource changes, and it does not bump generation.
            obj["status"] = Merge(obj["status"]?.DeepClone(), patch["status"]);
            Store(collection, obj, "MODIFIED");
            Reply(ctx, 200, obj.ToJsonString());
        }
    }

    /// <summary>POST to a collection: 201 with the stored object, or 409 AlreadyExists as kube-apiserver answers a taken name.</summary>
    private void CreateObject(HttpListenerContext ctx, string collection, string? ns)
    {
        JsonObject obj;
        using (var reader = new StreamReader(ctx.Request.InputStream))
        {
            obj = JsonNode.Parse(reader.ReadToEnd())!.AsObject();
        }
        if (ns is not null)
        {
            Meta(obj)["namespace"] = ns;
        }
        var name = Meta(obj)["name"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name))
        {
            Reply(ctx, 422, Status(422, "Invalid", "metadata.name: Required value"));
            return;
        }
        lock (_gate)
        {
            if (Collection(collection).ContainsKey(KeyOf(obj)))
            {
                Reply(ctx, 409, Status(409, "AlreadyExists", $"{collection} \"{name}\" already exists"));
                return;
            }
            Meta(obj)["creationTimestamp"] = null;
            var stored = Create(collection, obj);
            Reply(ctx, 201, stored.ToJsonString());
        }
    }

    /// <summary>DELETE of one object, honouring DeleteOptions.preconditions (uid, resourceVersion) with 409 Conflict.</summary>
    private void DeleteObject(HttpListenerContext ctx, string collection, string? ns, string name)
    {
        string body;
        using (var reader = new StreamReader(ctx.Request.InputStream))
        {
            body = reader.ReadToEnd();
        }
        var preconditions = body.Length > 0 ? JsonNode.Parse(body)?["preconditions"] : null;
        lock (_gate)
        {
            var key = ns is null ? name : $"{ns}/{name}";
            if (!Collection(collection).TryGetValue(key, out var obj))
            {
                Reply(ctx, 404, Status(404, "NotFound", $"{collection} \"{name}\" not found"));
                return;
            }
            var wantRv = preconditions?["resourceVersion"]?.GetValue<string>();
            var wantUid = preconditions?["uid"]?.GetValue<string>();
            if ((wantRv is not null && wantRv != Meta(obj)["resourceVersion"]?.GetValue<string>()) || (wantUid is not null && wantUid != Meta(obj)["uid"]?.GetValue<string>()))
            {
                Reply(ctx, 409, Status(409, "Conflict", $"Precondition failed: {collection} \"{name}\" has changed"));
                return;
            }
            Delete(collection, name, ns);
            Reply(ctx, 200, new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Success" }.ToJsonString());
        }
    }

    /// <summary>PATCH of an object (merge patch): metadata and the rest merged, generation bumped only by a spec change.</summary>
    private void PatchObject(HttpListenerContext ctx, string collection, string? ns, string name)
    {
        string body;
        using (var reader = new StreamReader(ctx.Request.InputStream))
        {
            body = reader.ReadToEnd();
        }
        lock (_gate)
        {
            Patches.Add((ctx.Request.Url!.AbsolutePath, body));
            var key = ns is null ? name : $"{ns}/{name}";
            if (!Collection(collection).TryGetValue(key, out var obj))
            {
                Reply(ctx, 404, Status(404, "NotFound", $"{collection} \"{name}\" not found"));
                return;
            }
            if (ctx.Request.ContentType?.StartsWith("application/merge-patch+json", StringComparison.Ordinal) != true)
            {
                Reply(ctx, 415, Status(415, "UnsupportedMediaType", ctx.Request.ContentType ?? ""));
                return;
            }
            var patch = JsonNode.Parse(body)!.AsObject();
            patch.Remove("status");
            var merged = Merge(obj.DeepClone(), patch)!.AsObject();
            var meta = Meta(merged);
            meta["name"] = name;
            meta["uid"] = Meta(obj)["uid"]?.DeepClone();
            var stored = Store(collection, merged, "MODIFIED");
            Reply(ctx, 200, stored.ToJsonString());
        }
    }

    /// <summary>RFC 7386 JSON merge patch.</summary>
    private static JsonNode? Merge(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject p)
        {
            return patch?.DeepClone();
        }
        var result = target as JsonObject ?? new JsonObject();
        foreach (var (k, v) in p)
        {
            if (v is null)
            {
                result.Remove(k);
            }
            else
            {
                result[k] = Merge(result[k]?.DeepClone(), v);
            }
        }
        return result;
    }

    private static string Status(int code, string reason, string message) =>
        new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Failure", ["message"] = message, ["reason"] = reason, ["code"] = code }.ToJsonString();

    private static void Reply(HttpListenerContext ctx, int status, string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength64 = bytes.Length;
        ctx.Response.OutputStream.Write(bytes);
    }

    public void Dispose()
    {
        _stop.Cancel();
        DropWatches();
        _listener.Stop();
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        _stop.Dispose();
    }

    // ------------------------------------------------------------------ object builders

    public static JsonObject Pod(string ns, string name, string node, IReadOnlyDictionary<string, string>? labels = null,
        IEnumerable<(string Name, string Id, string Image)>? containers = null, JsonArray? owners = null)
    {
        var statuses = new JsonArray();
        foreach (var c in containers ?? [])
        {
            statuses.Add(new JsonObject
            {
                ["name"] = c.Name,
                ["containerID"] = $"containerd://{c.Id}",
                ["image"] = c.Image,
                ["imageID"] = $"{c.Image}@sha256:{new string('a', 64)}",
                ["ready"] = true,
                ["restartCount"] = 0,
                ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = "2026-11-23T08:00:00Z" } },
            });
        }
        var meta = new JsonObject { ["name"] = name, ["namespace"] = ns };
        if (labels is not null)
        {
            meta["labels"] = new JsonObject([.. labels.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))]);
        }
        if (owners is not null)
        {
            meta["ownerReferences"] = owners;
        }
        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = meta,
            ["spec"] = new JsonObject { ["nodeName"] = node, ["containers"] = new JsonArray([.. (containers ?? []).Select(c => (JsonNode)new JsonObject { ["name"] = c.Name, ["image"] = c.Image })]) },
            ["status"] = new JsonObject { ["phase"] = "Running", ["containerStatuses"] = statuses },
        };
    }

    /// <summary>A TracingPolicy(Namespaced) object from a YAML document (as kubectl would send it).</summary>
    public static JsonObject FromYaml(string yaml)
    {
        var deserializer = new YamlDotNet.Serialization.DeserializerBuilder().Build();
        var serializer = new YamlDotNet.Serialization.SerializerBuilder().JsonCompatible().Build();
        var graph = deserializer.Deserialize<object>(yaml);
        var json = JsonNode.Parse(serializer.Serialize(graph))!.AsObject();
        return ConvertScalars(json)!.AsObject();
    }

    /// <summary>YAML-to-JSON leaves every scalar a string; give numbers and booleans their JSON types as the API server would.</summary>
    private static JsonNode? ConvertScalars(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in o.Select(kv => kv.Key).ToList())
                {
                    o[key] = ConvertScalars(o[key]?.DeepClone());
                }
                return o;
            case JsonArray a:
                var items = a.Select(i => ConvertScalars(i?.DeepClone())).ToList();
                return new JsonArray([.. items]);
            case JsonValue v when v.TryGetValue<string>(out var s):
                if (s is "true" or "false")
                {
                    return JsonValue.Create(s == "true");
                }
                if (long.TryParse(s, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var n) && !s.StartsWith('0') || s == "0")
                {
                    return JsonValue.Create(n);
                }
                return v;
            default:
                return node;
        }
    }
}
