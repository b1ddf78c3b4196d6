using Palisade.Events;

namespace Palisade.Runtime.Processes;

/// <summary>Counters of the process cache.</summary>
public readonly record struct ProcessCacheStats(int Count, long Hits, long Misses, long EvictedAfterGrace, long EvictedForCapacity, int PendingForks);

/// <summary>A forked child that has not exec'd yet: just enough to build its record if anything asks.</summary>
public readonly record struct PendingFork(ProcessRecord Parent, uint Tid, ulong CgroupId);

/// <summary>
/// exec identity -> process record, for enriching events with process, parent and ancestry.
/// A record counts references (its own while the image runs, one per live child); once
/// the count is zero it is evicted after a grace period, so memory follows the number of
/// live processes, not the number ever seen. Bounded: past the capacity the oldest
/// records go first, finished ones before running ones. Thread-safe.
/// </summary>
public sealed class ProcessCache
{
    private readonly Lock _gate = new();
    private readonly Dictionary<ProcessKey, ProcessRecord> _records;
    private readonly Queue<(ProcessKey Key, long DueTicks)> _evictable = new();
    private readonly Queue<ProcessKey> _insertionOrder = new();
    private readonly Dictionary<ProcessKey, PendingFork> _forks = new();
    private readonly TimeProvider _time;
    private long _hits, _misses, _evictedGrace, _evictedCapacity;

    public ProcessCache(int capacity, TimeSpan grace, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 16);
        Capacity = capacity;
        Grace = grace;
        _time = time;
        _records = new Dictionary<ProcessKey, ProcessRecord>(Math.Min(capacity, 4096));
    }

    public int Capacity { get; }

    public TimeSpan Grace { get; }

    public ProcessCacheStats Stats
    {
        get
        {
            lock (_gate)
            {
                return new ProcessCacheStats(_records.Count, _hits, _misses, _evictedGrace, _evictedCapacity, _forks.Count);
            }
        }
    }

    /// <summary>A record's key: its pid and the boot time its image began.</summary>
    public static ProcessKey KeyOf(ProcessRecord record) => new(record.Pid, record.Ktime);

    /// <summary>Adds a running process image under <see cref="KeyOf"/>; its parent (if any) gains a reference.</summary>
    public void Add(ProcessRecord record)
    {
        lock (_gate)
        {
            var key = KeyOf(record);
            record.RefCount = 1;
            _records[key] = record;
            _insertionOrder.Enqueue(key);
            if (record.Parent is { } parent)
            {
                parent.RefCount++;
            }
            EnforceCapacity();
        }
    }

    public bool TryGet(ProcessKey key, out ProcessRecord record)
    {
        lock (_gate)
        {
            if (_records.TryGetValue(key, out record!))
            {
                _hits++;
                return true;
            }
            _misses++;
            return false;
        }
    }

    /// <summary>
    /// Remembers a forked child cheaply: most children exec at once, and then no record of
    /// the fork is ever needed. The parent stays referenced while the child lives.
    /// </summary>
    public void AddFork(ProcessKey child, PendingFork fork)
    {
        lock (_gate)
        {
            if (_forks.Remove(child, out var previous))
            {
                Release(previous.Parent);
            }
            _forks[child] = fork;
            fork.Parent.RefCount++;
            // A runaway number of children that never exec nor exit cannot happen (pids are
            // finite), but stale entries can (a lost exit): bound them like records.
            if (_forks.Count > Capacity)
            {
                var victim = _forks.First();
                _forks.Remove(victim.Key);
                Release(victim.Value.Parent);
                _evictedCapacity++;
            }
        }
    }

    /// <summary>Takes the pending fork of <paramref name="key"/> out of the cache.</summary>
    public bool TryTakeFork(ProcessKey key, out PendingFork fork)
    {
        lock (_gate)
        {
            return _forks.Remove(key, out fork);
        }
    }

    /// <summary>A pending fork ended (it exec'd, or its record was built): its hold on the parent goes.</summary>
    public void ReleaseFork(PendingFork fork)
    {
        lock (_gate)
        {
            Release(fork.Parent);
        }
    }

    /// <summary>The process image ended (exit, or replaced by a new exec): drops its own reference.</summary>
    public void End(ProcessRecord record, DateTimeOffset when)
    {
        lock (_gate)
        {
            record.ExitTime ??= when;
            Release(record);
        }
    }

    /// <summary>Evicts records whose grace period has passed. Call periodically.</summary>
    public void Collect()
    {
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            while (_evictable.TryPeek(out var next) && next.DueTicks <= now)
            {
                _evictable.Dequeue();
                if (_records.TryGetValue(next.Key, out var record) && record.RefCount <= 0)
                {
                    Remove(next.Key, record);
                    _evictedGrace++;
                }
            }
        }
    }

    private void Release(ProcessRecord record)
    {
        if (--record.RefCount > 0)
        {
            return;
        }
        var key = KeyOf(record);
        if (_records.TryGetValue(key, out var cached) && ReferenceEquals(cached, record))
        {
            var due = _time.GetTimestamp() + (long)(Grace.TotalSeconds * _time.TimestampFrequency);
            _evictable.Enqueue((key, due));
        }
        else if (record.Parent is { } parent)
        {
            // Already gone from the cache (capacity): pass the release up now.
            Release(parent);
        }
    }

    private void Remove(ProcessKey key, ProcessRecord record)
    {
        _records.Remove(key);
        if (record.Parent is { } parent)
        {
            Release(parent);
        }
    }

    private void EnforceCapacity()
    {
        // Finished records first, even before their grace period ends...
        while (_records.Count > Capacity && _evictable.TryDequeue(out var next))
        {
            if (_records.TryGetValue(next.Key, out var record) && record.RefCount <= 0)
            {
                Remove(next.Key, record);
                _evictedCapacity++;
            }
        }
        // ...then the oldest, running or not.
        while (_records.Count > Capacity && _insertionOrder.TryDequeue(out var oldest))
        {
            if (_records.TryGetValue(oldest, out var record))
            {
                Remove(oldest, record);
                _evictedCapacity++;
            }
        }
        // The insertion queue holds keys removed by other paths; keep it from growing without bound.
        if (_insertionOrder.Count > 2 * Capacity + 1024)
        {
            var live = _insertionOrder.Where(_records.ContainsKey).ToList();
            _insertionOrder.Clear();
            foreach (var k in live)
            {
                _insertionOrder.Enqueue(k);
            }
        }
    }
}
