using Palisade.Events;

namespace Palisade.Datapath.Flows;

/// <summary>
/// The most recent flows of the node, oldest first, for `observe --last N` and `--since`
/// (Hubble's observer ring). Bounded: past the capacity the oldest flow makes room, counted
/// in <see cref="Overwritten"/>. Thread-safe: the hub's reader adds, API calls take snapshots.
/// </summary>
public sealed class FlowHistory
{
    /// <summary>Hubble's default observer ring holds 4095 flows; a few thousand flows cost a few MB.</summary>
    public const int DefaultCapacity = 4096;

    private readonly FlowEvent?[] _ring;
    private readonly Lock _gate = new();
    private long _next;

    public FlowHistory(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _ring = new FlowEvent?[capacity];
    }

    public int Capacity => _ring.Length;

    /// <summary>Flows that left the history to make room for newer ones.</summary>
    public long Overwritten { get; private set; }

    public void Add(FlowEvent flow)
    {
        lock (_gate)
        {
            if (_next >= _ring.Length)
            {
                Overwritten++;
            }
            _ring[_next % _ring.Length] = flow;
            _next++;
        }
    }

    /// <summary>The flows held now, oldest first.</summary>
    public IReadOnlyList<FlowEvent> Snapshot()
    {
        lock (_gate)
        {
            var count = (int)Math.Min(_next, _ring.Length);
            var result = new FlowEvent[count];
            var start = _next - count;
            for (var i = 0; i < count; i++)
            {
                result[i] = _ring[(start + i) % _ring.Length]!;
            }
            return result;
        }
    }
}
