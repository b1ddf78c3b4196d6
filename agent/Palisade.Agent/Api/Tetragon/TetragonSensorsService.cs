using Grpc.Core;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Events;
using Palisade.Exporters.Filters;
using T = Palisade.Api.Tetragon;

namespace Palisade.Agent.Api.Tetragon;

/// <summary>
/// Tetragon's gRPC API (<c>tetragon.FineGuidanceSensors</c>), served beside ours on the same
/// address so that `tetra` and clients built from Tetragon's protos work unchanged. It is a
/// second face on the same agent: the same event hub, export filters, message mapping and
/// policy engine as <see cref="SensorsService"/>; the RPCs with no meaning here answer
/// UNIMPLEMENTED naming themselves.
/// </summary>
internal sealed partial class TetragonSensorsService(AgentOptions options, AgentReadiness readiness, KernelSetupService kernel,
    PolicyService policies, EventHub hub, ILogger<TetragonSensorsService> logger)
    : T.FineGuidanceSensors.FineGuidanceSensorsBase
{
    private static long _streams;

    public override async Task GetEvents(T.GetEventsRequest request, IServerStreamWriter<T.GetEventsResponse> responseStream, ServerCallContext context)
    {
        TetragonFilters filter;
        IReadOnlyList<Palisade.Exporters.Filters.FieldFilter> fields;
        try
        {
            filter = TetragonFilters.Of(request);
            fields = TetragonFilters.FieldFilters(request);
        }
        catch (FilterException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        // Aggregation (Tetragon aggregates only connect/accept events) is not done here: the
        // options are accepted and every event is sent on its own, without aggregation_info.
        var json = ExportService.JsonOptions(options);
        var masks = new FieldMasks(fields);
        // As ours: each stream has its own bounded queue, so a slow reader loses its own events.
        using var subscription = hub.Subscribe($"tetragon-grpc-{Interlocked.Increment(ref _streams)}", options.EventQueueSize);
        LogStream(logger, subscription.Name, context.Peer);
        try
        {
            await foreach (var e in subscription.Reader.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            {
                if (!TetragonMessages.Serves(e.Kind) || !filter.Passes(e))
                {
                    continue;
                }
                T.GetEventsResponse message;
                try
                {
                    message = TetragonMessages.ToMessage(e, options.NodeName, json, masks);
                }
                catch (NotSupportedException ex)
                {
                    LogEncode(logger, e.Kind.ToString(), ex.Message);
                    continue;
                }
                await responseStream.WriteAsync(message, context.CancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
        }
        LogStreamEnd(logger, subscription.Name, subscription.Dropped);
    }

    public override Task<T.GetHealthStatusResponse> GetHealth(T.GetHealthStatusRequest request, ServerCallContext context) =>
        Task.FromResult(new T.GetHealthStatusResponse
        {
            HealthStatus =
            {
                new T.HealthStatus
                {
                    Event = T.HealthStatusType.Status,
                    Status = readiness.Ready ? T.HealthStatusResult.HealthStatusRunning : T.HealthStatusResult.HealthStatusStopped,
                    Details = readiness.Ready ? "ready" : "starting",
                },
            },
        });

    public override Task<T.GetVersionResponse> GetVersion(T.GetVersionRequest request, ServerCallContext context) =>
        Task.FromResult(new T.GetVersionResponse { Version = Version });

    public override Task<T.GetInfoResponse> GetInfo(T.GetInfoRequest request, ServerCallContext context)
    {
        var response = new T.GetInfoResponse { Version = Version, Name = "palisade" };
        foreach (var f in kernel.Probe?.Features ?? [])
        {
            response.Probes.Add(new T.GetInfoResponse.Types.Probe { Name = f.Name, Enabled = f.Available });
        }
        return Task.FromResult(response);
    }

    private static string Version => typeof(TetragonSensorsService).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    // Tetragon's RPCs without a counterpart here. The default base answers UNIMPLEMENTED with
    // an empty message; these say which call and what to use instead.
    public override Task<T.ListDomainsResponse> ListDomains(T.ListDomainsRequest request, ServerCallContext context) =>
        throw Unimplemented("ListDomains", "Palisade has no policy domains; every policy is in the default one");

    [Obsolete("Deprecated in Tetragon's API")]
    public override Task<T.EnableSensorResponse> EnableSensor(T.EnableSensorRequest request, ServerCallContext context) =>
        throw Unimplemented("EnableSensor", "sensors belong to policies here; use EnableTracingPolicy or ConfigureTracingPolicy");

    [Obsolete("Deprecated in Tetragon's API")]
    public override Task<T.DisableSensorResponse> DisableSensor(T.DisableSensorRequest request, ServerCallContext context) =>
        throw Unimplemented("DisableSensor", "sensors belong to policies here; use DisableTracingPolicy or ConfigureTracingPolicy");

    [Obsolete("Deprecated in Tetragon's API")]
    public override Task<T.RemoveSensorResponse> RemoveSensor(T.RemoveSensorRequest request, ServerCallContext context) =>
        throw Unimplemented("RemoveSensor", "sensors belong to policies here; use DeleteTracingPolicy");

    public override Task<T.RuntimeHookResponse> RuntimeHook(T.RuntimeHookRequest request, ServerCallContext context) =>
        throw Unimplemented("RuntimeHook", "Palisade learns about containers from cgroups and the Kubernetes API, not from OCI hooks");

    public override Task<T.GetDebugResponse> GetDebug(T.GetDebugRequest request, ServerCallContext context) =>
        throw Unimplemented("GetDebug", "see `palisade status` and the agent's log-level setting");

    public override Task<T.SetDebugResponse> SetDebug(T.SetDebugRequest request, ServerCallContext context) =>
        throw Unimplemented("SetDebug", "set log-level in the agent's configuration");

    private static RpcException Unimplemented(string rpc, string instead) =>
        new(new Status(StatusCode.Unimplemented, $"tetragon.FineGuidanceSensors/{rpc} is not implemented by Palisade: {instead}."));

    [LoggerMessage(Level = LogLevel.Information, Message = "Tetragon event stream {Stream} opened by {Peer}")]
    private static partial void LogStream(ILogger logger, string stream, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Tetragon event stream {Stream} closed; {Dropped} events dropped because the client read too slowly")]
    private static partial void LogStreamEnd(ILogger logger, string stream, long dropped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "An event of type {Kind} could not be converted for Tetragon's API: {Reason}")]
    private static partial void LogEncode(ILogger logger, string kind, string reason);
}
