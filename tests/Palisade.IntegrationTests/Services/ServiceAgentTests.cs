using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.IntegrationTests.PodNetworking;

namespace Palisade.IntegrationTests.Services;

/// <summary>
/// Issue 18's acceptance through the agent: pods made by palisade-cni, Services and
/// EndpointSlices written as YAML into --service-dir, clients in pod namespaces connecting to
/// ClusterIP and NodePort addresses that only socket-LB knows (blackholed: an untranslated
/// connect goes nowhere), servers in other pod namespaces answering with their name.
/// </summary>
[Collection(PodNetworkCollection.Name)]
public sealed class ServiceAgentTests : IDisposable
{
    private const string Busybox = PodTraffic.Busybox;
    private const string VipRange = "10.251.0.0/16";

    private readonly string _serviceDir = Directory.CreateTempSubdirectory("pal-svc-").FullName;
    private readonly string _blackhole = BlackholeRoute.Acquire(VipRange);
    private readonly List<Process> _servers = [];
    private readonly int _subnet = Random.Shared.Next(1, 250);

    public void Dispose()
    {
        foreach (var p in _servers)
        {
            try
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
        BlackholeRoute.Release(_blackhole, VipRange);
        Directory.Delete(_serviceDir, recursive: true);
    }

    private string Vip(int host) => string.Create(CultureInfo.InvariantCulture, $"10.251.{_subnet}.{host}");

    private static string Add(PalisadeNetwork network, PodNamespace pod, string name, string labels)
    {
        var add = new CniInvoker(network.PluginPath).Add(network.Conflist,
            pod.Attachment(args: $"K8S_POD_NAMESPACE=shop;K8S_POD_NAME={name};PALISADE_LABELS={labels}"));
        Assert.True(add.Succeeded, add.ToString());
        return add.FirstAddress().Split('/')[0];
    }

    /// <summary>A server in the pod that answers every TCP connection on 8080 with its name (busybox nc, one at a time, again and again).</summary>
    private void Serve(PodNamespace pod, string name, int port = 8080)
    {
        _servers.Add(Process.Start(new ProcessStartInfo("ip", ["netns", "exec", pod.Name, Busybox, "sh", "-c", $"while true; do echo {name} | {Busybox} nc -l -p {port}; done"]))!);
    }

    private static string Ask(PodNamespace client, string address, int port) =>
        client.Exec(Busybox, "sh", "-c", $"{Busybox} nc -w 2 {address} {port} </dev/null").Stdout.Trim();

    /// <summary>Asks until every name in <paramref name="expected"/> answered (bounded); returns every answer.</summary>
    private static List<string> AskUntil(PodNamespace client, string address, int port, params string[] expected)
    {
        var answers = new List<string>();
        Command.WaitUntil(() =>
        {
            answers.Add(Ask(client, address, port));
            return expected.All(answers.Contains);
        }, TimeSpan.FromSeconds(60));
        return answers;
    }

    private void WriteServices(string file, string yaml)
    {
        // Written beside and moved into place, as kubectl and editors do: the agent reads it whole.
        var tmp = Path.Combine(_serviceDir, "." + file + ".tmp");
        File.WriteAllText(tmp, yaml);
        File.Move(tmp, Path.Combine(_serviceDir, file), overwrite: true);
    }

    private static string Endpoint(string address, string pod, string node, bool ready = true, bool terminating = false) => $$"""
          - addresses: ["{{address}}"]
            conditions: { ready: {{(ready ? "true" : "false")}}, serving: {{(ready || terminating ? "true" : "false")}}, terminating: {{(terminating ? "true" : "false")}} }
            nodeName: {{node}}
            targetRef: { kind: Pod, name: {{pod}}, namespace: shop }
        """;

    private string WebService(string extraSpec, params string[] endpoints) => $$"""
        apiVersion: v1
        kind: Service
        metadata: { name: web, namespace: shop }
        spec:
          type: NodePort
          clusterIP: {{Vip(10)}}
          selector: { app: web }
          ports:
          - { name: http, port: 80, targetPort: http, nodePort: 30080, protocol: TCP }
        {{extraSpec}}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: web-abc12
          namespace: shop
          labels: { kubernetes.io/service-name: web }
        addressType: IPv4
        ports:
        - { name: http, port: 8080, protocol: TCP }
        endpoints:
        {{string.Join("\n", endpoints)}}
        """;

    private static JsonElement Services(PalisadeNetwork network)
    {
        using var status = network.Agent!.Status();
        return status.RootElement.GetProperty("services").Clone();
    }

    [Fact]
    public void PodsReachAClusterIpAndANodePortServedByPodsAndAFileEditMovesNewConnections()
    {
        using var network = new PalisadeNetwork("--service-dir", _serviceDir);
        using var client = new PodNamespace();
        using var web1 = new PodNamespace();
        using var web2 = new PodNamespace();
        Add(network, client, "client-1", "app=client");
        var ip1 = Add(network, web1, "web-1", "app=web");
        var ip2 = Add(network, web2, "web-2", "app=web");
        Serve(web1, "web-1");
        Serve(web2, "web-2");

        WriteServices("web.yaml", WebService("", Endpoint(ip1, "web-1", network.NodeName), Endpoint(ip2, "web-2", network.NodeName)));

        // Every backend receives connections to the ClusterIP.
        var answers = AskUntil(client, Vip(10), 80, "web-1", "web-2");
        Assert.True(answers.Contains("web-1"), $"web-1 never answered the ClusterIP; services status: {Services(network)}\nagent log:\n{network.Agent!.Log}");
        Assert.Contains("web-2", answers);

        // The NodePort on a node address (the pod gateway is one) reaches the same backends.
        var nodePort = AskUntil(client, network.Gateway, 30080, "web-1", "web-2");
        Assert.Contains("web-2", nodePort);

        var services = Services(network);
        Assert.True(services.GetProperty("enabled").GetBoolean(), services.ToString());
        Assert.True(services.GetProperty("frontends").GetInt32() >= 2, services.ToString());
        Assert.Equal(2, services.GetProperty("backends").GetInt32());
        Assert.True(services.GetProperty("translated").GetInt64() >= 2, services.ToString());

        // web-1 terminates: new connections only reach web-2.
        WriteServices("web.yaml", WebService("", Endpoint(ip1, "web-1", network.NodeName, ready: false, terminating: true), Endpoint(ip2, "web-2", network.NodeName)));
        Assert.True(Command.WaitUntil(() => Enumerable.Range(0, 10).All(_ => Ask(client, Vip(10), 80) == "web-2"), TimeSpan.FromSeconds(30)),
            "web-1 still got new connections after it was marked terminating");

        // No ready endpoint at all: refused at once, not a hang.
        WriteServices("web.yaml", WebService("", Endpoint(ip1, "web-1", network.NodeName, ready: false), Endpoint(ip2, "web-2", network.NodeName, ready: false)));
        Assert.True(Command.WaitUntil(() =>
        {
            var clock = Stopwatch.StartNew();
            var r = client.Exec("python3", "-c", $"import socket\ntry:\n    socket.create_connection(('{Vip(10)}', 80), timeout=5)\n    print('connected')\nexcept ConnectionRefusedError:\n    print('refused')\n");
            return r.Stdout.Trim() == "refused";
        }, TimeSpan.FromSeconds(30)), "a service without ready endpoints was not refused");

        // The file goes: the address is nobody's again.
        File.Delete(Path.Combine(_serviceDir, "web.yaml"));
        Assert.True(Command.WaitUntil(() => Services(network).GetProperty("frontends").GetInt32() == 0, TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void LocalInternalTrafficPolicyKeepsTrafficOnThisNodesBackendsAndABadFileIsReportedNotApplied()
    {
        using var network = new PalisadeNetwork("--service-dir", _serviceDir);
        using var client = new PodNamespace();
        using var web1 = new PodNamespace();
        using var web2 = new PodNamespace();
        Add(network, client, "client-1", "app=client");
        var ip1 = Add(network, web1, "web-1", "app=web");
        var ip2 = Add(network, web2, "web-2", "app=web");
        Serve(web1, "web-1");
        Serve(web2, "web-2");

        // web-2's endpoint says it runs on another node: with internalTrafficPolicy Local only web-1 serves this node.
        WriteServices("web.yaml", WebService("  internalTrafficPolicy: Local", Endpoint(ip1, "web-1", network.NodeName), Endpoint(ip2, "web-2", "another-node")));
        Assert.True(Command.WaitUntil(() => Ask(client, Vip(10), 80) == "web-1", TimeSpan.FromSeconds(30)), "the local backend never answered");
        Assert.All(Enumerable.Range(0, 12).Select(_ => Ask(client, Vip(10), 80)), a => Assert.Equal("web-1", a));

        // A broken file names its problem in the status and changes nothing.
        WriteServices("broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: { name: bad, namespace: shop }\nspec:\n  ports:\n  - { port: 99999 }\n");
        Assert.True(Command.WaitUntil(() => Services(network).GetProperty("invalid_files").EnumerateObject().Any(), TimeSpan.FromSeconds(30)));
        var invalid = Services(network).GetProperty("invalid_files").EnumerateObject().Single();
        Assert.EndsWith("broken.yaml", invalid.Name, StringComparison.Ordinal);
        Assert.Contains("99999", invalid.Value.GetString(), StringComparison.Ordinal);
        Assert.Equal("web-1", Ask(client, Vip(10), 80));
    }
}
