using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Palisade.Agent.NetworkPolicy;
using Palisade.Api.V1;

namespace Palisade.Agent.Api;

/// <summary>The network-policy part of the API: status, explain, live audit switches.</summary>
internal sealed partial class SensorsService
{
    private NetworkPolicyService NetworkPolicies => services.GetRequiredService<NetworkPolicyService>();

    public override Task<ListNetworkPoliciesResponse> ListNetworkPolicies(ListNetworkPoliciesRequest request, ServerCallContext context) =>
        Task.FromResult(new ListNetworkPoliciesResponse { StatusJson = NetworkPolicyJson.Status(NetworkPolicies.Engine, options.NetworkPolicyDir) });

    public override Task<ExplainNetworkPolicyResponse> ExplainNetworkPolicy(ExplainNetworkPolicyRequest request, ServerCallContext context)
    {
        try
        {
            var (from, to, protocol, port) = NetworkPolicyJson.ParseRequest(request.From, request.FromLabels, request.FromIp, request.To, request.ToLabels, request.ToIp,
                request.Port, request.Protocol, request.LabelsNamespace.Length > 0 ? request.LabelsNamespace : null);
            var x = NetworkPolicies.Engine.Explain(from, to, protocol, port);
            return Task.FromResult(new ExplainNetworkPolicyResponse { Json = NetworkPolicyJson.Explanation(x), Text = NetworkPolicyJson.Text(x), Verdict = NetworkPolicyJson.Verdict(x.Result.Verdict) });
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
    }

    public override Task<SetNetworkPolicyAuditResponse> SetNetworkPolicyAudit(SetNetworkPolicyAuditRequest request, ServerCallContext context)
    {
        var engine = NetworkPolicies.Engine;
        var settings = engine.Settings;
        if (request.SetNamespaces)
        {
            var errors = new List<string>();
            var namespaces = AuditNamespaces.Parse(string.Join(',', request.Namespaces), "--namespaces", errors);
            if (errors.Count > 0)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, string.Join("\n", errors)));
            }
            settings = settings with { AuditNamespaces = namespaces };
        }
        if (request.SetAll)
        {
            settings = settings with { AuditAll = request.All };
        }
        engine.SetSettings(settings);
        var response = new SetNetworkPolicyAuditResponse { All = settings.AuditAll };
        response.Namespaces.AddRange(settings.AuditNamespaces.Order(StringComparer.Ordinal));
        return Task.FromResult(response);
    }
}
