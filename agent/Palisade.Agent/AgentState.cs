using Palisade.Bpf.Probe;

namespace Palisade.Agent;

/// <summary>What the running agent knows about itself, for the health endpoints and, later, the API and metrics.</summary>
public sealed class AgentState
{
    private volatile ProbeReport? _probe;
    private volatile bool _ready;

    /// <summary>The start-up kernel probe; null until it has run.</summary>
    public ProbeReport? Probe => _probe;

    /// <summary>True once start-up finished and every sensor is attached.</summary>
    public bool Ready => _ready;

    /// <summary>The running process sensor, when it started.</summary>
    public Palisade.Runtime.ProcessSensor? ProcessSensor { get; private set; }

    internal void SetProcessSensor(Palisade.Runtime.ProcessSensor? sensor) => ProcessSensor = sensor;

    /// <summary>The TracingPolicy engine, once started.</summary>
    public Palisade.Runtime.Policies.PolicyEngine? Policies { get; private set; }

    internal void SetPolicies(Palisade.Runtime.Policies.PolicyEngine? engine) => Policies = engine;

    /// <summary>The Kubernetes integration, when on.</summary>
    internal KubernetesStatus? Kubernetes { get; private set; }

    internal void SetKubernetes(KubernetesStatus? status) => Kubernetes = status;

    /// <summary>Files of --tracing-policy-dir that have errors right now, with the first one (GET /v1/status shows them).</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, string> InvalidPolicyFiles { get; } = new(StringComparer.Ordinal);

    internal void SetProbe(ProbeReport report) => _probe = report;

    internal void SetReady(bool ready) => _ready = ready;
}
