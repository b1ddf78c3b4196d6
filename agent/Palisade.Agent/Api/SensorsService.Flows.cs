using Grpc.Core;
using Microsoft.Extensions.Logging;
using Palisade.Api.V1;
using Palisade.Datapath.Flows;
using Palisade.Events;

namespace Palisade.Agent.Api;

// GetFlows: Hubble's observer stream over the agent's flow history and the hub.
internal sealed partial class SensorsService
{
    private static long _flowStreams;

    public override async Task GetFlows(GetFlowsRequest request, IServerStreamWriter<GetFlowsResponse> responseStream, ServerCallContext context)
    {
        FlowFilterSet filter;
        try
        {
            filter = FlowMessages.ToFilterSet(request);
        }
        catch (FlowFilterException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        var json = ExportService.JsonOptions(options);
        var node = options.NodeName;
        var token = context.CancellationToken;
        // Subscribe before the snapshot: a flow published in between is in one or the other (or
        // both, and then skipped), never lost.
        using var live = request.Follow ? hub.Subscribe($"grpc-flows-{Interlocked.Increment(ref _flowStreams)}", options.EventQueueSize) : null;
        var history = flowHistory.History.Snapshot();
        try
        {
            foreach (var flow in FlowMessages.Select(history, request, filter, node))
            {
                await responseStream.WriteAsync(FlowMessages.ToResponse(flow, node, json), token).ConfigureAwait(false);
            }
            if (live is null)
            {
                return;
            }
            LogStream(logger, live.Name, context.Peer);
            var replayed = new HashSet<FlowEvent>(history, ReferenceEqualityComparer.Instance);
            var since = request.Since?.ToDateTimeOffset();
            var until = request.Until?.ToDateTimeOffset();
            long reportedLost = 0;
            await foreach (var e in live.Reader.ReadAllAsync(token).ConfigureAwait(false))
            {
                if (e is not FlowEvent flow || (replayed.Count > 0 && replayed.Remove(flow)))
                {
                    continue;
                }
                if (until is { } end && flow.Time > end)
                {
                    break;
                }
                if ((since is { } start && flow.Time < start) || !filter.Passes(flow, node))
                {
                    continue;
                }
                if (live.Dropped > reportedLost)
                {
                    // Hubble's way to say a slow client missed flows.
                    await responseStream.WriteAsync(FlowMessages.Lost(live.Dropped - reportedLost, node, DateTimeOffset.UtcNow), token).ConfigureAwait(false);
                    reportedLost = live.Dropped;
                }
                await responseStream.WriteAsync(FlowMessages.ToResponse(flow, node, json), token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        if (live is not null)
        {
            LogStreamEnd(logger, live.Name, live.Dropped);
        }
    }
}
