namespace Palisade.Agent;

/// <summary>Whether start-up finished and every sensor is attached: what /readyz, the health RPC and the status say.</summary>
public sealed class AgentReadiness
{
    private volatile bool _ready;

    /// <summary>True once start-up finished and every sensor is attached; false again while stopping.</summary>
    public bool Ready => _ready;

    internal void Set(bool ready) => _ready = ready;
}
