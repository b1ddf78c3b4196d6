using Palisade.Events;

namespace Palisade.Tests.Flows;

/// <summary>Which of Hubble's four policy lists a flow's deciding rule goes in, and the labels it carries.</summary>
public sealed class FlowPolicyListsTests
{
    private static FlowEvent Flow(FlowVerdict verdict, TrafficDirection policyDirection, uint rule) => new()
    {
        Time = DateTimeOffset.UnixEpoch,
        Uuid = "u",
        Verdict = verdict,
        PolicyDirection = policyDirection,
        PolicyRule = rule,
    };

    [Theory]
    [InlineData(FlowVerdict.Forwarded, TrafficDirection.Ingress, FlowPolicyList.IngressAllowedBy)]
    [InlineData(FlowVerdict.Forwarded, TrafficDirection.Egress, FlowPolicyList.EgressAllowedBy)]
    [InlineData(FlowVerdict.Dropped, TrafficDirection.Ingress, FlowPolicyList.IngressDeniedBy)]
    [InlineData(FlowVerdict.Dropped, TrafficDirection.Egress, FlowPolicyList.EgressDeniedBy)]
    // An audited deny: the deny rule that would have dropped it, with verdict AUDIT.
    [InlineData(FlowVerdict.Audit, TrafficDirection.Ingress, FlowPolicyList.IngressDeniedBy)]
    [InlineData(FlowVerdict.Audit, TrafficDirection.Egress, FlowPolicyList.EgressDeniedBy)]
    // Nothing to say: no direction, or a verdict a policy rule does not give.
    [InlineData(FlowVerdict.Forwarded, TrafficDirection.Unknown, FlowPolicyList.None)]
    [InlineData(FlowVerdict.Error, TrafficDirection.Ingress, FlowPolicyList.None)]
    [InlineData(FlowVerdict.Unknown, TrafficDirection.Egress, FlowPolicyList.None)]
    public void TheListFollowsWhosePolicyDecidedAndWhatTheRuleDid(FlowVerdict verdict, TrafficDirection direction, FlowPolicyList expected)
    {
        Assert.Equal(expected, FlowPolicyLists.Of(Flow(verdict, direction, 7)));
        // Without a rule (no policy, the mode's default, conntrack) no list names anything.
        Assert.Equal(FlowPolicyList.None, FlowPolicyLists.Of(Flow(verdict, direction, 0)));
    }

    [Fact]
    public void JsonNamesAreHubblesFieldNames()
    {
        Assert.Equal("egress_allowed_by", FlowPolicyLists.JsonName(FlowPolicyList.EgressAllowedBy));
        Assert.Equal("ingress_allowed_by", FlowPolicyLists.JsonName(FlowPolicyList.IngressAllowedBy));
        Assert.Equal("egress_denied_by", FlowPolicyLists.JsonName(FlowPolicyList.EgressDeniedBy));
        Assert.Equal("ingress_denied_by", FlowPolicyLists.JsonName(FlowPolicyList.IngressDeniedBy));
        Assert.Null(FlowPolicyLists.JsonName(FlowPolicyList.None));
    }

    [Fact]
    public void AClusterwidePolicyHasNoNamespaceLabel()
    {
        Assert.Equal(["k8s:io.cilium.k8s.policy.derived-from=CiliumClusterwideNetworkPolicy", "k8s:io.cilium.k8s.policy.name=lockdown"],
            FlowPolicyLists.Labels(new FlowPolicyMatch("CiliumClusterwideNetworkPolicy", null, "lockdown", "/etc/p/l.yaml", "specs[0].ingressDeny[0]")));
        Assert.Equal(["k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy", "k8s:io.cilium.k8s.policy.name=l4", "k8s:io.cilium.k8s.policy.namespace=default"],
            FlowPolicyLists.Labels(new FlowPolicyMatch("CiliumNetworkPolicy", "default", "l4", "", "spec.egress[1]")));
    }
}
