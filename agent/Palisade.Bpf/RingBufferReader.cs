using System.Runtime.InteropServices;

namespace Palisade.Bpf;

/// <summary>Receives ring-buffer records. Called on the reader thread; the span is valid only during the call.</summary>
public interface IRingBufferConsumer
{
    void OnRecord(ReadOnlySpan<byte> record);
}

/// <summary>
/// Reads one or more BPF ring buffers on a dedicated thread and hands each record to the
/// consumer as a span over the kernel-shared memory: no copy and no allocation per record.
/// Records arrive at the latest one poll interval (100 ms) after they were written, also
/// when the producer suppresses wakeups.
/// </summary>
public sealed unsafe class RingBufferReader : IDisposable
{
    // How long one poll may block: the bound on how late Stop() is noticed when no event arrives.
    private const int PollTimeoutMs = 100;

    private readonly IRingBufferConsumer _consumer;
    private readonly SafeRingBufferHandle _ring;
    private GCHandle _self;
    private Thread? _thread;
    private volatile bool _stopping;
    private long _records;
    private long _consumerErrors;
    private long _pollErrors;
    private Exception? _lastConsumerError;
    private readonly List<(string Name, long Capacity, nint Pages)> _positions = [];
    private readonly Lock _positionsGate = new(); // Usage() must never read an unmapped page

    public RingBufferReader(IRingBufferConsumer consumer, params BpfMap[] maps)
    {
        ArgumentNullException.ThrowIfNull(consumer);
        if (maps.Length == 0)
        {
            throw new ArgumentException("At least one ring buffer map is needed.", nameof(maps));
        }
        foreach (var map in maps)
        {
            if (map.Type != BpfMapType.Ringbuf)
            {
                throw new ArgumentException($"Map {map.Name} is a {map.Type} map, not a ring buffer.", nameof(maps));
            }
            if (map.Fd < 0)
            {
                throw new InvalidOperationException($"Map {map.Name} is not created yet: load its object first.");
            }
        }
        _consumer = consumer;
        foreach (var map in maps)
        {
            // A read-only view of the ring's first two pages (consumer and producer
            // positions) for the fill level; libbpf 1.1 has no call for it. Optional: without
            // it only the fill metric is missing.
            var pages = Interop.Libc.Mmap(0, (nuint)(2 * Environment.SystemPageSize), Interop.Libc.PROT_READ, Interop.Libc.MAP_SHARED, map.Fd, 0);
            if (pages != -1)
            {
                _positions.Add((map.Name, map.MaxEntries, pages));
            }
        }
        _self = GCHandle.Alloc(this);
        var ctx = (void*)GCHandle.ToIntPtr(_self);
        _ring = Interop.Libbpf.RingBufferNew(maps[0].Fd, &OnSample, ctx, null);
        if (_ring.IsInvalid)
        {
            var errno = BpfException.LastErrno();
            _self.Free();
            throw new BpfException("open ring buffer", maps[0].Describe(), errno);
        }
        for (var i = 1; i < maps.Length; i++)
        {
            if (Interop.Libbpf.RingBufferAdd(_ring, maps[i].Fd, &OnSample, ctx) < 0)
            {
                var errno = BpfException.LastErrno();
                Dispose();
                throw new BpfException("add ring buffer", maps[i].Describe(), errno);
            }
        }
    }

    /// <summary>Records handed to the consumer.</summary>
    public long Records => Interlocked.Read(ref _records);

    /// <summary>Records whose consumer threw (the record is skipped, reading goes on).</summary>
    public long ConsumerErrors => Interlocked.Read(ref _consumerErrors);

    /// <summary>Polls that failed for a reason other than a signal.</summary>
    public long PollErrors => Interlocked.Read(ref _pollErrors);

    /// <summary>The most recent exception a consumer threw, for diagnostics.</summary>
    public Exception? LastConsumerError => Volatile.Read(ref _lastConsumerError);

    /// <summary>
    /// Bytes each ring buffer holds that user space has not consumed yet, and its size: the
    /// fill level. Near the size, the kernel starts losing events (counted as lost).
    /// </summary>
    public IReadOnlyList<(string Map, long Pending, long Capacity)> Usage()
    {
        lock (_positionsGate)
        {
            var usage = new List<(string, long, long)>(_positions.Count);
            foreach (var (name, capacity, pages) in _positions)
            {
                var consumer = Volatile.Read(ref *(long*)pages);
                var producer = Volatile.Read(ref *(long*)(pages + Environment.SystemPageSize));
                usage.Add((name, Math.Clamp(producer - consumer, 0, capacity), capacity));
            }
            return usage;
        }
    }

    /// <summary>Starts the reader thread.</summary>
    public void Start(string threadName = "palisade-ringbuf")
    {
        if (_thread is not null)
        {
            throw new InvalidOperationException("The reader is already started.");
        }
        _thread = new Thread(Run) { IsBackground = true, Name = threadName };
        _thread.Start();
    }

    /// <summary>Consumes whatever is in the buffers now, on the calling thread; returns the number of records.</summary>
    public int Drain()
    {
        var n = Interop.Libbpf.RingBufferConsume(_ring);
        return n < 0 ? 0 : n;
    }

    /// <summary>Stops the thread after it has drained what is already in the buffers.</summary>
    public void Stop()
    {
        _stopping = true;
        _thread?.Join();
        _thread = null;
    }

    private void Run()
    {
        while (!_stopping)
        {
            var rc = Interop.Libbpf.RingBufferPoll(_ring, PollTimeoutMs);
            if (rc == 0)
            {
                // No wakeup came: producers may queue records without waking us
                // (BPF_RB_NO_WAKEUP) to save a wakeup per record, and poll only drains
                // rings epoll reported. Drain them all on every timeout.
                Interop.Libbpf.RingBufferConsume(_ring);
            }
            else if (rc < 0 && -rc != Errnos.EINTR)
            {
                Interlocked.Increment(ref _pollErrors);
                Thread.Sleep(PollTimeoutMs); // do not spin on a persistent error
            }
        }
        Interop.Libbpf.RingBufferConsume(_ring);
    }

    [UnmanagedCallersOnly]
    private static int OnSample(void* ctx, void* data, nuint size)
    {
        var reader = (RingBufferReader)GCHandle.FromIntPtr((nint)ctx).Target!;
        try
        {
            reader._consumer.OnRecord(new ReadOnlySpan<byte>(data, (int)size));
            Interlocked.Increment(ref reader._records);
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref reader._consumerErrors);
            Volatile.Write(ref reader._lastConsumerError, e);
        }
        // Non-zero would abort the poll; one bad record must not stop the stream.
        return 0;
    }

    public void Dispose()
    {
        Stop();
        _ring.Dispose();
        lock (_positionsGate)
        {
            foreach (var (_, _, pages) in _positions)
            {
                Interop.Libc.Munmap(pages, (nuint)(2 * Environment.SystemPageSize));
            }
            _positions.Clear();
        }
        if (_self.IsAllocated)
        {
            _self.Free();
        }
    }
}
