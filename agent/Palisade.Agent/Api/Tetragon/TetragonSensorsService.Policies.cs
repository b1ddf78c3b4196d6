using Grpc.Core;
using Microsoft.Extensions.Logging;
using Palisade.Bpf;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Runtime.Policies;
using T = Palisade.Api.Tetragon;

namespace Palisade.Agent.Api.Tetragon;

// Policy management in Tetragon's messages, on the same engine as palisade.v1's.
internal sealed partial class TetragonSensorsService
{
    private TracingPolicyEngine Engine => policies.Engine ?? throw new RpcException(new Status(StatusCode.Unavailable,
        "the policy engine is not running on this agent (see the agent's log: it could not load its BPF programs)"));

    public override Task<T.AddTracingPolicyResponse> AddTracingPolicy(T.AddTracingPolicyRequest request, ServerCallContext context)
    {
        RefuseDomain(request.Domain);
        var parsed = TracingPolicyParser.Parse(request.Yaml, "request");
        if (!parsed.Ok || parsed.Policies.Count == 0)
        {
            var errors = parsed.Errors.Count > 0 ? string.Join("\n", parsed.Errors) : "yaml: no TracingPolicy in it";
            throw new RpcException(new Status(StatusCode.InvalidArgument, errors));
        }
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
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"policy {policy.Name}: {e.Message}"));
            }
            LogAdded(logger, policy.Name, status.State, context.Peer);
        }
        return Task.FromResult(new T.AddTracingPolicyResponse());
    }

    public override Task<T.DeleteTracingPolicyResponse> DeleteTracingPolicy(T.DeleteTracingPolicyRequest request, ServerCallContext context)
    {
        RefuseDomain(request.Domain);
        if (!Engine.Delete(request.Name))
        {
            throw NotLoaded(request.Name);
        }
        LogDeleted(logger, request.Name, context.Peer);
        return Task.FromResult(new T.DeleteTracingPolicyResponse());
    }

    public override Task<T.ListTracingPoliciesResponse> ListTracingPolicies(T.ListTracingPoliciesRequest request, ServerCallContext context)
    {
        RefuseDomain(request.Domain);
        var response = new T.ListTracingPoliciesResponse();
        response.Policies.AddRange((policies.Engine?.List() ?? []).Select(ToStatus));
        return Task.FromResult(response);
    }

    public override Task<T.ConfigureTracingPolicyResponse> ConfigureTracingPolicy(T.ConfigureTracingPolicyRequest request, ServerCallContext context)
    {
        RefuseDomain(request.Domain);
        bool? monitor = !request.HasMode ? null : request.Mode switch
        {
            T.TracingPolicyMode.TpModeEnforce => false,
            T.TracingPolicyMode.TpModeMonitor => true,
            _ => throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"mode: {request.Mode} is not supported; use TP_MODE_ENFORCE or TP_MODE_MONITOR")),
        };
        Configure(request.Name, request.HasEnable ? request.Enable : null, monitor, context);
        return Task.FromResult(new T.ConfigureTracingPolicyResponse());
    }

    [Obsolete("Deprecated in Tetragon's API (ConfigureTracingPolicy replaces it); tetra still calls it")]
    public override Task<T.EnableTracingPolicyResponse> EnableTracingPolicy(T.EnableTracingPolicyRequest request, ServerCallContext context)
    {
        RefuseDomain(request.Domain);
        Configure(request.Name, true, null, context);
        return Task.FromResult(new T.EnableTracingPolicyResponse());
    }

    [Obsolete("Deprecated in Tetragon's API (ConfigureTracingPolicy replaces it); tetra still calls it")]
    public override Task<T.DisableTracingPolicyResponse> DisableTracingPolicy(T.DisableTracingPolicyRequest request, ServerCallContext context)
    {
        RefuseDomain(request.Domain);
        Configure(request.Name, false, null, context);
        return Task.FromResult(new T.DisableTracingPolicyResponse());
    }

    [Obsolete("Deprecated in Tetragon's API; answered from the policies' hooks")]
    public override Task<T.ListSensorsResponse> ListSensors(T.ListSensorsRequest request, ServerCallContext context)
    {
        var response = new T.ListSensorsResponse();
        foreach (var p in policies.Engine?.List() ?? [])
        {
            response.Sensors.AddRange(p.Hooks.Select(h => new T.SensorStatus { Name = $"{h.Type}:{h.Name}", Enabled = p.Enabled, Collection = p.Name }));
        }
        return Task.FromResult(response);
    }

    private void Configure(string name, bool? enable, bool? monitor, ServerCallContext context)
    {
        var engine = Engine;
        if (engine.Get(name) is null)
        {
            throw NotLoaded(name);
        }
        if (enable is { } on)
        {
            engine.SetEnabled(name, on);
        }
        if (monitor is { } m)
        {
            engine.SetMonitor(name, m);
        }
        LogConfigured(logger, name, enable?.ToString() ?? "-", monitor is null ? "-" : monitor.Value ? "monitor" : "enforce", context.Peer);
    }

    private static void RefuseDomain(string domain)
    {
        if (domain.Length > 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"domain: \"{domain}\" is not known; Palisade has no policy domains, leave domain empty"));
        }
    }

    private static RpcException NotLoaded(string name) =>
        new(new Status(StatusCode.NotFound, $"name: no policy named \"{name}\" is loaded; ListTracingPolicies (or `palisade policy list`) shows the loaded ones"));

    /// <summary>Our policy status in Tetragon's terms: its states, its action counters, its hook sections.</summary>
    internal static T.TracingPolicyStatus ToStatus(PolicyStatus p)
    {
        var status = new T.TracingPolicyStatus
        {
            Name = p.Name,
            State = p.State switch
            {
                "enabled" => T.TracingPolicyState.TpStateEnabled,
                "disabled" => T.TracingPolicyState.TpStateDisabled,
                "partially_enabled" => T.TracingPolicyState.TpStatePartiallyEnabled,
                "error" => T.TracingPolicyState.TpStateLoadError,
                _ => T.TracingPolicyState.TpStateUnknown,
            },
            Mode = p.Mode == "monitor" ? T.TracingPolicyMode.TpModeMonitor : T.TracingPolicyMode.TpModeEnforce,
            Error = string.Join("; ", p.Errors),
            KernelMemoryBytes = (ulong)Math.Max(0, p.KernelMemoryBytes),
            Info = p.Source ?? "",
            Stats = new T.TracingPolicyStats { ActionCounters = Counters(p.Counters) },
        };
#pragma warning disable CS0612 // deprecated in Tetragon's API (state replaces it), still read by older clients
        status.Enabled = p.Enabled;
#pragma warning restore CS0612
        for (var i = 0; i < p.Hooks.Count; i++)
        {
            var h = p.Hooks[i];
            status.Sensors.Add($"{h.Type}:{h.Name}");
            status.HookStatuses.Add(new T.HookStatus
            {
                Section = Section(h.Type),
                State = h.Mode == "unsupported" ? T.HookState.StatusCallNotFound : T.HookState.StatusLoaded,
                HookDescription = h.Detail.Length > 0 ? $"{h.Name} ({h.Mode}: {h.Detail})" : $"{h.Name} ({h.Mode})",
                HookIdx = (uint)i,
            });
            foreach (var s in h.Selectors)
            {
                status.Stats.SelectorActionCounters.Add(new T.TracingPolicySelectorActionCounters
                {
                    Hook = $"{h.Type}:{h.Name}",
                    HookIndex = (uint)i,
                    SelectorIndex = (uint)s.Index,
                    ActionCounters = Counters(s.Counters),
                });
            }
        }
        return status;
    }

    // Tetragon's spec sections: kprobes, tracepoints, uprobes, lsmhooks.
    private static string Section(string hookType) => hookType switch
    {
        "kprobe" => "kprobes",
        "tracepoint" => "tracepoints",
        "uprobe" => "uprobes",
        "lsmhook" => "lsmhooks",
        _ => hookType,
    };

    // Tetragon counts a SIGKILL as a signal; monitored actions are those that would have signalled.
    private static T.TracingPolicyActionCounters Counters(Palisade.Runtime.Policies.PolicyCounters c) => new()
    {
        Post = c.Posted,
        Signal = c.Signalled + c.Killed,
        MonitorSignal = c.Monitored,
        Override = c.Overridden,
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Name} added through Tetragon's API by {Peer}: {State}")]
    private static partial void LogAdded(ILogger logger, string name, string state, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Name} deleted through Tetragon's API by {Peer}")]
    private static partial void LogDeleted(ILogger logger, string name, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Name} configured through Tetragon's API by {Peer}: enable={Enable} mode={Mode}")]
    private static partial void LogConfigured(ILogger logger, string name, string enable, string mode, string peer);
}
