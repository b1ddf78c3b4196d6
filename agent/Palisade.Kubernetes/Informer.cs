using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Palisade.Kubernetes;

/// <summary>One list or watch request: what an informer asks its resource for.</summary>
public sealed record ListRequest(string? ResourceVersion, string? Continue, int? Limit, int? TimeoutSeconds);

/// <summary>How to list and watch one kind: a KubernetesClient list call and its watch call (bookmarks on).</summary>
public sealed record ResourceKind<T, TList>(
    string Name,
    Func<IKubernetes, ListRequest, CancellationToken, Task<HttpOperationResponse<TList>>> List,
    Func<IKubernetes, ListRequest, Action<Exception>, CancellationToken, IAsyncEnumerable<(WatchEventType Type, T Object)>> Watch)
    where T : class, IKubernetesObject<V1ObjectMeta>
    where TList : class, IKubernetesObject<V1ListMeta>, IItems<T>;

/// <summary>What an informer tells its owner. Calls come one at a time, in the order the server sent them.</summary>
public interface IInformerHandler<in T>
{
    /// <summary>An object appeared or changed (old is null when it is new to us).</summary>
    void OnUpsert(T obj, T? old);

    void OnDelete(T obj);

    /// <summary>The first full list has been delivered (called once).</summary>
    void OnSynced();
}

/// <summary>Counters of one informer, for status and metrics.</summary>
public sealed class InformerStats
{
    internal long _lists, _watches, _events, _relists, _errors, _bookmarks;

    public long Lists => Interlocked.Read(ref _lists);
    public long Watches => Interlocked.Read(ref _watches);
    public long Events => Interlocked.Read(ref _events);

    /// <summary>Relists forced by 410 Gone (the resourceVersion we held was compacted away).</summary>
    public long Relists => Interlocked.Read(ref _relists);
    public long Errors => Interlocked.Read(ref _errors);
    public long Bookmarks => Interlocked.Read(ref _bookmarks);
    public string? LastError { get; internal set; }
    public string ResourceVersion { get; internal set; } = "";
}

/// <summary>
/// List+watch of one resource kind, the way client-go's reflector does it: list (paged), then
/// watch from the list's resourceVersion with bookmarks; a watch that ends is resumed from the
/// last resourceVersion seen; 410 Gone (an expired resourceVersion) relists and delivers the
/// difference to the store, so across reconnects no change is missed and none is delivered
/// twice. Errors back off exponentially with full jitter. A periodic resync re-delivers every
/// object, so a handler that failed once gets another chance.
/// </summary>
public sealed partial class Informer<T, TList>
    where T : class, IKubernetesObject<V1ObjectMeta>
    where TList : class, IKubernetesObject<V1ListMeta>, IItems<T>
{
    private readonly IKubernetes _client;
    private readonly ResourceKind<T, TList> _kind;
    private readonly IInformerHandler<T> _handler;
    private readonly ILogger _logger;
    private readonly Dictionary<string, T> _store = new(StringComparer.Ordinal);
    private readonly Lock _storeGate = new();
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Informer(IKubernetes client, ResourceKind<T, TList> kind, IInformerHandler<T> handler, ILogger logger)
    {
        _client = client;
        _kind = kind;
        _handler = handler;
        _logger = logger;
    }

    public string Name => _kind.Name;

    public InformerStats Stats { get; } = new();

    /// <summary>Completes when the first list has been delivered.</summary>
    public Task Synced => _synced.Task;

    /// <summary>Page size of lists.</summary>
    public int PageSize { get; init; } = 500;

    /// <summary>How long one watch request runs before the server is asked to end it (randomised per request, as client-go does).</summary>
    public TimeSpan WatchTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Re-deliver every object this often; zero: never.</summary>
    public TimeSpan Resync { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Longest wait for one page of a list.</summary>
    public TimeSpan ListTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public TimeSpan BackoffInitial { get; init; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan BackoffMax { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A copy of the objects known now.</summary>
    public IReadOnlyList<T> Snapshot()
    {
        lock (_storeGate)
        {
            return [.. _store.Values];
        }
    }

    public T? Get(string key)
    {
        lock (_storeGate)
        {
            return _store.GetValueOrDefault(key);
        }
    }

    public static string KeyOf(T obj) =>
        string.IsNullOrEmpty(obj.Metadata?.NamespaceProperty) ? obj.Metadata?.Name ?? "" : $"{obj.Metadata.NamespaceProperty}/{obj.Metadata.Name}";

    /// <summary>Runs until <paramref name="cancel"/> fires.</summary>
    public async Task RunAsync(CancellationToken cancel)
    {
        var failures = 0;
        var needList = true;
        var nextResync = Resync > TimeSpan.Zero ? DateTime.UtcNow + Resync : DateTime.MaxValue;
        while (!cancel.IsCancellationRequested)
        {
            try
            {
                if (needList)
                {
                    await ListAsync(cancel).ConfigureAwait(false);
                    needList = false;
                    failures = 0;
                }
                if (DateTime.UtcNow >= nextResync)
                {
                    ResyncAll();
                    nextResync = DateTime.UtcNow + Resync;
                }
                var outcome = await WatchAsync(cancel).ConfigureAwait(false);
                if (outcome == WatchOutcome.Gone)
                {
                    Interlocked.Increment(ref Stats._relists);
                    LogGone(_logger, Name, Stats.ResourceVersion);
                    needList = true;
                    continue;
                }
                if (outcome == WatchOutcome.Progress)
                {
                    failures = 0;
                }
                else if (outcome == WatchOutcome.Failed)
                {
                    await BackoffAsync(++failures, cancel).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                break;
            }
            catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.Gone)
            {
                Interlocked.Increment(ref Stats._relists);
                LogGone(_logger, Name, Stats.ResourceVersion);
                needList = true;
            }
            catch (Exception e) when (e is HttpRequestException or HttpOperationException or IOException or KubernetesException
                or System.Text.Json.JsonException or TaskCanceledException or InvalidOperationException)
            {
                Interlocked.Increment(ref Stats._errors);
                Stats.LastError = Describe(e);
                LogError(_logger, Name, needList ? "list" : "watch", Stats.LastError);
                await BackoffAsync(++failures, cancel).ConfigureAwait(false);
            }
        }
    }

    private enum WatchOutcome { Progress, Quiet, Failed, Gone }

    private async Task ListAsync(CancellationToken cancel)
    {
        var listed = new Dictionary<string, T>(StringComparer.Ordinal);
        string? token = null;
        string rv;
        do
        {
            Interlocked.Increment(ref Stats._lists);
            // The client has no overall timeout (watches are long); a list must not hang forever.
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            deadline.CancelAfter(ListTimeout);
            using var response = await _kind.List(_client, new ListRequest(null, token, PageSize, null), deadline.Token).ConfigureAwait(false);
            var list = response.Body;
            foreach (var item in list.Items ?? [])
            {
                listed[KeyOf(item)] = item;
            }
            token = list.Metadata?.ContinueProperty;
            rv = list.Metadata?.ResourceVersion ?? "";
        }
        while (!string.IsNullOrEmpty(token));

        // Deliver the difference between what we held and what the server has now: after a
        // 410 this is what happened while we were not watching, with nothing delivered twice.
        List<(T Obj, T? Old)> upserts = [];
        List<T> deletes = [];
        lock (_storeGate)
        {
            foreach (var (key, obj) in listed)
            {
                var old = _store.GetValueOrDefault(key);
                if (old is null || old.Metadata.ResourceVersion != obj.Metadata.ResourceVersion || old.Metadata.Uid != obj.Metadata.Uid)
                {
                    if (old is not null && old.Metadata.Uid != obj.Metadata.Uid)
                    {
                        deletes.Add(old); // deleted and re-created under the same name while we were away
                        old = null;
                    }
                    upserts.Add((obj, old));
                }
                _store[key] = obj;
            }
            foreach (var key in _store.Keys.Where(k => !listed.ContainsKey(k)).ToList())
            {
                deletes.Add(_store[key]);
                _store.Remove(key);
            }
        }
        foreach (var d in deletes)
        {
            Deliver(() => _handler.OnDelete(d));
        }
        foreach (var (obj, old) in upserts)
        {
            Deliver(() => _handler.OnUpsert(obj, old));
        }
        Stats.ResourceVersion = rv;
        if (!_synced.Task.IsCompleted)
        {
            Deliver(_handler.OnSynced);
            _synced.TrySetResult();
        }
        LogListed(_logger, Name, listed.Count, rv);
    }

    private async Task<WatchOutcome> WatchAsync(CancellationToken cancel)
    {
        Interlocked.Increment(ref Stats._watches);
        // Spread the watch renewals of many agents over time, as client-go does.
        var timeout = (int)(WatchTimeout.TotalSeconds * (1 + Random.Shared.NextDouble()));
        Exception? streamError = null;
        var progress = false;
        var events = _kind.Watch(_client, new ListRequest(Stats.ResourceVersion, null, null, timeout), e => streamError ??= e, cancel);
        await foreach (var (type, obj) in events.ConfigureAwait(false))
        {
            progress = true;
            Interlocked.Increment(ref Stats._events);
            switch (type)
            {
                case WatchEventType.Bookmark:
                    Interlocked.Increment(ref Stats._bookmarks);
                    break;
                case WatchEventType.Added:
                case WatchEventType.Modified:
                    Upsert(obj);
                    break;
                case WatchEventType.Deleted:
                    Remove(obj);
                    break;
                default:
                    break;
            }
            if (obj?.Metadata?.ResourceVersion is { Length: > 0 } rv)
            {
                Stats.ResourceVersion = rv;
            }
        }
        if (streamError is null)
        {
            return progress ? WatchOutcome.Progress : WatchOutcome.Quiet;
        }
        if (streamError is KubernetesException { Status.Code: 410 } || streamError is HttpOperationException { Response.StatusCode: HttpStatusCode.Gone })
        {
            return WatchOutcome.Gone;
        }
        if (streamError is OperationCanceledException && cancel.IsCancellationRequested)
        {
            throw streamError;
        }
        Interlocked.Increment(ref Stats._errors);
        Stats.LastError = Describe(streamError);
        LogError(_logger, Name, "watch", Stats.LastError);
        return WatchOutcome.Failed;
    }

    private void Upsert(T obj)
    {
        var key = KeyOf(obj);
        T? old;
        lock (_storeGate)
        {
            old = _store.GetValueOrDefault(key);
            if (old is not null && old.Metadata.ResourceVersion == obj.Metadata.ResourceVersion && old.Metadata.Uid == obj.Metadata.Uid)
            {
                return; // seen already (a watch resumed from an older resourceVersion)
            }
            _store[key] = obj;
        }
        Deliver(() => _handler.OnUpsert(obj, old));
    }

    private void Remove(T obj)
    {
        var key = KeyOf(obj);
        T? old;
        lock (_storeGate)
        {
            if (!_store.Remove(key, out old))
            {
                return;
            }
        }
        Deliver(() => _handler.OnDelete(obj));
    }

    private void ResyncAll()
    {
        foreach (var obj in Snapshot())
        {
            Deliver(() => _handler.OnUpsert(obj, obj));
        }
    }

    /// <summary>A handler that throws must not stop the informer (nor skip the objects after it).</summary>
    private void Deliver(Action call)
    {
        try
        {
            call();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Interlocked.Increment(ref Stats._errors);
            LogHandlerFailed(_logger, Name, e.Message);
        }
    }

    private async Task BackoffAsync(int failures, CancellationToken cancel)
    {
        var cap = Math.Min(BackoffMax.TotalMilliseconds, BackoffInitial.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 16)));
        var delay = TimeSpan.FromMilliseconds(cap / 2 + Random.Shared.NextDouble() * cap / 2);
        await Task.Delay(delay, cancel).ConfigureAwait(false);
    }

    private static string Describe(Exception e) => e switch
    {
        HttpOperationException h => $"HTTP {(int?)h.Response?.StatusCode} {h.Response?.ReasonPhrase}: {Truncate(h.Response?.Content)}",
        KubernetesException k => $"{k.Status?.Code} {k.Status?.Reason}: {k.Status?.Message}",
        _ => e.Message,
    };

    private static string? Truncate(string? s) => s is { Length: > 200 } ? s[..200] + "..." : s;

    [LoggerMessage(Level = LogLevel.Information, Message = "Kubernetes {Kind}: listed {Count} objects at resourceVersion {ResourceVersion}")]
    private static partial void LogListed(ILogger logger, string kind, int count, string resourceVersion);

    [LoggerMessage(Level = LogLevel.Information, Message = "Kubernetes {Kind}: resourceVersion {ResourceVersion} expired (410 Gone); relisting")]
    private static partial void LogGone(ILogger logger, string kind, string resourceVersion);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Kubernetes {Kind}: {Operation} failed, retrying with backoff: {Error}")]
    private static partial void LogError(ILogger logger, string kind, string operation, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Kubernetes {Kind}: handler failed: {Error}")]
    private static partial void LogHandlerFailed(ILogger logger, string kind, string error);
}
