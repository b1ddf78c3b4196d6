using System.Collections.Concurrent;
using Palisade.Events;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Runtime;
using Palisade.Runtime.Policies;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>The process sensor and the policy engine running in the test process, events collected.</summary>
internal sealed class PolicyHarness : IDisposable
{
    private readonly SensorHarness _sensor;

    /// <param name="podScoping">As with the Kubernetes integration on: pod-scoped policies load, limited to the cgroups given to Apply.</param>
    public PolicyHarness(bool claimKprobes = false, bool podScoping = false)
    {
        _sensor = new SensorHarness();
        var facts = TracingPolicyEngine.FactsFor("/proc", kprobes: claimKprobes) with { PodScoping = podScoping };
        Engine = new TracingPolicyEngine(_sensor.Hub.Publish, facts, _sensor.Sensor.Resolve);
        Engine.Start(_sensor.Sensor);
    }

    public TracingPolicyEngine Engine { get; }

    public ConcurrentQueue<PalisadeEvent> Events => _sensor.Events;

    public IEnumerable<ProcessPolicyEvent> PolicyEvents => Events.OfType<ProcessPolicyEvent>();

    public SensorHarness Sensor => _sensor;

    public PolicyStatus Apply(string yaml)
    {
        var parsed = TracingPolicyParser.Parse(yaml, "test.yaml");
        Assert.True(parsed.Errors.Count == 0, string.Join("\n", parsed.Errors));
        return Engine.Apply(Assert.Single(parsed.Policies));
    }

    public PolicyStatus ApplyRunning(string yaml)
    {
        var status = Apply(yaml);
        Assert.True(status.State == "enabled", $"{status.Name}: {status.State}: {string.Join("; ", status.Errors.Concat(status.Hooks.Select(h => $"{h.Name} {h.Mode} {h.Detail}")))}");
        return status;
    }

    public ProcessPolicyEvent WaitForPolicyEvent(Func<ProcessPolicyEvent, bool> match, string what) => _sensor.WaitFor(match, what);

    public void Dispose()
    {
        Engine.Dispose();
        _sensor.Dispose();
    }
}
