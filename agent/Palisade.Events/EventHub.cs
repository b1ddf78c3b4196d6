using System.Threading.Channels;

namespace Palisade.Events;

/// <summary>
/// Fans every published event out to independent subscribers. Each has its own bounded
/// queue: a slow or stuck subscriber loses its own events (counted), never slows the
/// publisher (the kernel reader) nor the other subscribers.
/// </summary>
public sealed class EventHub
{
    private readonly Lock _gate = new();
    private volatile EventSubscription[] _subscriptions = [];
    private long _published;

    /// <summary>Events published so far.</summary>
    public long Published => Interlocked.Read(ref _published);

    public IReadOnlyList<EventSubscription> Subscriptions => _subscriptions;

    /// <summary>Adds a subscriber with a queue of <paramref name="capacity"/> events.</summary>
    public EventSubscription Subscribe(string name, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var subscription = new EventSubscription(this, name, capacity);
        lock (_gate)
        {
            _subscriptions = [.. _subscriptions, subscription];
        }
        return subscription;
    }

    private volatile IPublishGate? _publishGate;

    /// <summary>
    /// Installs a gate that may hold events back before they reach subscribers (the
    /// Kubernetes integration holds a pod's events until the pod is known). Null removes it.
    /// </summary>
    public void SetGate(IPublishGate? gate) => _publishGate = gate;

    /// <summary>Offers the event to every subscriber without waiting (unless the gate holds it, to deliver it later).</summary>
    public void Publish(PalisadeEvent e)
    {
        if (_publishGate is { } gate && gate.Hold(e))
        {
            return;
        }
        Deliver(e);
    }

    /// <summary>Offers the event to every subscriber, past the gate: for the gate to release what it held.</summary>
    public void Deliver(PalisadeEvent e)
    {
        Interlocked.Increment(ref _published);
        foreach (var subscription in _subscriptions)
        {
            subscription.Offer(e);
        }
    }

    internal void Remove(EventSubscription subscription)
    {
        lock (_gate)
        {
            _subscriptions = [.. _subscriptions.Where(s => s != subscription)];
        }
    }
}

/// <summary>Holds events back from subscribers for a while; whatever it holds it must later <see cref="EventHub.Deliver"/>.</summary>
public interface IPublishGate
{
    /// <summary>True when the gate took the event (and will deliver it); false: deliver now.</summary>
    bool Hold(PalisadeEvent e);
}

/// <summary>One subscriber's queue and counters.</summary>
public sealed class EventSubscription : IDisposable
{
    private readonly EventHub _hub;
    private readonly Channel<PalisadeEvent> _channel;
    private long _dropped;
    private long _queued;

    internal EventSubscription(EventHub hub, string name, int capacity)
    {
        _hub = hub;
        Name = name;
        Capacity = capacity;
        _channel = Channel.CreateBounded<PalisadeEvent>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait, // with TryWrite: refuse, so we count the drop
        });
    }

    public string Name { get; }

    public int Capacity { get; }

    public ChannelReader<PalisadeEvent> Reader => _channel.Reader;

    /// <summary>Events refused because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Events accepted into the queue.</summary>
    public long Queued => Interlocked.Read(ref _queued);

    /// <summary>Events waiting now.</summary>
    public int Depth => _channel.Reader.CanCount ? _channel.Reader.Count : 0;

    internal void Offer(PalisadeEvent e)
    {
        if (_channel.Writer.TryWrite(e))
        {
            Interlocked.Increment(ref _queued);
        }
        else
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>Stops receiving; what is queued can still be read.</summary>
    public void Dispose()
    {
        _hub.Remove(this);
        _channel.Writer.TryComplete();
    }
}
