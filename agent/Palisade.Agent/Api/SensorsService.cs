using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Bpf;
using Palisade.Api.V1;
using Palisade.Events;
using Palisade.Exporters.Filters;
using FieldFilter = Palisade.Exporters.Filters.FieldFilter;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Runtime.Policies;

namespace Palisade.Agent.Api;

/// <summary>The gRPC API: event stream, policy management, health, version and probe results.</summary>
internal sealed partial class SensorsService(AgentOptions options, AgentReadiness readiness, KernelSetupService kernel, ProcessSensorService processes,
    PolicyService policies, KubernetesService kubernetes, EventHub hub, ExportService exports, FlowHistoryService flowHistory, ILogger<SensorsService> logger, IServiceProvider services)
    : FineGuidanceSensors.FineGuidanceSensorsBase
{
    private static long _streams;

    public override async Task GetEvents(GetEventsRequest request, IServerStreamWriter<GetEventsResponse> responseStream, ServerCallContext context)
    {
        Palisade.Exporters.Filters.ExportFilter filter;
        IReadOnlyList<FieldFilter> fields;
        try
        {
            filter = EventMessages.ToFilter(request);
            fields = EventMessages.ToFieldFilters(request);
        }
        catch (FilterException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        var json = ExportService.JsonOptions(options);
        var masks = new FieldMasks(fields);
        // Each stream has its own bounded queue: a client that stops reading loses its own
        // events (counted per stream), never slows the sensors or the other sinks.
        using var subscription = hub.Subscribe($"grpc-{Interlocked.Increment(ref _streams)}", options.EventQueueSize);
        LogStream(logger, subscription.Name, context.Peer);
        try
        {
            await foreach (var e in subscription.Reader.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            {
                if (!filter.Passes(e))
                {
                    continue;
                }
                GetEventsResponse message;
                try
                {
                    message = EventMessages.ToMessage(e, options.NodeName, json, masks);
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

    public override Task<GetHealthStatusResponse> GetHealth(GetHealthStatusRequest request, ServerCallContext context) =>
        Task.FromResult(new GetHealthStatusResponse
        {
            HealthStatus =
            {
                new HealthStatus
                {
                    Event = HealthStatusType.Status,
                    Status = readiness.Ready ? HealthStatusResult.HealthStatusRunning : HealthStatusResult.HealthStatusStopped,
                    Details = readiness.Ready ? "ready" : "starting",
                },
            },
        });

    private TracingPolicyEngine Engine => policies.Engine ?? throw new RpcException(new Status(StatusCode.Unavailable,
        "the policy engine is not running on this agent (see the agent's log: it could not load its BPF programs)"));

    public override Task<AddTracingPolicyResponse> AddTracingPolicy(AddTracingPolicyRequest request, ServerCallContext context)
    {
        var parsed = TracingPolicyParser.Parse(request.Yaml, "request");
        if (!parsed.Ok || parsed.Policies.Count == 0)
        {
            var errors = parsed.Errors.Count > 0 ? string.Join("\n", parsed.Errors) : "no TracingPolicy in the YAML";
            throw new RpcException(new Status(StatusCode.InvalidArgument, errors));
        }
        var response = new AddTracingPolicyResponse();
        var engine = Engine;
        foreach (var policy in parsed.Policies)
        {
            PolicyStatus status;
            try
            {
                status = engine.Apply(policy, "grpc");
            }
            catch (Exception e) when (e is InvalidOperationException or BpfException or ArgumentException)
            {
                // The engine refused (e.g. every policy slot is taken): the caller gets the
                // reason, the agent and the policies already loaded carry on.
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"policy {policy.Name}: {e.Message}"));
            }
            LogAdded(logger, policy.Name, status.State, context.Peer);
            response.Policies.Add(ToStatus(status));
        }
        return Task.FromResult(response);
    }

    public override Task<DeleteTracingPolicyResponse> DeleteTracingPolicy(DeleteTracingPolicyRequest request, ServerCallContext context)
    {
        if (!Engine.Delete(request.Name))
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"no policy named \"{request.Name}\" is loaded; `palisade policy list` shows the loaded ones"));
        }
        LogDeleted(logger, request.Name, context.Peer);
        return Task.FromResult(new DeleteTracingPolicyResponse());
    }

    public override Task<ListTracingPoliciesResponse> ListTracingPolicies(ListTracingPoliciesRequest request, ServerCallContext context)
    {
        var response = new ListTracingPoliciesResponse();
        response.Policies.AddRange((policies.Engine?.List() ?? []).Select(ToStatus));
        return Task.FromResult(response);
    }

    public override Task<ConfigureTracingPolicyResponse> ConfigureTracingPolicy(ConfigureTracingPolicyRequest request, ServerCallContext context)
    {
        var engine = Engine;
        if (engine.Get(request.Name) is null)
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"no policy named \"{request.Name}\" is loaded"));
        }
        if (request.HasEnable)
        {
            engine.SetEnabled(request.Name, request.Enable);
        }
        if (request.HasMode)
        {
            if (request.Mode is not (TracingPolicyMode.TpModeEnforce or TracingPolicyMode.TpModeMonitor))
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"mode: {request.Mode} is not enforce or monitor"));
            }
            engine.SetMonitor(request.Name, request.Mode == TracingPolicyMode.TpModeMonitor);
        }
        LogConfigured(logger, request.Name, request.HasEnable ? request.Enable.ToString() : "-", request.HasMode ? request.Mode.ToString() : "-", context.Peer);
        return Task.FromResult(new ConfigureTracingPolicyResponse());
    }

    public override Task<GetVersionResponse> GetVersion(GetVersionRequest request, ServerCallContext context) =>
        Task.FromResult(new GetVersionResponse { Version = Version });

    public override Task<GetInfoResponse> GetInfo(GetInfoRequest request, ServerCallContext context)
    {
        var response = new GetInfoResponse { Version = Version, Name = "palisade", KernelRelease = kernel.Probe?.KernelRelease ?? "" };
        foreach (var f in kernel.Probe?.Features ?? [])
        {
            response.Probes.Add(new GetInfoResponse.Types.Probe { Name = f.Name, Enabled = f.Available, Detail = f.Detail });
        }
        // The same document as GET /v1/status, so `palisade status` shows pod networking and flows too.
        response.StatusJson = AgentStatus.Json(readiness, processes.Sensor, kubernetes.Status, hub, exports, policies.InvalidPolicyFiles,
            services.GetService<ElasticsearchLogs>(), services.GetService<DatapathService>(), AgentStatus.ReadFlows(services), services.GetService<NetworkPolicy.NetworkPolicyService>());
        return Task.FromResult(response);
    }

    private static string Version => typeof(SensorsService).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    internal static TracingPolicyStatus ToStatus(PolicyStatus p)
    {
        var status = new TracingPolicyStatus
        {
            Name = p.Name,
            Enabled = p.Enabled,
            State = p.State switch
            {
                "enabled" => TracingPolicyState.TpStateEnabled,
                "disabled" => TracingPolicyState.TpStateDisabled,
                "partially_enabled" => TracingPolicyState.TpStatePartiallyEnabled,
                "error" => TracingPolicyState.TpStateLoadError,
                _ => TracingPolicyState.TpStateUnknown,
            },
            Mode = p.Mode == "monitor" ? TracingPolicyMode.TpModeMonitor : TracingPolicyMode.TpModeEnforce,
            Error = string.Join("; ", p.Errors),
            KernelMemoryBytes = (ulong)Math.Max(0, p.KernelMemoryBytes),
            Counters = Counters(p.Counters),
            Source = p.Source ?? "",
        };
        foreach (var h in p.Hooks)
        {
            var hook = new HookStatus { Type = h.Type, Name = h.Name, Mode = h.Mode, Detail = h.Detail };
            hook.Selectors.AddRange(h.Selectors.Select(s => Counters(s.Counters)));
            status.Hooks.Add(hook);
            status.Sensors.Add($"{h.Type}:{h.Name}");
        }
        return status;
    }

    private static Palisade.Api.V1.PolicyCounters Counters(Palisade.Runtime.Policies.PolicyCounters c) => new()
    {
        Matched = c.Matched, Posted = c.Posted, Killed = c.Killed, Signalled = c.Signalled, Overridden = c.Overridden,
        Monitored = c.Monitored, RateLimited = c.RateLimited, Lost = c.Lost,
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Event stream {Stream} opened by {Peer}")]
    private static partial void LogStream(ILogger logger, string stream, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Event stream {Stream} closed; {Dropped} events dropped because the client read too slowly")]
    private static partial void LogStreamEnd(ILogger logger, string stream, long dropped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "An event of type {Kind} could not be converted for the API: {Reason}")]
    private static partial void LogEncode(ILogger logger, string kind, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Name} added through the API by {Peer}: {State}")]
    private static partial void LogAdded(ILogger logger, string name, string state, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Name} deleted through the API by {Peer}")]
    private static partial void LogDeleted(ILogger logger, string name, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Name} configured through the API by {Peer}: enable={Enable} mode={Mode}")]
    private static partial void LogConfigured(ILogger logger, string name, string enable, string mode, string peer);
}
