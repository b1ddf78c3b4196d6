using System.Globalization;
using System.Text.Json.Nodes;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Testing;

namespace Palisade.IntegrationTests.NetworkPolicy;

/// <summary>
/// Issue 17's connectivity acceptance, in the spirit of `cilium connectivity test`: pods
/// client (kind=client, name=client), client2 (kind=client, name=client2, other=client) and
/// echo (kind=echo, name=echo-same-node) in namespace cilium-test, the node itself (host) and
/// two addresses outside the cluster (world-1, world-2: a network namespace of this test behind
/// the root namespace, inside the blackholed test range). Each scenario loads one policy file
/// with cilium-cli's policy names and checks every connection's result AND the exported flow's
/// verdict and drop reason (POLICY_DENIED: no rule allowed it; POLICY_DENY: a deny rule).
/// </summary>
public sealed class ConnectivityTests
{
    private const string Ns = "cilium-test";
    private static readonly NetpolProbe Tcp80 = new(80, "TCP"), Tcp81 = new(81, "TCP"), Udp80 = new(80, "UDP");

    /// <summary>One connection: from a pod to a target, whether it succeeds, and the flow that reports it.</summary>
    public sealed record Check(string From, string To, NetpolProbe Probe, bool Reachable, string? Reason = null)
    {
        public string Verdict => Reachable ? "FORWARDED" : "DROPPED";

        public override string ToString() => $"{From} -> {To} {Probe}: {Verdict}{(Reason is null ? "" : " " + Reason)}";
    }

    public sealed record Scenario(string Name, string Yaml, string[] Policies, Check[] Checks);

    private static string Cnp(string name, string spec) =>
        $"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {Ns}\nspec:\n{spec.TrimEnd('\n')}\n";

    private const string Denied = "POLICY_DENIED", Deny = "POLICY_DENY";

    public static readonly Scenario[] Scenarios =
    [
        new("no-policies", "", [],
        [
            new("client", "echo", Tcp80, true), new("client2", "echo", Udp80, true), new("echo", "client", Tcp81, true),
            new("client", "host", Tcp80, true), new("client", "world-1", Tcp80, true),
        ]),
        new("all-ingress-deny", Cnp("all-ingress-deny", "  endpointSelector: {}\n  ingress:\n  - {}"), [$"{Ns}/all-ingress-deny"],
        [
            new("client", "echo", Tcp80, false, Denied), new("client2", "echo", Udp80, false, Denied), new("echo", "client", Tcp80, false, Denied),
            // Egress is not limited, and the reply comes back through conntrack.
            new("client", "world-1", Tcp80, true), new("client", "host", Tcp80, true),
        ]),
        new("all-egress-deny", Cnp("all-egress-deny", "  endpointSelector: {}\n  egress:\n  - {}"), [$"{Ns}/all-egress-deny"],
        [
            new("client", "echo", Tcp80, false, Denied), new("client2", "echo", Udp80, false, Denied),
            new("client", "world-1", Tcp80, false, Denied), new("echo", "host", Tcp80, false, Denied),
        ]),
        new("client-ingress", Cnp("client-ingress-from-client2", """
              endpointSelector: {matchLabels: {kind: client}}
              ingress:
              - fromEndpoints: [{matchLabels: {other: client}}]
            """), [$"{Ns}/client-ingress-from-client2"],
        [
            new("client2", "client", Tcp80, true), new("echo", "client", Tcp80, false, Denied), new("client", "echo", Tcp80, true),
        ]),
        new("echo-ingress", Cnp("echo-ingress-from-other-client", """
              endpointSelector: {matchLabels: {kind: echo}}
              ingress:
              - fromEndpoints: [{matchLabels: {other: client}}]
                toPorts: [{ports: [{port: "80", protocol: TCP}]}]
            """), [$"{Ns}/echo-ingress-from-other-client"],
        [
            new("client2", "echo", Tcp80, true), new("client", "echo", Tcp80, false, Denied), new("client2", "echo", Tcp81, false, Denied),
            new("client2", "echo", Udp80, false, Denied),
        ]),
        new("client-egress", Cnp("client-egress-to-echo", """
              endpointSelector: {matchLabels: {kind: client}}
              egress:
              - toEndpoints: [{matchLabels: {kind: echo}}]
                toPorts: [{ports: [{port: "80", protocol: TCP}]}]
            """), [$"{Ns}/client-egress-to-echo"],
        [
            new("client", "echo", Tcp80, true), new("client2", "echo", Tcp80, true), new("client", "echo", Tcp81, false, Denied),
            new("client", "client2", Tcp80, false, Denied), new("client", "world-1", Tcp80, false, Denied), new("echo", "client", Tcp80, true),
        ]),
        new("to-entities-world", Cnp("client-egress-to-entities-world", """
              endpointSelector: {matchLabels: {kind: client}}
              egress:
              - toEntities: [world]
            """), [$"{Ns}/client-egress-to-entities-world"],
        [
            new("client", "world-1", Tcp80, true), new("client", "world-2", Udp80, true),
            new("client", "echo", Tcp80, false, Denied), new("client", "host", Tcp80, false, Denied),
        ]),
        new("to-entities-host", Cnp("client-egress-to-entities-host", """
              endpointSelector: {matchLabels: {kind: client}}
              egress:
              - toEntities: [host]
            """), [$"{Ns}/client-egress-to-entities-host"],
        [
            new("client", "host", Tcp80, true), new("client", "echo", Tcp80, false, Denied), new("client", "world-1", Tcp80, false, Denied),
        ]),
        new("to-cidr-external", Cnp("client-egress-to-cidr", """
              endpointSelector: {matchLabels: {kind: client}}
              egress:
              - toCIDRSet:
                - cidr: "{{world-cidr}}"
                  except: ["{{world-2}}/32"]
            """), [$"{Ns}/client-egress-to-cidr"],
        [
            new("client", "world-1", Tcp80, true), new("client", "world-2", Tcp80, false, Denied), new("client", "echo", Tcp80, false, Denied),
        ]),
        new("echo-ingress-from-other-client-deny", Cnp("echo-ingress-from-other-client-deny", """
              endpointSelector: {matchLabels: {kind: echo}}
              ingress:
              - fromEntities: [all]
              ingressDeny:
              - fromEndpoints: [{matchLabels: {other: client}}]
            """), [$"{Ns}/echo-ingress-from-other-client-deny"],
        [
            new("client2", "echo", Tcp80, false, Deny), new("client2", "echo", Udp80, false, Deny), new("client", "echo", Tcp80, true),
        ]),
        new("client-egress-to-echo-deny", Cnp("client-egress-to-echo-deny", """
              endpointSelector: {matchLabels: {kind: client}}
              egress:
              - toEntities: [all]
              egressDeny:
              - toEndpoints: [{matchLabels: {kind: echo}}]
                toPorts: [{ports: [{port: "80", protocol: TCP}]}]
            """), [$"{Ns}/client-egress-to-echo-deny"],
        [
            new("client", "echo", Tcp80, false, Deny), new("client", "echo", Tcp81, true), new("client", "client2", Tcp80, true),
            new("client", "world-1", Tcp80, true),
        ]),
        new("client-egress-to-cidr-deny", Cnp("client-egress-to-cidr-deny", """
              endpointSelector: {matchLabels: {kind: client}}
              egress:
              - toEntities: [all]
              egressDeny:
              - toCIDR: ["{{world-2}}/32"]
            """), [$"{Ns}/client-egress-to-cidr-deny"],
        [
            new("client", "world-1", Tcp80, true), new("client", "world-2", Tcp80, false, Deny), new("client", "echo", Tcp80, true),
        ]),
    ];

    public static TheoryData<string> ScenarioNames() => [.. Scenarios.Select(s => s.Name)];

    [Theory]
    [MemberData(nameof(ScenarioNames))]
    public void ConnectionsAndTheirFlowsFollowTheScenariosPolicy(string name)
    {
        var scenario = Scenarios.Single(s => s.Name == name);
        using var world = new WorldHost();
        // The baseline runs without a policy directory, as the truth-table baseline does.
        using var cluster = new NetpolCluster(withPolicyDir: scenario.Yaml.Length > 0, pods: []);
        cluster.AddPods([($"{Ns}/client", "kind=client,name=client"), ($"{Ns}/client2", "kind=client,name=client2,other=client"), ($"{Ns}/echo", "kind=echo,name=echo-same-node")]);
        NetpolCluster.WaitServing(cluster.StartServer(null, "host", cluster.Network.Gateway), "the host");
        // One server per world address: a UDP server bound to 0.0.0.0 would answer world-2's
        // datagrams from world-1 (the route's source), which the client's connected socket ignores.
        NetpolCluster.WaitServing(cluster.StartServer(world.Netns, "world", world.Address1), "the world host (world-1)");
        NetpolCluster.WaitServing(cluster.StartServer(world.Netns, "world", world.Address2), "the world host (world-2)");
        string Address(string target) => target switch
        {
            "host" => cluster.Network.Gateway,
            "world-1" => world.Address1,
            "world-2" => world.Address2,
            _ => cluster.Address($"{Ns}/{target}"),
        };
        if (scenario.Yaml.Length > 0)
        {
            var yaml = scenario.Yaml.Replace("{{world-cidr}}", world.Cidr, StringComparison.Ordinal).Replace("{{world-2}}", world.Address2, StringComparison.Ordinal);
            cluster.WritePolicy("scenario.yaml", yaml, scenario.Policies);
        }

        // Connections: probed together per source, again where the answer differs (a policy
        // takes effect a moment after it is reported), then judged.
        Dictionary<Check, string> results = [];
        for (var round = 0; round < 3 && (results.Count == 0 || results.Any(r => (r.Value == "ok") != r.Key.Reachable)); round++)
        {
            results = scenario.Checks.GroupBy(c => c.From).AsParallel().SelectMany(g =>
            {
                var got = cluster.ProbeTargets($"{Ns}/{g.Key}", g.Select(c => (c.ToString(), Address(c.To), c.Probe, c.To.StartsWith("world", StringComparison.Ordinal) ? "world" : c.To == "host" ? "host" : $"{Ns}/{c.To}")));
                return g.Select(c => (c, got[c.ToString()]));
            }).ToDictionary(x => x.c, x => x.Item2);
        }
        var wrong = results.Where(r => (r.Value == "ok") != r.Key.Reachable).Select(r => $"  {r.Key}: got {r.Value}").ToList();
        Assert.True(wrong.Count == 0, $"{name}: connections differ from the policy:\n{string.Join('\n', wrong)}\nagent log:\n{cluster.Agent.Log}");

        // Flows: each connection's first packet is reported with the verdict and reason.
        foreach (var check in scenario.Checks)
        {
            var (src, dst) = (Address(check.From), Address(check.To));
            var l4 = check.Probe.Protocol;
            cluster.Network.WaitForFlow(f =>
                (string?)f["IP"]?["source"] == src && (string?)f["IP"]?["destination"] == dst &&
                f["l4"]?[l4]?["destination_port"]?.GetValue<int>() == check.Probe.Port &&
                (string?)f["verdict"] == check.Verdict && (check.Reason is null || (string?)f["drop_reason_desc"] == check.Reason) &&
                (check.Reason != Deny || DeniedBy(f, scenario)),
                $"flow {check} ({src} -> {dst}){(check.Reason == Deny ? $", naming {scenario.Policies[0]} in Hubble's {DenyList(scenario)}" : "")}");
        }
        if (scenario.Checks.All(c => c.Reachable))
        {
            Assert.DoesNotContain(cluster.Network.Flows(), f => (string?)f["verdict"] == "DROPPED" && (string?)f["IP"]?["source"] == Address("client"));
        }
    }

    // A deny rule's drop names its policy in Hubble's list for the side whose policy denied it.
    private static string DenyList(Scenario scenario) => scenario.Yaml.Contains("ingressDeny:", StringComparison.Ordinal) ? "ingress_denied_by" : "egress_denied_by";

    private static bool DeniedBy(System.Text.Json.Nodes.JsonNode f, Scenario scenario) =>
        f[DenyList(scenario)] is System.Text.Json.Nodes.JsonArray { Count: 1 } list &&
        $"{(string?)list[0]?["namespace"]}/{(string?)list[0]?["name"]}" == scenario.Policies[0] &&
        (string?)list[0]?["kind"] == "CiliumNetworkPolicy";

    /// <summary>
    /// Two addresses outside the cluster: a network namespace joined to the root one by a veth,
    /// inside the blackholed test range (<see cref="TestNetwork.TestCidr"/>), so traffic to it
    /// never leaves the machine. The root namespace routes to it; it routes back via the root.
    /// </summary>
    private sealed class WorldHost : IDisposable
    {
        private readonly string _blackhole;
        private readonly string _rootLink;
        private readonly PodNamespace _netns;

        public WorldHost()
        {
            _blackhole = BlackholeRoute.Acquire();
            _netns = new PodNamespace("pal-world");
            var n = Random.Shared.Next(1, 250);
            var id = _netns.Name[^5..];
            _rootLink = $"palw{id}r";
            var worldLink = $"palw{id}w";
            // A /29 of its own: .1 the root side, .2 world-1 (the veth), .6 world-2 (a second address).
            Cidr = string.Create(CultureInfo.InvariantCulture, $"10.234.{n}.0/29");
            var root = string.Create(CultureInfo.InvariantCulture, $"10.234.{n}.1");
            Address1 = string.Create(CultureInfo.InvariantCulture, $"10.234.{n}.2");
            Address2 = string.Create(CultureInfo.InvariantCulture, $"10.234.{n}.6");
            try
            {
                Command.Check("ip", "link", "add", _rootLink, "type", "veth", "peer", "name", worldLink, "netns", _netns.Name);
                Command.Check("ip", "addr", "add", root + "/30", "dev", _rootLink);
                Command.Check("ip", "link", "set", _rootLink, "up");
                Command.Check("ip", "-n", _netns.Name, "addr", "add", Address1 + "/30", "dev", worldLink);
                Command.Check("ip", "-n", _netns.Name, "addr", "add", Address2 + "/32", "dev", "lo");
                Command.Check("ip", "-n", _netns.Name, "link", "set", worldLink, "up");
                Command.Check("ip", "-n", _netns.Name, "route", "add", "default", "via", root);
                Command.Check("ip", "route", "add", Address2 + "/32", "via", Address1, "dev", _rootLink);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public string Netns => _netns.Name;

        public string Cidr { get; }

        public string Address1 { get; }

        public string Address2 { get; }

        public void Dispose()
        {
            Command.Run("ip", "link", "del", _rootLink);
            _netns.Dispose();
            BlackholeRoute.Release(_blackhole);
        }
    }
}
