using Palisade.Events;

namespace Palisade.Kubernetes;

/// <summary>
/// Closes the race where a container's first process runs before this agent has seen its
/// Pod object: events of a process whose cgroup names a pod we do not know yet are held (in
/// order, per process) for up to <see cref="Window"/>, and released with the pod context as
/// soon as the pod arrives. When the window passes they go out without it, and
/// <see cref="Expired"/> counts them. Processes outside pods are never held.
/// </summary>
public sealed class PodContextGate : IPublishGate, IDisposable
{
    private readonly EventHub _hub;
    private readonly PodCache _pods;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<ProcessRecord, (long Deadline, List<PalisadeEvent> Events)> _pending = new(ReferenceEqualityComparer.Instance);
    private readonly ITimer _timer;
    private long _held, _resolvedLate, _expired;
    private volatile int _count;

    public PodContextGate(EventHub hub, PodCache pods, TimeSpan window, TimeProvider? time = null)
    {
        _hub = hub;
        _pods = pods;
        _time = time ?? TimeProvider.System;
        Window = window;
        _timer = _time.CreateTimer(_ => Sweep(), null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
        _pods.Changed += Sweep;
    }

    public TimeSpan Window { get; }

    /// <summary>Events held back so far.</summary>
    public long Held => Interlocked.Read(ref _held);

    /// <summary>Processes whose pod arrived within the window.</summary>
    public long ResolvedLate => Interlocked.Read(ref _resolvedLate);

    /// <summary>Processes whose pod did not arrive within the window (their events went out without pod context).</summary>
    public long Expired => Interlocked.Read(ref _expired);

    /// <summary>Processes waiting now.</summary>
    public int Pending => _count;

    public bool Hold(PalisadeEvent e)
    {
        if (e.Process is not { } process)
        {
            return false; // a flow no local process owns: nothing to wait for
        }
        if (_count == 0 && (process.PodUid is null || process.Pod is not null))
        {
            return false; // the common case, without a lock
        }
        lock (_gate)
        {
            if (_pending.TryGetValue(process, out var waiting))
            {
                waiting.Events.Add(e); // behind the process's earlier events
                Interlocked.Increment(ref _held);
                return true;
            }
            if (process.PodUid is null || process.Pod is not null)
            {
                return false;
            }
            if (_pods.Resolve(process) is { } pod)
            {
                process.Pod = pod;
                return false;
            }
            _pending[process] = (_time.GetTimestamp() + (long)(Window.TotalSeconds * _time.TimestampFrequency), [e]);
            _count = _pending.Count;
            Interlocked.Increment(ref _held);
            return true;
        }
    }

    /// <summary>Releases what can go: processes whose pod is known now, and those past the window.</summary>
    public void Sweep()
    {
        if (_count == 0)
        {
            return;
        }
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            foreach (var (process, (deadline, events)) in _pending.ToList())
            {
                var pod = _pods.Resolve(process);
                if (pod is null && now < deadline)
                {
                    continue;
                }
                if (pod is not null)
                {
                    process.Pod = pod;
                    Interlocked.Increment(ref _resolvedLate);
                }
                else
                {
                    Interlocked.Increment(ref _expired);
                }
                _pending.Remove(process);
                foreach (var e in events)
                {
                    _hub.Deliver(e);
                }
            }
            _count = _pending.Count;
        }
    }

    /// <summary>Stops holding: everything held goes out now.</summary>
    public void Dispose()
    {
        _pods.Changed -= Sweep;
        _timer.Dispose();
        lock (_gate)
        {
            foreach (var (_, (_, events)) in _pending)
            {
                foreach (var e in events)
                {
                    _hub.Deliver(e);
                }
            }
            _pending.Clear();
            _count = 0;
        }
    }
}
