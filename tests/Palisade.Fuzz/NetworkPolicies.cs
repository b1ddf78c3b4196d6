using System.Text;
using Palisade.Policies.Network;

namespace Palisade.Fuzz;

/// <summary>
/// NetworkPolicy / CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy YAML: parsed, and each
/// policy that parses normalised. Any exception, an (internal) error or an empty message breaks
/// the contract.
/// </summary>
public static class NetworkPolicies
{
    public static void Run(byte[] input)
    {
        var result = NetworkPolicyParser.Parse(Encoding.UTF8.GetString(input), "fuzz.yaml");
        foreach (var e in result.Errors.Concat(result.Warnings))
        {
            if (e.Path.EndsWith(NetworkPolicyParser.InternalErrorPath, StringComparison.Ordinal) || string.IsNullOrWhiteSpace(e.Message))
            {
                throw new InvalidOperationException($"the parser failed instead of judging the input: {e}");
            }
        }
        foreach (var policy in result.Policies)
        {
            foreach (var rule in NetworkPolicyNormalizer.Normalize(policy).Rules)
            {
                _ = rule.ToString() + rule.Origin;
            }
        }
    }

    /// <summary>Cilium's published examples (read in place from the shared corpus) and NetworkPolicies of each shape.</summary>
    public static IEnumerable<(string, byte[])> Seeds()
    {
        var dir = Path.Combine(Environment.GetEnvironmentVariable("PALISADE_SHARED_DIR") ?? Path.Combine(RepoRoot(), "..", "shared"), "compat", "cilium-policies");
        if (Directory.Exists(dir))
        {
            foreach (var file in Directory.EnumerateFiles(dir, "*.y*ml", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                yield return (Path.GetRelativePath(dir, file).Replace('/', '_'), File.ReadAllBytes(file));
            }
        }
        yield return ("knp-peers-ports.yaml", Encoding.UTF8.GetBytes("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: web, namespace: shop}
            spec:
              podSelector: {matchLabels: {app: web}}
              policyTypes: [Ingress, Egress]
              ingress:
              - from:
                - namespaceSelector: {matchExpressions: [{key: team, operator: NotIn, values: [dev]}]}
                  podSelector: {matchLabels: {role: lb}}
                - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
                ports:
                - {port: 80}
                - {port: http-alt, protocol: TCP}
                - {port: 30000, endPort: 32767, protocol: UDP}
              egress:
              - to: [{podSelector: {}}]
            """));
        yield return ("cnp-deny-icmp.yaml", Encoding.UTF8.GetBytes("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: lock, namespace: shop}
            spec:
              endpointSelector: {}
              enableDefaultDeny: {ingress: true, egress: false}
              ingressDeny:
              - fromCIDRSet: [{cidr: "0.0.0.0/0", except: ["10.0.0.0/8"]}]
                toPorts: [{ports: [{port: "22", protocol: TCP}]}]
              egress:
              - icmps: [{fields: [{type: EchoRequest, family: IPv6}, {type: 8}]}]
              - toFQDNs: [{matchName: example.com}]
            """));
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Palisade.sln")))
            {
                return dir.FullName;
            }
        }
        return Directory.GetCurrentDirectory();
    }
}
