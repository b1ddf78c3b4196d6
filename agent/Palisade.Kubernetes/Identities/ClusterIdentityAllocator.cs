using System.Globalization;
using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Palisade.Kubernetes.Identities;

/// <summary>How cluster-wide identities are allocated and collected.</summary>
public sealed record ClusterIdentityOptions
{
    /// <summary>The first number of the cluster range (below: Cilium's reserved identities and room for more; PAL_ID_FIRST_LOCAL).</summary>
    public uint First { get; init; } = 256;

    /// <summary>The last number: Cilium's range of one cluster (cluster id 0). At most 2^24 - 1, where CIDR identities begin.</summary>
    public uint Last { get; init; } = 65535;

    /// <summary>An identity no node has used for this long is deleted (Cilium's identity-heartbeat-timeout).</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How often this node looks for identities to delete (Cilium's identity-gc-interval).</summary>
    public TimeSpan GcInterval { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Longest an allocation may take, retries included, before it fails (CNI ADD then answers "try again later").</summary>
    public TimeSpan AllocationTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest one API request may take.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan BackoffInitial { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan BackoffMax { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>A node refreshes the last-used time of an identity it holds when the one on the object is older than this.</summary>
    public TimeSpan RefreshAfter => HeartbeatTimeout / 4;

    /// <summary>The problem with these options; null when they are usable.</summary>
    public string? Problem() =>
        First < 256 ? $"the first identity {First} is below 256, where Cilium's reserved identities end"
        : Last >= 1u << 24 ? $"the last identity {Last} reaches 2^24 ({1u << 24}), where CIDR identities begin"
        : Last < First ? $"the range {First} to {Last} is empty"
        : HeartbeatTimeout <= TimeSpan.Zero || GcInterval <= TimeSpan.Zero ? "the heartbeat timeout and the GC interval must be positive"
        : null;
}

/// <summary>An identity could not be allocated now (the API cannot be reached, refuses, or the range is full). Retryable.</summary>
public sealed class IdentityAllocationException : Exception
{
    public IdentityAllocationException(string message) : base(message)
    {
    }

    public IdentityAllocationException(string message, Exception inner) : base(message, inner)
    {
    }

    public IdentityAllocationException()
    {
    }
}

/// <summary>
/// Cluster-wide security identities through the Kubernetes API, as Cilium's CRD identity mode
/// does it: one cluster-scoped <see cref="IdentityObject.Kind"/> per identity, named by its
/// number, its labels in <c>security-labels</c>. Every identity of the cluster is watched (the
/// policy engine needs the labels of other nodes' pods). To allocate, a node looks for an object
/// with the same labels; else it creates one, trying numbers in an order that depends on the
/// labels alone, so that nodes allocating the same labels at once try the same number first: one
/// create wins, the others get 409 AlreadyExists, read the object, find their labels and adopt
/// it; a number taken by other labels is skipped. Each node refreshes a last-used annotation on
/// the identities its endpoints hold; any node deletes an identity whose last use is older than
/// the heartbeat timeout and that it does not hold, with a resourceVersion precondition so a
/// refresh that came meanwhile wins.
/// </summary>
public sealed partial class ClusterIdentityAllocator : IInformerHandler<IdentityResource>
{
    private readonly IKubernetes _client;
    private readonly ClusterIdentityOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _sync = new();
    private readonly Dictionary<uint, IdentityObject> _byId = [];
    private readonly Dictionary<string, SortedSet<uint>> _byKey = new(StringComparer.Ordinal);
    private readonly HashSet<uint> _unreadable = [];
    private readonly Dictionary<uint, Held> _held = [];
    private readonly Dictionary<string, Held> _heldByKey = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _allocating = new(1, 1);
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _created, _adopted, _conflicts, _deleted, _errors;

    // Set when an adoption could not reach the API: the next ones (a restart restores every
    // endpoint in turn) keep their numbers at once instead of each waiting out the timeout.
    // Cleared by the next request that succeeds.
    private volatile bool _adoptionsDeferred;

    public ClusterIdentityAllocator(IKubernetes client, string node, ClusterIdentityOptions options, TimeProvider time, ILogger logger)
    {
        if (options.Problem() is { } problem)
        {
            throw new ArgumentException($"cluster identity options: {problem}", nameof(options));
        }
        _client = client;
        Node = node;
        _options = options;
        _time = time;
        _logger = logger;
        Informer = new Informer<IdentityResource, IdentityResourceList>(client, Kind, this, logger) { Resync = TimeSpan.Zero };
    }

    /// <summary>The node whose endpoints hold identities through this allocator.</summary>
    public string Node { get; }

    /// <summary>The watch of every identity object.</summary>
    public Informer<IdentityResource, IdentityResourceList> Informer { get; }

    /// <summary>Completes when the first list of identities is in.</summary>
    public Task Synced => _synced.Task;

    /// <summary>An identity appeared or changed (labels), or went (null). Raised on the informer's or the allocating thread.</summary>
    public event Action<uint, IReadOnlyList<string>?>? Changed;

    /// <summary>The last error of an API request; null after a success.</summary>
    public string? LastError { get; private set; }

    /// <summary>Objects that are not identities we can read, with why (a number they hold is never handed out).</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_sync)
            {
                return [.. _problems.Values];
            }
        }
    }

    private readonly Dictionary<string, string> _problems = new(StringComparer.Ordinal);

    public long Created => Interlocked.Read(ref _created);
    public long Adopted => Interlocked.Read(ref _adopted);

    /// <summary>Creates answered 409 because another node had the number (same labels: adopted; other labels: skipped).</summary>
    public long Conflicts => Interlocked.Read(ref _conflicts);
    public long Deleted => Interlocked.Read(ref _deleted);
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>How to list and watch identity objects.</summary>
    public static ResourceKind<IdentityResource, IdentityResourceList> Kind { get; } =
        new($"{IdentityObject.Plural}.{IdentityObject.Group}",
            (c, r, ct) => c.CustomObjects.ListClusterCustomObjectWithHttpMessagesAsync<IdentityResourceList>(
                IdentityObject.Group, IdentityObject.Version, IdentityObject.Plural, continueParameter: r.Continue, limit: r.Limit, resourceVersion: r.ResourceVersion, cancellationToken: ct),
            (c, r, onError, ct) => AsIdentities(c.CustomObjects.WatchListClusterCustomObjectAsync(
                IdentityObject.Group, IdentityObject.Version, IdentityObject.Plural, allowWatchBookmarks: true, resourceVersion: r.ResourceVersion,
                timeoutSeconds: r.TimeoutSeconds, onError: onError, cancellationToken: ct)));

    private static async IAsyncEnumerable<(WatchEventType, IdentityResource)> AsIdentities(IAsyncEnumerable<(WatchEventType, object)> events)
    {
        await foreach (var (type, obj) in events.ConfigureAwait(false))
        {
            var json = obj is JsonElement e ? e.GetRawText() : KubernetesJson.Serialize(obj);
            yield return (type, KubernetesJson.Deserialize<IdentityResource>(json));
        }
    }

    /// <summary>Runs the watch, the heartbeat of held identities and garbage collection until <paramref name="cancel"/> fires.</summary>
    public async Task RunAsync(CancellationToken cancel)
    {
        var watch = Informer.RunAsync(cancel);
        var nextGc = _time.GetUtcNow() + Jittered(_options.GcInterval);
        var tick = TimeSpan.FromTicks(Math.Min(_options.RefreshAfter.Ticks, _options.GcInterval.Ticks) / 2);
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                await Task.Delay(tick, _time, cancel).ConfigureAwait(false);
                if (!Synced.IsCompleted)
                {
                    continue;
                }
                await HeartbeatAsync(cancel).ConfigureAwait(false);
                if (_time.GetUtcNow() >= nextGc)
                {
                    await CollectAsync(cancel).ConfigureAwait(false);
                    nextGc = _time.GetUtcNow() + Jittered(_options.GcInterval);
                }
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
        }
        await watch.ConfigureAwait(false);
    }

    // Every agent runs GC: spread them so they do not all list and delete at the same moment.
    private static TimeSpan Jittered(TimeSpan interval) => interval + TimeSpan.FromTicks((long)(interval.Ticks * 0.25 * Random.Shared.NextDouble()));

    // ------------------------------------------------------------------ what is known

    /// <summary>Every identity known, number to labels: the cluster's objects and what this node holds.</summary>
    public IReadOnlyDictionary<uint, IReadOnlyList<string>> Known()
    {
        lock (_sync)
        {
            var known = _byId.ToDictionary(kv => kv.Key, kv => kv.Value.Labels);
            foreach (var (id, held) in _held)
            {
                known.TryAdd(id, held.Labels);
            }
            return known;
        }
    }

    public IReadOnlyList<string>? LabelsOf(uint id)
    {
        lock (_sync)
        {
            return _byId.TryGetValue(id, out var o) ? o.Labels : _held.TryGetValue(id, out var h) ? h.Labels : null;
        }
    }

    /// <summary>How many identities this node holds.</summary>
    public int HeldCount
    {
        get
        {
            lock (_sync)
            {
                return _held.Count;
            }
        }
    }

    /// <summary>True when this node holds <paramref name="id"/> for exactly <paramref name="labels"/>.</summary>
    public bool Holds(uint id, IReadOnlyList<string> labels)
    {
        var key = IdentityObject.KeyOf(labels);
        lock (_sync)
        {
            return _held.TryGetValue(id, out var held) && held.Key == key;
        }
    }

    /// <summary>The numbers this node holds, with how many holds each.</summary>
    public IReadOnlyDictionary<uint, int> Holds()
    {
        lock (_sync)
        {
            return _held.ToDictionary(kv => kv.Key, kv => kv.Value.References);
        }
    }

    // ------------------------------------------------------------------ informer

    public void OnUpsert(IdentityResource obj, IdentityResource? old) => Learn(obj);

    public void OnDelete(IdentityResource obj)
    {
        var name = obj.Metadata?.Name ?? "";
        if (!uint.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            lock (_sync)
            {
                _problems.Remove(name);
            }
            return;
        }
        bool removed;
        lock (_sync)
        {
            _problems.Remove(name);
            _unreadable.Remove(id);
            removed = Forget(id);
            if (_held.TryGetValue(id, out var held))
            {
                // Deleted while this node holds it (by hand, or a GC that raced a restart): re-created by the heartbeat.
                held.Confirmed = false;
            }
        }
        if (removed)
        {
            Changed?.Invoke(id, null);
        }
    }

    public void OnSynced()
    {
        _adoptionsDeferred = false;
        _synced.TrySetResult();
    }

    /// <summary>Takes an object into the cache; returns it read, or null when it is not a usable identity.</summary>
    private IdentityObject? Learn(IdentityResource resource)
    {
        var parsed = IdentityObject.From(resource, _options.First, _options.Last, out var problem);
        var name = resource.Metadata?.Name ?? "";
        bool changed;
        lock (_sync)
        {
            if (parsed is null)
            {
                _problems[name] = problem!;
                if (uint.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var taken))
                {
                    _unreadable.Add(taken);
                    Forget(taken);
                }
                return null;
            }
            _problems.Remove(name);
            _unreadable.Remove(parsed.Id);
            var before = _byId.GetValueOrDefault(parsed.Id);
            changed = before is null || before.Key != parsed.Key;
            if (before is not null && before.Key != parsed.Key)
            {
                Forget(parsed.Id);
            }
            _byId[parsed.Id] = parsed;
            if (!_byKey.TryGetValue(parsed.Key, out var ids))
            {
                _byKey[parsed.Key] = ids = [];
            }
            ids.Add(parsed.Id);
        }
        if (changed)
        {
            Changed?.Invoke(parsed.Id, parsed.Labels);
        }
        return parsed;
    }

    private bool Forget(uint id)
    {
        if (!_byId.Remove(id, out var old))
        {
            return false;
        }
        if (_byKey.TryGetValue(old.Key, out var ids) && ids.Remove(id) && ids.Count == 0)
        {
            _byKey.Remove(old.Key);
        }
        return true;
    }

    /// <summary>The identity of a label set in the cache: with duplicates (a GC or watch race), the lowest number, so every node picks the same.</summary>
    private IdentityObject? FindByKey(string key)
    {
        lock (_sync)
        {
            return _byKey.TryGetValue(key, out var ids) && ids.Count > 0 ? _byId[ids.Min] : null;
        }
    }

    // ------------------------------------------------------------------ allocation

    /// <summary>
    /// The identity of <paramref name="labels"/> (our form, k8s:KEY=VALUE), held once more by
    /// this node. Throws <see cref="IdentityAllocationException"/> when none can be had within
    /// <see cref="ClusterIdentityOptions.AllocationTimeout"/>.
    /// </summary>
    public async Task<uint> AcquireAsync(IReadOnlyList<string> labels, CancellationToken cancel = default)
    {
        var key = IdentityObject.KeyOf(labels);
        if (TryHoldAgain(key) is { } again)
        {
            return again;
        }
        using var deadline = Deadline(cancel);
        await EnterAsync(deadline.Token, cancel).ConfigureAwait(false);
        try
        {
            if (TryHoldAgain(key) is { } raced)
            {
                return raced;
            }
            await WaitSyncedAsync(deadline.Token, cancel).ConfigureAwait(false);
            var id = await ResolveAsync(key, labels, deadline.Token, cancel).ConfigureAwait(false);
            Hold(id, key, labels, confirmed: true);
            return id;
        }
        finally
        {
            _allocating.Release();
        }
    }

    /// <summary>
    /// An endpoint found at start holds <paramref name="id"/> for <paramref name="labels"/>: it
    /// keeps that number when the cluster has it for these labels, or has no object of that
    /// number (then it is created again). Another number when the cluster gave it to other labels.
    /// When the API cannot be reached the endpoint keeps its number (the kernel already uses it);
    /// it is confirmed, or created, by the heartbeat once the API answers.
    /// </summary>
    public async Task<uint> AdoptAsync(uint id, IReadOnlyList<string> labels, CancellationToken cancel = default)
    {
        var key = IdentityObject.KeyOf(labels);
        lock (_sync)
        {
            if (_held.TryGetValue(id, out var mine) && mine.Key == key)
            {
                mine.References++;
                return id;
            }
        }
        if (_adoptionsDeferred)
        {
            return HoldUnconfirmed(id, key, labels);
        }
        using var deadline = Deadline(cancel);
        try
        {
            await EnterAsync(deadline.Token, cancel).ConfigureAwait(false);
        }
        catch (IdentityAllocationException)
        {
            return HoldUnconfirmed(id, key, labels);
        }
        try
        {
            if (!await TrySyncedAsync(deadline.Token).ConfigureAwait(false))
            {
                _adoptionsDeferred = true;
                LogAdoptDeferred(_logger, id, $"the identities are not listed yet{Because(Informer.Stats.LastError)}");
                return HoldUnconfirmed(id, key, labels);
            }
            if (TryHoldAgain(key) is { } known && known == id)
            {
                return id;
            }
            IdentityObject? cached;
            lock (_sync)
            {
                cached = _byId.GetValueOrDefault(id);
            }
            uint resolved;
            if (cached is not null && cached.Key == key)
            {
                // Still ours: said to be in use again (or, deleted a moment ago, created again with the same number).
                resolved = await TouchAsync(cached, deadline.Token, cancel).ConfigureAwait(false)
                    ? id
                    : await CreateAsync(key, labels, preferred: id, deadline.Token, cancel).ConfigureAwait(false);
            }
            else if (cached is null && FindByKey(key) is null && id >= _options.First && id <= _options.Last)
            {
                // Collected while this node was down, and nobody has the labels now: the same number again when it is free.
                resolved = await CreateAsync(key, labels, preferred: id, deadline.Token, cancel).ConfigureAwait(false);
            }
            else
            {
                // The number went to other labels, or the labels have another number now: the endpoint takes the cluster's.
                resolved = await ResolveAsync(key, labels, deadline.Token, cancel).ConfigureAwait(false);
            }
            Hold(resolved, key, labels, confirmed: true);
            if (resolved == id)
            {
                Interlocked.Increment(ref _adopted);
            }
            return resolved;
        }
        catch (IdentityAllocationException e)
        {
            _adoptionsDeferred = true;
            LogAdoptDeferred(_logger, id, e.Message);
            return HoldUnconfirmed(id, key, labels);
        }
        finally
        {
            _allocating.Release();
        }
    }

    /// <summary>Drops one hold; the object stays (other nodes may use it) until garbage collection finds it unused.</summary>
    public void Release(uint id)
    {
        lock (_sync)
        {
            if (_held.TryGetValue(id, out var held) && --held.References <= 0)
            {
                _held.Remove(id);
                _heldByKey.Remove(held.Key);
            }
        }
    }

    private uint? TryHoldAgain(string key)
    {
        lock (_sync)
        {
            if (_heldByKey.TryGetValue(key, out var held))
            {
                held.References++;
                return held.Id;
            }
            return null;
        }
    }

    private void Hold(uint id, string key, IReadOnlyList<string> labels, bool confirmed)
    {
        lock (_sync)
        {
            if (_held.TryGetValue(id, out var held))
            {
                held.References++;
                held.Confirmed |= confirmed;
                return;
            }
            held = new Held(id, key, [.. labels]) { References = 1, Confirmed = confirmed };
            _held[id] = held;
            _heldByKey[key] = held;
        }
    }

    private uint HoldUnconfirmed(uint id, string key, IReadOnlyList<string> labels)
    {
        lock (_sync)
        {
            if (_heldByKey.TryGetValue(key, out var same))
            {
                same.References++;
                return same.Id;
            }
            if (_held.ContainsKey(id))
            {
                // Two records claim one number for different labels: the second cannot keep it without the API to decide.
                throw new IdentityAllocationException($"identity {id} is held for other labels on this node and the Kubernetes API cannot be asked");
            }
        }
        Hold(id, key, labels, confirmed: false);
        return id;
    }

    /// <summary>The number of a label set: the cache's (refreshed, and re-created when it went), else a new object.</summary>
    private async Task<uint> ResolveAsync(string key, IReadOnlyList<string> labels, CancellationToken deadline, CancellationToken cancel)
    {
        uint? preferred = null;
        if (FindByKey(key) is { } existing)
        {
            if (await TouchAsync(existing, deadline, cancel).ConfigureAwait(false))
            {
                return existing.Id;
            }
            preferred = existing.Id; // deleted meanwhile: the same number again, when it is free
        }
        return await CreateAsync(key, labels, preferred, deadline, cancel).ConfigureAwait(false);
    }

    /// <summary>The order in which numbers are tried for a label set: the same on every node, so concurrent allocations meet on one number.</summary>
    internal static IEnumerable<uint> Candidates(string key, uint first, uint last)
    {
        var size = (ulong)(last - first) + 1;
        var start = Fnv1a(key) % size;
        for (ulong i = 0; i < size; i++)
        {
            yield return first + (uint)((start + i) % size);
        }
    }

    /// <summary>The first number tried for <paramref name="labels"/> (tests place objects there).</summary>
    public uint FirstCandidate(IReadOnlyList<string> labels) => Candidates(IdentityObject.KeyOf(labels), _options.First, _options.Last).First();

    private static ulong Fnv1a(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(text))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }
        return hash;
    }

    private async Task<uint> CreateAsync(string key, IReadOnlyList<string> labels, uint? preferred, CancellationToken deadline, CancellationToken cancel)
    {
        var sequence = preferred is { } p ? new[] { p }.Concat(Candidates(key, _options.First, _options.Last).Where(c => c != p)) : Candidates(key, _options.First, _options.Last);
        foreach (var candidate in sequence)
        {
            // The watch may have brought the labels' identity meanwhile (another node won the race
            // before this one tried): adopt it rather than make a second number for the same labels.
            if (FindByKey(key) is { } arrived && await TouchAsync(arrived, deadline, cancel).ConfigureAwait(false))
            {
                return arrived.Id;
            }
            bool taken;
            lock (_sync)
            {
                taken = _byId.ContainsKey(candidate) || _unreadable.Contains(candidate) || (_held.TryGetValue(candidate, out var h) && h.Key != key);
            }
            if (taken)
            {
                continue;
            }
            // Again: gone between the 409 and the read (collected meanwhile), so the same number once more; a few times at most.
            for (var attempt = 0; attempt < 4; attempt++)
            {
                var outcome = await TryCreateAsync(candidate, key, labels, deadline, cancel).ConfigureAwait(false);
                if (outcome == CreateOutcome.Mine)
                {
                    return candidate;
                }
                if (outcome == CreateOutcome.Taken)
                {
                    break;
                }
            }
        }
        throw new IdentityAllocationException($"every identity from {_options.First} to {_options.Last} is in use in the cluster");
    }

    private enum CreateOutcome { Mine, Taken, Again }

    private async Task<CreateOutcome> TryCreateAsync(uint id, string key, IReadOnlyList<string> labels, CancellationToken deadline, CancellationToken cancel)
    {
        var body = IdentityObject.For(id, labels, _time.GetUtcNow());
        var created = await CallAsync($"create {IdentityObject.Kind} {id}", async ct =>
        {
            using var response = await _client.CustomObjects.CreateClusterCustomObjectWithHttpMessagesAsync(body, IdentityObject.Group, IdentityObject.Version, IdentityObject.Plural,
                cancellationToken: ct).ConfigureAwait(false);
            return ToResource(response.Body);
        }, deadline, cancel, HttpStatusCode.Conflict).ConfigureAwait(false);
        if (created is not null)
        {
            if (Learn(created) is { } mine && mine.Key == key)
            {
                Interlocked.Increment(ref _created);
                LogCreated(_logger, id, string.Join(",", labels));
                return CreateOutcome.Mine;
            }
            throw new IdentityAllocationException($"the API server's answer to the create of {IdentityObject.Kind} {id} is not that identity");
        }
        // 409: someone has this number. Whose labels?
        Interlocked.Increment(ref _conflicts);
        var current = await GetAsync(id, deadline, cancel).ConfigureAwait(false);
        if (current is null)
        {
            return CreateOutcome.Again;
        }
        var read = Learn(current);
        if (read is not null && read.Key == key)
        {
            LogAdoptedRace(_logger, id);
            return await TouchAsync(read, deadline, cancel).ConfigureAwait(false) ? CreateOutcome.Mine : CreateOutcome.Again;
        }
        if (read is null)
        {
            lock (_sync)
            {
                _unreadable.Add(id);
            }
        }
        return CreateOutcome.Taken;
    }

    private async Task<IdentityResource?> GetAsync(uint id, CancellationToken deadline, CancellationToken cancel) =>
        await CallAsync($"get {IdentityObject.Kind} {id}", async ct =>
        {
            using var response = await _client.CustomObjects.GetClusterCustomObjectWithHttpMessagesAsync(IdentityObject.Group, IdentityObject.Version, IdentityObject.Plural,
                id.ToString(CultureInfo.InvariantCulture), cancellationToken: ct).ConfigureAwait(false);
            return ToResource(response.Body);
        }, deadline, cancel, HttpStatusCode.NotFound).ConfigureAwait(false);

    /// <summary>Says this node uses the identity, when the object's last-used time is older than <see cref="ClusterIdentityOptions.RefreshAfter"/>; false when the object is gone.</summary>
    private async Task<bool> TouchAsync(IdentityObject identity, CancellationToken deadline, CancellationToken cancel)
    {
        var now = _time.GetUtcNow();
        if (identity.LastUsed is { } last && now - last < _options.RefreshAfter)
        {
            return true;
        }
        var patch = new V1Patch("{\"metadata\":{\"annotations\":{\"" + IdentityObject.LastUsedAnnotation + "\":\"" + IdentityObject.Stamp(now) + "\"}}}", V1Patch.PatchType.MergePatch);
        var patched = await CallAsync($"refresh {IdentityObject.Kind} {identity.Id}", async ct =>
        {
            using var response = await _client.CustomObjects.PatchClusterCustomObjectWithHttpMessagesAsync(patch, IdentityObject.Group, IdentityObject.Version, IdentityObject.Plural,
                identity.Id.ToString(CultureInfo.InvariantCulture), cancellationToken: ct).ConfigureAwait(false);
            return ToResource(response.Body);
        }, deadline, cancel, HttpStatusCode.NotFound).ConfigureAwait(false);
        if (patched is null)
        {
            lock (_sync)
            {
                if (_byId.TryGetValue(identity.Id, out var cached) && cached.ResourceVersion == identity.ResourceVersion)
                {
                    Forget(identity.Id);
                }
            }
            return false;
        }
        return Learn(patched) is { } now2 && now2.Key == identity.Key;
    }

    // ------------------------------------------------------------------ heartbeat and GC

    /// <summary>
    /// Refreshes the last-used time of every identity this node holds (only those whose time is
    /// older than <see cref="ClusterIdentityOptions.RefreshAfter"/>: a busy identity costs one
    /// write per period, whichever node makes it), and creates the ones held without an object
    /// (adopted while the API was down, or deleted by hand). Returns how many requests failed.
    /// </summary>
    public async Task<int> HeartbeatAsync(CancellationToken cancel = default)
    {
        List<Held> held;
        lock (_sync)
        {
            held = [.. _held.Values];
        }
        var failed = 0;
        foreach (var h in held)
        {
            using var deadline = Deadline(cancel);
            try
            {
                IdentityObject? cached;
                lock (_sync)
                {
                    cached = _byId.GetValueOrDefault(h.Id);
                }
                if (cached is not null && cached.Key == h.Key)
                {
                    h.Confirmed = true;
                    if (await TouchAsync(cached, deadline.Token, cancel).ConfigureAwait(false))
                    {
                        continue;
                    }
                }
                else if (cached is not null)
                {
                    LogHeldConflict(_logger, h.Id, string.Join(",", h.Labels), string.Join(",", cached.Labels));
                    continue;
                }
                await EnterAsync(deadline.Token, cancel).ConfigureAwait(false);
                try
                {
                    var outcome = await TryCreateAsync(h.Id, h.Key, h.Labels, deadline.Token, cancel).ConfigureAwait(false);
                    if (outcome == CreateOutcome.Mine)
                    {
                        h.Confirmed = true;
                    }
                }
                finally
                {
                    _allocating.Release();
                }
            }
            catch (IdentityAllocationException)
            {
                failed++;
            }
        }
        return failed;
    }

    /// <summary>
    /// One pass of garbage collection: deletes every identity this node does not hold whose last
    /// use is older than <see cref="ClusterIdentityOptions.HeartbeatTimeout"/>, each delete with the
    /// resourceVersion this node saw as a precondition (a node that refreshed it meanwhile wins).
    /// Returns how many were deleted.
    /// </summary>
    public async Task<int> CollectAsync(CancellationToken cancel = default)
    {
        var now = _time.GetUtcNow();
        List<IdentityObject> stale;
        lock (_sync)
        {
            stale = [.. _byId.Values.Where(o => !_held.ContainsKey(o.Id) && o.LastUsed is { } last && now - last > _options.HeartbeatTimeout)];
        }
        var deleted = 0;
        foreach (var identity in stale)
        {
            using var deadline = Deadline(cancel);
            try
            {
                var options = new V1DeleteOptions { Preconditions = new V1Preconditions { ResourceVersion = identity.ResourceVersion } };
                var done = await CallAsync($"delete {IdentityObject.Kind} {identity.Id}", async ct =>
                {
                    using var response = await _client.CustomObjects.DeleteClusterCustomObjectWithHttpMessagesAsync(IdentityObject.Group, IdentityObject.Version, IdentityObject.Plural,
                        identity.Id.ToString(CultureInfo.InvariantCulture), body: options, cancellationToken: ct).ConfigureAwait(false);
                    return (object)true;
                }, deadline.Token, cancel, HttpStatusCode.Conflict, HttpStatusCode.NotFound).ConfigureAwait(false);
                if (done is not null)
                {
                    deleted++;
                    Interlocked.Increment(ref _deleted);
                    LogCollected(_logger, identity.Id, string.Join(",", identity.Labels));
                    bool removed;
                    lock (_sync)
                    {
                        removed = _byId.TryGetValue(identity.Id, out var cached) && cached.ResourceVersion == identity.ResourceVersion && Forget(identity.Id);
                    }
                    if (removed)
                    {
                        Changed?.Invoke(identity.Id, null);
                    }
                }
            }
            catch (IdentityAllocationException)
            {
                // Said in LastError; the next pass tries again.
            }
        }
        return deleted;
    }

    // ------------------------------------------------------------------ API calls

    private CancellationTokenSource Deadline(CancellationToken cancel)
    {
        var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(_options.AllocationTimeout);
        return deadline;
    }

    private async Task EnterAsync(CancellationToken deadline, CancellationToken cancel)
    {
        try
        {
            await _allocating.WaitAsync(deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new IdentityAllocationException($"other identity allocations of this node did not finish within {_options.AllocationTimeout.TotalSeconds:0.#}s{Because()}");
        }
    }

    private async Task WaitSyncedAsync(CancellationToken deadline, CancellationToken cancel)
    {
        if (!await TrySyncedAsync(deadline).ConfigureAwait(false))
        {
            cancel.ThrowIfCancellationRequested();
            throw new IdentityAllocationException($"the cluster's identities ({IdentityObject.Plural}.{IdentityObject.Group}) are not listed yet{Because(Informer.Stats.LastError)}");
        }
    }

    private async Task<bool> TrySyncedAsync(CancellationToken deadline)
    {
        try
        {
            await Synced.WaitAsync(deadline).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private string Because(string? error = null) => (error ?? LastError) is { } e ? $": {e}" : "";

    /// <summary>
    /// One request, retried with exponential backoff on what may pass (timeouts, connection
    /// errors, 429, 5xx, and 403/404 for the time RBAC or the CRD take to appear) until the
    /// deadline. A status in <paramref name="expected"/> is an answer: null is returned.
    /// </summary>
    private async Task<T?> CallAsync<T>(string what, Func<CancellationToken, Task<T>> call, CancellationToken deadline, CancellationToken cancel, params HttpStatusCode[] expected)
        where T : class
    {
        var delay = _options.BackoffInitial;
        string? earlier = null; // what this call's previous attempt was told
        while (true)
        {
            string problem;
            try
            {
                using var request = CancellationTokenSource.CreateLinkedTokenSource(deadline);
                request.CancelAfter(_options.RequestTimeout);
                var result = await call(request.Token).ConfigureAwait(false);
                LastError = null;
                _adoptionsDeferred = false;
                return result;
            }
            catch (HttpOperationException e) when (e.Response is not null && expected.Contains(e.Response.StatusCode))
            {
                LastError = null;
                _adoptionsDeferred = false;
                return null;
            }
            catch (HttpOperationException e) when (e.Response is not null)
            {
                problem = Explain(e.Response.StatusCode, e.Response.Content);
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested && deadline.IsCancellationRequested && earlier is not null)
            {
                // The allocation deadline cut a request short: what the earlier attempts were told
                // (a 403 and its fix, say) is the reason, not this last unanswered request.
                throw new IdentityAllocationException($"{earlier} (gave up after {_options.AllocationTimeout.TotalSeconds:0.#}s of retries)");
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
            {
                problem = deadline.IsCancellationRequested
                    ? $"no answer within the {_options.AllocationTimeout.TotalSeconds:0.#}s allocation timeout"
                    : $"no answer within {_options.RequestTimeout.TotalSeconds:0.#}s";
            }
            catch (Exception e) when (e is HttpRequestException or IOException or JsonException or KubernetesException or HttpOperationException)
            {
                problem = e.Message;
            }
            Interlocked.Increment(ref _errors);
            LastError = earlier = $"{what}: {problem}";
            LogApiError(_logger, LastError);
            try
            {
                await Task.Delay(TimeSpan.FromTicks((long)(delay.Ticks * (0.5 + (Random.Shared.NextDouble() / 2)))), _time, deadline).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
            {
                throw new IdentityAllocationException($"{LastError} (gave up after {_options.AllocationTimeout.TotalSeconds:0.#}s of retries)");
            }
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.BackoffMax.Ticks));
        }
    }

    private static string Explain(HttpStatusCode status, string? body) => status switch
    {
        HttpStatusCode.Forbidden => $"403 Forbidden: the agent's service account may not use {IdentityObject.Plural}.{IdentityObject.Group}. Fix: its ClusterRole needs get, list, watch, create, patch and delete on them (helm/palisade/templates/rbac.yaml)",
        HttpStatusCode.NotFound => $"404 Not Found: the {IdentityObject.Kind} CRD is not installed. Fix: kubectl apply -f helm/palisade/files/crds/{IdentityObject.Group}_{IdentityObject.Plural}.yaml (Helm installs it), or run with identity-allocation-mode: local",
        _ => $"{(int)status} {status}{(string.IsNullOrEmpty(body) ? "" : $" ({Shorten(body)})")}",
    };

    private static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "...";

    private static IdentityResource ToResource(object body) =>
        body is JsonElement e ? KubernetesJson.Deserialize<IdentityResource>(e.GetRawText()) : KubernetesJson.Deserialize<IdentityResource>(KubernetesJson.Serialize(body));

    private sealed class Held(uint id, string key, IReadOnlyList<string> labels)
    {
        public uint Id { get; } = id;
        public string Key { get; } = key;
        public IReadOnlyList<string> Labels { get; } = labels;
        public int References { get; set; }

        /// <summary>False while the cluster has not confirmed this node's use (adopted with the API down, or its object deleted).</summary>
        public volatile bool Confirmed;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Identity {Id} created for {Labels}")]
    private static partial void LogCreated(ILogger logger, uint id, string labels);

    [LoggerMessage(Level = LogLevel.Information, Message = "Identity {Id}: another node created it for the same labels at the same time; adopted")]
    private static partial void LogAdoptedRace(ILogger logger, uint id);

    [LoggerMessage(Level = LogLevel.Information, Message = "Identity {Id} ({Labels}) deleted: unused for longer than the heartbeat timeout")]
    private static partial void LogCollected(ILogger logger, uint id, string labels);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Identity {Id} kept without the cluster's confirmation ({Reason}); confirmed once the Kubernetes API answers")]
    private static partial void LogAdoptDeferred(ILogger logger, uint id, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Identity {Id} is held here for {Labels} but the cluster gave it to {Other}; endpoints keep it until their labels are refreshed")]
    private static partial void LogHeldConflict(ILogger logger, uint id, string labels, string other);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Identity API: {Problem}")]
    private static partial void LogApiError(ILogger logger, string problem);
}
