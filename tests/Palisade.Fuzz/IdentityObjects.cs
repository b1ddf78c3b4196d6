using System.Text;
using k8s;
using Palisade.Kubernetes.Identities;

namespace Palisade.Fuzz;

/// <summary>
/// A PalisadeIdentity as the API server sends it (JSON, from a list, a watch event or a 409's
/// GET): any client with RBAC may write one. Contract: JSON the client cannot read is its
/// exception; anything it reads is an identity (a number in range, non-empty sorted labels of
/// SOURCE:KEY=VALUE that give back the same object) or null with a reason, never an exception.
/// </summary>
public static class IdentityObjects
{
    public static void Run(byte[] input)
    {
        IdentityResource? resource;
        try
        {
            resource = KubernetesJson.Deserialize<IdentityResource>(Encoding.UTF8.GetString(input));
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or InvalidOperationException or ArgumentException or OverflowException)
        {
            return;
        }
        if (resource is null)
        {
            return;
        }
        var identity = IdentityObject.From(resource, 256, 65535, out var problem);
        if (identity is null)
        {
            if (string.IsNullOrWhiteSpace(problem))
            {
                throw new InvalidOperationException("an identity refused without a reason");
            }
            return;
        }
        if (identity.Id is < 256 or > 65535 || identity.Labels.Count == 0 || !identity.Labels.SequenceEqual(identity.Labels.Order(StringComparer.Ordinal)))
        {
            throw new InvalidOperationException($"identity {identity.Id} read out of range or with unsorted labels");
        }
        // What the allocator would write for these labels must read back as the same identity.
        var again = IdentityObject.From(IdentityObject.For(identity.Id, identity.Labels, DateTimeOffset.UnixEpoch), 256, 65535, out var why);
        if (again is null || again.Key != identity.Key)
        {
            throw new InvalidOperationException($"identity {identity.Id} does not survive a round trip: {why}");
        }
    }

    public static IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        static (string, byte[]) Seed(string name, string json) => (name, Encoding.UTF8.GetBytes(json));
        yield return Seed("web.json", """{"apiVersion":"palisade.io/v1alpha1","kind":"PalisadeIdentity","metadata":{"name":"300","resourceVersion":"12","creationTimestamp":"2026-12-01T10:00:00Z","annotations":{"palisade.io/last-used":"2026-12-01T10:05:00Z"},"labels":{"app":"web"}},"security-labels":{"k8s:app":"web","k8s:io.kubernetes.pod.namespace":"shop","k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name":"shop"}}""");
        yield return Seed("cilium-shaped.json", """{"apiVersion":"cilium.io/v2","kind":"CiliumIdentity","metadata":{"name":"12345"},"security-labels":{"k8s:io.cilium.k8s.policy.cluster":"default","k8s:io.kubernetes.pod.namespace":"kube-system","k8s:k8s-app":"kube-dns"}}""");
        yield return Seed("bad-name.json", """{"metadata":{"name":"0300"},"security-labels":{"k8s:a":"b"}}""");
        yield return Seed("number-label.json", """{"metadata":{"name":"301"},"security-labels":{"k8s:a":1,"k8s:b":null}}""");
        yield return Seed("no-source.json", """{"metadata":{"name":"302","annotations":{"palisade.io/last-used":"yesterday"}},"security-labels":{"app=x":"web"}}""");
    }
}
