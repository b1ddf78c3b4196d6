using Palisade.Policies.Network;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>
/// Every file of Cilium's published example policies (../shared/compat/cilium-policies) gets
/// the verdict written here: how many policies, which rules are "not supported yet" and why,
/// which upstream quirks are warnings, and the one file that must be rejected.
/// </summary>
public sealed class CiliumExamplesCompatibilityTests
{
    /// <summary>What one file must give: policies, unsupported paths (feature), warnings (path), or the error it must be rejected with.</summary>
    public sealed record Expectation(int Policies, string[] Unsupported, string[] Warnings, int Skipped = 0, string? Error = null);

    private static readonly string[] None = [];

    private static readonly Dictionary<string, Expectation> Expected = new(StringComparer.Ordinal)
    {
        ["cidr.yaml"] = new(1, None, ["spec.egress[0]"]),
        ["entities.yaml"] = new(1, None, None),
        ["host/allow-extended-protocols.yaml"] = new(1, None, None),
        ["host/demo-host-policy.yaml"] = new(1, None, None),
        ["host/lock-down-dev-vms-cidr-node.yaml"] = new(1, None, None),
        ["host/lock-down-dev-vms-remote-node.yaml"] = new(1, None, None),
        ["host/lock-down-dev-vms.yaml"] = new(1, None, None),
        ["host/lock-down-gke.yaml"] = new(1, None, None),
        ["host/lock-down-ingress.yaml"] = new(0, None, None, Error: "spec.ingress[1].toPorts[0].ports[5].port: \"REMOVE_ME_AFTER_DOUBLE_CHECKING_PORTS\" is neither a port number"),
        ["kubernetes/clustermesh/cross-cluster-any-namespace-policy.yaml"] = new(1, None, None),
        ["kubernetes/clustermesh/cross-cluster-policy.yaml"] = new(1, None, ["metadata.description"]),
        ["kubernetes/clusterwide/clusterscope-policy.yaml"] = new(1, None, None),
        ["kubernetes/clusterwide/health.yaml"] = new(1, None, None),
        ["kubernetes/clusterwide/wildcard-from-endpoints.yaml"] = new(1, None, ["description"]),
        ["kubernetes/namespace/demo-pods.yaml"] = new(0, None, None, Skipped: 6),
        ["kubernetes/namespace/isolate-namespaces.yaml"] = new(2, None, None),
        ["kubernetes/namespace/kubedns-policy.yaml"] = new(1, None, None),
        ["kubernetes/namespace/namespace-labels-policy.yaml"] = new(1, None, None),
        ["kubernetes/namespace/namespace-policy.yaml"] = new(1, None, None),
        ["kubernetes/serviceaccount/demo-pods.yaml"] = new(0, None, None, Skipped: 7),
        ["kubernetes/serviceaccount/serviceaccount-policy.yaml"] = new(1, ["spec.ingress[0].toPorts[0].rules.http (L7 HTTP rules)"], None),
        ["l3/cidr/cidr.yaml"] = new(1, None, None),
        ["l3/egress-allow-all/egress-allow-all.yaml"] = new(1, None, None),
        ["l3/egress-default-deny/egress-default-deny.yaml"] = new(1, None, None),
        ["l3/egress-deny/egress-deny.yaml"] = new(1, None, None),
        ["l3/entities/apiserver.yaml"] = new(1, None, None),
        ["l3/entities/customnodes.yaml"] = new(1, None, None),
        ["l3/entities/from_nodes.yaml"] = new(1, None, ["apiversion"]),
        ["l3/entities/from_world_deny.yaml"] = new(1, None, None),
        ["l3/entities/host.yaml"] = new(1, None, None),
        ["l3/entities/nodes.yaml"] = new(1, None, None),
        ["l3/entities/world.yaml"] = new(1, None, None),
        ["l3/fqdn/fqdn-cascade.yaml"] = new(1, ["spec.egress[0].toPorts[0].rules.dns (L7 DNS rules)", "spec.egress[1].toFQDNs (toFQDNs)"], None),
        ["l3/fqdn/fqdn-short.yaml"] = new(1, ["spec.egress[0].toPorts[0].rules.dns (L7 DNS rules)", "spec.egress[1].toFQDNs (toFQDNs)"], None),
        ["l3/fqdn/fqdn.yaml"] = new(1, ["spec.egress[0].toPorts[0].rules.dns (L7 DNS rules)", "spec.egress[1].toFQDNs (toFQDNs)"], None),
        ["l3/host/host-policy.yaml"] = new(1, None, ["description"]),
        ["l3/ingress-allow-all/ingress-allow-all.yaml"] = new(1, None, None),
        ["l3/match-expressions/and-statement.yaml"] = new(1, None, ["spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator", "spec.ingress[0].fromEndpoints[0].matchExpressions[1].operator"]),
        ["l3/match-expressions/or-statement.yaml"] = new(1, None, ["spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator", "spec.ingress[0].fromEndpoints[1].matchExpressions[0].operator"]),
        ["l3/requires/endpoints.yaml"] = new(1, None, None),
        ["l3/requires/requires.yaml"] = new(1, None, None),
        ["l3/service/service-labels.yaml"] = new(1, ["spec.egress[0].toServices (toServices)"], None),
        ["l3/service/service.yaml"] = new(1, ["spec.egress[0].toServices (toServices)"], None),
        ["l3/simple/l3.yaml"] = new(1, None, None),
        ["l3/simple/l3_egress.yaml"] = new(1, None, None),
        ["l4/cidr_l4_combined.yaml"] = new(1, None, None),
        ["l4/from_init.yaml"] = new(1, None, None),
        ["l4/icmp.yaml"] = new(1, None, None),
        ["l4/init.yaml"] = new(1, None, None),
        ["l4/l3_l4_combined.yaml"] = new(1, None, None),
        ["l4/l4.yaml"] = new(1, None, None),
        ["l4/l4_port_range.yaml"] = new(1, None, None),
        ["l4/l4_sni.yaml"] = new(1, ["spec.egress[0].toPorts[0].serverNames (TLS server names (SNI))"], None),
        ["l4/multi_rule.yaml"] = new(1, None, None),
        ["l4/wildcard_port_listener.yaml"] = new(1, ["spec.egress[0].toPorts[0].listener (Envoy listeners)"], None),
        ["seed-examples.yaml"] = new(4, None, ["document 3: spec.endpointSelector"]),
    };

    internal static string CorpusDir()
    {
        var shared = Environment.GetEnvironmentVariable("PALISADE_SHARED_DIR") ?? Path.Combine(RepoPaths.Root, "..", "shared");
        var dir = Path.GetFullPath(Path.Combine(shared, "compat", "cilium-policies"));
        Assert.True(Directory.Exists(dir), $"{dir} is missing: the compatibility corpus lives in ../shared beside the repository (or set PALISADE_SHARED_DIR)");
        return dir;
    }

    public static TheoryData<string> Files() => [.. FileNames()];

    internal static IEnumerable<string> FileNames()
    {
        var dir = CorpusDir();
        return Directory.EnumerateFiles(dir, "*.y*ml", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order(StringComparer.Ordinal);
    }

    internal static NetworkPolicyParseResult ParseFile(string file) => NetworkPolicyParser.Parse(File.ReadAllText(Path.Combine(CorpusDir(), file)), file);

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryPublishedCiliumPolicyGetsItsExpectedVerdict(string file)
    {
        Assert.True(Expected.TryGetValue(file, out var expected), $"{file} is new in the corpus: add its expected verdict here");

        var result = ParseFile(file);

        if (expected.Error is { } error)
        {
            Assert.Contains(result.Errors, e => e.ToString().StartsWith(error, StringComparison.Ordinal));
        }
        else
        {
            Assert.True(result.Ok, string.Join(Environment.NewLine, result.Errors));
        }
        Assert.Equal(expected.Policies, result.Policies.Count);
        Assert.Equal(expected.Skipped, result.Skipped.Count);
        Assert.Equal(expected.Unsupported.Order(StringComparer.Ordinal), result.Policies.SelectMany(p => p.Unsupported).Select(u => $"{u.Path} ({u.Feature})").Order(StringComparer.Ordinal));
        Assert.Equal(expected.Warnings.Order(StringComparer.Ordinal), result.Warnings.Select(w => w.Path).Order(StringComparer.Ordinal));
        foreach (var policy in result.Policies)
        {
            Assert.Equal(policy.Unsupported.Count == 0 ? PolicySupport.Validated : PolicySupport.PartiallyEnforced, policy.Support);
        }
    }

    [Fact]
    public void TheExpectationsNameOnlyFilesOfTheCorpus()
    {
        var files = FileNames().ToHashSet(StringComparer.Ordinal);

        Assert.All(Expected.Keys, k => Assert.Contains(k, files));
    }

    [Fact]
    public void EveryUnsupportedPartSaysWhatTheDatapathDoesInstead()
    {
        var parts = FileNames().SelectMany(f => ParseFile(f).Policies).SelectMany(p => p.Unsupported).ToList();

        Assert.NotEmpty(parts);
        Assert.All(parts, u => Assert.Contains("allows nothing", u.Message, StringComparison.Ordinal));
        Assert.All(parts, u => Assert.Equal(UnsupportedEffect.AllowsNothing, u.Effect));
    }

    [Fact]
    public void ThePlaceholderPortIsRejectedAsAPlaceholder()
    {
        var error = Assert.Single(ParseFile("host/lock-down-ingress.yaml").Errors);

        Assert.Contains("looks like a placeholder", error.Message, StringComparison.Ordinal);
        Assert.Equal(26, error.Line);
    }

    [Fact]
    public void DemoWorkloadsAreSkippedWithANoteNamingEachObject()
    {
        var result = ParseFile("kubernetes/namespace/demo-pods.yaml");

        Assert.Contains("document 1: Namespace \"ns1\" is not a network policy, skipped", result.Skipped);
        Assert.Contains(result.Skipped, s => s.Contains("Pod \"luke-pod\"", StringComparison.Ordinal));
    }
}
