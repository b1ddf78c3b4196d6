using System.Net;
using Palisade.Policies.Services;

namespace Palisade.Tests.Services;

/// <summary>Services and EndpointSlices compiled into frontends with kube-proxy's semantics: addresses, named ports, readiness, terminating fallback, traffic policies.</summary>
public sealed class ServiceCompilerTests
{
    private static readonly ServiceCompileOptions NodeA = new()
    {
        NodeName = "node-a",
        NodeAddresses = [IPAddress.Parse("192.168.1.10"), IPAddress.Parse("fd00:1::10")],
    };

    private static ServiceCompilation Compile(string yaml, ServiceCompileOptions? options = null)
    {
        var parsed = ServiceManifestParser.Parse(yaml, "test.yaml");
        Assert.Empty(parsed.Errors);
        return ServiceCompiler.Compile(parsed.Services, parsed.EndpointSlices, options ?? NodeA);
    }

    private static string Service(string spec, string name = "web", string ns = "shop", string annotations = "") =>
        $"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n{annotations}spec:\n{spec}---\n";

    private static string Slice(string rest, string name = "web-1", string service = "web", string ns = "shop", string addressType = "IPv4") =>
        $"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{kubernetes.io/service-name: {service}}}\naddressType: {addressType}\n{rest}---\n";

    private static string Endpoint(string address, string node = "node-a", string conditions = "{}", string pod = "") =>
        $"- addresses: [\"{address}\"]\n  nodeName: {node}\n  conditions: {conditions}\n" + (pod.Length > 0 ? $"  targetRef: {{kind: Pod, name: {pod}}}\n" : "");

    private static string[] Backends(ServiceFrontend f) => [.. f.Backends.Select(b => b.Key)];

    private static string[] Terminating(ServiceFrontend f) => [.. f.TerminatingBackends.Select(b => b.Key)];

    private static ServiceFrontend At(ServiceCompilation c, string key) => Assert.Single(c.Frontends, f => f.Key == key);

    [Fact]
    public void AClusterIpServiceGetsOneFrontendWithTheSlicesReadyEndpoints()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  ports: [{port: 80, targetPort: 8080}]\n") +
            Slice("ports: [{port: 8080}]\nendpoints:\n" + Endpoint("10.244.2.9", "node-b", pod: "web-2") + Endpoint("10.244.1.7", pod: "web-1")));

        var f = Assert.Single(c.Frontends);
        Assert.Empty(c.Problems);
        Assert.Equal("10.96.0.10:80/TCP", f.Key);
        Assert.Equal(new ServicePortName("shop", "web", ""), f.Service);
        Assert.Equal(FrontendKind.ClusterIP, f.Kind);
        Assert.Equal(L4Protocol.Tcp, f.Protocol);
        Assert.Equal(["10.244.1.7:8080", "10.244.2.9:8080"], Backends(f));
        Assert.Equal(new ServiceBackend(IPAddress.Parse("10.244.1.7"), 8080, "node-a", "web-1"), f.Backends[0]);
        Assert.Empty(f.TerminatingBackends);
        Assert.Equal(0u, f.AffinityTimeoutSeconds);
        Assert.Equal(LbAlgorithm.Random, f.Algorithm);
    }

    [Fact]
    public void ANamedTargetPortResolvesThroughTheSlicePortOfTheSameNameAndProtocol()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  ports: [{name: http, port: 80, targetPort: web}]\n") +
            Slice("ports: [{name: http, port: 8080}, {name: metrics, port: 9090}]\nendpoints:\n" + Endpoint("10.244.1.7")) +
            Slice("ports: [{name: http, port: 8081, protocol: UDP}]\nendpoints:\n" + Endpoint("10.244.1.8"), name: "web-2") +
            Slice("ports: [{name: http, port: 8082}]\nendpoints:\n" + Endpoint("10.244.1.9"), name: "web-3"));

        var f = Assert.Single(c.Frontends);
        Assert.Equal(new ServicePortName("shop", "web", "http"), f.Service);
        Assert.Equal("shop/web:http", f.Service.ToString());
        // Pods of one Service may name their port differently: each slice says which number its pods use.
        Assert.Equal(["10.244.1.7:8080", "10.244.1.9:8082"], Backends(f));
    }

    [Fact]
    public void EachPortOfAMultiPortServiceGetsItsOwnFrontendAndBackends()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n  - {name: dns, port: 53, protocol: UDP}\n") +
            Slice("ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]\nendpoints:\n" + Endpoint("10.244.1.7") + Endpoint("10.244.1.8")) +
            Slice("ports: [{name: http, port: 8080}]\nendpoints:\n" + Endpoint("10.244.1.7") + Endpoint("10.244.1.9"), name: "web-2"));

        Assert.Equal(["10.96.0.10:53/UDP", "10.96.0.10:80/TCP"], c.Frontends.Select(f => f.Key));
        Assert.Equal(["10.244.1.7:5353", "10.244.1.8:5353"], Backends(At(c, "10.96.0.10:53/UDP")));
        // 10.244.1.7:8080 is in both slices: one backend.
        Assert.Equal(["10.244.1.7:8080", "10.244.1.8:8080", "10.244.1.9:8080"], Backends(At(c, "10.96.0.10:80/TCP")));
        Assert.Equal(L4Protocol.Udp, At(c, "10.96.0.10:53/UDP").Protocol);
    }

    [Fact]
    public void AnEndpointInTwoSlicesCountsWithItsReadierConditions()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n") +
            Slice("ports: [{port: 80}]\nendpoints:\n" + Endpoint("10.244.1.7", conditions: "{ready: false}"), name: "web-a") +
            Slice("ports: [{port: 80}]\nendpoints:\n" + Endpoint("10.244.1.7", conditions: "{ready: true}"), name: "web-b"));

        Assert.Equal(["10.244.1.7:80"], Backends(Assert.Single(c.Frontends)));
    }

    [Fact]
    public void ADualStackServiceHasAFrontendPerFamilyEachWithBackendsOfItsFamily()
    {
        var c = Compile(
            Service("  clusterIPs: [10.96.0.10, \"fd00:96::10\"]\n  ipFamilies: [IPv4, IPv6]\n  ports: [{port: 80, targetPort: 8080}]\n") +
            Slice("ports: [{port: 8080}]\nendpoints:\n" + Endpoint("10.244.1.7")) +
            Slice("ports: [{port: 8080}]\nendpoints:\n" + Endpoint("fd00:244::7"), name: "web-6", addressType: "IPv6"));

        Assert.Equal(["10.96.0.10:80/TCP", "[fd00:96::10]:80/TCP"], c.Frontends.Select(f => f.Key));
        Assert.Equal(["10.244.1.7:8080"], Backends(c.Frontends[0]));
        Assert.Equal(["[fd00:244::7]:8080"], Backends(c.Frontends[1]));
    }

    [Fact]
    public void ANodePortServiceListensOnEveryNodeAddressOfItsFamilies()
    {
        var c = Compile(
            Service("  type: NodePort\n  clusterIP: 10.96.0.10\n  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]\n") +
            Slice("ports: [{port: 8080}]\nendpoints:\n" + Endpoint("10.244.1.7")));

        Assert.Equal(["10.96.0.10:80/TCP", "192.168.1.10:30080/TCP"], c.Frontends.Select(f => f.Key));
        var node = At(c, "192.168.1.10:30080/TCP");
        Assert.Equal(FrontendKind.NodePort, node.Kind);
        Assert.Equal(30080, node.Port);
        Assert.Equal(["10.244.1.7:8080"], Backends(node));
    }

    [Fact]
    public void ADualStackNodePortServiceListensOnBothNodeAddresses()
    {
        var c = Compile(Service("  type: NodePort\n  clusterIPs: [10.96.0.10, \"fd00:96::10\"]\n  ports: [{port: 80, nodePort: 30080}]\n"));

        Assert.Equal(["10.96.0.10:80/TCP", "192.168.1.10:30080/TCP", "[fd00:1::10]:30080/TCP", "[fd00:96::10]:80/TCP"], c.Frontends.Select(f => f.Key));
    }

    [Fact]
    public void WithoutNodeAddressesThereIsNoNodePortFrontend()
    {
        var c = Compile(Service("  type: NodePort\n  clusterIP: 10.96.0.10\n  ports: [{port: 80, nodePort: 30080}]\n"), new ServiceCompileOptions { NodeName = "node-a" });

        Assert.Equal(["10.96.0.10:80/TCP"], c.Frontends.Select(f => f.Key));
    }

    [Fact]
    public void ALoadBalancerServiceHasClusterNodeExternalAndIngressFrontends()
    {
        var c = Compile(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.10\n  externalIPs: [198.51.100.7]\n  ports: [{port: 443, nodePort: 31443}]\n" +
            "status:\n  loadBalancer:\n    ingress: [{ip: 203.0.113.10}, {hostname: lb.example.com}]\n");

        Assert.Equal(
            [("10.96.0.10:443/TCP", FrontendKind.ClusterIP), ("192.168.1.10:31443/TCP", FrontendKind.NodePort), ("198.51.100.7:443/TCP", FrontendKind.ExternalIP), ("203.0.113.10:443/TCP", FrontendKind.LoadBalancer)],
            c.Frontends.Select(f => (f.Key, f.Kind)));
    }

    [Fact]
    public void AClusterIpServiceWithExternalIpsHasExternalIpFrontends()
    {
        var c = Compile(Service("  clusterIP: 10.96.0.10\n  externalIPs: [198.51.100.7, \"2001:db8::7\"]\n  ports: [{port: 80}]\n"));

        Assert.Equal([FrontendKind.ClusterIP, FrontendKind.ExternalIP, FrontendKind.ExternalIP], c.Frontends.Select(f => f.Kind));
        Assert.Equal(["10.96.0.10:80/TCP", "198.51.100.7:80/TCP", "[2001:db8::7]:80/TCP"], c.Frontends.Select(f => f.Key));
    }

    private const string TwoNodes = "ports: [{port: 8080}]\nendpoints:\n- {addresses: [10.244.1.7], nodeName: node-a}\n- {addresses: [10.244.2.9], nodeName: node-b}\n- {addresses: [10.244.3.3]}\n";

    [Fact]
    public void ExternalTrafficPolicyLocalKeepsOnlyThisNodesBackendsOnExternalFrontends()
    {
        var c = Compile(
            Service("  type: LoadBalancer\n  clusterIP: 10.96.0.10\n  externalIPs: [198.51.100.7]\n  externalTrafficPolicy: Local\n  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]\n") +
            Slice(TwoNodes) +
            "apiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: shop}\nspec: {clusterIP: 10.96.0.99, ports: [{port: 1}]}\n");

        Assert.Equal(["10.244.1.7:8080", "10.244.2.9:8080", "10.244.3.3:8080"], Backends(At(c, "10.96.0.10:80/TCP")));
        Assert.Equal(["10.244.1.7:8080"], Backends(At(c, "192.168.1.10:30080/TCP")));
        Assert.Equal(["10.244.1.7:8080"], Backends(At(c, "198.51.100.7:80/TCP")));
        Assert.Empty(c.Problems);
    }

    [Fact]
    public void InternalTrafficPolicyLocalKeepsOnlyThisNodesBackendsOnClusterIps()
    {
        var c = Compile(
            Service("  type: NodePort\n  clusterIP: 10.96.0.10\n  internalTrafficPolicy: Local\n  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]\n") +
            Slice(TwoNodes));

        Assert.Equal(["10.244.1.7:8080"], Backends(At(c, "10.96.0.10:80/TCP")));
        Assert.Equal(["10.244.1.7:8080", "10.244.2.9:8080", "10.244.3.3:8080"], Backends(At(c, "192.168.1.10:30080/TCP")));
    }

    [Fact]
    public void LocalWithoutANodeNameMatchesNothingAndSaysSoOnce()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  internalTrafficPolicy: Local\n  ports: [{port: 80, targetPort: 8080}]\n") +
            Service("  clusterIP: 10.96.0.11\n  internalTrafficPolicy: Local\n  ports: [{port: 80, targetPort: 8080}]\n", name: "web2") +
            Slice(TwoNodes) + Slice(TwoNodes, name: "web2-1", service: "web2"),
            new ServiceCompileOptions());

        Assert.All(c.Frontends, f => Assert.Empty(f.Backends));
        var problem = Assert.Single(c.Problems);
        Assert.Contains("shop/web has a Local traffic policy, but the node's name is not known", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadyEndpointsGetNewConnectionsAndTerminatingOnesAreKeptForTheirs()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n") +
            Slice("ports: [{port: 80}]\nendpoints:\n" +
                Endpoint("10.244.1.1", conditions: "{ready: true}") +
                Endpoint("10.244.1.2", conditions: "{ready: false, serving: true, terminating: true}") +
                Endpoint("10.244.1.3", conditions: "{ready: false, serving: false, terminating: true}") +
                Endpoint("10.244.1.4", conditions: "{ready: false}")));

        var f = Assert.Single(c.Frontends);
        Assert.Equal(["10.244.1.1:80"], Backends(f));
        Assert.Equal(["10.244.1.2:80", "10.244.1.3:80"], Terminating(f));
        Assert.All(f.TerminatingBackends, b => Assert.True(b.Terminating));
    }

    [Fact]
    public void WhenNoEndpointIsReadyTheServingTerminatingOnesTakeNewConnections()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n") +
            Slice("ports: [{port: 80}]\nendpoints:\n" +
                Endpoint("10.244.1.2", conditions: "{ready: false, serving: true, terminating: true}") +
                Endpoint("10.244.1.3", conditions: "{ready: false, serving: false, terminating: true}") +
                Endpoint("10.244.1.4", conditions: "{ready: false}")));

        var f = Assert.Single(c.Frontends);
        Assert.Equal(["10.244.1.2:80"], Backends(f));
        Assert.Equal(["10.244.1.3:80"], Terminating(f));
    }

    [Fact]
    public void TheTerminatingFallbackIsDecidedAmongTheLocalEndpoints()
    {
        var c = Compile(
            Service("  type: NodePort\n  clusterIP: 10.96.0.10\n  externalTrafficPolicy: Local\n  ports: [{port: 80, nodePort: 30080}]\n") +
            Slice("ports: [{port: 80}]\nendpoints:\n" +
                Endpoint("10.244.1.2", conditions: "{ready: false, serving: true, terminating: true}") +
                Endpoint("10.244.2.2", node: "node-b")));

        Assert.Equal(["10.244.2.2:80"], Backends(At(c, "10.96.0.10:80/TCP")));
        Assert.Equal(["10.244.1.2:80"], Terminating(At(c, "10.96.0.10:80/TCP")));
        Assert.Equal(["10.244.1.2:80"], Backends(At(c, "192.168.1.10:30080/TCP")));
        Assert.Empty(Terminating(At(c, "192.168.1.10:30080/TCP")));
    }

    [Fact]
    public void PublishNotReadyAddressesMakesEveryEndpointActive()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  publishNotReadyAddresses: true\n  ports: [{port: 80}]\n") +
            Slice("ports: [{port: 80}]\nendpoints:\n" + Endpoint("10.244.1.1", conditions: "{ready: false}") + Endpoint("10.244.1.2", conditions: "{ready: true}")));

        Assert.Equal(["10.244.1.1:80", "10.244.1.2:80"], Backends(Assert.Single(c.Frontends)));
    }

    [Fact]
    public void AffinityAndAlgorithmComeFromTheServiceOrTheDefault()
    {
        var yaml =
            Service("  clusterIP: 10.96.0.10\n  sessionAffinity: ClientIP\n  ports: [{port: 80}]\n", name: "sticky") +
            Service("  clusterIP: 10.96.0.11\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n  ports: [{port: 80}]\n", name: "short") +
            Service("  clusterIP: 10.96.0.12\n  ports: [{port: 80}]\n", name: "hashed", annotations: "  annotations: {service.cilium.io/lb-algorithm: maglev}\n") +
            Service("  clusterIP: 10.96.0.13\n  ports: [{port: 80}]\n", name: "plain");

        var random = Compile(yaml);
        var maglevByDefault = Compile(yaml, NodeA with { DefaultAlgorithm = LbAlgorithm.Maglev });

        Assert.Equal([10800u, 60u, 0u, 0u], random.Frontends.Select(f => f.AffinityTimeoutSeconds));
        Assert.Equal([LbAlgorithm.Random, LbAlgorithm.Random, LbAlgorithm.Maglev, LbAlgorithm.Random], random.Frontends.Select(f => f.Algorithm));
        Assert.Equal([LbAlgorithm.Maglev, LbAlgorithm.Maglev, LbAlgorithm.Maglev, LbAlgorithm.Maglev], maglevByDefault.Frontends.Select(f => f.Algorithm));
    }

    [Fact]
    public void HeadlessAndExternalNameServicesHaveNoFrontends()
    {
        var c = Compile(
            Service("  clusterIP: None\n  externalIPs: [198.51.100.7]\n  ports: [{port: 80}]\n", name: "headless") +
            Service("  type: ExternalName\n  externalName: db.example.com\n", name: "alias") +
            Slice("ports: [{port: 80}]\nendpoints:\n" + Endpoint("10.244.1.1"), name: "headless-1", service: "headless"));

        Assert.Empty(c.Frontends);
        Assert.Empty(c.Problems);
    }

    [Fact]
    public void TwoServicesClaimingOneFrontendTheFirstByNamespaceAndNameKeepsIt()
    {
        var yaml =
            Service("  clusterIP: 10.96.0.10\n  externalIPs: [198.51.100.7]\n  ports: [{port: 80}]\n", name: "zeta", ns: "a") +
            Service("  clusterIP: 10.96.0.11\n  externalIPs: [198.51.100.7]\n  ports: [{name: http, port: 80}]\n", name: "alpha", ns: "b") +
            Service("  clusterIP: 10.96.0.12\n  externalIPs: [198.51.100.7]\n  ports: [{port: 80, protocol: UDP}]\n", name: "udp", ns: "c");
        var parsed = ServiceManifestParser.Parse(yaml);

        var c = ServiceCompiler.Compile(parsed.Services, [], NodeA);
        var reversed = ServiceCompiler.Compile(parsed.Services.Reverse(), [], NodeA);

        Assert.Equal(new ServicePortName("a", "zeta", ""), At(c, "198.51.100.7:80/TCP").Service);
        Assert.Equal(new ServicePortName("c", "udp", ""), At(c, "198.51.100.7:80/UDP").Service);
        var problem = Assert.Single(c.Problems);
        Assert.Equal("198.51.100.7:80/TCP is claimed by a/zeta (its port, ExternalIP) and by b/alpha (port http, ExternalIP): a/zeta keeps it (the first by namespace and name), b/alpha gets no frontend there. Fix: give one of them another address or port.", problem);
        Assert.Equal(c.Frontends.Select(f => (f.Key, f.Service)), reversed.Frontends.Select(f => (f.Key, f.Service)));
        Assert.Equal(c.Problems, reversed.Problems);
    }

    [Fact]
    public void TheSameServiceGivenTwiceIsAProblemAndTheFirstIsUsed()
    {
        var parsed = ServiceManifestParser.Parse(Service("  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n") + Service("  clusterIP: 10.96.0.11\n  ports: [{port: 80}]\n"));

        var c = ServiceCompiler.Compile(parsed.Services, [], NodeA);

        Assert.Equal(["10.96.0.10:80/TCP"], c.Frontends.Select(f => f.Key));
        Assert.Equal("Service shop/web is given more than once; the first is used.", Assert.Single(c.Problems));
    }

    [Fact]
    public void AnExternalIpThatIsAlsoTheClusterIpIsOneFrontend()
    {
        var c = Compile(Service("  clusterIP: 10.96.0.10\n  externalIPs: [10.96.0.10]\n  ports: [{port: 80}]\n"));

        Assert.Equal(FrontendKind.ClusterIP, Assert.Single(c.Frontends).Kind);
        Assert.Empty(c.Problems);
    }

    [Fact]
    public void SlicesOfMissingServicesOrOtherNamespacesAreIgnored()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n") +
            Slice("ports: [{port: 80}]\nendpoints:\n" + Endpoint("10.244.9.9"), name: "web-x", ns: "other") +
            Slice("ports: [{port: 80}]\nendpoints:\n" + Endpoint("10.244.8.8"), name: "gone-1", service: "gone"));

        Assert.Empty(Assert.Single(c.Frontends).Backends);
        Assert.Empty(c.Problems);
    }

    [Fact]
    public void ASlicePortWithoutANumberAndExtraEndpointAddressesGiveNoBackends()
    {
        var c = Compile(
            Service("  clusterIP: 10.96.0.10\n  ports: [{name: http, port: 80}]\n") +
            Slice("ports: [{name: http}]\nendpoints:\n" + Endpoint("10.244.1.1"), name: "web-a") +
            Slice("ports: [{name: http, port: 8080}]\nendpoints:\n- addresses: [10.244.2.1, 10.244.2.2]\n", name: "web-b"));

        Assert.Equal(["10.244.2.1:8080"], Backends(Assert.Single(c.Frontends)));
    }

    [Fact]
    public void FrontendsAreSortedByKeyWhateverTheInputOrder()
    {
        var parsed = ServiceManifestParser.Parse(
            Service("  clusterIP: 10.96.0.9\n  ports: [{name: b, port: 443}, {name: a, port: 80}]\n", name: "b") +
            Service("  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n", name: "a") +
            Slice("ports: [{port: 80}]\nendpoints:\n" + Endpoint("10.244.1.20") + Endpoint("10.244.1.3") + Endpoint("10.244.1.100"), name: "a-1", service: "a"));

        var c = ServiceCompiler.Compile(parsed.Services.Reverse(), parsed.EndpointSlices, NodeA);

        Assert.Equal(["10.96.0.10:80/TCP", "10.96.0.9:443/TCP", "10.96.0.9:80/TCP"], c.Frontends.Select(f => f.Key));
        // Backends in address order (numeric), so every node lists them alike.
        Assert.Equal(["10.244.1.3:80", "10.244.1.20:80", "10.244.1.100:80"], Backends(c.Frontends[0]));
    }
}
