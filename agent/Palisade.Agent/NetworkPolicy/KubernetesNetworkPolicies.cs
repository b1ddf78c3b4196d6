using k8s;
using k8s.Models;
using Palisade.Kubernetes;

namespace Palisade.Agent.NetworkPolicy;

/// <summary>
/// Feeds the network-policy engine from the informers of NetworkPolicy (networking.k8s.io/v1),
/// CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2): each object goes through
/// the same parser as a file (its JSON), so a bad object gets the same status, naming its field.
/// </summary>
internal sealed class KubernetesNetworkPolicies(NetworkPolicyService service) : IInformerHandler<V1NetworkPolicy>
{
    public IInformerHandler<CustomObject> Cilium(string kind) => new CiliumHandler(service, kind);

    public void OnUpsert(V1NetworkPolicy obj, V1NetworkPolicy? old)
    {
        ArgumentNullException.ThrowIfNull(obj);
        obj.ApiVersion ??= "networking.k8s.io/v1";
        obj.Kind ??= "NetworkPolicy";
        service.SetKubernetesPolicy("NetworkPolicy", obj.Metadata?.NamespaceProperty, obj.Metadata?.Name ?? "", KubernetesJson.Serialize(obj));
    }

    public void OnDelete(V1NetworkPolicy obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        service.SetKubernetesPolicy("NetworkPolicy", obj.Metadata?.NamespaceProperty, obj.Metadata?.Name ?? "", null);
    }

    public void OnSynced()
    {
    }

    private sealed class CiliumHandler(NetworkPolicyService service, string kind) : IInformerHandler<CustomObject>
    {
        public void OnUpsert(CustomObject obj, CustomObject? old)
        {
            if (string.IsNullOrEmpty(obj.Kind))
            {
                obj.Kind = kind;
            }
            if (string.IsNullOrEmpty(obj.ApiVersion))
            {
                obj.ApiVersion = "cilium.io/v2";
            }
            service.SetKubernetesPolicy(kind, obj.Metadata.NamespaceProperty, obj.Metadata.Name ?? "", KubernetesJson.Serialize(obj));
        }

        public void OnDelete(CustomObject obj) => service.SetKubernetesPolicy(kind, obj.Metadata.NamespaceProperty, obj.Metadata.Name ?? "", null);

        public void OnSynced()
        {
        }
    }
}
