using System.Net;
using System.Net.Sockets;
using Palisade.Policies;
using Palisade.Policies.Services;

namespace Palisade.Tests.Services;

/// <summary>Service and EndpointSlice files: every field read with Kubernetes' defaults, and every mistake rejected with the path, the value and the fix.</summary>
public sealed class ServiceManifestTests
{
    private const string Svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n";

    private const string Slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-abc12\n  namespace: shop\n  labels:\n    kubernetes.io/service-name: web\n";

    private static ServiceManifestParseResult Parse(string yaml) => ServiceManifestParser.Parse(yaml, "test.yaml");

    private static ServiceManifest OneService(string yaml)
    {
        var result = Parse(yaml);
        Assert.Empty(result.Errors);
        return Assert.Single(result.Services);
    }

    private static EndpointSliceManifest OneSlice(string yaml)
    {
        var result = Parse(yaml);
        Assert.Empty(result.Errors);
        return Assert.Single(result.EndpointSlices);
    }

    private static PolicyError SingleError(string yaml)
    {
        var result = Parse(yaml);
        Assert.Empty(result.Services);
        Assert.Empty(result.EndpointSlices);
        return Assert.Single(result.Errors);
    }

    [Fact]
    public void AMinimalServiceGetsKubernetesDefaults()
    {
        var s = OneService("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  clusterIP: 10.96.0.10\n  ports:\n  - port: 80\n");

        Assert.Equal("default", s.Namespace);
        Assert.Equal("web", s.Name);
        Assert.Equal(ServiceType.ClusterIP, s.Type);
        Assert.Equal([IPAddress.Parse("10.96.0.10")], s.ClusterIPs);
        Assert.False(s.Headless);
        var port = Assert.Single(s.Ports);
        Assert.Equal(new ServiceManifestPort("", L4Protocol.Tcp, 80, new ServiceTargetPort(80, null), 0), port);
        Assert.Equal(SessionAffinity.None, s.SessionAffinity);
        Assert.Equal(10800u, s.AffinityTimeoutSeconds);
        Assert.Equal(TrafficPolicy.Cluster, s.ExternalTrafficPolicy);
        Assert.Equal(TrafficPolicy.Cluster, s.InternalTrafficPolicy);
        Assert.False(s.PublishNotReadyAddresses);
        Assert.Equal(LbAlgorithm.Default, s.Algorithm);
        Assert.Empty(s.ExternalIPs);
        Assert.Empty(s.LoadBalancerIPs);
        Assert.Empty(s.IpFamilies);
        Assert.Equal("test.yaml", s.Source);
        Assert.Equal(1, s.Line);
    }

    [Fact]
    public void EveryServiceFieldIsRead()
    {
        var s = OneService("""
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              namespace: shop
              labels: {app: web}
              annotations:
                service.cilium.io/lb-algorithm: maglev
                note: anything at all
            spec:
              type: NodePort
              clusterIP: 10.96.0.10
              clusterIPs: [10.96.0.10, "fd00:96::10"]
              ipFamilies: [IPv4, IPv6]
              ipFamilyPolicy: RequireDualStack
              selector: {app: web}
              ports:
              - name: http
                port: 80
                targetPort: http-web
                nodePort: 30080
              - name: dns
                protocol: UDP
                port: 53
                targetPort: 5353
                nodePort: 8053
              - name: assoc
                protocol: SCTP
                port: 9999
                nodePort: 31999
              externalIPs: [198.51.100.7, "2001:db8::7"]
              sessionAffinity: ClientIP
              sessionAffinityConfig:
                clientIP:
                  timeoutSeconds: 600
              externalTrafficPolicy: Local
              internalTrafficPolicy: Local
              publishNotReadyAddresses: true
            """);

        Assert.Equal(ServiceType.NodePort, s.Type);
        Assert.Equal([IPAddress.Parse("10.96.0.10"), IPAddress.Parse("fd00:96::10")], s.ClusterIPs);
        Assert.Equal([AddressFamily.InterNetwork, AddressFamily.InterNetworkV6], s.IpFamilies);
        Assert.Equal(
            [
                new ServiceManifestPort("http", L4Protocol.Tcp, 80, new ServiceTargetPort(0, "http-web"), 30080),
                new ServiceManifestPort("dns", L4Protocol.Udp, 53, new ServiceTargetPort(5353, null), 8053),
                new ServiceManifestPort("assoc", L4Protocol.Sctp, 9999, new ServiceTargetPort(9999, null), 31999),
            ],
            s.Ports);
        Assert.Equal([IPAddress.Parse("198.51.100.7"), IPAddress.Parse("2001:db8::7")], s.ExternalIPs);
        Assert.Equal(SessionAffinity.ClientIP, s.SessionAffinity);
        Assert.Equal(600u, s.AffinityTimeoutSeconds);
        Assert.Equal(TrafficPolicy.Local, s.ExternalTrafficPolicy);
        Assert.Equal(TrafficPolicy.Local, s.InternalTrafficPolicy);
        Assert.True(s.PublishNotReadyAddresses);
        Assert.Equal(LbAlgorithm.Maglev, s.Algorithm);
        Assert.Equal("web", s.Labels["app"]);
        Assert.Equal("anything at all", s.Annotations["note"]);
        Assert.True(s.Ports[1].TargetPort is { IsNamed: false, Number: 5353 });
        Assert.Equal("http-web", s.Ports[0].TargetPort.ToString());
    }

    [Fact]
    public void TheRandomAnnotationIsRead()
    {
        var s = OneService("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {service.cilium.io/lb-algorithm: random}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n");

        Assert.Equal(LbAlgorithm.Random, s.Algorithm);
    }

    [Fact]
    public void ALoadBalancerReadsItsIngressIpsButNotHostnamesOrProxyMode()
    {
        var s = OneService(Svc + """
              type: LoadBalancer
              clusterIP: 10.96.0.10
              ports: [{port: 443, nodePort: 31443}]
            status:
              loadBalancer:
                ingress:
                - ip: 203.0.113.10
                - hostname: lb.example.com
                - ip: 203.0.113.11
                  ipMode: Proxy
                - ip: "2001:db8::10"
                  ipMode: VIP
            """);

        Assert.Equal(ServiceType.LoadBalancer, s.Type);
        Assert.Equal([IPAddress.Parse("203.0.113.10"), IPAddress.Parse("2001:db8::10")], s.LoadBalancerIPs);
    }

    [Fact]
    public void GlobalIsReadAsClusterWithAWarning()
    {
        var result = Parse(Svc + "  type: NodePort\n  clusterIP: 10.96.0.10\n  externalTrafficPolicy: Global\n  ports: [{port: 80, nodePort: 30080}]\n");

        Assert.Empty(result.Errors);
        Assert.Equal(TrafficPolicy.Cluster, Assert.Single(result.Services).ExternalTrafficPolicy);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("spec.externalTrafficPolicy", warning.Path);
        Assert.Contains("Global is the old name of Cluster", warning.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("  clusterIP: None\n")]
    [InlineData("  clusterIP: None\n  clusterIPs: [None]\n  ports: [{port: 80}]\n")]
    [InlineData("  clusterIPs: [None]\n")]
    public void AHeadlessServiceIsNotAnErrorAndNeedsNoPorts(string spec)
    {
        var result = Parse(Svc + spec);

        Assert.Empty(result.Errors);
        Assert.Empty(result.Warnings);
        var s = Assert.Single(result.Services);
        Assert.True(s.Headless);
        Assert.Empty(s.ClusterIPs);
    }

    [Fact]
    public void AnExternalNameServiceIsAWarningNotLoadBalanced()
    {
        var result = Parse(Svc + "  type: ExternalName\n  externalName: db.example.com\n  ports: [{port: 5432}]\n");

        Assert.Empty(result.Errors);
        Assert.Equal(ServiceType.ExternalName, Assert.Single(result.Services).Type);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("spec.type", warning.Path);
        Assert.Contains("not load-balanced", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANodePortOutsideTheDefaultRangeIsAccepted()
    {
        var s = OneService(Svc + "  type: NodePort\n  clusterIP: 10.96.0.10\n  ports: [{port: 80, nodePort: 8080}, {port: 81, name: b, nodePort: 65535}]\n".Replace("{port: 80,", "{name: a, port: 80,", StringComparison.Ordinal));

        Assert.Equal([8080, 65535], s.Ports.Select(p => (int)p.NodePort));
    }

    [Fact]
    public void ANodePortServiceWithoutANodePortIsAWarning()
    {
        var result = Parse(Svc + "  type: NodePort\n  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n");

        Assert.Empty(result.Errors);
        Assert.Equal(0, Assert.Single(Assert.Single(result.Services).Ports).NodePort);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("spec.ports[0].nodePort", warning.Path);
        Assert.Contains("allocates one", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AServiceWithoutAClusterIpIsAWarning()
    {
        var result = Parse(Svc + "  ports: [{port: 80}]\n");

        Assert.Single(result.Services);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("spec.clusterIP", warning.Path);
        Assert.Contains("kubectl get service NAME -o yaml", warning.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("targetPort: \"8080\"", 8080, null)]
    [InlineData("targetPort: 0", 80, null)]
    [InlineData("targetPort: \"\"", 80, null)]
    [InlineData("targetPort: metrics", 0, "metrics")]
    public void TargetPortIsANumberOrANameAndDefaultsToThePort(string field, int number, string? name)
    {
        var result = Parse(Svc + $"  clusterIP: 10.96.0.10\n  ports:\n  - port: 80\n    {field}\n");

        Assert.Empty(result.Errors);
        Assert.Equal(new ServiceTargetPort((ushort)number, name), Assert.Single(Assert.Single(result.Services).Ports).TargetPort);
    }

    [Fact]
    public void AQuotedNumericTargetPortIsReadAsTheNumberWithAWarning()
    {
        var warning = Assert.Single(Parse(Svc + "  clusterIP: 10.96.0.10\n  ports:\n  - port: 80\n    targetPort: \"8080\"\n").Warnings);

        Assert.Equal("spec.ports[0].targetPort", warning.Path);
        Assert.Contains("write targetPort: 8080", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownFieldIsAWarningWithTheClosestField()
    {
        var result = Parse(Svc + "  clusterIP: 10.96.0.10\n  sessionAfinity: ClientIP\n  ports: [{port: 80, prot: 1}]\n");

        Assert.Empty(result.Errors);
        Assert.Single(result.Services);
        Assert.Collection(result.Warnings,
            w =>
            {
                Assert.Equal("spec.sessionAfinity", w.Path);
                Assert.Contains("Did you mean \"sessionAffinity\"?", w.Message, StringComparison.Ordinal);
            },
            w =>
            {
                Assert.Equal("spec.ports[0].prot", w.Path);
                Assert.Contains("Did you mean \"port\"?", w.Message, StringComparison.Ordinal);
            });
    }

    [Fact]
    public void EveryEndpointSliceFieldIsRead()
    {
        var s = OneSlice(Slice + """
            addressType: IPv4
            ports:
            - name: http
              port: 8080
            - name: dns
              protocol: UDP
              port: 5353
              appProtocol: dns
            endpoints:
            - addresses: [10.244.1.7]
              conditions: {ready: true, serving: true, terminating: false}
              nodeName: node-a
              zone: zone-1
              hostname: web-0
              targetRef: {kind: Pod, namespace: shop, name: web-7d4b9-x2x9z, uid: 0b1c}
            - addresses: [10.244.2.9]
              conditions: {ready: false, serving: true, terminating: true}
              nodeName: node-b
            """);

        Assert.Equal("shop", s.Namespace);
        Assert.Equal("web-abc12", s.Name);
        Assert.Equal("web", s.ServiceName);
        Assert.Equal(AddressFamily.InterNetwork, s.AddressType);
        Assert.Equal([new EndpointSlicePort("http", L4Protocol.Tcp, 8080), new EndpointSlicePort("dns", L4Protocol.Udp, 5353)], s.Ports);
        Assert.Equal(2, s.Endpoints.Count);
        var a = s.Endpoints[0];
        Assert.Equal([IPAddress.Parse("10.244.1.7")], a.Addresses);
        Assert.True(a.Ready && a.Serving && !a.Terminating);
        Assert.Equal("node-a", a.NodeName);
        Assert.Equal("web-7d4b9-x2x9z", a.PodName);
        Assert.Equal("zone-1", a.Zone);
        Assert.Equal("web-0", a.Hostname);
        var b = s.Endpoints[1];
        Assert.True(!b.Ready && b.Serving && b.Terminating);
        Assert.Equal("node-b", b.NodeName);
        Assert.Null(b.PodName);
    }

    [Fact]
    public void AnIpv6SliceAndAPortWithoutNameProtocolOrNumber()
    {
        var s = OneSlice(Slice + "addressType: IPv6\nports:\n- port: 8080\n- name: any\nendpoints:\n- addresses: [\"fd00:244::7\"]\n");

        Assert.Equal(AddressFamily.InterNetworkV6, s.AddressType);
        Assert.Equal([new EndpointSlicePort("", L4Protocol.Tcp, 8080), new EndpointSlicePort("any", L4Protocol.Tcp, null)], s.Ports);
        Assert.Equal(IPAddress.Parse("fd00:244::7"), Assert.Single(Assert.Single(s.Endpoints).Addresses));
    }

    [Theory]
    // ready unset is unknown, read as ready; serving unset defers to ready; terminating unset is false.
    [InlineData("", true, true, false)]
    [InlineData("conditions: {}", true, true, false)]
    [InlineData("conditions: {ready: false}", false, false, false)]
    [InlineData("conditions: {ready: false, terminating: true}", false, false, true)]
    [InlineData("conditions: {serving: false}", true, false, false)]
    [InlineData("conditions: {ready: false, serving: true, terminating: true}", false, true, true)]
    [InlineData("conditions: {ready: true, serving: null, terminating: null}", true, true, false)]
    public void UnsetConditionsGetTheApisDefaults(string conditions, bool ready, bool serving, bool terminating)
    {
        var s = OneSlice(Slice + $"addressType: IPv4\nendpoints:\n- addresses: [10.244.1.7]\n  {conditions}\n");

        var e = Assert.Single(s.Endpoints);
        Assert.Equal((ready, serving, terminating), (e.Ready, e.Serving, e.Terminating));
    }

    [Fact]
    public void AnFqdnSliceIsAWarningAndSkipped()
    {
        var result = Parse(Slice + "addressType: FQDN\nendpoints:\n- addresses: [db.example.com]\n");

        Assert.Empty(result.Errors);
        Assert.Empty(result.EndpointSlices);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("addressType", warning.Path);
        Assert.Contains("FQDN", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnEndpointWithSeveralAddressesIsAWarning()
    {
        var result = Parse(Slice + "addressType: IPv4\nendpoints:\n- addresses: [10.244.1.7, 10.244.1.8]\n");

        Assert.Equal(2, Assert.Single(Assert.Single(result.EndpointSlices).Endpoints).Addresses.Count);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("endpoints[0].addresses", warning.Path);
        Assert.Contains("only the first (10.244.1.7)", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFileOfSeveralDocumentsSkipsOtherKindsAndDropsOnlyTheBrokenDocument()
    {
        var yaml = Svc + "  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n" +
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n" +
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\nspec: {podSelector: {}}\n" +
            "---\n" + Svc.Replace("name: web", "name: broken", StringComparison.Ordinal) + "  clusterIP: 10.96.0.11\n  ports: [{port: 0}]\n" +
            "---\n" + Slice + "addressType: IPv4\nendpoints: [{addresses: [10.244.1.7]}]\n" +
            "---\n";

        var result = Parse(yaml);

        Assert.Equal("web", Assert.Single(result.Services).Name);
        Assert.Single(result.EndpointSlices);
        var error = Assert.Single(result.Errors);
        Assert.Equal("document 4: spec.ports[0].port", error.Path);
        Assert.Equal(2, result.Warnings.Count);
        Assert.Equal("document 2: kind", result.Warnings[0].Path);
        Assert.Contains("Deployment \"web\" is not a Service or an EndpointSlice, skipped", result.Warnings[0].Message, StringComparison.Ordinal);
        Assert.Contains("NetworkPolicy \"deny\"", result.Warnings[1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EndpointsObjectsAreSkippedWithAPointerToEndpointSlices()
    {
        var warning = Assert.Single(Parse("apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\nsubsets: []\n").Warnings);

        Assert.Contains("Palisade reads the EndpointSlices", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AListIsReadItemByItemAndABrokenItemCostsOnlyItself()
    {
        var result = Parse("""
            apiVersion: v1
            kind: List
            metadata: {resourceVersion: ""}
            items:
            - apiVersion: v1
              kind: Service
              metadata: {name: web, namespace: shop}
              spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
            - apiVersion: v1
              kind: Service
              metadata: {name: bad, namespace: shop}
              spec: {clusterIP: 10.96.0.300, ports: [{port: 80}]}
            - apiVersion: discovery.k8s.io/v1
              kind: EndpointSlice
              metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
              addressType: IPv4
              ports: [{port: 8080}]
              endpoints: [{addresses: [10.244.1.7]}]
            - apiVersion: v1
              kind: ConfigMap
              metadata: {name: settings}
            """);

        Assert.Equal("web", Assert.Single(result.Services).Name);
        Assert.Equal("web-1", Assert.Single(result.EndpointSlices).Name);
        var error = Assert.Single(result.Errors);
        Assert.Equal("items[1].spec.clusterIP", error.Path);
        Assert.Contains("\"10.96.0.300\" is not a cluster IP", error.Message, StringComparison.Ordinal);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("items[3].kind", warning.Path);
        Assert.Contains("ConfigMap", warning.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ServiceList")]
    [InlineData("EndpointSliceList")]
    public void TypedListsAreReadToo(string kind)
    {
        var result = Parse($"apiVersion: v1\nkind: {kind}\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {{name: web}}\n  spec: {{clusterIP: 10.96.0.10, ports: [{{port: 80}}]}}\n");

        Assert.Empty(result.Errors);
        Assert.Single(result.Services);
    }

    [Fact]
    public void AListWhoseItemsAreNotAListIsAnError()
    {
        var error = Assert.Single(Parse("apiVersion: v1\nkind: List\nitems: {a: b}\n").Errors);

        Assert.Equal("items", error.Path);
        Assert.Contains("must be a list of objects", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonAsKubectlPrintsItIsRead()
    {
        var result = Parse("""
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": "dns", "namespace": "kube-system", "creationTimestamp": null, "labels": null, "annotations": {"service.cilium.io/lb-algorithm": "maglev"}},
                        "spec": {
                            "clusterIP": "10.96.0.10",
                            "clusterIPs": ["10.96.0.10"],
                            "ipFamilies": ["IPv4"],
                            "ports": [
                                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": "dns-tcp"}
                            ],
                            "sessionAffinity": "None",
                            "type": "ClusterIP",
                            "internalTrafficPolicy": "Cluster",
                            "externalIPs": null,
                            "publishNotReadyAddresses": null,
                            "sessionAffinityConfig": null
                        },
                        "status": {"loadBalancer": {}}
                    },
                    {
                        "apiVersion": "discovery.k8s.io/v1",
                        "kind": "EndpointSlice",
                        "metadata": {"name": "dns-x7k2p", "namespace": "kube-system", "labels": {"kubernetes.io/service-name": "dns"}},
                        "addressType": "IPv4",
                        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
                        "endpoints": [{"addresses": ["10.244.0.3"], "conditions": {"ready": true, "serving": true, "terminating": null}, "nodeName": "node-a", "zone": null, "targetRef": {"kind": "Pod", "name": "coredns-1", "namespace": "kube-system"}}]
                    }
                ]
            }
            """);

        Assert.Empty(result.Errors);
        Assert.Empty(result.Warnings);
        var s = Assert.Single(result.Services);
        Assert.Equal(("kube-system", "dns", LbAlgorithm.Maglev), (s.Namespace, s.Name, s.Algorithm));
        Assert.Equal([L4Protocol.Udp, L4Protocol.Tcp], s.Ports.Select(p => p.Protocol));
        Assert.Equal("dns-tcp", s.Ports[1].TargetPort.Name);
        var slice = Assert.Single(result.EndpointSlices);
        Assert.Equal("coredns-1", Assert.Single(slice.Endpoints).PodName);
    }

    [Fact]
    public void TabIndentedJsonIsRead()
    {
        var s = OneService("{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Service\",\n\t\"metadata\": {\"name\": \"web\"},\n\t\"spec\": {\n\t\t\"clusterIP\": \"10.96.0.10\",\n\t\t\"ports\": [{\"port\": 80}]\n\t}\n}\n");

        Assert.Equal(80, Assert.Single(s.Ports).Port);
    }

    [Theory]
    // type
    [InlineData("  type: NodePorts\n  ports: [{port: 80}]\n", "spec.type", "\"NodePorts\" is not a Service type. Did you mean \"NodePort\"?")]
    [InlineData("  type: clusterip\n  ports: [{port: 80}]\n", "spec.type", "Did you mean \"ClusterIP\"?")]
    // ports
    [InlineData("  clusterIP: 10.96.0.10\n", "spec.ports", "is required: a Service needs at least one port. Fix:")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: []\n", "spec.ports", "is required: a Service needs at least one port")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: {port: 80}\n", "spec.ports", "must be a list, not a mapping. Fix:")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [80]\n", "spec.ports[0]", "must be a mapping (fields such as port, targetPort, name), not the value \"80\"")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{name: http}]\n", "spec.ports[0].port", "is required: the port the Service listens on. Fix: e.g. port: 80.")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: 0}]\n", "spec.ports[0].port", "\"0\" is not a port number from 1 to 65535. Fix: use 1 to 65535.")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: 70000}]\n", "spec.ports[0].port", "\"70000\" is not a port number from 1 to 65535")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: http}]\n", "spec.ports[0].port", "\"http\" is not a port number from 1 to 65535")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: -1}]\n", "spec.ports[0].port", "\"-1\" is not a port number")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: 80, name: HTTP}]\n", "spec.ports[0].name", "\"HTTP\" is not a port name: at most 63 lower-case letters, digits and '-'")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: 80, protocol: tcp}]\n", "spec.ports[0].protocol", "\"tcp\" is not a protocol. Did you mean \"TCP\"?")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: 80, protocol: GRE}]\n", "spec.ports[0].protocol", "\"GRE\" is not a protocol. Allowed: TCP, UDP, SCTP.")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: 80, targetPort: http_web}]\n", "spec.ports[0].targetPort", "\"http_web\" is neither a port number (1 to 65535) nor a port name")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: 80, targetPort: 70000}]\n", "spec.ports[0].targetPort", "\"70000\" is not a port number. Fix: use 1 to 65535, or the name of a container port.")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: 80, targetPort: very-long-port-name}]\n", "spec.ports[0].targetPort", "\"very-long-port-name\" is neither a port number")]
    [InlineData("  clusterIP: 10.96.0.10\n  ports: [{port: 80, nodePort: 30080}]\n", "spec.ports[0].nodePort", "\"30080\" may not be used when type is ClusterIP: only NodePort and LoadBalancer Services have node ports. Fix: set type: NodePort, or remove nodePort.")]
    [InlineData("  type: NodePort\n  clusterIP: 10.96.0.10\n  ports: [{port: 80, nodePort: 70000}]\n", "spec.ports[0].nodePort", "\"70000\" is not a port number from 1 to 65535. Fix: use a port of the cluster's --service-node-port-range (30000 to 32767 by default)")]
    // cluster IPs and families
    [InlineData("  clusterIP: 10.96.0.300\n  ports: [{port: 80}]\n", "spec.clusterIP", "\"10.96.0.300\" is not a cluster IP: it is not an IPv4 or IPv6 address. Fix: write an IPv4 or IPv6 address, None for a headless Service")]
    [InlineData("  clusterIP: 10.96.0.0/12\n  ports: [{port: 80}]\n", "spec.clusterIP", "\"10.96.0.0/12\" is not a cluster IP")]
    [InlineData("  clusterIP: 010.96.0.1\n  ports: [{port: 80}]\n", "spec.clusterIP", "\"010.96.0.1\" is not a cluster IP")]
    [InlineData("  clusterIP: 0.0.0.0\n  ports: [{port: 80}]\n", "spec.clusterIP", "\"0.0.0.0\" is the unspecified address, which cannot be a cluster IP. Fix:")]
    [InlineData("  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.11]\n  ports: [{port: 80}]\n", "spec.clusterIPs[0]", "\"10.96.0.11\" must be the same as spec.clusterIP (\"10.96.0.10\"): clusterIPs[0] is the primary cluster IP. Fix:")]
    [InlineData("  clusterIPs: [10.96.0.10, 10.96.0.11]\n  ports: [{port: 80}]\n", "spec.clusterIPs", "holds two IPv4 addresses (10.96.0.10, 10.96.0.11): a dual-stack Service has one IPv4 and one IPv6 cluster IP. Fix:")]
    [InlineData("  clusterIPs: [10.96.0.10, \"fd00::10\", 10.96.0.12]\n  ports: [{port: 80}]\n", "spec.clusterIPs", "lists 3 addresses: a Service has at most two, one IPv4 and one IPv6. Fix:")]
    [InlineData("  clusterIPs: [None, 10.96.0.10]\n  ports: [{port: 80}]\n", "spec.clusterIPs", "lists \"None\" with other addresses")]
    [InlineData("  clusterIPs: [10.96.0.10, bogus]\n  ports: [{port: 80}]\n", "spec.clusterIPs[1]", "\"bogus\" is not a cluster IP")]
    [InlineData("  type: NodePort\n  clusterIP: None\n  ports: [{port: 80, nodePort: 30080}]\n", "spec.clusterIP", "\"None\" (headless) is allowed only for type ClusterIP; a NodePort Service needs a cluster IP. Fix:")]
    [InlineData("  clusterIP: 10.96.0.10\n  ipFamilies: [ipv4]\n  ports: [{port: 80}]\n", "spec.ipFamilies[0]", "\"ipv4\" is not an IP family. Did you mean \"IPv4\"?")]
    [InlineData("  clusterIP: 10.96.0.10\n  ipFamilies: [IPv6]\n  ports: [{port: 80}]\n", "spec.ipFamilies[0]", "IPv6 does not match the cluster IP 10.96.0.10 (IPv4). Fix: list the families in the order of clusterIPs.")]
    [InlineData("  clusterIP: 10.96.0.10\n  ipFamilies: [IPv4, IPv4]\n  ports: [{port: 80}]\n", "spec.ipFamilies[1]", "lists IPv4 twice. Fix: list each family once.")]
    [InlineData("  clusterIPs: [10.96.0.10, \"fd00::10\"]\n  ipFamilyPolicy: SingleStack\n  ports: [{port: 80}]\n", "spec.ipFamilyPolicy", "SingleStack allows one IP family, but the Service lists two. Fix:")]
    [InlineData("  clusterIP: 10.96.0.10\n  ipFamilyPolicy: DualStack\n  ports: [{port: 80}]\n", "spec.ipFamilyPolicy", "\"DualStack\" is not an IP family policy.")]
    // external IPs
    [InlineData("  clusterIP: 10.96.0.10\n  externalIPs: [198.51.100.300]\n  ports: [{port: 80}]\n", "spec.externalIPs[0]", "\"198.51.100.300\" is not an external IP: it is not an IPv4 or IPv6 address. Fix: write an IPv4 or IPv6 address routed to the nodes.")]
    [InlineData("  clusterIP: 10.96.0.10\n  externalIPs: [127.0.0.1]\n  ports: [{port: 80}]\n", "spec.externalIPs[0]", "\"127.0.0.1\" is a loopback address, which the API server refuses as an external IP. Fix:")]
    [InlineData("  clusterIP: 10.96.0.10\n  externalIPs: [\"fe80::1\"]\n  ports: [{port: 80}]\n", "spec.externalIPs[0]", "\"fe80::1\" is a link-local address")]
    [InlineData("  clusterIP: 10.96.0.10\n  externalIPs: [\"::\"]\n  ports: [{port: 80}]\n", "spec.externalIPs[0]", "\"::\" is the unspecified address")]
    [InlineData("  clusterIP: 10.96.0.10\n  externalIPs: 198.51.100.7\n  ports: [{port: 80}]\n", "spec.externalIPs", "must be a list, not the value \"198.51.100.7\"")]
    // affinity and policies
    [InlineData("  clusterIP: 10.96.0.10\n  sessionAffinity: ClientIp\n  ports: [{port: 80}]\n", "spec.sessionAffinity", "\"ClientIp\" is not a session affinity. Did you mean \"ClientIP\"?")]
    [InlineData("  clusterIP: 10.96.0.10\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n  ports: [{port: 80}]\n", "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "\"0\" is not a timeout in seconds from 1 to 86400. Fix: use 1 to 86400 (one day); the default is 10800 (3 hours).")]
    [InlineData("  clusterIP: 10.96.0.10\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}\n  ports: [{port: 80}]\n", "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "\"86401\" is not a timeout in seconds from 1 to 86400")]
    [InlineData("  clusterIP: 10.96.0.10\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 3h}}\n  ports: [{port: 80}]\n", "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "\"3h\" is not a timeout in seconds")]
    [InlineData("  clusterIP: 10.96.0.10\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: 600}\n  ports: [{port: 80}]\n", "spec.sessionAffinityConfig.clientIP", "must be a mapping (timeoutSeconds: N)")]
    [InlineData("  type: NodePort\n  clusterIP: 10.96.0.10\n  externalTrafficPolicy: local\n  ports: [{port: 80, nodePort: 30080}]\n", "spec.externalTrafficPolicy", "\"local\" is not a traffic policy. Did you mean \"Local\"?")]
    [InlineData("  clusterIP: 10.96.0.10\n  internalTrafficPolicy: Global\n  ports: [{port: 80}]\n", "spec.internalTrafficPolicy", "\"Global\" is not a traffic policy.")]
    [InlineData("  clusterIP: 10.96.0.10\n  publishNotReadyAddresses: maybe\n  ports: [{port: 80}]\n", "spec.publishNotReadyAddresses", "\"maybe\" is not a boolean")]
    public void AServiceMistakeNamesThePathTheValueAndTheFix(string spec, string path, string expected)
    {
        var error = Parse(Svc + spec).Errors.First();

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.True(error.Line > 0, "the error has its line");
        Assert.Empty(Parse(Svc + spec).Services);
    }

    [Fact]
    public void AnUnknownTypeIsReportedWithTheOtherMistakesButNoneThatDependOnTheType()
    {
        var errors = Parse(Svc + "  type: NodePorts\n  clusterIP: 10.96.0.300\n  ports: [{port: 80, nodePort: 30080}]\n").Errors;

        Assert.Equal(["spec.type", "spec.clusterIP"], errors.Select(e => e.Path));
    }

    [Fact]
    public void SeveralPortsNeedNamesThatAreUnique()
    {
        var unnamed = Parse(Svc + "  clusterIP: 10.96.0.10\n  ports: [{port: 80}, {port: 443}]\n").Errors;
        var twice = SingleError(Svc + "  clusterIP: 10.96.0.10\n  ports: [{name: http, port: 80}, {name: http, port: 443}]\n");

        Assert.Equal(["spec.ports[0].name", "spec.ports[1].name"], unnamed.Select(e => e.Path));
        Assert.All(unnamed, e => Assert.Contains("is required when a Service has more than one port", e.Message, StringComparison.Ordinal));
        Assert.Contains("Fix: name each port, e.g. name: http.", unnamed[0].Message, StringComparison.Ordinal);
        Assert.Equal("spec.ports[1].name", twice.Path);
        Assert.Equal("\"http\" is also the name of spec.ports[0]. Fix: give each port its own name.", twice.Message);
    }

    [Fact]
    public void APortAndProtocolOrANodePortGivenTwiceIsAnError()
    {
        var port = SingleError(Svc + "  clusterIP: 10.96.0.10\n  ports: [{name: a, port: 80}, {name: b, port: 80}]\n");
        var udp = Parse(Svc + "  clusterIP: 10.96.0.10\n  ports: [{name: a, port: 53}, {name: b, port: 53, protocol: UDP}]\n");
        var node = SingleError(Svc + "  type: NodePort\n  clusterIP: 10.96.0.10\n  ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}]\n");

        Assert.Equal("spec.ports[1]", port.Path);
        Assert.Contains("repeats port 80/TCP of spec.ports[0]. Fix:", port.Message, StringComparison.Ordinal);
        Assert.Empty(udp.Errors);
        Assert.Equal("spec.ports[1].nodePort", node.Path);
        Assert.Contains("\"30080\" is also the node port of spec.ports[0]", node.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("round-robin", "\"round-robin\" is not a load-balancing algorithm. Allowed: random, maglev.")]
    [InlineData("Maglev", "\"Maglev\" is not a load-balancing algorithm. Did you mean \"maglev\"?")]
    public void AnUnknownLbAlgorithmAnnotationIsAnErrorNamingIt(string value, string expected)
    {
        var error = SingleError($"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations:\n    service.cilium.io/lb-algorithm: {value}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{{port: 80}}]\n");

        Assert.Equal("metadata.annotations.service.cilium.io/lb-algorithm", error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains("Fix: service.cilium.io/lb-algorithm: random or maglev", error.Message, StringComparison.Ordinal);
        Assert.Equal(6, error.Line);
    }

    [Fact]
    public void ABadLoadBalancerStatusIsAnError()
    {
        var ip = SingleError(Svc + "  type: LoadBalancer\n  clusterIP: 10.96.0.10\n  ports: [{port: 80, nodePort: 30080}]\nstatus:\n  loadBalancer:\n    ingress: [{ip: 203.0.113.300}]\n");
        var mode = SingleError(Svc + "  type: LoadBalancer\n  clusterIP: 10.96.0.10\n  ports: [{port: 80, nodePort: 30080}]\nstatus:\n  loadBalancer:\n    ingress: [{ip: 203.0.113.1, ipMode: vip}]\n");

        Assert.Equal("status.loadBalancer.ingress[0].ip", ip.Path);
        Assert.Contains("\"203.0.113.300\" is not a load balancer address", ip.Message, StringComparison.Ordinal);
        Assert.Equal("status.loadBalancer.ingress[0].ipMode", mode.Path);
        Assert.Contains("\"vip\" is not an ipMode. Did you mean \"VIP\"?", mode.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnIngressOfAServiceThatIsNotALoadBalancerIsAWarning()
    {
        var warning = Assert.Single(Parse(Svc + "  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\nstatus:\n  loadBalancer:\n    ingress: [{ip: 203.0.113.1}]\n").Warnings);

        Assert.Equal("status.loadBalancer.ingress", warning.Path);
        Assert.Contains("the Service's type is ClusterIP, not LoadBalancer", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LocalExternalPolicyOnAnInternalServiceAndAnIgnoredAffinityConfigAreWarnings()
    {
        var result = Parse(Svc + "  clusterIP: 10.96.0.10\n  externalTrafficPolicy: Local\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n  ports: [{port: 80}]\n");

        Assert.Empty(result.Errors);
        Assert.Equal(["spec.sessionAffinityConfig", "spec.externalTrafficPolicy"], result.Warnings.Select(w => w.Path));
        Assert.Contains("sessionAffinity is None", result.Warnings[0].Message, StringComparison.Ordinal);
        Assert.Contains("Local has no effect", result.Warnings[1].Message, StringComparison.Ordinal);
        Assert.Equal(0u, ServiceCompiler.Compile(result.Services, [], new ServiceCompileOptions()).Frontends.Single().AffinityTimeoutSeconds);
    }

    [Theory]
    [InlineData("apiVersion: v1\nkind: Service\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n", "metadata", "is required, with at least a name.")]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: {namespace: shop}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n", "metadata.name", "is required. Fix: give the Service a name")]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: {name: Web}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n", "metadata.name", "\"Web\" is not a Service name")]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n", "metadata.name", "\"1web\" is not a Service name: at most 63 lower-case letters, digits and '-', starting with a letter")]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: Shop_1}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n", "metadata.namespace", "\"Shop_1\" is not a namespace name")]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n", "spec", "is required: a Service needs at least its ports")]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: [a]\n", "spec", "must be a mapping (fields such as ports, clusterIP, type), not a list.")]
    [InlineData("apiVersion: apps/v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n", "apiVersion", "\"apps/v1\" is not the API version of Service. Fix: apiVersion: v1.")]
    [InlineData("kind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n", "apiVersion", "is required. Fix: apiVersion: v1.")]
    [InlineData("apiVersion: v1\nkind: Servce\nmetadata: {name: web}\n", "kind", "\"Servce\" is not a kind Palisade reads here. Did you mean \"Service\"?")]
    [InlineData("apiVersion: v1\nkind: service\nmetadata: {name: web}\n", "kind", "Did you mean \"Service\"?")]
    [InlineData("apiVersion: v1\nmetadata: {name: web}\n", "kind", "is required: it says what the document is. Fix: kind: Service")]
    [InlineData("- a\n- b\n", "(document)", "must be a mapping with apiVersion, kind and metadata (a Service or an EndpointSlice), not a list.")]
    public void ADocumentMistakeNamesThePathAndTheFix(string yaml, string path, string expected)
    {
        var error = Parse(yaml).Errors.First();

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Empty(Parse(yaml).Services);
    }

    [Theory]
    [InlineData("metadata:\n  name: web-abc12\nendpoints: []\naddressType: IPv4\n", "metadata.labels", "has no kubernetes.io/service-name label: it names the Service the slice belongs to. Fix: add kubernetes.io/service-name: SERVICE under metadata.labels")]
    [InlineData("metadata:\n  name: web-abc12\n  labels: {kubernetes.io/service-name: \"\"}\naddressType: IPv4\n", "metadata.labels", "has no kubernetes.io/service-name label value")]
    [InlineData("metadata:\n  name: web-abc12\n  labels: {kubernetes.io/service-name: Web}\naddressType: IPv4\n", "metadata.labels.kubernetes.io/service-name", "\"Web\" is not a Service name")]
    [InlineData("metadata:\n  name: Web_1\n  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\n", "metadata.name", "\"Web_1\" is not a valid name")]
    [InlineData("metadata:\n  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\n", "metadata.name", "is required. Fix: give the EndpointSlice a name")]
    public void ASliceMetadataMistakeIsAnError(string rest, string path, string expected)
    {
        var error = SingleError("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" + rest);

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.True(error.Line > 0);
    }

    [Theory]
    [InlineData("endpoints: []\n", "addressType", "is required: it says what the endpoints' addresses are. Fix: addressType: IPv4 or addressType: IPv6.")]
    [InlineData("addressType: ipv4\n", "addressType", "\"ipv4\" is not an address type. Did you mean \"IPv4\"?")]
    [InlineData("addressType: IPv4\nendpoints:\n- addresses: [\"fd00::7\"]\n", "endpoints[0].addresses[0]", "\"fd00::7\" is an IPv6 address, but the slice's addressType is IPv4. Fix: move it to an EndpointSlice with addressType: IPv6.")]
    [InlineData("addressType: IPv6\nendpoints:\n- addresses: [10.244.1.7]\n", "endpoints[0].addresses[0]", "\"10.244.1.7\" is an IPv4 address, but the slice's addressType is IPv6")]
    [InlineData("addressType: IPv4\nendpoints:\n- addresses: [10.244.1.700]\n", "endpoints[0].addresses[0]", "\"10.244.1.700\" is not an endpoint address: it is not an IPv4 or IPv6 address. Fix: write the pod's IP address.")]
    [InlineData("addressType: IPv4\nendpoints:\n- nodeName: node-a\n", "endpoints[0].addresses", "is required: an endpoint has at least one address. Fix: e.g. addresses: [10.244.1.7].")]
    [InlineData("addressType: IPv4\nendpoints:\n- addresses: []\n", "endpoints[0].addresses", "is required: an endpoint has at least one address")]
    [InlineData("addressType: IPv4\nendpoints:\n- addresses: [10.244.1.7]\n  conditions: {ready: maybe}\n", "endpoints[0].conditions.ready", "\"maybe\" is not a boolean. Fix: true or false, or leave it out.")]
    [InlineData("addressType: IPv4\nendpoints:\n- addresses: [10.244.1.7]\n  conditions: [ready]\n", "endpoints[0].conditions", "must be a mapping (ready, serving, terminating), not a list.")]
    [InlineData("addressType: IPv4\nendpoints:\n- addresses: [10.244.1.7]\n  targetRef: web-0\n", "endpoints[0].targetRef", "must be a mapping (kind, namespace, name)")]
    [InlineData("addressType: IPv4\nendpoints: [10.244.1.7]\n", "endpoints[0]", "must be a mapping (addresses, conditions, nodeName, targetRef), not the value \"10.244.1.7\".")]
    [InlineData("addressType: IPv4\nports:\n- port: 0\n", "ports[0].port", "\"0\" is not a port number from 1 to 65535. Fix: use the port the endpoints listen on")]
    [InlineData("addressType: IPv4\nports:\n- port: 8080\n  protocol: HTTP\n", "ports[0].protocol", "\"HTTP\" is not a protocol.")]
    [InlineData("addressType: IPv4\nports:\n- name: Http\n  port: 8080\n", "ports[0].name", "\"Http\" is not a port name")]
    [InlineData("addressType: IPv4\nports:\n- name: http\n  port: 8080\n- name: http\n  port: 8081\n", "ports[1].name", "\"http\" is also the name of ports[0]. Fix: one entry per Service port name.")]
    [InlineData("addressType: IPv4\nports:\n- port: 8080\n- port: 8081\n", "ports[1].name", "\"\" is also the name of ports[0]")]
    public void ASliceMistakeNamesThePathTheValueAndTheFix(string rest, string path, string expected)
    {
        var error = SingleError(Slice + rest);

        Assert.Equal(path, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.True(error.Line > 0);
    }

    [Fact]
    public void ABetaSliceIsAnErrorNamingTheVersion()
    {
        var error = SingleError(Slice.Replace("discovery.k8s.io/v1", "discovery.k8s.io/v1beta1", StringComparison.Ordinal) + "addressType: IPv4\n");

        Assert.Equal("apiVersion", error.Path);
        Assert.Equal("\"discovery.k8s.io/v1beta1\" is not the API version of EndpointSlice. Fix: apiVersion: discovery.k8s.io/v1.", error.Message);
    }

    [Fact]
    public void NotYamlIsOneErrorWithItsLine()
    {
        var result = Parse(Svc + "  ports: [{port: 80\n");

        var error = Assert.Single(result.Errors);
        Assert.StartsWith("not valid YAML", error.Message, StringComparison.Ordinal);
        Assert.True(error.Line > 0);
    }

    [Theory]
    [InlineData("")]
    [InlineData("---\n---\n")]
    [InlineData("# only a comment\n")]
    [InlineData("~\n")]
    public void EmptyDocumentsAreNothing(string yaml)
    {
        var result = Parse(yaml);

        Assert.Empty(result.Errors);
        Assert.Empty(result.Warnings);
        Assert.Empty(result.Services);
        Assert.True(result.Ok);
    }

    [Fact]
    public void AnErrorPrintsWithItsPathAndLine()
    {
        var error = SingleError(Svc + "  clusterIP: 10.96.0.10\n  ports:\n  - port: 99999\n");

        Assert.Equal("spec.ports[0].port: \"99999\" is not a port number from 1 to 65535. Fix: use 1 to 65535. (line 9, column 11)", error.ToString());
    }

    [Fact]
    public void EveryFuzzSeedKeepsTheServicesContract()
    {
        var target = Palisade.Fuzz.FuzzTargets.All["services"];

        foreach (var (name, bytes) in target.Seeds())
        {
            var thrown = Record.Exception(() => target.Run(bytes));
            Assert.True(thrown is null, $"{name}: {thrown}");
            var errors = ServiceManifestParser.Parse(System.Text.Encoding.UTF8.GetString(bytes)).Errors;
            Assert.True(name == "mistakes.yaml" ? errors.Count >= 10 : errors.Count == 0, $"{name}: {string.Join("; ", errors)}");
        }
    }
}
