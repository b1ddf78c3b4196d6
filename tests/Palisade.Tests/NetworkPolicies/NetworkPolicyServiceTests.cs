using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Palisade.Agent;
using Palisade.Agent.Configuration;
using Palisade.Agent.NetworkPolicy;
using Palisade.Datapath;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Policies.Network.Compilation;
using Palisade.Tests.Datapath;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>A datapath that records what the policy engine writes.</summary>
internal sealed class RecordingPolicyDatapath : IPolicyDatapath
{
    public List<(uint Endpoint, EndpointPolicyMap Policy)> SetPolicyCalls { get; } = [];
    public List<IReadOnlyCollection<KeyValuePair<IPNetwork, uint>>> CidrCalls { get; } = [];
    public Dictionary<uint, EndpointPolicyMap> Current { get; } = [];

    public void SetPolicy(Endpoint endpoint, EndpointPolicyMap policy)
    {
        SetPolicyCalls.Add((endpoint.Id, policy));
        Current[endpoint.Id] = policy;
    }

    public void SetCidrIdentities(IReadOnlyCollection<KeyValuePair<IPNetwork, uint>> prefixes) => CidrCalls.Add([.. prefixes]);

    public PolicyMapUsage? Usage(Endpoint endpoint) => Current.TryGetValue(endpoint.Id, out var p) ? new PolicyMapUsage(p.Entries.Count, p.Entries.Count * 20) : null;
}

public sealed class NetworkPolicyServiceTests : IDisposable
{
    private const byte Tcp = 6;
    private const byte Udp = 17;
    private readonly TempDirectory _dir = new();
    private readonly RecordingPolicyDatapath _datapath = new();

    public void Dispose() => _dir.Dispose();

    private static SettingsLayer Flags(params (string Key, string Value)[] values) => new("command line", values.ToDictionary(v => v.Key, v => v.Value));

    private NetworkPolicyService Service(params (string Key, string Value)[] extra)
    {
        var options = AgentConfiguration.Resolve([Flags([("network-policy-dir", _dir.Path), ("node-name", "node-1"), .. extra])]);
        var datapath = new DatapathService(options, new DatapathParts(), NullLogger<DatapathService>.Instance);
        var service = new NetworkPolicyService(options, datapath, new DatapathParts(), NullLogger<NetworkPolicyService>.Instance);
        service.Engine.UseDatapath(_datapath);
        return service;
    }

    private static Endpoint Pod(uint id, string ns, string name, uint identity, params (string Key, string Value)[] labels) => new()
    {
        Id = id,
        ContainerId = $"c{id}",
        IfName = "eth0",
        Netns = $"/run/netns/t{id}",
        PodNamespace = ns,
        PodName = name,
        Labels = labels.ToDictionary(l => l.Key, l => l.Value),
        NamespaceLabels = new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = ns },
        Identity = identity,
        HostIfName = $"lxc{id}",
        HostMac = new byte[6],
        PodMac = new byte[6],
        IPv4 = IPAddress.Parse($"10.244.1.{id}"),
    };

    private static readonly Endpoint Web = Pod(1, "shop", "web", 300, ("app", "web"));
    private static readonly Endpoint Client = Pod(2, "shop", "client", 301, ("app", "client"));
    private static readonly Endpoint Other = Pod(3, "shop", "other", 302, ("app", "other"));

    private const string AllowClientTo80 = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web-ingress
          namespace: shop
        spec:
          podSelector:
            matchLabels:
              app: web
          policyTypes: [Ingress]
          ingress:
          - from:
            - podSelector:
                matchLabels:
                  app: client
            ports:
            - port: 80
              protocol: TCP
        """;

    private static string AllowOtherTo(int port) => $$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: web-other-{{port}}
          namespace: shop
        spec:
          endpointSelector:
            matchLabels:
              app: web
          ingress:
          - fromEndpoints:
            - matchLabels:
                app: other
            toPorts:
            - ports:
              - port: "{{port}}"
                protocol: TCP
        """;

    private int _tick;

    private string Write(string name, string text)
    {
        var path = _dir.Sub(name);
        File.WriteAllText(path, text);
        // A distinct stamp per write: the directory sync compares modification time and size.
        File.SetLastWriteTimeUtc(path, new DateTime(2026, 12, 2, 20, 0, 0, DateTimeKind.Utc).AddSeconds(++_tick));
        return path;
    }

    private NetworkPolicyStatus StatusOf(NetworkPolicyService s, string name) => s.Engine.PolicyStatus().Single(p => p.Policy.Name == name);

    private static ExplainPeer P(Endpoint e) => new ExplainPeer.Pod(e.PodNamespace!, e.PodName!);

    [Fact]
    public void APolicyFileAppliesToTheEndpointsItSelectsAndTheirMapsAreWritten()
    {
        var s = Service();
        s.Engine.SetEndpoints([Web, Client, Other]);
        Write("web.yaml", AllowClientTo80);
        s.SyncDirectory(_dir.Path);

        var web = _datapath.Current[Web.Id];
        Assert.Equal((byte)DirectionMode.Enforce, web.IngressMode);
        Assert.Equal((byte)DirectionMode.Off, web.EgressMode);
        var entry = Assert.Single(web.Entries, e => e.Key.Identity == Client.Identity);
        Assert.Equal(80, System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(entry.Key.Dport));
        Assert.Equal(Tcp, entry.Key.Protocol);
        Assert.Equal(40u + 24u, entry.Key.Prefixlen);
        Assert.Equal((byte)DirectionMode.Off, _datapath.Current[Client.Id].IngressMode);

        var status = StatusOf(s, "web-ingress");
        Assert.Equal("validated", status.State);
        Assert.Equal(["shop/web"], status.Endpoints);
        Assert.Equal(web.Entries.Count(e => e.Value.Rule != 0), status.Entries);
        Assert.True(status.Entries >= 1);

        Assert.Equal(PolicyVerdict.Forwarded, s.Engine.Explain(P(Client), P(Web), Tcp, 80).Result.Verdict);
        var denied = s.Engine.Explain(P(Other), P(Web), Tcp, 80).Result;
        Assert.Equal(PolicyVerdict.Dropped, denied.Verdict);
        Assert.Equal(PolicyDropReason.PolicyDenied, denied.Reason);
    }

    /// <summary>
    /// A named port resolves against the endpoint's own ports on ingress and the peer's on
    /// egress (PALISADE_NAMED_PORTS or the Pod's container ports); an endpoint without the
    /// name gets nothing for it, and the status says why.
    /// </summary>
    [Fact]
    public void NamedPortsResolveAgainstTheServingEndpointsPorts()
    {
        var s = Service();
        var web = Web with { NamedPorts = [new ContainerPort("http", "TCP", 8080), new ContainerPort("dns", "UDP", 53)] };
        s.Engine.SetEndpoints([web, Client, Other]);
        Write("named.yaml", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: web-http, namespace: shop}
            spec:
              podSelector: {matchLabels: {app: web}}
              policyTypes: [Ingress]
              ingress:
              - ports: [{port: http}, {port: dns, protocol: UDP}]
            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: client-dns, namespace: shop}
            spec:
              podSelector: {matchLabels: {app: client}}
              policyTypes: [Egress]
              egress:
              - to: [{podSelector: {}}]
                ports: [{port: dns, protocol: UDP}]
            """);
        s.SyncDirectory(_dir.Path);

        Assert.Equal(PolicyVerdict.Forwarded, s.Engine.Explain(P(Other), P(web), Tcp, 8080).Result.Verdict);
        Assert.Equal(PolicyVerdict.Dropped, s.Engine.Explain(P(Other), P(web), Tcp, 80).Result.Verdict);
        Assert.Equal(PolicyVerdict.Forwarded, s.Engine.Explain(P(Client), P(web), Udp, 53).Result.Verdict);
        Assert.Equal(PolicyVerdict.Dropped, s.Engine.Explain(P(Client), P(Other), Udp, 53).Result.Verdict);

        // The ports change (a restarted standalone pod, say): the maps follow.
        s.Engine.SetEndpoints([web with { NamedPorts = [new ContainerPort("http", "TCP", 9090)] }, Client, Other]);
        Assert.Equal(PolicyVerdict.Forwarded, s.Engine.Explain(P(Other), P(web), Tcp, 9090).Result.Verdict);
        Assert.Equal(PolicyVerdict.Dropped, s.Engine.Explain(P(Other), P(web), Tcp, 8080).Result.Verdict);
    }

    [Fact]
    public void EditingAFileRewritesOnlyTheEndpointsWhosePolicyChangedAndRemovingItTurnsEnforcementOff()
    {
        var s = Service();
        s.Engine.SetEndpoints([Web, Client]);
        Write("web.yaml", AllowClientTo80);
        s.SyncDirectory(_dir.Path);
        var calls = _datapath.SetPolicyCalls.Count;

        Write("web.yaml", AllowClientTo80.Replace("port: 80", "port: 8080", StringComparison.Ordinal));
        s.SyncDirectory(_dir.Path);
        Assert.Equal([Web.Id], _datapath.SetPolicyCalls.Skip(calls).Select(c => c.Endpoint));
        Assert.Equal(PolicyVerdict.Dropped, s.Engine.Explain(P(Client), P(Web), Tcp, 80).Result.Verdict);
        Assert.Equal(PolicyVerdict.Forwarded, s.Engine.Explain(P(Client), P(Web), Tcp, 8080).Result.Verdict);

        // Nothing changed: nothing written.
        calls = _datapath.SetPolicyCalls.Count;
        s.SyncDirectory(_dir.Path);
        Assert.Equal(calls, _datapath.SetPolicyCalls.Count);

        File.Delete(_dir.Sub("web.yaml"));
        s.SyncDirectory(_dir.Path);
        Assert.Equal((byte)DirectionMode.Off, _datapath.Current[Web.Id].IngressMode);
        Assert.Empty(s.Engine.PolicyStatus());
        Assert.Empty(s.Engine.SourceStatus());
    }

    [Fact]
    public void ABadFileNamesTheFieldAndValueKeepsItsLastGoodVersionAndLeavesTheOtherFilesAlone()
    {
        var s = Service();
        s.Engine.SetEndpoints([Web, Client, Other]);
        var good = Write("web.yaml", AllowClientTo80);
        Write("other.yaml", AllowOtherTo(81));
        s.SyncDirectory(_dir.Path);

        Write("web.yaml", AllowClientTo80.Replace("protocol: TCP", "protocol: TPC", StringComparison.Ordinal));
        var fresh = Write("broken.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: Bad_Name\nspec: {}\n");
        s.SyncDirectory(_dir.Path);

        var edited = s.Engine.SourceStatus().Single(x => x.Source == good);
        var error = Assert.Single(edited.Errors);
        Assert.Contains("protocol", error.Path, StringComparison.Ordinal);
        Assert.Contains("TPC", error.Message, StringComparison.Ordinal);
        Assert.NotNull(edited.KeptFrom);
        Assert.Equal(PolicyVerdict.Forwarded, s.Engine.Explain(P(Client), P(Web), Tcp, 80).Result.Verdict); // the last good version
        Assert.Equal(PolicyVerdict.Forwarded, s.Engine.Explain(P(Other), P(Web), Tcp, 81).Result.Verdict); // the other file

        var broken = s.Engine.SourceStatus().Single(x => x.Source == fresh);
        Assert.Contains(broken.Errors, e => e.Path == "metadata.name" && e.Message.Contains("Bad_Name", StringComparison.Ordinal));
        Assert.Null(broken.KeptFrom);
        Assert.Empty(broken.Policies);

        using var doc = JsonDocument.Parse(NetworkPolicyJson.Status(s.Engine, _dir.Path));
        Assert.Equal(2, doc.RootElement.GetProperty("network_policy").GetProperty("invalid_sources").GetInt32());
    }

    [Fact]
    public void TwoFilesSelectingOneEndpointAllowTheUnionOfTheirRules()
    {
        var s = Service();
        s.Engine.SetEndpoints([Web, Other]);
        Write("a.yaml", AllowOtherTo(80));
        Write("b.json", """{"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy","metadata":{"name":"web-other-81","namespace":"shop"},"spec":{"endpointSelector":{"matchLabels":{"app":"web"}},"ingress":[{"fromEndpoints":[{"matchLabels":{"app":"other"}}],"toPorts":[{"ports":[{"port":"81","protocol":"TCP"}]}]}]}}""");
        s.SyncDirectory(_dir.Path);

        Assert.Equal(PolicyVerdict.Forwarded, s.Engine.Explain(P(Other), P(Web), Tcp, 80).Result.Verdict);
        Assert.Equal(PolicyVerdict.Forwarded, s.Engine.Explain(P(Other), P(Web), Tcp, 81).Result.Verdict);
        Assert.Equal(PolicyVerdict.Dropped, s.Engine.Explain(P(Other), P(Web), Tcp, 82).Result.Verdict);
        Assert.Equal(2, s.Engine.PolicyStatus().Count);
        Assert.All(s.Engine.PolicyStatus(), p => Assert.Equal(1, p.Entries));
    }

    [Fact]
    public void AnEndpointAddedRelabeledOrRemovedGetsTheMatchingPolicy()
    {
        var s = Service();
        Write("web.yaml", AllowClientTo80);
        s.SyncDirectory(_dir.Path);
        s.Engine.SetEndpoints([Client]);
        Assert.Empty(StatusOf(s, "web-ingress").Endpoints);

        s.Engine.SetEndpoints([Client, Other]);
        Assert.Equal((byte)DirectionMode.Off, _datapath.Current[Other.Id].IngressMode);

        // other/app=other relabelled to app=web: it moves into the policy.
        var relabeled = Other with { Labels = new Dictionary<string, string> { ["app"] = "web" }, Identity = 303 };
        s.Engine.SetEndpoints([Client, relabeled]);
        Assert.Equal((byte)DirectionMode.Enforce, _datapath.Current[Other.Id].IngressMode);
        Assert.Equal(["shop/other"], StatusOf(s, "web-ingress").Endpoints);

        s.Engine.SetEndpoints([Client]);
        Assert.Empty(StatusOf(s, "web-ingress").Endpoints);
        Assert.Single(s.Engine.Endpoints);
    }

    [Fact]
    public void AuditModeSwitchedLiveForANamespaceOrByThePolicysLabelReportsAuditAndDropsNothing()
    {
        var s = Service();
        s.Engine.SetEndpoints([Web, Client, Other]);
        Write("web.yaml", AllowClientTo80);
        s.SyncDirectory(_dir.Path);
        Assert.Equal(PolicyVerdict.Dropped, s.Engine.Explain(P(Other), P(Web), Tcp, 80).Result.Verdict);

        s.Engine.SetSettings(s.Engine.Settings with { AuditNamespaces = new HashSet<string> { "shop" } });
        Assert.Equal((byte)DirectionMode.Audit, _datapath.Current[Web.Id].IngressMode);
        Assert.Equal(PolicyVerdict.Audit, s.Engine.Explain(P(Other), P(Web), Tcp, 80).Result.Verdict);

        s.Engine.SetSettings(s.Engine.Settings with { AuditNamespaces = new HashSet<string>() });
        Assert.Equal((byte)DirectionMode.Enforce, _datapath.Current[Web.Id].IngressMode);

        Write("web.yaml", AllowClientTo80.Replace("  namespace: shop\n", "  namespace: shop\n  labels:\n    palisade.io/policy-audit-mode: \"true\"\n", StringComparison.Ordinal));
        s.SyncDirectory(_dir.Path);
        Assert.True(StatusOf(s, "web-ingress").Audit);
        Assert.Equal(PolicyVerdict.Audit, s.Engine.Explain(P(Other), P(Web), Tcp, 80).Result.Verdict);
    }

    [Fact]
    public void EnforcementAlwaysFromTheSettingsDropsForEndpointsNoPolicySelects()
    {
        var s = Service(("policy-enforcement", "always"));
        s.Engine.SetEndpoints([Web, Client]);
        Assert.Equal(EnforcementMode.Always, s.Engine.Settings.Mode);
        Assert.Equal((byte)DirectionMode.Enforce, _datapath.Current[Client.Id].EgressMode);
        Assert.Equal(PolicyVerdict.Dropped, s.Engine.Explain(P(Client), P(Web), Tcp, 80).Result.Verdict);
    }

    [Fact]
    public void WithoutADatapathPoliciesAreValidatedAndReportedOnly()
    {
        var s = Service();
        s.Engine.UseDatapath(null);
        var before = _datapath.SetPolicyCalls.Count;
        s.Engine.SetEndpoints([Web, Client]);
        Write("web.yaml", AllowClientTo80);
        s.SyncDirectory(_dir.Path);
        Assert.Equal(before, _datapath.SetPolicyCalls.Count);
        Assert.Equal(["shop/web"], StatusOf(s, "web-ingress").Endpoints);
        Assert.Null(s.Engine.LastError);
    }

    [Fact]
    public void ExplainNamesTheDecidingRuleAndFileAndWorksByLabelsAndAddress()
    {
        var s = Service();
        s.Engine.SetEndpoints([Web, Client]);
        var file = Write("web.yaml", AllowClientTo80);
        s.SyncDirectory(_dir.Path);

        var x = s.Engine.Explain(P(Client), P(Web), Tcp, 80);
        var rule = Assert.Single(x.Result.Ingress!.Rules);
        Assert.Equal("web-ingress", rule.Policy.Name);
        Assert.Equal(file, rule.Source);
        Assert.Equal("spec.ingress[0]", rule.Rule);
        Assert.Contains("FORWARDED", NetworkPolicyJson.Text(x), StringComparison.Ordinal);
        using (var doc = JsonDocument.Parse(NetworkPolicyJson.Explanation(x)))
        {
            Assert.Equal("FORWARDED", doc.RootElement.GetProperty("verdict").GetString());
            Assert.Equal(file, doc.RootElement.GetProperty("ingress").GetProperty("rules")[0].GetProperty("file").GetString());
        }

        // Labels no pod has yet: a client-to-be is allowed, anything else is not.
        var byLabels = s.Engine.Explain(new ExplainPeer.Labels(new Dictionary<string, string> { ["app"] = "client" }, "shop"), P(Web), Tcp, 80);
        Assert.Equal(PolicyVerdict.Forwarded, byLabels.Result.Verdict);
        var outsider = s.Engine.Explain(new ExplainPeer.Labels(new Dictionary<string, string> { ["app"] = "nobody" }, "shop"), P(Web), Tcp, 80);
        Assert.Equal(PolicyVerdict.Dropped, outsider.Result.Verdict);

        var world = s.Engine.Explain(new ExplainPeer.Address(IPAddress.Parse("192.0.2.1")), new ExplainPeer.Address(Web.IPv4!), Tcp, 80);
        Assert.Equal(ReservedIdentities.World, world.FromIdentity);
        Assert.Equal(PolicyVerdict.Dropped, world.Result.Verdict);

        Assert.Throws<ArgumentException>(() => s.Engine.Explain(new ExplainPeer.Pod("shop", "ghost"), P(Web), Tcp, 80));
    }

    [Fact]
    public void AFlowsRuleNumberBecomesPolicyMatchInTheFlowJson()
    {
        var s = Service();
        s.Engine.SetEndpoints([Web, Client]);
        var file = Write("web.yaml", AllowClientTo80);
        s.SyncDirectory(_dir.Path);
        var rule = _datapath.Current[Web.Id].Entries.Single(e => e.Key.Identity == Client.Identity).Value.Rule;
        Assert.NotEqual(0u, rule);

        var flow = new FlowEvent
        {
            Time = new DateTimeOffset(2026, 12, 2, 20, 0, 0, TimeSpan.Zero),
            Uuid = "u1",
            Verdict = FlowVerdict.Forwarded,
            IP = new FlowIp("10.244.1.2", "10.244.1.1", IpVersion.IPv4),
            L4 = FlowL4.Tcp(40000, 80, TcpFlags.Syn),
            PolicyRule = rule,
            PolicyDirection = TrafficDirection.Ingress,
        };
        var options = TetragonJsonOptions.Default with { PolicyRules = s };
        using var doc = JsonDocument.Parse(Json(flow, options));
        var match = doc.RootElement.GetProperty("flow").GetProperty("policy_match");
        Assert.Equal("web-ingress", match.GetProperty("name").GetString());
        Assert.Equal("shop", match.GetProperty("namespace").GetString());
        Assert.Equal("NetworkPolicy", match.GetProperty("kind").GetString());
        Assert.Equal(file, match.GetProperty("file").GetString());
        Assert.Equal("spec.ingress[0]", match.GetProperty("rule").GetString());
        // Hubble's own list names the same policy, with the labels Cilium gives a policy.
        var allowedBy = Assert.Single(doc.RootElement.GetProperty("flow").GetProperty("ingress_allowed_by").EnumerateArray());
        Assert.Equal("web-ingress", allowedBy.GetProperty("name").GetString());
        Assert.Equal("shop", allowedBy.GetProperty("namespace").GetString());
        Assert.Equal("NetworkPolicy", allowedBy.GetProperty("kind").GetString());
        Assert.Equal(["k8s:io.cilium.k8s.policy.derived-from=NetworkPolicy", "k8s:io.cilium.k8s.policy.name=web-ingress", "k8s:io.cilium.k8s.policy.namespace=shop"],
            allowedBy.GetProperty("labels").EnumerateArray().Select(l => l.GetString()));
        foreach (var other in new[] { "egress_allowed_by", "ingress_denied_by", "egress_denied_by" })
        {
            Assert.False(doc.RootElement.GetProperty("flow").TryGetProperty(other, out _), other);
        }

        // The gRPC stream's Flow carries the same.
        var message = Palisade.Agent.Api.EventMessages.ToFlow(flow, "node-1", options).PolicyMatch;
        Assert.Equal(("web-ingress", "shop", "NetworkPolicy", file, "spec.ingress[0]"), (message.Name, message.Namespace, message.Kind, message.File, message.Rule));
        Assert.Null(Palisade.Agent.Api.EventMessages.ToFlow(flow, "node-1", TetragonJsonOptions.Default).PolicyMatch);
        var grpc = Palisade.Agent.Api.EventMessages.ToFlow(flow, "node-1", options);
        var policy = Assert.Single(grpc.IngressAllowedBy);
        Assert.Equal(("web-ingress", "shop", "NetworkPolicy", 3), (policy.Name, policy.Namespace, policy.Kind, policy.Labels.Count));
        Assert.Empty(grpc.EgressAllowedBy);
        Assert.Empty(grpc.IngressDeniedBy);
        Assert.Empty(grpc.EgressDeniedBy);

        // Without a resolver, or with a number no rule has, there is no policy_match.
        using var plain = JsonDocument.Parse(Json(flow, TetragonJsonOptions.Default));
        Assert.False(plain.RootElement.GetProperty("flow").TryGetProperty("policy_match", out _));
        using var unknown = JsonDocument.Parse(Json(new FlowEvent { Uuid = "u2", Verdict = FlowVerdict.Dropped, PolicyRule = 9999, Time = flow.Time }, options));
        Assert.False(unknown.RootElement.GetProperty("flow").TryGetProperty("policy_match", out _));
    }

    private static string Json(PalisadeEvent e, TetragonJsonOptions options)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.WriteFiltered(w, e, "node-1", options, []);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [Fact]
    public void NetworkPolicySettingsAreReadAndBadNamespacesNamed()
    {
        var options = AgentConfiguration.Resolve([Flags(("policy-enforcement", "never"), ("policy-audit-mode", "true"), ("policy-audit-namespaces", "shop, payments"), ("network-policy-dir", "/etc/palisade/netpol"))]);
        Assert.Equal(EnforcementMode.Never, options.NetworkPolicy.Mode);
        Assert.True(options.NetworkPolicy.AuditAll);
        Assert.Equal(["payments", "shop"], options.NetworkPolicy.AuditNamespaces.Order());
        Assert.Equal("/etc/palisade/netpol", options.NetworkPolicyDir);
        Assert.Equal(EnforcementMode.Always, AgentConfiguration.Resolve([Flags(("enable-policy", "always"))]).NetworkPolicy.Mode);

        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Flags(("policy-audit-namespaces", "Shop"))]));
        Assert.Contains(e.Errors, m => m.Contains("policy-audit-namespaces", StringComparison.Ordinal) && m.Contains("\"Shop\"", StringComparison.Ordinal));
        Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Flags(("policy-enforcement", "sometimes"))]));
    }
}

public sealed class PolicyExplainCommandTests
{
    private static (System.CommandLine.ParseResult Parse, Palisade.Api.V1.ExplainNetworkPolicyRequest? Request, string? Error) Explain(params string[] args)
    {
        var root = Palisade.Cli.PalisadeCommand.Create();
        var parse = root.Parse(["policy", "explain", .. args]);
        var explain = parse.CommandResult.Command;
        if (parse.Errors.Count > 0)
        {
            return (parse, null, string.Join("; ", parse.Errors.Select(e => e.Message)));
        }
        var get = (string name) => explain.Options.OfType<System.CommandLine.Option<string?>>().Single(x => x.Name == name);
        var request = new Palisade.Api.V1.ExplainNetworkPolicyRequest
        {
            From = parse.GetValue(get("--from")) ?? "", FromLabels = parse.GetValue(get("--from-labels")) ?? "", FromIp = parse.GetValue(get("--from-ip")) ?? "",
            To = parse.GetValue(get("--to")) ?? "", ToLabels = parse.GetValue(get("--to-labels")) ?? "", ToIp = parse.GetValue(get("--to-ip")) ?? "",
            Port = parse.GetValue(get("--port")) ?? "", Protocol = parse.GetValue(get("--protocol")) ?? "",
        };
        try
        {
            NetworkPolicyJson.ParseRequest(request.From, request.FromLabels, request.FromIp, request.To, request.ToLabels, request.ToIp, request.Port, request.Protocol);
            return (parse, request, null);
        }
        catch (ArgumentException e)
        {
            return (parse, request, e.Message);
        }
    }

    [Fact]
    public void ExplainTakesPodsLabelsAddressesAPortWithItsProtocolAndJsonOutput()
    {
        var (_, request, error) = Explain("--from", "shop/client", "--to", "shop/web", "--port", "80/TCP", "-o", "json");
        Assert.Null(error);
        Assert.Equal("shop/client", request!.From);
        Assert.Equal("80/TCP", request.Port);

        var (from, to, protocol, port) = NetworkPolicyJson.ParseRequest(null, "app=client,tier=front", null, null, null, "10.0.0.1", "53", "udp");
        var labels = Assert.IsType<ExplainPeer.Labels>(from);
        Assert.Equal("front", labels.Values["tier"]);
        Assert.Equal(IPAddress.Parse("10.0.0.1"), Assert.IsType<ExplainPeer.Address>(to).Ip);
        Assert.Equal((byte)17, protocol);
        Assert.Equal((ushort)53, port);
    }

    [Theory]
    [InlineData("--from shop/client --port 80/TCP", "--to")] // no destination
    [InlineData("--from shop/client --to shop/web --to-ip 10.0.0.1 --port 80", "several")]
    [InlineData("--from shop --to shop/web --port 80", "NAMESPACE/POD")]
    [InlineData("--from shop/a --to-ip 10.0.0.300 --port 80", "not an IPv4 or IPv6 address")]
    [InlineData("--from shop/a --to shop/b --port 80/TPC", "TPC")]
    [InlineData("--from shop/a --to shop/b --port 70000", "70000")]
    [InlineData("--from shop/a --to shop/b --port 80/UDP --protocol TCP", "disagree")]
    [InlineData("--from-labels app --to shop/b --port 80", "key=value")]
    [InlineData("--from shop/a --to shop/b", "--port")]
    public void ABadExplainCommandLineNamesTheOptionAndTheFix(string args, string expected)
    {
        var (_, _, error) = Explain(args.Split(' '));
        Assert.NotNull(error);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void ThePolicyListTableShowsEachNetworkPolicyAndEachSourceError()
    {
        var engine = new NetworkPolicyEngine(NetworkPolicySettings.Default, "node-1");
        engine.SetSource("/p/a.yaml", "file", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-all\n  namespace: shop\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n");
        engine.SetSource("/p/b.yaml", "file", "kind: NetworkPolicy\n");
        var lines = Palisade.Cli.NetworkPolicyCommands.Table(NetworkPolicyJson.Status(engine, "/p")).ToList();
        Assert.Contains(lines, l => l.Contains("shop/deny-all", StringComparison.Ordinal) && l.Contains("validated", StringComparison.Ordinal) && l.Contains("/p/a.yaml", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("error: /p/b.yaml", StringComparison.Ordinal));
        Assert.Empty(Palisade.Cli.NetworkPolicyCommands.Table(NetworkPolicyJson.Status(new NetworkPolicyEngine(NetworkPolicySettings.Default, "n"), null)));
    }
}

public sealed class ExplainFuzzTargetTests
{
    [Fact]
    public void TheExplainFuzzTargetGivesAVerdictOnItsSeedsAndOnMixedUpRequests()
    {
        var target = Palisade.Fuzz.FuzzTargets.All["explain"];
        var inputs = target.Seeds().Select(s => s.Bytes).ToList();
        // Every seed's lines shuffled between fields: each combination must be read or refused with a reason.
        var rng = new Random(17);
        var pieces = inputs.SelectMany(b => Encoding.UTF8.GetString(b).Split('\n')).Distinct().ToArray();
        for (var i = 0; i < 500; i++)
        {
            inputs.Add(Encoding.UTF8.GetBytes(string.Join('\n', Enumerable.Range(0, 8).Select(_ => pieces[rng.Next(pieces.Length)]))));
        }
        Assert.All(inputs, input => Assert.Null(Record.Exception(() => target.Run(input))));
    }
}
