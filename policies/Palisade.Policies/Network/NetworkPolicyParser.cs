using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Palisade.Policies.Network;

/// <summary>
/// What parsing a file produced: the valid policies, every error, the warnings (accepted but
/// worth fixing), and documents that were not network policies (a Pod, a Service, ...).
/// </summary>
public sealed record NetworkPolicyParseResult(
    IReadOnlyList<NetworkPolicyResource> Policies,
    IReadOnlyList<PolicyError> Errors,
    IReadOnlyList<PolicyError> Warnings,
    IReadOnlyList<string> Skipped)
{
    public bool Ok => Errors.Count == 0;
}

/// <summary>
/// Parses and validates NetworkPolicy (networking.k8s.io/v1), CiliumNetworkPolicy and
/// CiliumClusterwideNetworkPolicy (cilium.io/v2) YAML, unchanged from what users apply to a
/// cluster. Pure: text in, models and errors out. Every error names the field path, the value
/// and the fix; a document with errors yields no policy, the other documents are unaffected;
/// no input makes it throw.
/// </summary>
public static partial class NetworkPolicyParser
{
    /// <summary>The path of an error that is a bug in Palisade, not in the policy (the fuzz target treats it as a crash).</summary>
    public const string InternalErrorPath = "(internal)";

    private static readonly string[] TopFields = ["apiVersion", "kind", "metadata", "spec", "specs", "status"];

    private static readonly string[] KubernetesTopFields = ["apiVersion", "kind", "metadata", "spec", "status"];

    // The ObjectMeta fields a policy file may carry (the server-managed ones included, for files saved with kubectl get -o yaml).
    private static readonly string[] MetadataFields =
        ["name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "finalizers", "ownerReferences", "generateName", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"];

    /// <summary>
    /// Parses every YAML document of <paramref name="yaml"/>. <paramref name="source"/> names the
    /// file in origins; <paramref name="defaultNamespace"/> is the namespace of namespaced
    /// policies whose metadata names none (kubectl's default is "default").
    /// </summary>
    public static NetworkPolicyParseResult Parse(string yaml, string source = "policy", string defaultNamespace = NetworkVocabulary.DefaultNamespace)
    {
        var policies = new List<NetworkPolicyResource>();
        var errors = new List<PolicyError>();
        var warnings = new List<PolicyError>();
        var skipped = new List<string>();
        if (YamlText.Load(yaml, out var stream) is { } problem)
        {
            errors.Add(new PolicyError("", problem.Message, problem.Line, problem.Column));
            return new NetworkPolicyParseResult(policies, errors, warnings, skipped);
        }
        var documents = stream!.Documents;
        for (var d = 0; d < documents.Count; d++)
        {
            var prefix = documents.Count > 1 ? $"document {d + 1}: " : "";
            try
            {
                ReadDocument(documents[d].RootNode, d, prefix, source, defaultNamespace, policies, errors, warnings, skipped);
            }
#pragma warning disable CA1031 // a reader bug must cost one document its policy, never the agent its life
            catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
            {
                errors.Add(new PolicyError(prefix + InternalErrorPath,
                    $"Palisade could not read this document ({e.GetType().Name}: {e.Message}). This is a bug in Palisade, not necessarily in the policy: please report it with the file."));
            }
        }
        return new NetworkPolicyParseResult(policies, errors, warnings, skipped);
    }

    private static void ReadDocument(YamlNode root, int d, string prefix, string source, string defaultNamespace,
        List<NetworkPolicyResource> policies, List<PolicyError> errors, List<PolicyError> warnings, List<string> skipped)
    {
        if (root is YamlScalarNode { Value: null or "" })
        {
            return; // an empty document, e.g. after a trailing "---"
        }
        var docErrors = new List<PolicyError>();
        var f = new NetworkFieldReader(new NodeReader(docErrors));
        var policy = ReadPolicy(root, d, source, defaultNamespace, f, skipped);
        errors.AddRange(docErrors.Select(e => e with { Path = prefix + e.Path }));
        warnings.AddRange(f.Warnings.Select(e => e with { Path = prefix + e.Path }));
        if (docErrors.Count == 0 && policy is not null)
        {
            policies.Add(policy);
        }
    }

    private static NetworkPolicyResource? ReadPolicy(YamlNode root, int d, string source, string defaultNamespace, NetworkFieldReader f, List<string> skipped)
    {
        var r = f.R;
        if (root is not YamlMappingNode map)
        {
            r.Error("(document)", $"must be a mapping with apiVersion, kind, metadata and spec, not {NodeReader.Describe(root)}.", root);
            return null;
        }
        var kindNode = NodeReader.Field(map, "kind");
        var kind = r.String(map, "", "kind", required: true);
        var apiVersionKey = ApiVersionKey(map, f);
        var apiVersion = apiVersionKey is null ? null : r.String(map, "", apiVersionKey);
        if (kind is null)
        {
            return null;
        }
        if (!NetworkVocabulary.Kinds.Contains(kind))
        {
            // A near miss of a policy kind is a typo to report; anything else (a Pod, a Service) is another object.
            var policyApi = apiVersion is NetworkVocabulary.CiliumApiVersion or NetworkVocabulary.KubernetesApiVersion;
            if ((policyApi && Suggestions.Distance(kind, "NetworkPolicy") <= 3) || NetworkVocabulary.Kinds.Any(k => Suggestions.Distance(k, kind) <= 2))
            {
                r.Error("kind", $"\"{kind}\" is not a network policy kind." + Suggestions.For(kind, NetworkVocabulary.Kinds), kindNode);
                return null;
            }
            skipped.Add($"document {d + 1}: {kind} {ObjectName(map)} is not a network policy, skipped");
            return null;
        }
        var policyKind = Enum.Parse<NetworkPolicyKind>(kind);
        var expectedApi = policyKind == NetworkPolicyKind.NetworkPolicy ? NetworkVocabulary.KubernetesApiVersion : NetworkVocabulary.CiliumApiVersion;
        if (apiVersion is null)
        {
            r.Error("apiVersion", $"is required. Fix: apiVersion: {expectedApi}.", map);
        }
        else if (apiVersion != expectedApi)
        {
            r.Error(apiVersionKey!, $"\"{apiVersion}\" is not the API version of {kind}. Fix: apiVersion: {expectedApi}.", NodeReader.Field(map, apiVersionKey!));
        }
        var known = policyKind == NetworkPolicyKind.NetworkPolicy ? KubernetesTopFields : TopFields;
        var hint = NodeReader.Field(map, "description") is not null && policyKind != NetworkPolicyKind.NetworkPolicy ? " Did you mean spec.description?" : null;
        f.WarnUnknown(map, "", known, hint);

        var meta = NodeReader.Field(map, "metadata") as YamlMappingNode;
        if (meta is null)
        {
            r.Error("metadata", NodeReader.Field(map, "metadata") is null ? "is required, with at least a name." : "must be a mapping with at least a name.", NodeReader.Field(map, "metadata") ?? map);
            return null;
        }
        f.WarnUnknown(meta, "metadata", MetadataFields, NodeReader.Field(meta, "description") is not null && policyKind != NetworkPolicyKind.NetworkPolicy ? " Did you mean spec.description?" : null);
        var name = r.String(meta, "metadata", "name", required: true);
        if (name is not null && !DnsSubdomain().IsMatch(name))
        {
            r.Error("metadata.name", $"\"{name}\" is not a valid name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters.", NodeReader.Field(meta, "name"));
        }
        var ns = r.String(meta, "metadata", "namespace");
        if (ns is not null && !DnsLabel().IsMatch(ns))
        {
            r.Error("metadata.namespace", $"\"{ns}\" is not a namespace name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters.", NodeReader.Field(meta, "namespace"));
        }
        if (policyKind == NetworkPolicyKind.CiliumClusterwideNetworkPolicy && ns is not null)
        {
            f.Warn("metadata.namespace", $"is ignored: a {kind} is cluster-wide and has no namespace.", NodeReader.Field(meta, "namespace"));
            ns = null;
        }
        else if (policyKind != NetworkPolicyKind.CiliumClusterwideNetworkPolicy)
        {
            ns ??= defaultNamespace;
        }
        var labels = f.LabelMap(NodeReader.Field(meta, "labels"), "metadata.labels", values: true);
        if (name is null)
        {
            return null;
        }
        var policyRef = new PolicyRef(policyKind, ns, name);
        return policyKind == NetworkPolicyKind.NetworkPolicy
            ? KubernetesPolicyReader.Read(f, map, policyRef, labels, source)
            : CiliumPolicyReader.Read(f, map, policyRef, labels, source);
    }

    // "apiVersion", or a differently cased spelling accepted with a warning (one of Cilium's examples writes "apiversion").
    private static string? ApiVersionKey(YamlMappingNode map, NetworkFieldReader f)
    {
        if (NodeReader.Field(map, "apiVersion") is not null)
        {
            return "apiVersion";
        }
        foreach (var key in map.Children.Keys.OfType<YamlScalarNode>())
        {
            if (string.Equals(key.Value, "apiVersion", StringComparison.OrdinalIgnoreCase))
            {
                f.Warn(key.Value!, $"is read as apiVersion. Kubernetes field names are case-sensitive and kubectl refuses \"{key.Value}\": fix the spelling before applying the file.", key);
                return key.Value;
            }
        }
        return null;
    }

    private static string ObjectName(YamlMappingNode map) =>
        (NodeReader.Field(NodeReader.Field(map, "metadata") as YamlMappingNode, "name") as YamlScalarNode)?.Value is { } n ? $"\"{n}\"" : "(unnamed)";

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex DnsLabel();
}
