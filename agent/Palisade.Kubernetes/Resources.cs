using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Palisade.Kubernetes;

/// <summary>A cilium.io/v1alpha1 custom object as the API server serves it: spec kept as raw JSON for our own parser.</summary>
public sealed class CustomObject : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public JsonElement? Spec { get; set; }

    /// <summary>A CiliumNetworkPolicy's list of rules (instead of, or beside, spec).</summary>
    [JsonPropertyName("specs")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonElement? Specs { get; set; }

    [JsonPropertyName("status")]
    public JsonElement? Status { get; set; }
}

public sealed class CustomObjectList : IKubernetesObject<V1ListMeta>, IItems<CustomObject>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<CustomObject> Items { get; set; } = [];
}

/// <summary>
/// The kinds the agent lists and watches, each a KubernetesClient list call. Custom resources
/// of a namespaced kind are listed across namespaces through the cluster-wide path
/// (/apis/cilium.io/v1alpha1/&lt;plural&gt;), as the API server serves it.
/// </summary>
public static class Resources
{
    public const string CiliumGroup = "cilium.io";
    public const string CiliumVersion = "v1alpha1";
    public const string TracingPoliciesPlural = "tracingpolicies";
    public const string TracingPoliciesNamespacedPlural = "tracingpoliciesnamespaced";

    public static ResourceKind<CustomObject, CustomObjectList> Custom(string group, string version, string plural) =>
        new($"{plural}.{group}",
            (c, r, ct) => c.CustomObjects.ListClusterCustomObjectWithHttpMessagesAsync<CustomObjectList>(
                group, version, plural, continueParameter: r.Continue, limit: r.Limit, resourceVersion: r.ResourceVersion, cancellationToken: ct),
            (c, r, onError, ct) => AsCustomObjects(c.CustomObjects.WatchListClusterCustomObjectAsync(
                group, version, plural, allowWatchBookmarks: true, resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds,
                onError: onError, cancellationToken: ct)));

    /// <summary>The custom-object watch yields untyped JSON; our objects are read from it.</summary>
    private static async IAsyncEnumerable<(WatchEventType, CustomObject)> AsCustomObjects(IAsyncEnumerable<(WatchEventType, object)> events)
    {
        await foreach (var (type, obj) in events.ConfigureAwait(false))
        {
            var json = obj is JsonElement e ? e.GetRawText() : KubernetesJson.Serialize(obj);
            yield return (type, KubernetesJson.Deserialize<CustomObject>(json));
        }
    }

    public static ResourceKind<CustomObject, CustomObjectList> TracingPolicies => Custom(CiliumGroup, CiliumVersion, TracingPoliciesPlural);

    public static ResourceKind<CustomObject, CustomObjectList> TracingPoliciesNamespaced => Custom(CiliumGroup, CiliumVersion, TracingPoliciesNamespacedPlural);

    /// <summary>Datapath: CiliumNetworkPolicy (namespaced, listed across namespaces).</summary>
    public static ResourceKind<CustomObject, CustomObjectList> CiliumNetworkPolicies => Custom(CiliumGroup, "v2", "ciliumnetworkpolicies");

    /// <summary>Datapath: CiliumClusterwideNetworkPolicy.</summary>
    public static ResourceKind<CustomObject, CustomObjectList> CiliumClusterwideNetworkPolicies => Custom(CiliumGroup, "v2", "ciliumclusterwidenetworkpolicies");

    /// <summary>The pods scheduled on one node (field selector spec.nodeName).</summary>
    public static ResourceKind<V1Pod, V1PodList> PodsOnNode(string node) =>
        new("pods",
            (c, r, ct) => c.CoreV1.ListPodForAllNamespacesWithHttpMessagesAsync(
                continueParameter: r.Continue, fieldSelector: $"spec.nodeName={node}", limit: r.Limit, resourceVersion: r.ResourceVersion, cancellationToken: ct),
            (c, r, onError, ct) => c.CoreV1.WatchListPodForAllNamespacesAsync(
                allowWatchBookmarks: true, fieldSelector: $"spec.nodeName={node}", resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds, onError: onError, cancellationToken: ct));

    public static ResourceKind<V1Namespace, V1NamespaceList> Namespaces { get; } =
        new("namespaces",
            (c, r, ct) => c.CoreV1.ListNamespaceWithHttpMessagesAsync(
                continueParameter: r.Continue, limit: r.Limit, resourceVersion: r.ResourceVersion, cancellationToken: ct),
            (c, r, onError, ct) => c.CoreV1.WatchListNamespaceAsync(
                allowWatchBookmarks: true, resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds, onError: onError, cancellationToken: ct));

    /// <summary>This node's Node object (field selector metadata.name): its labels drive policies' nodeSelector.</summary>
    public static ResourceKind<V1Node, V1NodeList> Node(string node) =>
        new("nodes",
            (c, r, ct) => c.CoreV1.ListNodeWithHttpMessagesAsync(
                continueParameter: r.Continue, fieldSelector: $"metadata.name={node}", limit: r.Limit, resourceVersion: r.ResourceVersion, cancellationToken: ct),
            (c, r, onError, ct) => c.CoreV1.WatchListNodeAsync(
                allowWatchBookmarks: true, fieldSelector: $"metadata.name={node}", resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds, onError: onError, cancellationToken: ct));

    /// <summary>Every Node of the cluster: pod networking reads this node's pod CIDRs and routes to the others'.</summary>
    public static ResourceKind<V1Node, V1NodeList> Nodes { get; } =
        new("cluster-nodes",
            (c, r, ct) => c.CoreV1.ListNodeWithHttpMessagesAsync(
                continueParameter: r.Continue, limit: r.Limit, resourceVersion: r.ResourceVersion, cancellationToken: ct),
            (c, r, onError, ct) => c.CoreV1.WatchListNodeAsync(
                allowWatchBookmarks: true, resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds, onError: onError, cancellationToken: ct));

    /// <summary>Datapath: Services.</summary>
    public static ResourceKind<V1Service, V1ServiceList> Services { get; } =
        new("services",
            (c, r, ct) => c.CoreV1.ListServiceForAllNamespacesWithHttpMessagesAsync(
                continueParameter: r.Continue, limit: r.Limit, resourceVersion: r.ResourceVersion, cancellationToken: ct),
            (c, r, onError, ct) => c.CoreV1.WatchListServiceForAllNamespacesAsync(
                allowWatchBookmarks: true, resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds, onError: onError, cancellationToken: ct));

    /// <summary>Datapath: EndpointSlices.</summary>
    public static ResourceKind<V1EndpointSlice, V1EndpointSliceList> EndpointSlices { get; } =
        new("endpointslices",
            (c, r, ct) => c.DiscoveryV1.ListEndpointSliceForAllNamespacesWithHttpMessagesAsync(
                continueParameter: r.Continue, limit: r.Limit, resourceVersion: r.ResourceVersion, cancellationToken: ct),
            (c, r, onError, ct) => c.DiscoveryV1.WatchListEndpointSliceForAllNamespacesAsync(
                allowWatchBookmarks: true, resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds, onError: onError, cancellationToken: ct));

    /// <summary>Datapath: Kubernetes NetworkPolicies.</summary>
    public static ResourceKind<V1NetworkPolicy, V1NetworkPolicyList> NetworkPolicies { get; } =
        new("networkpolicies",
            (c, r, ct) => c.NetworkingV1.ListNetworkPolicyForAllNamespacesWithHttpMessagesAsync(
                continueParameter: r.Continue, limit: r.Limit, resourceVersion: r.ResourceVersion, cancellationToken: ct),
            (c, r, onError, ct) => c.NetworkingV1.WatchListNetworkPolicyForAllNamespacesAsync(
                allowWatchBookmarks: true, resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds, onError: onError, cancellationToken: ct));

    /// <summary>
    /// A client for the cluster: the kubeconfig file when one is given, else the in-cluster
    /// service account (KUBERNETES_SERVICE_HOST/PORT and the mounted token and CA).
    /// </summary>
    public static IKubernetes Connect(string? kubeconfig)
    {
        KubernetesClientConfiguration config;
        if (!string.IsNullOrEmpty(kubeconfig))
        {
            if (!File.Exists(kubeconfig))
            {
                throw new FileNotFoundException($"kubeconfig {kubeconfig} does not exist; give the path of a kubeconfig file, or run in a pod (in-cluster service account)", kubeconfig);
            }
            config = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
        }
        else if (KubernetesClientConfiguration.IsInCluster())
        {
            config = KubernetesClientConfiguration.InClusterConfig();
        }
        else
        {
            throw new InvalidOperationException("not running in a pod (no KUBERNETES_SERVICE_HOST or service account token) and no --kubeconfig given");
        }
        // Watches are long requests: the per-request timeout must not cut them.
        config.HttpClientTimeout = Timeout.InfiniteTimeSpan;
        return new k8s.Kubernetes(config);
    }

    internal static JsonSerializerOptions Json { get; } = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
}
