using Palisade.Policies.Network;
using Palisade.Policies.Network.Compilation;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>Every policy of Cilium's examples that parses also compiles, and what is not supported yet is named per rule, never silently accepted.</summary>
public sealed class NetworkPolicyCompilationTests(ITestOutputHelper output)
{
    // Labels a selector selects: the first value of each In requirement, and Exists keys.
    private static Dictionary<string, string> LabelsOf(IdentitySelector selector)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var r in selector.Requirements.Where(r => r.Operator is "In" or "Exists"))
        {
            var key = r.Key.StartsWith("any:", StringComparison.Ordinal) ? "k8s:" + r.Key[4..] : r.Key;
            labels[key] = r.Values.Count > 0 ? r.Values[0] : "yes";
        }
        return labels;
    }

    private static PolicySubjectEndpoint SubjectOf(NormalizedRuleSet set)
    {
        var labels = LabelsOf(set.Subject.Selector);
        labels.TryGetValue(NetworkVocabulary.NamespaceLabel, out var ns);
        return new PolicySubjectEndpoint("subject", ns, labels, [new NamedPort("http", L4Protocol.Tcp, 80)], set.Subject.Kind == SubjectKind.Nodes);
    }

    // The cluster of a file: one identity per endpoint selector its rules name, so that every
    // endpoint peer has someone to match.
    private static CompilationInput ClusterFor(IReadOnlyList<NormalizedPolicy> policies)
    {
        var identities = policies.SelectMany(p => p.Rules).Select(r => r.Peer).OfType<EndpointPeer>()
            .Where(e => !e.Selector.Requirements.Any(r => r.Key.StartsWith("reserved:", StringComparison.Ordinal)))
            .Select((e, i) => new KnownIdentity(1000 + (uint)i, LabelsOf(e.Selector), [new NamedPort("http", L4Protocol.Tcp, 8080), new NamedPort("dns", L4Protocol.Udp, 53)]))
            .ToList();
        return InputFor(policies) with { Identities = [.. InputFor(policies).Identities, .. identities] };
    }

    private static CompilationInput InputFor(IReadOnlyList<NormalizedPolicy> policies) => new(
        policies,
        [
            new KnownIdentity(300, new Dictionary<string, string> { ["k8s:app"] = "web", [NetworkVocabulary.NamespaceLabel] = "default" }, [new NamedPort("http", L4Protocol.Tcp, 8080)]),
            new KnownIdentity(301, new Dictionary<string, string> { ["k8s:app"] = "db", [NetworkVocabulary.NamespaceLabel] = "prod" }, []),
        ],
        [new KnownNode("local", new Dictionary<string, string> { ["k8s:type"] = "ingress-worker" }, true), new KnownNode("other", new Dictionary<string, string>(), false)],
        EnforcementMode.Default, AuditSettings.None);

    [Fact]
    public void EveryExamplePolicyThatParsesCompilesForTheEndpointsItSelects()
    {
        var report = new List<string>();
        var compiled = 0;
        foreach (var file in CiliumExamplesCompatibilityTests.FileNames())
        {
            var parsed = CiliumExamplesCompatibilityTests.ParseFile(file);
            if (!parsed.Ok)
            {
                continue;
            }
            var policies = parsed.Policies.Select(NetworkPolicyNormalizer.Normalize).ToList();
            var input = ClusterFor(policies);
            foreach (var (policy, set) in policies.SelectMany(p => p.RuleSets.Select(s => (p, s))))
            {
                var endpoint = SubjectOf(set);
                var result = EndpointPolicyCompiler.Compile(input, endpoint, new RuleTable(), new CidrIdentityAllocator());
                if (set.DefaultDenyIngress)
                {
                    Assert.NotEqual(DirectionMode.Off, result.Ingress.Mode);
                }
                if (set.DefaultDenyEgress)
                {
                    Assert.NotEqual(DirectionMode.Off, result.Egress.Mode);
                }
                Assert.All(result.Entries, e => Assert.True(e.Rule == 0 || result.Rules[e.Rule] is not null, $"{file}: entry {e} names no rule"));
                // Every rule selecting endpoints, CIDRs or entities either has entries or says why not.
                Assert.All(result.Statuses.Where(st => st.Entries == 0), st => Assert.False(string.IsNullOrEmpty(st.Note), $"{file}: {st.Origin} compiled to nothing without a note"));
                Assert.All(set.Rules.Where(r => r.Peer is EndpointPeer or CidrPeer && r.L4 is not NamedPortMatch),
                    r => Assert.True(result.Statuses.Where(st => st.Origin == r.Origin).Sum(st => st.Entries) > 0, $"{file}: {r.Origin} ({r}) compiled to no entry"));
                report.Add($"{file} {policy.Policy} {set.Path}: {result.Entries.Count} entries, ingress {result.Ingress.Mode}, egress {result.Egress.Mode}, {result.CidrIdentities.Count} CIDR identities");
                compiled++;
            }
        }
        output.WriteLine(string.Join(Environment.NewLine, report));
        Assert.True(compiled >= 50, $"only {compiled} rule sets compiled");
    }

    [Theory]
    [InlineData("kubernetes/serviceaccount/serviceaccount-policy.yaml", "spec.ingress[0].toPorts[0].rules.http")]
    [InlineData("l3/fqdn/fqdn.yaml", "spec.egress[1].toFQDNs")]
    [InlineData("l3/fqdn/fqdn.yaml", "spec.egress[0].toPorts[0].rules.dns")]
    [InlineData("l3/service/service.yaml", "spec.egress[0].toServices")]
    [InlineData("l4/l4_sni.yaml", "spec.egress[0].toPorts[0].serverNames")]
    public void AnUnsupportedPartIsNamedInTheStatusAndAllowsNothing(string file, string path)
    {
        var policies = CiliumExamplesCompatibilityTests.ParseFile(file).Policies.Select(NetworkPolicyNormalizer.Normalize).ToList();
        var set = policies.SelectMany(p => p.RuleSets).First();

        var result = EndpointPolicyCompiler.Compile(InputFor(policies), SubjectOf(set), new RuleTable(), new CidrIdentityAllocator());

        var part = Assert.Single(result.Unsupported, u => u.Path == path);
        Assert.Contains("allows nothing", part.Message, StringComparison.Ordinal);
        // The entry (or toPorts entry) holding the part contributes no allow.
        var holder = path[..path.LastIndexOf('.')];
        Assert.DoesNotContain(result.Entries.Where(e => !e.IsDeny).SelectMany(e => e.RuleRefs).Select(r => result.Rules[r]),
            o => o is not null && ((o.Port ?? "").StartsWith(holder, StringComparison.Ordinal) || (o.Peer is null && o.Port is null && path.StartsWith(o.Rule + ".to", StringComparison.Ordinal) && !path.Contains("toPorts", StringComparison.Ordinal))));
    }

    [Fact]
    public void AuthenticationRequiredMakesTheEntryAllowNothing()
    {
        var parsed = NetworkPolicyParser.Parse("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: mtls, namespace: default}
            spec:
              endpointSelector: {matchLabels: {app: db}}
              ingress:
              - fromEndpoints: [{matchLabels: {app: web}}]
                authentication: {mode: required}
            """, "mtls.yaml");
        Assert.True(parsed.Ok, string.Join(Environment.NewLine, parsed.Errors));
        var policies = parsed.Policies.Select(NetworkPolicyNormalizer.Normalize).ToList();

        var result = EndpointPolicyCompiler.Compile(InputFor(policies), SubjectOf(policies[0].RuleSets[0]), new RuleTable(), new CidrIdentityAllocator());

        Assert.Contains(result.Unsupported, u => u.Path == "spec.ingress[0].authentication");
        Assert.Equal(DirectionMode.Enforce, result.Ingress.Mode);
        Assert.Empty(result.Entries);
        Assert.Equal(PolicyVerdict.Dropped, PolicyExplainer.Decide(result, PolicyDirection.Ingress, 300, 6, 80).Verdict);
    }

    [Fact]
    public void AnUnknownNamedPortIsReportedOnItsRule()
    {
        var parsed = NetworkPolicyParser.Parse("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: named, namespace: default}
            spec:
              podSelector: {}
              ingress:
              - ports: [{port: metrics}]
            """, "named.yaml");
        var policies = parsed.Policies.Select(NetworkPolicyNormalizer.Normalize).ToList();

        var result = EndpointPolicyCompiler.Compile(InputFor(policies), SubjectOf(policies[0].RuleSets[0]), new RuleTable(), new CidrIdentityAllocator());

        var status = Assert.Single(result.Statuses);
        Assert.Equal(0, status.Entries);
        Assert.Contains("named port \"metrics\" is not a port of this endpoint", status.Note, StringComparison.Ordinal);
    }

    [Fact]
    public void CidrIdentitiesAreStableAcrossEndpointsAndCompilations()
    {
        var parsed = NetworkPolicyParser.Parse("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: cidr, namespace: default}
            spec:
              endpointSelector: {matchLabels: {app: web}}
              egress:
              - toCIDRSet: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]
            """, "cidr.yaml");
        var policies = parsed.Policies.Select(NetworkPolicyNormalizer.Normalize).ToList();
        var allocator = new CidrIdentityAllocator();
        var endpoint = SubjectOf(policies[0].RuleSets[0]);

        var first = EndpointPolicyCompiler.Compile(InputFor(policies), endpoint, new RuleTable(), allocator);
        var second = EndpointPolicyCompiler.Compile(InputFor(policies), endpoint, new RuleTable(), allocator);

        Assert.Equal(first.CidrIdentities, second.CidrIdentities);
        Assert.All(first.CidrIdentities, c => Assert.True(c.Identity >= ReservedIdentities.FirstCidr));
        var all = first.CidrIdentities.Single(c => c.Prefix.Length == 0).Identity;
        var except = first.CidrIdentities.Single(c => c.Prefix.Length == 8).Identity;
        Assert.Equal(PolicyVerdict.Forwarded, PolicyExplainer.Decide(first, PolicyDirection.Egress, all, 6, 443).Verdict);
        Assert.Equal(PolicyVerdict.Dropped, PolicyExplainer.Decide(first, PolicyDirection.Egress, except, 6, 443).Verdict);
    }
}
