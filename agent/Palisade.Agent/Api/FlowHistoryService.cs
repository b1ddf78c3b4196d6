using Microsoft.Extensions.Hosting;
using Palisade.Agent.Configuration;
using Palisade.Datapath.Flows;
using Palisade.Events;

namespace Palisade.Agent.Api;

/// <summary>Keeps the node's recent flows (from the hub, like any sink) for GetFlows' history: `observe --last`, `--since`.</summary>
public sealed class FlowHistoryService(EventHub hub, AgentOptions options) : BackgroundService
{
    /// <summary>
    /// The subscription sees every event, process events too: a deep queue behind a reader slowed
    /// by a busy node would hold an exec storm's events in memory. One history's worth is enough;
    /// past it the history, not the agent, loses flows (counted by the hub as this subscriber's drops).
    /// </summary>
    private const int QueueSize = FlowHistory.DefaultCapacity;

    public FlowHistory History { get; } = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var subscription = hub.Subscribe("flow-history", Math.Min(QueueSize, options.EventQueueSize));
        try
        {
            await foreach (var e in subscription.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                if (e is FlowEvent flow)
                {
                    History.Add(flow);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
