using System.Collections.Concurrent;
using Palisade.Events;
using Palisade.Runtime;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>A process sensor running in the test process, with every event it publishes collected.</summary>
internal sealed class SensorHarness : IDisposable
{
    private readonly EventSubscription _subscription;
    private readonly Task _collector;

    public SensorHarness(ProcessSensorOptions? options = null, bool startReader = true)
    {
        Hub = new EventHub();
        _subscription = Hub.Subscribe("test", 1_000_000);
        Sensor = new ProcessSensor(options ?? new ProcessSensorOptions { NodeName = "test-node", Ancestors = true }, Hub, TimeProvider.System);
        _collector = Task.Run(async () =>
        {
            await foreach (var e in _subscription.Reader.ReadAllAsync())
            {
                Events.Enqueue(e);
            }
        });
        Sensor.Start(startReader);
    }

    public EventHub Hub { get; }

    public ProcessSensor Sensor { get; }

    public ConcurrentQueue<PalisadeEvent> Events { get; } = new();

    public long Dropped => _subscription.Dropped;

    public IEnumerable<ProcessExecEvent> Execs => Events.OfType<ProcessExecEvent>();

    public IEnumerable<ProcessExitEvent> Exits => Events.OfType<ProcessExitEvent>();

    /// <summary>The exit event of <paramref name="pid"/>, waiting (bounded) for it.</summary>
    public ProcessExitEvent WaitForExit(int pid) => WaitFor<ProcessExitEvent>(e => e.Process.Pid == (uint)pid, $"exit of pid {pid}");

    public ProcessExecEvent WaitForExec(Func<ProcessExecEvent, bool> match, string what) => WaitFor(match, what);

    public T WaitFor<T>(Func<T, bool> match, string what) where T : PalisadeEvent
    {
        T? found = null;
        var ok = Command.WaitUntil(() => (found = Events.OfType<T>().FirstOrDefault(match)) is not null, TimeSpan.FromSeconds(30));
        Assert.True(ok, $"no event: {what}; {Events.Count} events seen");
        return found!;
    }

    public void Dispose()
    {
        Sensor.Dispose();
        _subscription.Dispose();
        _collector.Wait(TimeSpan.FromSeconds(10));
    }
}
