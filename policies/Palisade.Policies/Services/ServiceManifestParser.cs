using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;
using FieldReader = Palisade.Policies.Network.NetworkFieldReader;
using NetworkVocabulary = Palisade.Policies.Network.NetworkVocabulary;

namespace Palisade.Policies.Services;

/// <summary>spec.type of a Service.</summary>
public enum ServiceType
{
    ClusterIP,
    NodePort,
    LoadBalancer,

    /// <summary>A DNS alias (CNAME): not load-balanced, no frontends.</summary>
    ExternalName,
}

/// <summary>spec.externalTrafficPolicy / spec.internalTrafficPolicy.</summary>
public enum TrafficPolicy
{
    /// <summary>Every backend of the cluster.</summary>
    Cluster,

    /// <summary>Only the backends on this node.</summary>
    Local,
}

/// <summary>spec.sessionAffinity.</summary>
public enum SessionAffinity
{
    None,
    ClientIP,
}

/// <summary>spec.ports[].targetPort: a number, or the name of a container port (resolved through the EndpointSlices).</summary>
public sealed record ServiceTargetPort(ushort Number, string? Name)
{
    public bool IsNamed => Name is not null;

    public override string ToString() => Name ?? Number.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One entry of spec.ports. <paramref name="NodePort"/> is 0 when none is given (or allocated).</summary>
public sealed record ServiceManifestPort(string Name, L4Protocol Protocol, ushort Port, ServiceTargetPort TargetPort, ushort NodePort = 0);

/// <summary>
/// A v1 Service as read from a file, Kubernetes' defaults applied. Only what load balancing
/// needs is kept; <see cref="ClusterIPs"/> is empty for a headless Service (<see cref="Headless"/>)
/// and for one whose file names no cluster IP.
/// </summary>
public sealed record ServiceManifest
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    public ServiceType Type { get; init; } = ServiceType.ClusterIP;

    /// <summary>spec.clusterIPs (or spec.clusterIP): the primary first, at most one per family.</summary>
    public IReadOnlyList<IPAddress> ClusterIPs { get; init; } = [];

    /// <summary>clusterIP: None. A headless Service is resolved by DNS to its endpoints and gets no frontend.</summary>
    public bool Headless { get; init; }

    /// <summary>spec.ipFamilies as written (InterNetwork, InterNetworkV6), in order; empty when not given.</summary>
    public IReadOnlyList<AddressFamily> IpFamilies { get; init; } = [];

    public IReadOnlyList<ServiceManifestPort> Ports { get; init; } = [];

    public IReadOnlyList<IPAddress> ExternalIPs { get; init; } = [];

    /// <summary>status.loadBalancer.ingress[].ip, except the entries whose ipMode is Proxy (the load balancer proxies those itself).</summary>
    public IReadOnlyList<IPAddress> LoadBalancerIPs { get; init; } = [];

    public SessionAffinity SessionAffinity { get; init; } = SessionAffinity.None;

    /// <summary>spec.sessionAffinityConfig.clientIP.timeoutSeconds (default 10800); used only with ClientIP affinity.</summary>
    public uint AffinityTimeoutSeconds { get; init; } = ServiceManifestParser.DefaultAffinityTimeoutSeconds;

    public TrafficPolicy ExternalTrafficPolicy { get; init; } = TrafficPolicy.Cluster;

    public TrafficPolicy InternalTrafficPolicy { get; init; } = TrafficPolicy.Cluster;

    public bool PublishNotReadyAddresses { get; init; }

    /// <summary>The service.cilium.io/lb-algorithm annotation; <see cref="LbAlgorithm.Default"/> without it.</summary>
    public LbAlgorithm Algorithm { get; init; } = LbAlgorithm.Default;

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();

    /// <summary>The file the Service came from (the parser's source) and the line of its document.</summary>
    public string Source { get; init; } = "";

    public int Line { get; init; }

    public override string ToString() => $"Service {Namespace}/{Name}";
}

/// <summary>One entry of an EndpointSlice's ports. <paramref name="Port"/> is null when the slice does not restrict it (then it gives no backend).</summary>
public sealed record EndpointSlicePort(string Name, L4Protocol Protocol, ushort? Port);

/// <summary>
/// One entry of an EndpointSlice's endpoints, with its conditions resolved as the API documents
/// them: ready unset is ready, serving unset is the same as ready, terminating unset is false.
/// </summary>
public sealed record SliceEndpoint(IReadOnlyList<IPAddress> Addresses, bool Ready, bool Serving, bool Terminating, string? NodeName = null, string? PodName = null, string? Zone = null, string? Hostname = null);

/// <summary>A discovery.k8s.io/v1 EndpointSlice of addressType IPv4 or IPv6, as read from a file.</summary>
public sealed record EndpointSliceManifest
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    /// <summary>The kubernetes.io/service-name label: the Service the slice belongs to.</summary>
    public required string ServiceName { get; init; }

    /// <summary>addressType: InterNetwork (IPv4) or InterNetworkV6 (IPv6).</summary>
    public AddressFamily AddressType { get; init; } = AddressFamily.InterNetwork;

    public IReadOnlyList<EndpointSlicePort> Ports { get; init; } = [];

    public IReadOnlyList<SliceEndpoint> Endpoints { get; init; } = [];

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public string Source { get; init; } = "";

    public int Line { get; init; }

    public override string ToString() => $"EndpointSlice {Namespace}/{Name}";
}

/// <summary>What parsing a file produced: the valid Services and EndpointSlices, every error, and the warnings (accepted but worth fixing, and the documents skipped).</summary>
public sealed record ServiceManifestParseResult(
    IReadOnlyList<ServiceManifest> Services,
    IReadOnlyList<EndpointSliceManifest> EndpointSlices,
    IReadOnlyList<PolicyError> Errors,
    IReadOnlyList<PolicyError> Warnings)
{
    public bool Ok => Errors.Count == 0;
}

/// <summary>
/// Parses v1 Service and discovery.k8s.io/v1 EndpointSlice YAML (or JSON), alone, several to a
/// file, or in a v1 List, with the defaults and the checks of the Kubernetes API server. Pure:
/// text in, manifests and errors out. Every error names the field path, the value and the fix;
/// an object with errors yields nothing, the other objects of the file are unaffected (each item
/// of a List counts as its own object); other kinds are skipped with a warning; no input makes it
/// throw.
/// </summary>
public static partial class ServiceManifestParser
{
    /// <summary>The path of an error that is a bug in Palisade, not in the file (the fuzz target treats it as a crash).</summary>
    public const string InternalErrorPath = "(internal)";

    /// <summary>Cilium's per-Service algorithm annotation: random or maglev.</summary>
    public const string LbAlgorithmAnnotation = "service.cilium.io/lb-algorithm";

    /// <summary>The label that ties an EndpointSlice to its Service.</summary>
    public const string ServiceNameLabel = "kubernetes.io/service-name";

    public const uint DefaultAffinityTimeoutSeconds = 10800;

    public const uint MaxAffinityTimeoutSeconds = 86400;

    public const string ServiceApiVersion = "v1";

    public const string EndpointSliceApiVersion = "discovery.k8s.io/v1";

    private static readonly string[] ListKinds = ["List", "ServiceList", "EndpointSliceList"];

    private static readonly string[] ReadKinds = ["Service", "EndpointSlice"];

    private static readonly string[] ListFields = ["apiVersion", "kind", "metadata", "items"];

    private static readonly string[] ServiceTopFields = ["apiVersion", "kind", "metadata", "spec", "status"];

    private static readonly string[] SliceTopFields = ["apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"];

    private static readonly string[] MetadataFields =
        ["name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "finalizers", "ownerReferences", "generateName", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"];

    private static readonly string[] SpecFields =
        ["ports", "selector", "clusterIP", "clusterIPs", "type", "externalIPs", "sessionAffinity", "loadBalancerIP", "loadBalancerSourceRanges", "externalName", "externalTrafficPolicy",
         "healthCheckNodePort", "publishNotReadyAddresses", "sessionAffinityConfig", "ipFamilies", "ipFamilyPolicy", "allocateLoadBalancerNodePorts", "loadBalancerClass", "internalTrafficPolicy", "trafficDistribution"];

    private static readonly string[] ServicePortFields = ["name", "protocol", "appProtocol", "port", "targetPort", "nodePort"];

    private static readonly string[] AffinityConfigFields = ["clientIP"];

    private static readonly string[] ClientIPConfigFields = ["timeoutSeconds"];

    private static readonly string[] StatusFields = ["loadBalancer", "conditions"];

    private static readonly string[] LoadBalancerStatusFields = ["ingress"];

    private static readonly string[] IngressFields = ["ip", "hostname", "ipMode", "ports"];

    private static readonly string[] SlicePortFields = ["name", "protocol", "port", "appProtocol"];

    private static readonly string[] EndpointFields = ["addresses", "conditions", "hostname", "targetRef", "nodeName", "zone", "hints", "deprecatedTopology"];

    private static readonly string[] ConditionFields = ["ready", "serving", "terminating"];

    private static readonly string[] TargetRefFields = ["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"];

    private static readonly string[] ServiceTypes = [nameof(ServiceType.ClusterIP), nameof(ServiceType.NodePort), nameof(ServiceType.LoadBalancer), nameof(ServiceType.ExternalName)];

    private static readonly string[] TrafficPolicies = [nameof(TrafficPolicy.Cluster), nameof(TrafficPolicy.Local)];

    private static readonly string[] Affinities = [nameof(SessionAffinity.None), nameof(SessionAffinity.ClientIP)];

    private static readonly string[] Families = ["IPv4", "IPv6"];

    private static readonly string[] FamilyPolicies = ["SingleStack", "PreferDualStack", "RequireDualStack"];

    private static readonly string[] AddressTypes = ["IPv4", "IPv6", "FQDN"];

    private static readonly string[] IpModes = ["VIP", "Proxy"];

    private static readonly string[] Algorithms = ["random", "maglev"];

    /// <summary>The addresses an EndpointSlice endpoint may list (discovery validation).</summary>
    public const int MaxEndpointAddresses = 100;

    /// <summary>
    /// Parses every document of <paramref name="text"/>; <paramref name="source"/> names the file
    /// in the manifests. A document without metadata.namespace is in "default", as kubectl applies it.
    /// </summary>
    public static ServiceManifestParseResult Parse(string text, string source = "services")
    {
        var sink = new Sink(source);
        if (YamlText.Load(text ?? "", out var stream) is { } problem)
        {
            sink.Errors.Add(new PolicyError("", problem.Message, problem.Line, problem.Column));
            return sink.Result();
        }
        var documents = stream!.Documents;
        for (var d = 0; d < documents.Count; d++)
        {
            var prefix = documents.Count > 1 ? $"document {d + 1}: " : "";
            try
            {
                ReadDocument(documents[d].RootNode, prefix, sink);
            }
#pragma warning disable CA1031 // a reader bug must cost one document its objects, never the agent its life
            catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
            {
                sink.Errors.Add(new PolicyError(prefix + InternalErrorPath,
                    $"Palisade could not read this document ({e.GetType().Name}: {e.Message}). This is a bug in Palisade, not necessarily in the file: please report it with the file."));
            }
        }
        return sink.Result();
    }

    private sealed class Sink(string source)
    {
        public string Source { get; } = source;

        public List<ServiceManifest> Services { get; } = [];

        public List<EndpointSliceManifest> Slices { get; } = [];

        public List<PolicyError> Errors { get; } = [];

        public List<PolicyError> Warnings { get; } = [];

        public ServiceManifestParseResult Result() => new(Services, Slices, Errors, Warnings);
    }

    private static void ReadDocument(YamlNode root, string prefix, Sink sink)
    {
        if (root is YamlScalarNode { Value: null or "" } || (root is YamlScalarNode s && FieldReader.IsNull(s)))
        {
            return; // an empty document, e.g. after a trailing "---"
        }
        if (root is YamlMappingNode map && (NodeReader.Field(map, "kind") as YamlScalarNode)?.Value is { } kind && ListKinds.Contains(kind))
        {
            ReadList(map, kind, prefix, sink);
            return;
        }
        ReadUnit(root, "", prefix, sink);
    }

    // A List: its own fields are checked once; each item is read as an object of its own.
    private static void ReadList(YamlMappingNode map, string kind, string prefix, Sink sink)
    {
        var errors = new List<PolicyError>();
        var f = new FieldReader(new NodeReader(errors));
        WarnUnknown(f, map, "", ListFields);
        var apiVersion = Text(f, map, "", "apiVersion");
        if (apiVersion is not null && apiVersion != ServiceApiVersion)
        {
            f.Warn("apiVersion", $"\"{apiVersion}\" is not the API version of a {kind}; read as v1. Fix: apiVersion: v1.", NodeReader.Field(map, "apiVersion"));
        }
        var items = NodeReader.Field(map, "items");
        if (items is not null && !FieldReader.IsNull(items) && items is not YamlSequenceNode)
        {
            f.R.Error("items", $"must be a list of objects, not {NodeReader.Describe(items)}. Fix: write one \"- \" entry per Service or EndpointSlice.", items);
        }
        sink.Errors.AddRange(errors.Select(e => e with { Path = prefix + e.Path }));
        sink.Warnings.AddRange(f.Warnings.Select(e => e with { Path = prefix + e.Path }));
        if (items is YamlSequenceNode seq)
        {
            for (var i = 0; i < seq.Children.Count; i++)
            {
                var item = seq.Children[i];
                if (item is YamlMappingNode m && (NodeReader.Field(m, "kind") as YamlScalarNode)?.Value is { } k && ListKinds.Contains(k))
                {
                    sink.Warnings.Add(new PolicyError($"{prefix}items[{i}]", $"is a {k} inside a List, skipped. Fix: list its items directly.", (int)item.Start.Line, (int)item.Start.Column));
                    continue;
                }
                ReadUnit(item, $"items[{i}]", prefix, sink);
            }
        }
    }

    // One object (a document, or an item of a List): its errors drop it, and only it.
    private static void ReadUnit(YamlNode node, string at, string prefix, Sink sink)
    {
        var errors = new List<PolicyError>();
        var f = new FieldReader(new NodeReader(errors));
        var read = ReadObject(node, at, f, sink.Source);
        sink.Errors.AddRange(errors.Select(e => e with { Path = prefix + e.Path }));
        sink.Warnings.AddRange(f.Warnings.Select(e => e with { Path = prefix + e.Path }));
        if (errors.Count > 0)
        {
            return;
        }
        switch (read)
        {
            case ServiceManifest service:
                sink.Services.Add(service);
                break;
            case EndpointSliceManifest slice:
                sink.Slices.Add(slice);
                break;
        }
    }

    private static object? ReadObject(YamlNode node, string at, FieldReader f, string source)
    {
        var r = f.R;
        if (node is not YamlMappingNode map)
        {
            r.Error(at.Length == 0 ? "(document)" : at, $"must be a mapping with apiVersion, kind and metadata (a Service or an EndpointSlice), not {NodeReader.Describe(node)}.", node);
            return null;
        }
        var kindNode = NodeReader.Field(map, "kind");
        var kind = Required(f, map, at, "kind", "is required: it says what the document is. Fix: kind: Service (with apiVersion: v1) or kind: EndpointSlice (with apiVersion: discovery.k8s.io/v1).");
        var apiVersion = Text(f, map, at, "apiVersion");
        if (kind is null)
        {
            return null;
        }
        if (!ReadKinds.Contains(kind))
        {
            // A near miss of Service or EndpointSlice is a typo to report; anything else (a Deployment, a NetworkPolicy) is another object.
            if (ReadKinds.Any(k => Suggestions.Distance(k, kind) <= 2) || ReadKinds.Any(k => string.Equals(k, kind, StringComparison.OrdinalIgnoreCase)))
            {
                r.Error(NodeReader.At(at, "kind"), $"\"{kind}\" is not a kind Palisade reads here." + Suggestions.For(kind, ReadKinds), kindNode);
                return null;
            }
            var hint = kind == "Endpoints" ? " Palisade reads the EndpointSlices (discovery.k8s.io/v1) the cluster keeps next to it." : "";
            f.Warn(NodeReader.At(at, "kind"), $"{kind} {ObjectName(map)} is not a Service or an EndpointSlice, skipped.{hint}", kindNode);
            return null;
        }
        var expected = kind == "Service" ? ServiceApiVersion : EndpointSliceApiVersion;
        if (apiVersion is null)
        {
            r.Error(NodeReader.At(at, "apiVersion"), $"is required. Fix: apiVersion: {expected}.", map);
        }
        else if (apiVersion != expected)
        {
            r.Error(NodeReader.At(at, "apiVersion"), $"\"{apiVersion}\" is not the API version of {kind}. Fix: apiVersion: {expected}.", NodeReader.Field(map, "apiVersion"));
        }
        return kind == "Service" ? ReadService(map, at, f, source) : ReadSlice(map, at, f, source);
    }

    private sealed record Meta(string? Name, string Namespace, Dictionary<string, string> Labels, Dictionary<string, string> Annotations, YamlMappingNode? Node);

    private static Meta ReadMetadata(YamlMappingNode map, string at, FieldReader f, bool serviceName)
    {
        var r = f.R;
        var p = NodeReader.At(at, "metadata");
        var metaNode = NodeReader.Field(map, "metadata");
        if (metaNode is not YamlMappingNode meta)
        {
            r.Error(p, metaNode is null || FieldReader.IsNull(metaNode) ? "is required, with at least a name." : $"must be a mapping with at least a name, not {NodeReader.Describe(metaNode)}.", metaNode ?? map);
            return new Meta(null, NetworkVocabulary.DefaultNamespace, [], [], null);
        }
        WarnUnknown(f, meta, p, MetadataFields);
        var name = Required(f, meta, p, "name", $"is required. Fix: give the {(serviceName ? "Service" : "EndpointSlice")} a name, e.g. metadata: {{name: web}}.");
        if (name is not null)
        {
            if (serviceName && !DnsLabel1035().IsMatch(name))
            {
                r.Error($"{p}.name", $"\"{name}\" is not a Service name: at most 63 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit. Fix: e.g. web or web-v2.", NodeReader.Field(meta, "name"));
                name = null;
            }
            else if (!serviceName && !DnsSubdomain().IsMatch(name))
            {
                r.Error($"{p}.name", $"\"{name}\" is not a valid name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters. Fix: e.g. web-abc12.", NodeReader.Field(meta, "name"));
                name = null;
            }
        }
        var ns = Text(f, meta, p, "namespace");
        if (ns is { Length: > 0 } && !DnsLabel1123().IsMatch(ns))
        {
            r.Error($"{p}.namespace", $"\"{ns}\" is not a namespace name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters. Fix: e.g. shop, or leave it out for \"default\".", NodeReader.Field(meta, "namespace"));
        }
        var labels = f.LabelMap(NodeReader.Field(meta, "labels"), $"{p}.labels", values: true);
        var annotations = f.LabelMap(NodeReader.Field(meta, "annotations"), $"{p}.annotations", values: false);
        return new Meta(name, ns is { Length: > 0 } ? ns : NetworkVocabulary.DefaultNamespace, labels, annotations, meta);
    }

    private static ServiceManifest? ReadService(YamlMappingNode map, string at, FieldReader f, string source)
    {
        var r = f.R;
        WarnUnknown(f, map, at, ServiceTopFields);
        var meta = ReadMetadata(map, at, f, serviceName: true);
        var algorithm = LbAlgorithm.Default;
        if (meta.Annotations.TryGetValue(LbAlgorithmAnnotation, out var algo))
        {
            var annotationNode = NodeReader.Field(NodeReader.Field(meta.Node, "annotations") as YamlMappingNode, LbAlgorithmAnnotation);
            switch (algo)
            {
                case "random":
                    algorithm = LbAlgorithm.Random;
                    break;
                case "maglev":
                    algorithm = LbAlgorithm.Maglev;
                    break;
                default:
                    r.Error(NodeReader.At(at, $"metadata.annotations.{LbAlgorithmAnnotation}"),
                        $"\"{algo}\" is not a load-balancing algorithm." + Suggestions.For(algo, Algorithms) + $" Fix: {LbAlgorithmAnnotation}: random or maglev, or remove the annotation for the agent's default.", annotationNode);
                    break;
            }
        }
        var sp = NodeReader.At(at, "spec");
        var specNode = NodeReader.Field(map, "spec");
        if (specNode is not YamlMappingNode spec)
        {
            r.Error(sp, specNode is null || FieldReader.IsNull(specNode)
                ? "is required: a Service needs at least its ports (and, as the cluster returns it, its clusterIP). Fix: add spec.ports, e.g. [{port: 80, targetPort: 8080}]."
                : $"must be a mapping (fields such as ports, clusterIP, type), not {NodeReader.Describe(specNode)}.", specNode ?? map);
            return null;
        }
        WarnUnknown(f, spec, sp, SpecFields);

        // An unknown type is an error; the rest is still read (to report every mistake at once) without the checks that depend on the type.
        var type = ServiceType.ClusterIP;
        ServiceType? known = type;
        var typeText = Text(f, spec, sp, "type");
        if (typeText is { Length: > 0 })
        {
            if (ServiceTypes.Contains(typeText))
            {
                type = Enum.Parse<ServiceType>(typeText);
                known = type;
            }
            else
            {
                r.Error($"{sp}.type", $"\"{typeText}\" is not a Service type." + Suggestions.For(typeText, ServiceTypes), NodeReader.Field(spec, "type"));
                known = null;
            }
        }
        if (type == ServiceType.ExternalName)
        {
            f.Warn($"{sp}.type", "ExternalName: the Service is a DNS alias (a CNAME to spec.externalName), not load-balanced; it gets no frontends.", NodeReader.Field(spec, "type"));
            return meta.Name is null ? null : new ServiceManifest
            {
                Namespace = meta.Namespace,
                Name = meta.Name,
                Type = type,
                Labels = meta.Labels,
                Annotations = meta.Annotations,
                Algorithm = algorithm,
                Source = source,
                Line = (int)map.Start.Line,
            };
        }

        var (clusterIPs, headless) = ClusterIPs(f, spec, sp, known);
        var families = IpFamilies(f, spec, sp, clusterIPs);
        var ports = Ports(f, spec, sp, known, headless);
        var externalIPs = ExternalIPs(f, spec, sp);

        var affinity = SessionAffinity.None;
        var affinityText = Text(f, spec, sp, "sessionAffinity");
        if (affinityText is { Length: > 0 })
        {
            if (Affinities.Contains(affinityText))
            {
                affinity = Enum.Parse<SessionAffinity>(affinityText);
            }
            else
            {
                r.Error($"{sp}.sessionAffinity", $"\"{affinityText}\" is not a session affinity." + Suggestions.For(affinityText, Affinities), NodeReader.Field(spec, "sessionAffinity"));
            }
        }
        var timeout = AffinityTimeout(f, spec, sp, affinity);

        var external = type is ServiceType.NodePort or ServiceType.LoadBalancer || externalIPs.Count > 0;
        var etp = Policy(f, spec, sp, "externalTrafficPolicy", acceptGlobal: true);
        if (etp == TrafficPolicy.Local && !external && known is not null)
        {
            f.Warn($"{sp}.externalTrafficPolicy", $"Local has no effect: a {type} Service without externalIPs has no NodePort, LoadBalancer or external IP frontend (the API server refuses it). Fix: remove it, or set type: NodePort or LoadBalancer.", NodeReader.Field(spec, "externalTrafficPolicy"));
        }
        var itp = Policy(f, spec, sp, "internalTrafficPolicy", acceptGlobal: false);
        var publishNotReady = OptionalBool(f, spec, sp, "publishNotReadyAddresses") ?? false;
        var lbIPs = LoadBalancerStatus(f, map, at, known);

        if (clusterIPs.Count == 0 && !headless && Text(f, spec, sp, "clusterIP") is not { Length: > 0 } && NodeReader.Field(spec, "clusterIPs") is not YamlSequenceNode { Children.Count: > 0 })
        {
            f.Warn($"{sp}.clusterIP", "is not set: the API server allocates one when it creates the Service, and this file gives the Service no cluster IP frontend. Fix: use the Service as the cluster returns it (kubectl get service NAME -o yaml), or set clusterIP.", spec);
        }
        return meta.Name is null ? null : new ServiceManifest
        {
            Namespace = meta.Namespace,
            Name = meta.Name,
            Type = type,
            ClusterIPs = clusterIPs,
            Headless = headless,
            IpFamilies = families,
            Ports = ports,
            ExternalIPs = externalIPs,
            LoadBalancerIPs = lbIPs,
            SessionAffinity = affinity,
            AffinityTimeoutSeconds = timeout,
            ExternalTrafficPolicy = etp,
            InternalTrafficPolicy = itp,
            PublishNotReadyAddresses = publishNotReady,
            Algorithm = algorithm,
            Labels = meta.Labels,
            Annotations = meta.Annotations,
            Source = source,
            Line = (int)map.Start.Line,
        };
    }

    // spec.clusterIP and spec.clusterIPs, checked against each other as the API server does (clusterIPs[0] is clusterIP).
    private static (IReadOnlyList<IPAddress> Addresses, bool Headless) ClusterIPs(FieldReader f, YamlMappingNode spec, string sp, ServiceType? type)
    {
        var r = f.R;
        var single = Text(f, spec, sp, "clusterIP");
        var singleNode = NodeReader.Field(spec, "clusterIP");
        var listNode = NodeReader.Field(spec, "clusterIPs") as YamlSequenceNode;
        var list = Strings(f, spec, sp, "clusterIPs");
        if (single is { Length: > 0 } && list.Count > 0 && list[0] != single)
        {
            r.Error($"{sp}.clusterIPs[0]", $"\"{list[0]}\" must be the same as spec.clusterIP (\"{single}\"): clusterIPs[0] is the primary cluster IP. Fix: make them equal, or give only one of the two fields.", ItemNode(listNode, 0));
            return ([], false);
        }
        var texts = list.Count > 0 ? list : single is { Length: > 0 } ? [single] : [];
        var path = list.Count > 0 ? $"{sp}.clusterIPs" : $"{sp}.clusterIP";
        if (texts.Contains("None"))
        {
            if (texts.Count > 1)
            {
                r.Error($"{sp}.clusterIPs", "lists \"None\" with other addresses: a headless Service has no cluster IP at all. Fix: clusterIPs: [None] alone, or only addresses.", listNode);
                return ([], false);
            }
            if (type is { } t && t != ServiceType.ClusterIP)
            {
                r.Error(path, $"\"None\" (headless) is allowed only for type ClusterIP; a {type} Service needs a cluster IP. Fix: remove clusterIP: None, or set type: ClusterIP.", list.Count > 0 ? listNode : singleNode);
            }
            return ([], true);
        }
        if (texts.Count > 2)
        {
            r.Error($"{sp}.clusterIPs", $"lists {texts.Count} addresses: a Service has at most two, one IPv4 and one IPv6. Fix: keep one address per family.", listNode);
            return ([], false);
        }
        var result = new List<IPAddress>();
        for (var i = 0; i < texts.Count; i++)
        {
            var at = list.Count > 0 ? $"{sp}.clusterIPs[{i}]" : $"{sp}.clusterIP";
            var node = list.Count > 0 ? ItemNode(listNode, i) : singleNode;
            if (Address(f, texts[i], at, node, "a cluster IP", "write an IPv4 or IPv6 address, None for a headless Service, or leave it out for the API server to allocate one") is { } ip)
            {
                result.Add(ip);
            }
        }
        if (result.Count == 2 && result[0].AddressFamily == result[1].AddressFamily)
        {
            r.Error($"{sp}.clusterIPs", $"holds two {FamilyName(result[0].AddressFamily)} addresses ({result[0]}, {result[1]}): a dual-stack Service has one IPv4 and one IPv6 cluster IP. Fix: keep one, or replace one with an address of the other family.", listNode);
        }
        return (result, false);
    }

    private static IReadOnlyList<AddressFamily> IpFamilies(FieldReader f, YamlMappingNode spec, string sp, IReadOnlyList<IPAddress> clusterIPs)
    {
        var r = f.R;
        var node = NodeReader.Field(spec, "ipFamilies") as YamlSequenceNode;
        var texts = Strings(f, spec, sp, "ipFamilies");
        var result = new List<AddressFamily>();
        for (var i = 0; i < texts.Count; i++)
        {
            if (!Families.Contains(texts[i]))
            {
                r.Error($"{sp}.ipFamilies[{i}]", $"\"{texts[i]}\" is not an IP family." + Suggestions.For(texts[i], Families), ItemNode(node, i));
                continue;
            }
            var family = texts[i] == "IPv4" ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
            if (result.Contains(family))
            {
                r.Error($"{sp}.ipFamilies[{i}]", $"lists {texts[i]} twice. Fix: list each family once.", ItemNode(node, i));
                continue;
            }
            result.Add(family);
        }
        if (texts.Count > 2)
        {
            r.Error($"{sp}.ipFamilies", $"lists {texts.Count} families: there are two, IPv4 and IPv6. Fix: list each family once, the primary first.", node);
        }
        for (var i = 0; i < Math.Min(result.Count, clusterIPs.Count); i++)
        {
            if (result[i] != clusterIPs[i].AddressFamily)
            {
                r.Error($"{sp}.ipFamilies[{i}]", $"{FamilyName(result[i])} does not match the cluster IP {clusterIPs[i]} ({FamilyName(clusterIPs[i].AddressFamily)}). Fix: list the families in the order of clusterIPs.", ItemNode(node, i));
            }
        }
        if (Text(f, spec, sp, "ipFamilyPolicy") is { Length: > 0 } policy)
        {
            if (!FamilyPolicies.Contains(policy))
            {
                r.Error($"{sp}.ipFamilyPolicy", $"\"{policy}\" is not an IP family policy." + Suggestions.For(policy, FamilyPolicies), NodeReader.Field(spec, "ipFamilyPolicy"));
            }
            else if (policy == "SingleStack" && (clusterIPs.Count > 1 || result.Count > 1))
            {
                r.Error($"{sp}.ipFamilyPolicy", "SingleStack allows one IP family, but the Service lists two. Fix: ipFamilyPolicy: PreferDualStack or RequireDualStack, or keep one family.", NodeReader.Field(spec, "ipFamilyPolicy"));
            }
        }
        return result;
    }

    private static IReadOnlyList<ServiceManifestPort> Ports(FieldReader f, YamlMappingNode spec, string sp, ServiceType? type, bool headless)
    {
        var r = f.R;
        var node = NodeReader.Field(spec, "ports");
        var result = new List<ServiceManifestPort>();
        if (node is null || FieldReader.IsNull(node) || node is YamlSequenceNode { Children.Count: 0 })
        {
            if (!headless)
            {
                r.Error($"{sp}.ports", "is required: a Service needs at least one port. Fix: e.g. ports: [{port: 80, targetPort: 8080}].", node ?? spec);
            }
            return result;
        }
        if (node is not YamlSequenceNode seq)
        {
            r.Error($"{sp}.ports", $"must be a list, not {NodeReader.Describe(node)}. Fix: one \"- port: N\" entry per port.", node);
            return result;
        }
        var allocate = type != ServiceType.LoadBalancer || !FalseValue(NodeReader.Field(spec, "allocateLoadBalancerNodePorts"));
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        var numbers = new Dictionary<(ushort, L4Protocol), int>();
        var nodePorts = new Dictionary<(ushort, L4Protocol), int>();
        for (var i = 0; i < seq.Children.Count; i++)
        {
            var p = $"{sp}.ports[{i}]";
            var item = seq.Children[i];
            if (item is not YamlMappingNode m)
            {
                r.Error(p, $"must be a mapping (fields such as port, targetPort, name), not {NodeReader.Describe(item)}.", item);
                continue;
            }
            WarnUnknown(f, m, p, ServicePortFields);
            var name = Text(f, m, p, "name") ?? "";
            if (name.Length == 0 && seq.Children.Count > 1)
            {
                r.Error($"{p}.name", "is required when a Service has more than one port: EndpointSlices and named targetPorts refer to ports by name. Fix: name each port, e.g. name: http.", m);
            }
            else if (name.Length > 0 && !DnsLabel1123().IsMatch(name))
            {
                r.Error($"{p}.name", $"\"{name}\" is not a port name: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit. Fix: e.g. http or metrics-tls.", NodeReader.Field(m, "name"));
            }
            else if (name.Length > 0 && names.TryGetValue(name, out var first))
            {
                r.Error($"{p}.name", $"\"{name}\" is also the name of spec.ports[{first}]. Fix: give each port its own name.", NodeReader.Field(m, "name"));
            }
            else if (name.Length > 0)
            {
                names[name] = i;
            }
            var protocol = Protocol(f, m, p);
            var port = Required(f, m, p, "port", "is required: the port the Service listens on. Fix: e.g. port: 80.") is null ? null : Number(f, m, p, "port", 1, 65535, "a port number", "use 1 to 65535");
            var target = TargetPort(f, m, p, port);
            var nodePort = Text(f, m, p, "nodePort") is "0" ? 0 : Number(f, m, p, "nodePort", 1, 65535, "a port number", "use a port of the cluster's --service-node-port-range (30000 to 32767 by default), or leave it out for the API server to allocate one");
            if (nodePort is > 0 && type == ServiceType.ClusterIP)
            {
                r.Error($"{p}.nodePort", $"\"{nodePort}\" may not be used when type is ClusterIP: only NodePort and LoadBalancer Services have node ports. Fix: set type: NodePort, or remove nodePort.", NodeReader.Field(m, "nodePort"));
                nodePort = null;
            }
            if (port is null || protocol is null)
            {
                continue;
            }
            if (numbers.TryGetValue(((ushort)port, protocol.Value), out var same))
            {
                r.Error(p, $"repeats port {port}/{protocol.Value.ToString().ToUpperInvariant()} of spec.ports[{same}]. Fix: give each port/protocol pair once.", m);
                continue;
            }
            numbers[((ushort)port, protocol.Value)] = i;
            if (nodePort is > 0)
            {
                if (nodePorts.TryGetValue(((ushort)nodePort, protocol.Value), out var sameNode))
                {
                    r.Error($"{p}.nodePort", $"\"{nodePort}\" is also the node port of spec.ports[{sameNode}] with the same protocol. Fix: give each port its own nodePort.", NodeReader.Field(m, "nodePort"));
                    continue;
                }
                nodePorts[((ushort)nodePort, protocol.Value)] = i;
            }
            else if (type is ServiceType.NodePort or ServiceType.LoadBalancer && allocate && !headless)
            {
                f.Warn($"{p}.nodePort", $"is not set: the API server allocates one when it creates the {type} Service, and without it this port has no NodePort frontend. Fix: use the Service as the cluster returns it (kubectl get service NAME -o yaml), or set nodePort.", m);
            }
            result.Add(new ServiceManifestPort(name, protocol.Value, (ushort)port, target ?? new ServiceTargetPort((ushort)port, null), (ushort)(nodePort ?? 0)));
        }
        return result;
    }

    // targetPort: a number or an IANA port name; 0 or "" is the port itself (Kubernetes' default).
    private static ServiceTargetPort? TargetPort(FieldReader f, YamlMappingNode m, string p, int? port)
    {
        var node = NodeReader.Field(m, "targetPort");
        var text = Text(f, m, p, "targetPort");
        if (text is null || text.Length == 0 || text == "0")
        {
            return port is int n ? new ServiceTargetPort((ushort)n, null) : null;
        }
        if (NetworkVocabulary.Digits().IsMatch(text))
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number > 65535)
            {
                f.R.Error($"{p}.targetPort", $"\"{text}\" is not a port number. Fix: use 1 to 65535, or the name of a container port.", node);
                return null;
            }
            if (FieldReader.IsQuoted(node))
            {
                f.Warn($"{p}.targetPort", $"\"{text}\" is quoted, which makes it a port name for Kubernetes, and the API server refuses it. It is read as the number {number}: write targetPort: {number}.", node);
            }
            return new ServiceTargetPort((ushort)number, null);
        }
        if (!NetworkVocabulary.IsPortName(text))
        {
            f.R.Error($"{p}.targetPort", $"\"{text}\" is neither a port number (1 to 65535) nor a port name (at most 15 lower-case letters, digits and '-', with a letter). Fix: e.g. targetPort: 8080 or targetPort: http.", node);
            return null;
        }
        return new ServiceTargetPort(0, text);
    }

    private static L4Protocol? Protocol(FieldReader f, YamlMappingNode m, string p)
    {
        var text = Text(f, m, p, "protocol");
        switch (text)
        {
            case null or "":
            case "TCP":
                return L4Protocol.Tcp;
            case "UDP":
                return L4Protocol.Udp;
            case "SCTP":
                return L4Protocol.Sctp;
            default:
                f.R.Error($"{p}.protocol", $"\"{text}\" is not a protocol." + Suggestions.For(text, NetworkVocabulary.KubernetesProtocols), NodeReader.Field(m, "protocol"));
                return null;
        }
    }

    private static uint AffinityTimeout(FieldReader f, YamlMappingNode spec, string sp, SessionAffinity affinity)
    {
        var r = f.R;
        var configNode = NodeReader.Field(spec, "sessionAffinityConfig");
        if (configNode is null || FieldReader.IsNull(configNode))
        {
            return DefaultAffinityTimeoutSeconds;
        }
        var cp = $"{sp}.sessionAffinityConfig";
        if (configNode is not YamlMappingNode config)
        {
            r.Error(cp, $"must be a mapping (clientIP: {{timeoutSeconds: N}}), not {NodeReader.Describe(configNode)}.", configNode);
            return DefaultAffinityTimeoutSeconds;
        }
        WarnUnknown(f, config, cp, AffinityConfigFields);
        if (affinity == SessionAffinity.None)
        {
            f.Warn(cp, "is ignored: sessionAffinity is None (the API server refuses it). Fix: set sessionAffinity: ClientIP, or remove sessionAffinityConfig.", configNode);
        }
        var clientNode = NodeReader.Field(config, "clientIP");
        if (clientNode is null || FieldReader.IsNull(clientNode))
        {
            return DefaultAffinityTimeoutSeconds;
        }
        if (clientNode is not YamlMappingNode client)
        {
            r.Error($"{cp}.clientIP", $"must be a mapping (timeoutSeconds: N), not {NodeReader.Describe(clientNode)}.", clientNode);
            return DefaultAffinityTimeoutSeconds;
        }
        WarnUnknown(f, client, $"{cp}.clientIP", ClientIPConfigFields);
        var seconds = Number(f, client, $"{cp}.clientIP", "timeoutSeconds", 1, (int)MaxAffinityTimeoutSeconds, "a timeout in seconds",
            $"use 1 to {MaxAffinityTimeoutSeconds} (one day); the default is {DefaultAffinityTimeoutSeconds} (3 hours)");
        return seconds is int s ? (uint)s : DefaultAffinityTimeoutSeconds;
    }

    private static TrafficPolicy Policy(FieldReader f, YamlMappingNode spec, string sp, string field, bool acceptGlobal)
    {
        var text = Text(f, spec, sp, field);
        var node = NodeReader.Field(spec, field);
        switch (text)
        {
            case null or "":
            case "Cluster":
                return TrafficPolicy.Cluster;
            case "Local":
                return TrafficPolicy.Local;
            case "Global" when acceptGlobal:
                f.Warn($"{sp}.{field}", "Global is the old name of Cluster and is read as Cluster. Fix: write externalTrafficPolicy: Cluster.", node);
                return TrafficPolicy.Cluster;
            default:
                f.R.Error($"{sp}.{field}", $"\"{text}\" is not a traffic policy." + Suggestions.For(text, TrafficPolicies), node);
                return TrafficPolicy.Cluster;
        }
    }

    private static IReadOnlyList<IPAddress> LoadBalancerStatus(FieldReader f, YamlMappingNode map, string at, ServiceType? type)
    {
        var r = f.R;
        var p = NodeReader.At(at, "status");
        var statusNode = NodeReader.Field(map, "status");
        var result = new List<IPAddress>();
        if (statusNode is null || FieldReader.IsNull(statusNode))
        {
            return result;
        }
        if (statusNode is not YamlMappingNode status)
        {
            r.Error(p, $"must be a mapping (loadBalancer: {{ingress: [...]}}), not {NodeReader.Describe(statusNode)}.", statusNode);
            return result;
        }
        WarnUnknown(f, status, p, StatusFields);
        var lbNode = NodeReader.Field(status, "loadBalancer");
        if (lbNode is null || FieldReader.IsNull(lbNode))
        {
            return result;
        }
        if (lbNode is not YamlMappingNode lb)
        {
            r.Error($"{p}.loadBalancer", $"must be a mapping (ingress: [...]), not {NodeReader.Describe(lbNode)}.", lbNode);
            return result;
        }
        WarnUnknown(f, lb, $"{p}.loadBalancer", LoadBalancerStatusFields);
        var ingress = f.List(lb, $"{p}.loadBalancer", "ingress", (node, ip) =>
        {
            if (node is not YamlMappingNode m)
            {
                r.Error(ip, $"must be a mapping (ip, hostname, ipMode), not {NodeReader.Describe(node)}.", node);
                return null;
            }
            WarnUnknown(f, m, ip, IngressFields);
            var mode = Text(f, m, ip, "ipMode");
            if (mode is { Length: > 0 } && !IpModes.Contains(mode))
            {
                r.Error($"{ip}.ipMode", $"\"{mode}\" is not an ipMode." + Suggestions.For(mode, IpModes), NodeReader.Field(m, "ipMode"));
            }
            var text = Text(f, m, ip, "ip");
            if (text is not { Length: > 0 })
            {
                return null; // a hostname-only entry (an AWS ELB): nothing to translate here
            }
            var address = Address(f, text, $"{ip}.ip", NodeReader.Field(m, "ip"), "a load balancer address", "write the IPv4 or IPv6 address the load balancer has, or only a hostname");
            return mode == "Proxy" ? null : address; // Proxy: the load balancer proxies to the nodes itself, as kube-proxy leaves it
        });
        if (ingress.Count > 0 && type is not null and not ServiceType.LoadBalancer)
        {
            f.Warn($"{p}.loadBalancer.ingress", $"is ignored: the Service's type is {type}, not LoadBalancer.", lbNode);
        }
        result.AddRange(ingress.Distinct());
        return result;
    }

    private static IReadOnlyList<IPAddress> ExternalIPs(FieldReader f, YamlMappingNode map, string p)
    {
        const string field = "externalIPs";
        var node = NodeReader.Field(map, field) as YamlSequenceNode;
        var texts = Strings(f, map, p, field);
        var result = new List<IPAddress>();
        for (var i = 0; i < texts.Count; i++)
        {
            var at = $"{p}.{field}[{i}]";
            var item = ItemNode(node, i);
            if (Address(f, texts[i], at, item, "an external IP", "write an IPv4 or IPv6 address routed to the nodes") is not { } ip)
            {
                continue;
            }
            if (IPAddress.IsLoopback(ip) || IsLinkLocal(ip))
            {
                f.R.Error(at, $"\"{texts[i]}\" is a {(IPAddress.IsLoopback(ip) ? "loopback" : "link-local")} address, which the API server refuses as an external IP. Fix: use an address routed to the nodes.", item);
                continue;
            }
            if (!result.Contains(ip))
            {
                result.Add(ip);
            }
        }
        return result;
    }

    /// <summary>A strict IPv4 or IPv6 address (no prefix, zone, leading zeros or shorthand), not the unspecified address.</summary>
    private static IPAddress? Address(FieldReader f, string text, string at, YamlNode? node, string what, string fix)
    {
        var trimmed = text.Trim();
        if (trimmed.Contains('/', StringComparison.Ordinal) || !NetworkVocabulary.TryParseCidr(trimmed, allowBareAddress: true, out var prefix, out _, out _))
        {
            f.R.Error(at, $"\"{text}\" is not {what}: it is not an IPv4 or IPv6 address. Fix: {fix}.", node);
            return null;
        }
        if (prefix.Address.Equals(IPAddress.Any) || prefix.Address.Equals(IPAddress.IPv6Any))
        {
            f.R.Error(at, $"\"{text}\" is the unspecified address, which cannot be {what}. Fix: {fix}.", node);
            return null;
        }
        return prefix.Address;
    }

    private static bool IsLinkLocal(IPAddress ip)
    {
        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return ip.IsIPv6LinkLocal;
        }
        var b = ip.GetAddressBytes();
        return b[0] == 169 && b[1] == 254;
    }

    private static EndpointSliceManifest? ReadSlice(YamlMappingNode map, string at, FieldReader f, string source)
    {
        var r = f.R;
        WarnUnknown(f, map, at, SliceTopFields);
        var meta = ReadMetadata(map, at, f, serviceName: false);
        var labelsPath = NodeReader.At(at, "metadata.labels");
        meta.Labels.TryGetValue(ServiceNameLabel, out var service);
        if (meta.Node is not null && service is not { Length: > 0 })
        {
            r.Error(labelsPath, $"has no {ServiceNameLabel} label{(service is null ? "" : " value")}: it names the Service the slice belongs to. Fix: add {ServiceNameLabel}: SERVICE under metadata.labels (the EndpointSlice controller always sets it).",
                NodeReader.Field(meta.Node, "labels") ?? meta.Node);
        }
        else if (service is { Length: > 0 } && !DnsLabel1035().IsMatch(service))
        {
            r.Error($"{labelsPath}.{ServiceNameLabel}", $"\"{service}\" is not a Service name: at most 63 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit. Fix: set it to the name of the Service the slice belongs to.", NodeReader.Field(NodeReader.Field(meta.Node, "labels") as YamlMappingNode, ServiceNameLabel));
        }

        var typeNode = NodeReader.Field(map, "addressType");
        var typeText = Required(f, map, at, "addressType", "is required: it says what the endpoints' addresses are. Fix: addressType: IPv4 or addressType: IPv6.");
        AddressFamily? family = null;
        switch (typeText)
        {
            case null:
                break;
            case "IPv4":
                family = AddressFamily.InterNetwork;
                break;
            case "IPv6":
                family = AddressFamily.InterNetworkV6;
                break;
            case "FQDN":
                f.Warn(NodeReader.At(at, "addressType"), $"FQDN: EndpointSlice {meta.Namespace}/{meta.Name ?? "(unnamed)"} lists host names, which are not load-balanced; skipped.", typeNode);
                return null;
            default:
                r.Error(NodeReader.At(at, "addressType"), $"\"{typeText}\" is not an address type." + Suggestions.For(typeText, AddressTypes), typeNode);
                break;
        }

        var ports = new List<EndpointSlicePort>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        var index = -1;
        var read = f.List(map, at, "ports", (node, p) =>
        {
            index++;
            if (node is not YamlMappingNode m)
            {
                r.Error(p, $"must be a mapping (name, port, protocol), not {NodeReader.Describe(node)}.", node);
                return null;
            }
            WarnUnknown(f, m, p, SlicePortFields);
            var name = Text(f, m, p, "name") ?? "";
            if (name.Length > 0 && !DnsLabel1123().IsMatch(name))
            {
                r.Error($"{p}.name", $"\"{name}\" is not a port name: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit. Fix: use the name of the Service port it serves.", NodeReader.Field(m, "name"));
                return null;
            }
            if (names.TryGetValue(name, out var first))
            {
                r.Error($"{p}.name", $"\"{name}\" is also the name of ports[{first}]. Fix: one entry per Service port name.", NodeReader.Field(m, "name") ?? m);
                return null;
            }
            names[name] = index;
            var protocol = Protocol(f, m, p);
            var number = Number(f, m, p, "port", 1, 65535, "a port number", "use the port the endpoints listen on, 1 to 65535, or leave it out");
            var hadPort = NodeReader.Field(m, "port") is { } pn && !FieldReader.IsNull(pn);
            return protocol is null || (hadPort && number is null) ? null : new EndpointSlicePort(name, protocol.Value, number is int n ? (ushort)n : null);
        });
        ports.AddRange(read);

        var endpoints = f.List(map, at, "endpoints", (node, p) => Endpoint(f, node, p, family));
        return meta.Name is null || family is null || service is not { Length: > 0 } ? null : new EndpointSliceManifest
        {
            Namespace = meta.Namespace,
            Name = meta.Name,
            ServiceName = service,
            AddressType = family.Value,
            Ports = ports,
            Endpoints = endpoints,
            Labels = meta.Labels,
            Source = source,
            Line = (int)map.Start.Line,
        };
    }

    private static SliceEndpoint? Endpoint(FieldReader f, YamlNode node, string p, AddressFamily? family)
    {
        var r = f.R;
        if (node is not YamlMappingNode m)
        {
            r.Error(p, $"must be a mapping (addresses, conditions, nodeName, targetRef), not {NodeReader.Describe(node)}.", node);
            return null;
        }
        WarnUnknown(f, m, p, EndpointFields);
        var addressesNode = NodeReader.Field(m, "addresses") as YamlSequenceNode;
        var texts = Strings(f, m, p, "addresses");
        if (texts.Count == 0)
        {
            r.Error($"{p}.addresses", "is required: an endpoint has at least one address. Fix: e.g. addresses: [10.244.1.7].", NodeReader.Field(m, "addresses") ?? m);
        }
        else if (texts.Count > MaxEndpointAddresses)
        {
            r.Error($"{p}.addresses", $"lists {texts.Count} addresses; an endpoint has at most {MaxEndpointAddresses}. Fix: make them separate endpoints.", addressesNode);
        }
        else if (texts.Count > 1)
        {
            f.Warn($"{p}.addresses", $"lists {texts.Count} addresses: they are one endpoint, so only the first ({texts[0]}) gets traffic, as kube-proxy does. Fix: list each pod as its own endpoint.", addressesNode);
        }
        var addresses = new List<IPAddress>();
        for (var i = 0; i < texts.Count && i < MaxEndpointAddresses; i++)
        {
            var at = $"{p}.addresses[{i}]";
            var item = ItemNode(addressesNode, i);
            if (Address(f, texts[i], at, item, "an endpoint address", "write the pod's IP address") is not { } ip)
            {
                continue;
            }
            if (family is { } want && ip.AddressFamily != want)
            {
                r.Error(at, $"\"{texts[i]}\" is an {FamilyName(ip.AddressFamily)} address, but the slice's addressType is {FamilyName(want)}. Fix: move it to an EndpointSlice with addressType: {FamilyName(ip.AddressFamily)}.", item);
                continue;
            }
            addresses.Add(ip);
        }

        bool? ready = null, serving = null, terminating = null;
        var conditionsNode = NodeReader.Field(m, "conditions");
        if (conditionsNode is not null && !FieldReader.IsNull(conditionsNode))
        {
            if (conditionsNode is YamlMappingNode conditions)
            {
                WarnUnknown(f, conditions, $"{p}.conditions", ConditionFields);
                ready = OptionalBool(f, conditions, $"{p}.conditions", "ready");
                serving = OptionalBool(f, conditions, $"{p}.conditions", "serving");
                terminating = OptionalBool(f, conditions, $"{p}.conditions", "terminating");
            }
            else
            {
                r.Error($"{p}.conditions", $"must be a mapping (ready, serving, terminating), not {NodeReader.Describe(conditionsNode)}.", conditionsNode);
            }
        }
        // discovery/v1: ready unset is "unknown", read as ready; serving unset defers to ready; terminating unset is false.
        var isReady = ready ?? true;
        var isServing = serving ?? isReady;
        var isTerminating = terminating ?? false;

        string? pod = null;
        var refNode = NodeReader.Field(m, "targetRef");
        if (refNode is not null && !FieldReader.IsNull(refNode))
        {
            if (refNode is YamlMappingNode target)
            {
                WarnUnknown(f, target, $"{p}.targetRef", TargetRefFields);
                var kind = Text(f, target, $"{p}.targetRef", "kind");
                var name = Text(f, target, $"{p}.targetRef", "name");
                pod = kind is null or "Pod" && name is { Length: > 0 } ? name : null;
            }
            else
            {
                r.Error($"{p}.targetRef", $"must be a mapping (kind, namespace, name), not {NodeReader.Describe(refNode)}.", refNode);
            }
        }
        var nodeName = Text(f, m, p, "nodeName");
        var zone = Text(f, m, p, "zone");
        var hostname = Text(f, m, p, "hostname");
        return addresses.Count == 0 ? null : new SliceEndpoint(addresses, isReady, isServing, isTerminating,
            nodeName is { Length: > 0 } ? nodeName : null, pod, zone is { Length: > 0 } ? zone : null, hostname is { Length: > 0 } ? hostname : null);
    }

    private static bool? OptionalBool(FieldReader f, YamlMappingNode map, string p, string name)
    {
        var text = Text(f, map, p, name);
        if (text is null)
        {
            return null;
        }
        if (bool.TryParse(text, out var value))
        {
            return value;
        }
        f.R.Error($"{p}.{name}", $"\"{text}\" is not a boolean. Fix: true or false, or leave it out.", NodeReader.Field(map, name));
        return null;
    }

    /// <summary>A single value; null, ~ and an empty plain value are "not given", as the API server reads them.</summary>
    private static string? Text(FieldReader f, YamlMappingNode? map, string p, string name)
    {
        var node = NodeReader.Field(map, name);
        return node is null || (FieldReader.IsNull(node) && !FieldReader.IsQuoted(node)) ? null : f.R.String(map, p, name);
    }

    /// <summary>A list of single values; null is the empty list.</summary>
    private static IReadOnlyList<string> Strings(FieldReader f, YamlMappingNode? map, string p, string name) =>
        FieldReader.IsNull(NodeReader.Field(map, name)) ? [] : f.R.Strings(map, p, name);

    /// <summary>A scalar field that must be there: <paramref name="message"/> (with its fix) when it is missing or null.</summary>
    private static string? Required(FieldReader f, YamlMappingNode map, string p, string name, string message)
    {
        var node = NodeReader.Field(map, name);
        if (node is null || FieldReader.IsNull(node) && !FieldReader.IsQuoted(node))
        {
            f.R.Error(NodeReader.At(p, name), message, node ?? map);
            return null;
        }
        return Text(f, map, p, name);
    }

    private static bool FalseValue(YamlNode? node) => node is YamlScalarNode { Value: { } v } && bool.TryParse(v, out var b) && !b;

    /// <summary>A whole number field in [min, max]; a quoted number is accepted with a warning (the API server refuses the string).</summary>
    private static int? Number(FieldReader f, YamlMappingNode map, string p, string name, int min, int max, string what, string fix)
    {
        var node = NodeReader.Field(map, name);
        var text = Text(f, map, p, name);
        if (text is null)
        {
            return null;
        }
        var at = $"{p}.{name}";
        if (!NetworkVocabulary.Digits().IsMatch(text) || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
        {
            f.R.Error(at, $"\"{text}\" is not {what} from {min} to {max}. Fix: {fix}.", node);
            return null;
        }
        if (FieldReader.IsQuoted(node))
        {
            f.Warn(at, $"\"{text}\" is quoted, but {name} is a number; the API server refuses the string. Fix: {name}: {n}.", node);
        }
        return n;
    }

    /// <summary>Fields the reader does not know: warnings, since the API server drops them and newer Kubernetes versions add fields.</summary>
    private static void WarnUnknown(FieldReader f, YamlMappingNode map, string path, IReadOnlyCollection<string> known)
    {
        foreach (var key in map.Children.Keys)
        {
            var name = (key as YamlScalarNode)?.Value ?? "";
            if (!known.Contains(name))
            {
                f.Warn(NodeReader.At(path, name), "unknown field, ignored." + Suggestions.For(name, known), key);
            }
        }
    }

    private static YamlNode? ItemNode(YamlSequenceNode? seq, int i) => seq is not null && i < seq.Children.Count ? seq.Children[i] : seq;

    private static string FamilyName(AddressFamily family) => family == AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4";

    private static string ObjectName(YamlMappingNode map) =>
        (NodeReader.Field(NodeReader.Field(map, "metadata") as YamlMappingNode, "name") as YamlScalarNode)?.Value is { } n ? $"\"{n}\"" : "(unnamed)";

    [GeneratedRegex(@"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex DnsLabel1035();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex DnsLabel1123();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]
    private static partial Regex DnsSubdomain();
}
