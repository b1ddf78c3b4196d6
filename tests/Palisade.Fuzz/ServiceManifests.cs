using System.Net;
using System.Text;
using Palisade.Policies.Services;

namespace Palisade.Fuzz;

/// <summary>
/// Service and EndpointSlice YAML (or JSON): parsed, then whatever parsed compiled into
/// frontends for a dual-stack node and for a node without a name. Contract: Parse and Compile
/// never throw, no error is an (internal) one, every error, warning and problem has a message,
/// frontends are sorted by key and unique, and each frontend's backends have its address family.
/// </summary>
public static class ServiceManifests
{
    private static readonly ServiceCompileOptions Node = new()
    {
        NodeName = "node-a",
        NodeAddresses = [IPAddress.Parse("192.168.1.10"), IPAddress.Parse("fd00:1::10")],
    };

    private static readonly ServiceCompileOptions Anonymous = new() { DefaultAlgorithm = LbAlgorithm.Maglev };

    public static void Run(byte[] input)
    {
        var result = ServiceManifestParser.Parse(Encoding.UTF8.GetString(input), "fuzz.yaml");
        foreach (var e in result.Errors.Concat(result.Warnings))
        {
            if (e.Path.EndsWith(ServiceManifestParser.InternalErrorPath, StringComparison.Ordinal) || string.IsNullOrWhiteSpace(e.Message))
            {
                throw new InvalidOperationException($"the parser failed instead of judging the input: {e}");
            }
        }
        foreach (var options in new[] { Node, Anonymous })
        {
            var compiled = ServiceCompiler.Compile(result.Services, result.EndpointSlices, options);
            if (compiled.Problems.Any(string.IsNullOrWhiteSpace))
            {
                throw new InvalidOperationException("a problem without a message");
            }
            string? previous = null;
            foreach (var f in compiled.Frontends)
            {
                if (previous is not null && string.CompareOrdinal(previous, f.Key) >= 0)
                {
                    throw new InvalidOperationException($"frontends not sorted and unique: {previous} then {f.Key}");
                }
                previous = f.Key;
                if (f.Backends.Concat(f.TerminatingBackends).Any(b => b.Address.AddressFamily != f.Address.AddressFamily || b.Port == 0))
                {
                    throw new InvalidOperationException($"frontend {f.Key} has a backend of another family or port 0");
                }
                if (f.Backends.Select(b => b.Key).Concat(f.TerminatingBackends.Select(b => b.Key)).GroupBy(k => k).Any(g => g.Count() > 1))
                {
                    throw new InvalidOperationException($"frontend {f.Key} lists a backend twice");
                }
                _ = f.Service.ToString();
            }
        }
    }

    /// <summary>Services and EndpointSlices of each shape: named ports, dual-stack, NodePort, Local policies, terminating endpoints, a List, JSON.</summary>
    public static IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        static (string, byte[]) Seed(string name, string text) => (name, Encoding.UTF8.GetBytes(text));
        yield return Seed("cluster-ip-named-ports.yaml", """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              namespace: shop
              annotations: {service.cilium.io/lb-algorithm: maglev}
            spec:
              clusterIP: 10.96.0.10
              sessionAffinity: ClientIP
              sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
              ports:
              - {name: http, port: 80, targetPort: web}
              - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-abc12
              namespace: shop
              labels: {kubernetes.io/service-name: web}
            addressType: IPv4
            ports:
            - {name: http, port: 8080}
            - {name: dns, port: 5353, protocol: UDP}
            endpoints:
            - addresses: [10.244.1.7]
              conditions: {ready: true}
              nodeName: node-a
              targetRef: {kind: Pod, name: web-1}
            - addresses: [10.244.2.9]
              conditions: {ready: false, serving: true, terminating: true}
              nodeName: node-b
            """);
        yield return Seed("dual-stack-nodeport-local.yaml", """
            apiVersion: v1
            kind: Service
            metadata: {name: edge, namespace: shop}
            spec:
              type: LoadBalancer
              clusterIPs: [10.96.0.20, "fd00:96::20"]
              ipFamilies: [IPv4, IPv6]
              ipFamilyPolicy: RequireDualStack
              externalIPs: [198.51.100.7]
              externalTrafficPolicy: Local
              internalTrafficPolicy: Local
              publishNotReadyAddresses: true
              ports: [{port: 443, targetPort: 8443, nodePort: 31443}]
            status:
              loadBalancer:
                ingress: [{ip: 203.0.113.10}, {hostname: lb.example.com}, {ip: "2001:db8::10", ipMode: Proxy}]
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: edge-6, namespace: shop, labels: {kubernetes.io/service-name: edge}}
            addressType: IPv6
            ports: [{port: 8443}]
            endpoints:
            - {addresses: ["fd00:244::7"], nodeName: node-a}
            - {addresses: ["fd00:244::8"], conditions: {terminating: true, serving: false}}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: edge-4, namespace: shop, labels: {kubernetes.io/service-name: edge}}
            addressType: IPv4
            ports: [{port: 8443}]
            endpoints: [{addresses: [10.244.1.8, 10.244.1.9], nodeName: node-a}]
            """);
        yield return Seed("list-headless-externalname.yaml", """
            apiVersion: v1
            kind: List
            items:
            - {apiVersion: v1, kind: Service, metadata: {name: db}, spec: {clusterIP: None, ports: [{port: 5432}]}}
            - {apiVersion: v1, kind: Service, metadata: {name: alias}, spec: {type: ExternalName, externalName: db.example.com}}
            - {apiVersion: v1, kind: Service, metadata: {name: np}, spec: {type: NodePort, clusterIP: 10.96.0.30, externalTrafficPolicy: Global, ports: [{port: 80, nodePort: 30080}]}}
            - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: db-1, labels: {kubernetes.io/service-name: db}}, addressType: FQDN, endpoints: [{addresses: [db.example.com]}]}
            - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}}
            """);
        yield return Seed("kubectl.json", """
            {"apiVersion":"v1","kind":"List","items":[
             {"apiVersion":"v1","kind":"Service","metadata":{"name":"kube-dns","namespace":"kube-system","creationTimestamp":null},"spec":{"clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],"ipFamilies":["IPv4"],"ports":[{"name":"dns","port":53,"protocol":"UDP","targetPort":53},{"name":"dns-tcp","port":53,"protocol":"TCP","targetPort":"dns-tcp"}],"sessionAffinity":"None","type":"ClusterIP"},"status":{"loadBalancer":{}}},
             {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"kube-dns-x7k2p","namespace":"kube-system","labels":{"kubernetes.io/service-name":"kube-dns"}},"addressType":"IPv4","ports":[{"name":"dns","port":53,"protocol":"UDP"},{"name":"dns-tcp","port":53,"protocol":"TCP"}],"endpoints":[{"addresses":["10.244.0.3"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-a"}]}
            ]}
            """);
        yield return Seed("mistakes.yaml", """
            apiVersion: v1
            kind: Service
            metadata: {name: bad, annotations: {service.cilium.io/lb-algorithm: round-robin}}
            spec:
              type: NodePorts
              clusterIPs: [10.96.0.300, 10.96.0.1, None]
              ports: [{port: 0}, {port: 80, protocol: tcp, targetPort: http_x, nodePort: 99999}]
              sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: orphan}
            addressType: IPv4
            ports: [{name: a}, {name: a, port: 70000}]
            endpoints: [{addresses: ["fd00::1"], conditions: {ready: maybe}}, {}]
            """);
    }
}
