using Palisade.Policies;
using Palisade.Policies.Network;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>Typos and mistakes users make in network policies, each rejected with the path, the value and the fix.</summary>
public sealed class NetworkPolicyErrorTests
{
    private const string Cnp = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: test\n  namespace: shop\nspec:\n";
    private const string Ccnp = "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: test\nspec:\n";
    private const string Knp = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: test\n  namespace: shop\nspec:\n";

    private static NetworkPolicyParseResult Parse(string yaml) => NetworkPolicyParser.Parse(yaml, "test.yaml");

    private static PolicyError SingleError(string yaml)
    {
        var result = Parse(yaml);
        Assert.Empty(result.Policies);
        return Assert.Single(result.Errors);
    }

    [Theory]
    [InlineData("  endpointSelector: {}\n  ingress:\n  - fromEndpoint:\n    - {}\n", "spec.ingress[0].fromEndpoint", "Did you mean \"fromEndpoints\"?")]
    [InlineData("  endpointSelector: {}\n  ingres:\n  - {}\n", "spec.ingres", "Did you mean \"ingress\"?")]
    [InlineData("  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - prot: \"80\"\n", "spec.egress[0].toPorts[0].ports[0].prot", "Did you mean \"port\"?")]
    [InlineData("  endpointSelector:\n    matchLabel:\n      app: web\n  ingress:\n  - {}\n", "spec.endpointSelector.matchLabel", "Did you mean \"matchLabels\"?")]
    public void AnUnknownCiliumFieldNamesItsPathAndTheClosestField(string spec, string path, string suggestion)
    {
        var error = Parse(Cnp + spec).Errors.First();

        Assert.Equal(path, error.Path);
        Assert.Contains("unknown field.", error.Message, StringComparison.Ordinal);
        Assert.Contains(suggestion, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownNetworkPolicyFieldNamesItsPathAndTheClosestField()
    {
        var error = SingleError(Knp + "  podSelector: {}\n  ingress:\n  - form:\n    - podSelector: {}\n");

        Assert.Equal("spec.ingress[0].form", error.Path);
        Assert.Contains("Did you mean \"from\"?", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("  endpointSelector: {}\n  egress:\n  - toPorts: \"80\"\n", "spec.egress[0].toPorts", "must be a list")]
    [InlineData("  endpointSelector: []\n  egress:\n  - {}\n", "spec.endpointSelector", "must be a mapping")]
    [InlineData("  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n        endPort: eighty\n", "spec.egress[0].toPorts[0].ports[0].endPort", "\"eighty\" is not a port number")]
    [InlineData("  endpointSelector:\n    matchLabels: [app]\n  egress:\n  - {}\n", "spec.endpointSelector.matchLabels", "must be a mapping of label keys to values")]
    [InlineData("  endpointSelector: {}\n  enableDefaultDeny:\n    ingress: maybe\n  ingress:\n  - {}\n", "spec.enableDefaultDeny.ingress", "is not a boolean")]
    public void AValueOfTheWrongTypeSaysWhatTheFieldTakes(string spec, string path, string expected)
    {
        var error = SingleError(Cnp + spec);

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("toCIDR:\n    - 10.0.0.300/8", "spec.egress[0].toCIDR[0]", "\"10.0.0.300/8\" is not a CIDR: \"10.0.0.300\" is not an IPv4 or IPv6 address")]
    [InlineData("toCIDR:\n    - 10.0.0.0/33", "spec.egress[0].toCIDR[0]", "the prefix length \"33\" is not a number from 0 to 32")]
    [InlineData("toCIDRSet:\n    - cidr: 10.0.0.1", "spec.egress[0].toCIDRSet[0].cidr", "has no prefix length")]
    [InlineData("toCIDRSet:\n    - cidr: 10.0.0.0/8\n      except: [192.168.0.0/16]", "spec.egress[0].toCIDRSet[0].except[0]", "192.168.0.0/16 is not inside 10.0.0.0/8")]
    [InlineData("toCIDRSet:\n    - cidr: 10.0.0.0/8\n      except: [10.0.0.0/8]", "spec.egress[0].toCIDRSet[0].except[0]", "10.0.0.0/8 is not inside 10.0.0.0/8")]
    [InlineData("toCIDR:\n    - 10/8", "spec.egress[0].toCIDR[0]", "is not an IPv4 or IPv6 address")]
    [InlineData("toCIDR:\n    - fe80::1%eth0/64", "spec.egress[0].toCIDR[0]", "\"fe80::1%eth0\" is not an IPv4 or IPv6 address")]
    public void ABadCidrIsRejectedWithTheFix(string peer, string path, string expected)
    {
        var error = SingleError(Cnp + "  endpointSelector: {}\n  egress:\n  - " + peer + "\n");

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.True(error.Line > 0);
    }

    [Fact]
    public void AnIpBlockExceptOutsideItsCidrIsRejected()
    {
        var error = SingleError(Knp + "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock:\n        cidr: 172.17.0.0/16\n        except: [172.18.0.0/24]\n");

        Assert.Equal("spec.egress[0].to[0].ipBlock.except[0]", error.Path);
        Assert.Contains("172.18.0.0/24 is not inside 172.17.0.0/16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ACidrWithHostBitsIsAcceptedAsItsNetworkWithAWarning()
    {
        var result = Parse(Cnp + "  endpointSelector: {}\n  egress:\n  - toCIDRSet:\n    - cidr: 10.1.2.3/8\n");

        var warning = Assert.Single(result.Warnings);
        Assert.Equal("spec.egress[0].toCIDRSet[0].cidr", warning.Path);
        Assert.Contains("read as 10.0.0.0/8", warning.Message, StringComparison.Ordinal);
        var rule = Assert.Single(NetworkPolicyNormalizer.Normalize(Assert.Single(result.Policies)).Rules);
        Assert.Equal("cidr 10.0.0.0/8", rule.Peer.ToString());
    }

    [Theory]
    [InlineData(Cnp, "  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"70000\"\n", "spec.egress[0].toPorts[0].ports[0].port", "70000 is not a port number: use 0 (every port) to 65535")]
    [InlineData(Knp, "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n", "spec.ingress[0].ports[0].port", "0 is not a port number: use 1 to 65535")]
    [InlineData(Knp, "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 99999\n", "spec.ingress[0].ports[0].port", "99999 is not a port number")]
    [InlineData(Cnp, "  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n        endPort: 70000\n", "spec.egress[0].toPorts[0].ports[0].endPort", "endPort must be from 0 to 65535")]
    public void APortOutOfRangeIsRejected(string header, string spec, string path, string expected)
    {
        var error = SingleError(header + spec);

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Cnp, "  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"8080\"\n        endPort: 8000\n", "spec.egress[0].toPorts[0].ports[0].endPort")]
    [InlineData(Knp, "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 32000\n      endPort: 31000\n", "spec.ingress[0].ports[0].endPort")]
    public void AnEndPortBelowItsPortIsRejected(string header, string spec, string path)
    {
        var error = SingleError(header + spec);

        Assert.Equal(path, error.Path);
        Assert.Contains("is below port", error.Message, StringComparison.Ordinal);
        Assert.Contains("must be greater than or equal to port", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnEndPortOnANamedPortIsRejected()
    {
        var error = SingleError(Knp + "  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n      endPort: 90\n");

        Assert.Contains("cannot follow the named port \"http\"", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Cnp, "  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n        protocol: TPC\n", "spec.egress[0].toPorts[0].ports[0].protocol", "Did you mean \"TCP\"?")]
    [InlineData(Cnp, "  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"0\"\n        protocol: ICMP\n", "spec.egress[0].toPorts[0].ports[0].protocol", "match ICMP with an icmps entry")]
    [InlineData(Knp, "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 80\n      protocol: ANY\n", "spec.ingress[0].ports[0].protocol", "is not a NetworkPolicy protocol")]
    [InlineData(Cnp, "  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n        protocol: VRRP\n", "spec.egress[0].toPorts[0].ports[0].port", "must be empty or 0: VRRP has no ports")]
    public void ABadProtocolIsRejected(string header, string spec, string path, string expected)
    {
        var error = SingleError(header + spec);

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ALowerCaseProtocolIsReadWithAWarningBecauseTheApiServerRefusesIt()
    {
        var result = Parse(Cnp + "  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"53\"\n        protocol: udp\n");

        Assert.True(result.Ok);
        Assert.Contains("\"udp\" is read as UDP", Assert.Single(result.Warnings).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("  ingress:\n  - {}\n", "spec.endpointSelector", "is required: say which pods of the namespace")]
    [InlineData("  endpointSelector: {}\n", "spec", "has no ingress, ingressDeny, egress or egressDeny rule")]
    [InlineData("  endpointSelector: {}\n  ingress: []\n", "spec", "to deny all ingress, write ingress: [{}]")]
    [InlineData("  nodeSelector: {}\n  ingress:\n  - {}\n", "spec.nodeSelector", "allowed only in a CiliumClusterwideNetworkPolicy")]
    public void ASpecWithoutSubjectOrRulesIsRejected(string spec, string path, string expected)
    {
        var error = SingleError(Cnp + spec);

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANetworkPolicyPeerThatSelectsNothingIsRejectedWithTheEmptyListFix()
    {
        var error = SingleError(Knp + "  podSelector: {}\n  ingress:\n  - from:\n    - {}\n");

        Assert.Equal("spec.ingress[0].from[0]", error.Path);
        Assert.Contains("leave out the from/to list", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANetworkPolicyWithoutPodSelectorIsRejected()
    {
        var error = SingleError(Knp + "  policyTypes: [Ingress]\n");

        Assert.Equal("spec.podSelector", error.Path);
        Assert.Contains("podSelector: {} selects every pod of the namespace", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("  - toEntities: [wrld]\n", "spec.egress[0].toEntities[0]", "Did you mean \"world\"?")]
    [InlineData("  - toEndpoints: [{}]\n    toCIDR: [10.0.0.0/8]\n", "spec.egress[0]", "combines toEndpoints and toCIDR in one entry")]
    [InlineData("  - icmps: [{fields: [{type: 8}]}]\n    toPorts: [{ports: [{port: \"80\"}]}]\n", "spec.egress[0].icmps", "cannot be in the same entry as toPorts")]
    [InlineData("  - icmps: [{fields: [{type: EchoRequest, family: IPv4}, {type: Echo, family: IPv6}]}]\n", "spec.egress[0].icmps[0].fields[1].type", "It is an IPv4 type: set family accordingly.")]
    [InlineData("  - icmps: [{fields: [{type: 256}]}]\n", "spec.egress[0].icmps[0].fields[0].type", "256 is not an ICMP type")]
    [InlineData("  - toEndpoints:\n    - matchExpressions:\n      - {key: app, operator: In}\n", "spec.egress[0].toEndpoints[0].matchExpressions[0].values", "operator In needs at least one value")]
    [InlineData("  - toEndpoints:\n    - matchExpressions:\n      - {key: app, operator: Equals, values: [a]}\n", "spec.egress[0].toEndpoints[0].matchExpressions[0].operator", "is not a label selector operator")]
    [InlineData("  - toEndpoints:\n    - matchLabels: {app: \"-web\"}\n", "spec.egress[0].toEndpoints[0].matchLabels.app", "\"-web\" is not a label value")]
    [InlineData("  - authentication: {mode: mutual}\n", "spec.egress[0].authentication.mode", "is not an authentication mode")]
    public void ABadCiliumRuleIsRejectedWithItsPath(string egress, string path, string expected)
    {
        var error = SingleError(Cnp + "  endpointSelector: {}\n  egress:\n" + egress);

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ATypoInAPolicyTypeIsRejected()
    {
        var error = SingleError(Knp + "  podSelector: {}\n  policyTypes: [Ingres]\n");

        Assert.Equal("spec.policyTypes[0]", error.Path);
        Assert.Contains("Did you mean \"Ingress\"?", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AQuotedNetworkPolicyPortIsReadAsANumberWithAWarning()
    {
        var result = Parse(Knp + "  podSelector: {}\n  ingress:\n  - ports:\n    - port: \"80\"\n");

        Assert.True(result.Ok);
        Assert.Contains("write port: 80", Assert.Single(result.Warnings).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnErrorInOneDocumentLeavesTheOthersLoaded()
    {
        var result = Parse(Cnp + "  endpointSelector: {}\n  ingress:\n  - {}\n---\n" + Cnp.Replace("name: test", "name: second", StringComparison.Ordinal) + "  endpointSelector: {}\n  ingress:\n  - fromEntities: [wrld]\n");

        Assert.Equal("test", Assert.Single(result.Policies).Ref.Name);
        Assert.StartsWith("document 2: spec.ingress[0].fromEntities[0]", Assert.Single(result.Errors).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AMistypedKindIsAnErrorButAnotherKindIsSkipped()
    {
        var result = Parse(Cnp.Replace("kind: CiliumNetworkPolicy", "kind: CiliumNetworkPolcy", StringComparison.Ordinal) + "  endpointSelector: {}\n  ingress:\n  - {}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n");

        Assert.Contains("Did you mean \"CiliumNetworkPolicy\"?", Assert.Single(result.Errors).Message, StringComparison.Ordinal);
        Assert.Equal("document 2: ConfigMap \"settings\" is not a network policy, skipped", Assert.Single(result.Skipped));
    }

    [Fact]
    public void AWrongApiVersionNamesTheRightOne()
    {
        var error = SingleError(Cnp.Replace("cilium.io/v2", "cilium.io/v1alpha1", StringComparison.Ordinal) + "  endpointSelector: {}\n  ingress:\n  - {}\n");

        Assert.Equal("apiVersion", error.Path);
        Assert.Contains("Fix: apiVersion: cilium.io/v2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANamespaceOnAClusterwidePolicyIsIgnoredWithAWarning()
    {
        var result = Parse(Ccnp.Replace("name: test", "name: test\n  namespace: shop", StringComparison.Ordinal) + "  endpointSelector: {}\n  ingress:\n  - {}\n");

        Assert.Null(Assert.Single(result.Policies).Ref.Namespace);
        Assert.Equal("metadata.namespace", Assert.Single(result.Warnings).Path);
    }
}

/// <summary>Empty and null values read as the API server reads them: as absent.</summary>
public sealed class NetworkPolicyEmptyValueTests
{
    [Fact]
    public void AnEmptyOrNullListIsAbsent()
    {
        var result = NetworkPolicyParser.Parse("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a, namespace: x}\nspec:\n  podSelector:\n  ingress:\n  egress: null\n  policyTypes:\n", "empty.yaml");

        Assert.True(result.Ok, string.Join(Environment.NewLine, result.Errors));
        var policy = Assert.IsType<KubernetesNetworkPolicy>(Assert.Single(result.Policies));
        Assert.Empty(policy.Ingress);
        Assert.Equal([TrafficDirection.Ingress], policy.PolicyTypes);
    }

    [Fact]
    public void AnEmptyEgressListDoesNotMakeTheDefaultPolicyTypesIncludeEgress()
    {
        var result = NetworkPolicyParser.Parse("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a, namespace: x}\nspec:\n  podSelector: {}\n  egress: []\n", "empty.yaml");

        var set = Assert.Single(NetworkPolicyNormalizer.Normalize(Assert.Single(result.Policies)).RuleSets);
        Assert.True(set.DefaultDenyIngress);
        Assert.False(set.DefaultDenyEgress);
    }

    [Fact]
    public void ACiliumPolicyWhoseSpecsIsNullHasNoRuleAndIsRejected()
    {
        var error = Assert.Single(NetworkPolicyParser.Parse("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\nspecs: null\n", "empty.yaml").Errors);

        Assert.Equal("specs", error.Path);
        Assert.Contains("holds no rule", error.Message, StringComparison.Ordinal);
    }
}
