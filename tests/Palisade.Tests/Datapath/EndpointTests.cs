using System.Net;
using Palisade.Cni.Api;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;

namespace Palisade.Tests.Datapath;

public sealed class EndpointTests
{
    private static Request Add(string container, string ifname = "eth0", string netns = "/var/run/netns/test", string? ns = "shop", string? pod = "web-1", params (string, string)[] labels)
    {
        var add = new AddRequest { Attachment = new Attachment { ContainerId = container, Ifname = ifname }, Netns = netns, NetworkName = "palisade", CniVersion = "1.1.0" };
        if (ns is not null)
        {
            add.Args["K8S_POD_NAMESPACE"] = ns;
        }
        if (pod is not null)
        {
            add.PodName = pod;
        }
        foreach (var (k, v) in labels)
        {
            add.Labels[k] = v;
        }
        return new Request { Add = add };
    }

    private static Request Del(string container, string ifname = "eth0") =>
        new() { Del = new DelRequest { Attachment = new Attachment { ContainerId = container, Ifname = ifname } } };

    private static Request Check(string container) =>
        new() { Check = new CheckRequest { Attachment = new Attachment { ContainerId = container, Ifname = "eth0" } } };

    [Fact]
    public void AddReturnsTheCniResultAndInstallsTheEndpoint()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir);

        var response = node.Api.Handle(Add("c1", labels: ("app", "web")));

        Assert.Null(response.Error);
        var result = response.Result;
        Assert.Equal(2, result.Interfaces.Count);
        Assert.Equal(EndpointNames.HostInterface(new AttachmentId("c1", "eth0")), result.Interfaces[0].Name);
        Assert.StartsWith("pal", result.Interfaces[0].Name, StringComparison.Ordinal);
        Assert.True(result.Interfaces[0].Name.Length <= 15);
        Assert.Equal("eth0", result.Interfaces[1].Name);
        Assert.Equal("/var/run/netns/test", result.Interfaces[1].Sandbox);
        Assert.Equal(["10.214.0.2/32", "fd00:214::2/128"], result.Ips.Select(i => i.Address));
        Assert.Equal(["10.214.0.1", "fd00:214::1"], result.Ips.Select(i => i.Gateway));
        Assert.All(result.Ips, ip => Assert.Equal(1, ip.Interface));
        Assert.Equal(["0.0.0.0/0", "::/0"], result.Routes.Select(r => r.Dst));
        var endpoint = Assert.Single(node.Datapath.Installed.Values);
        Assert.Equal("shop", endpoint.PodNamespace);
        Assert.Equal("web-1", endpoint.PodName);
        Assert.Equal("shop", endpoint.NamespaceLabels["kubernetes.io/metadata.name"]);
        Assert.True(endpoint.Identity >= 256);
        Assert.Equal(endpoint, node.Endpoints.ByAddress(IPAddress.Parse("10.214.0.2")));
        Assert.Equal(endpoint, node.Endpoints.ById(endpoint.Id));
    }

    [Fact]
    public void AddOfAnExistingAttachmentIsAnErrorThatSaysSo()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir);
        node.Api.Handle(Add("c1"));

        var response = node.Api.Handle(Add("c1"));

        Assert.Equal(ErrorCodes.AttachmentExists, response.Error.Code);
        Assert.Contains("container c1 has an endpoint on eth0 already", response.Error.Msg, StringComparison.Ordinal);
        Assert.Single(node.Ipam.Allocations);
    }

    [Fact]
    public void ADatapathFailureRollsBackEverything()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir, datapath: new FakeDatapath { FailInstall = new InvalidOperationException("map full") });

        var response = node.Api.Handle(Add("c1", labels: ("app", "web")));

        Assert.Equal(ErrorCodes.DatapathFailed, response.Error.Code);
        Assert.Contains("map full", response.Error.Msg, StringComparison.Ordinal);
        Assert.Empty(node.Ipam.Allocations);
        Assert.Empty(node.Interfaces.Links);
        Assert.Equal(0, node.Endpoints.Identities.Count);
        Assert.Empty(node.Endpoints.All);
        Assert.Empty(Directory.GetFiles(dir.Sub("endpoints/registry")));
    }

    [Fact]
    public void AnInterfaceFailureReleasesTheAddresses()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir, new FakeInterfaces { FailCreate = new Palisade.Datapath.Netlink.NetlinkException("RTM_NEWLINK create veth", "palx", 17) });

        var response = node.Api.Handle(Add("c1"));

        Assert.Equal(ErrorCodes.InterfaceSetupFailed, response.Error.Code);
        Assert.Contains("EEXIST", response.Error.Msg, StringComparison.Ordinal);
        Assert.Empty(node.Ipam.Allocations);
    }

    [Fact]
    public void BadEnvironmentNamesTheVariable()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir);

        Assert.Contains("CNI_IFNAME \"this-name-is-far-too-long\"", node.Api.Handle(Add("c1", ifname: "this-name-is-far-too-long")).Error.Msg, StringComparison.Ordinal);
        Assert.Contains("CNI_NETNS is empty", node.Api.Handle(Add("c1", netns: "")).Error.Msg, StringComparison.Ordinal);
        Assert.Contains("CNI_CONTAINERID is empty", node.Api.Handle(Add("")).Error.Msg, StringComparison.Ordinal);
        Assert.Equal(ErrorCodes.InvalidConfig, node.Api.Handle(new Request()).Error.Code);
    }

    [Fact]
    public void DelReleasesEverythingAndIsIdempotent()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir);
        node.Api.Handle(Add("c1"));
        var id = Assert.Single(node.Endpoints.All).Id;

        Assert.Null(node.Api.Handle(Del("c1")).Error);
        Assert.Null(node.Api.Handle(Del("c1")).Error);
        Assert.Null(node.Api.Handle(Del("never-added")).Error);

        Assert.Empty(node.Endpoints.All);
        Assert.Empty(node.Ipam.Allocations);
        Assert.Empty(node.Interfaces.Links);
        Assert.Contains(id, node.Datapath.Removed);
        Assert.Equal(0, node.Endpoints.Identities.Count);
        Assert.Null(node.Endpoints.ByAddress(IPAddress.Parse("10.214.0.2")));
    }

    [Fact]
    public void CheckNamesEachProblem()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir);
        node.Api.Handle(Add("c1"));
        Assert.Null(node.Api.Handle(Check("c1")).Error);

        node.Interfaces.Problems.Add("interface eth0 in /var/run/netns/test lacks its address 10.214.0.2/32");
        node.Datapath.Missing = "no tc program on ingress";
        var broken = node.Api.Handle(Check("c1")).Error;

        Assert.Equal(ErrorCodes.EndpointBroken, broken.Code);
        Assert.Contains("lacks its address 10.214.0.2/32", broken.Msg, StringComparison.Ordinal);
        Assert.Contains("BPF datapath: no tc program on ingress", broken.Msg, StringComparison.Ordinal);
        Assert.Equal(ErrorCodes.UnknownContainer, node.Api.Handle(Check("nope")).Error.Code);
    }

    [Fact]
    public void StatusIsReadyOrFiftyWithTheReason()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir);
        var status = new Request { Status = new StatusRequest { NetworkName = "palisade" } };
        Assert.Null(node.Api.Handle(status).Error);

        node.Endpoints.NotReadyReason = "restoring endpoints";

        var error = node.Api.Handle(status).Error;
        Assert.Equal(50u, error.Code);
        Assert.Contains("restoring endpoints", error.Msg, StringComparison.Ordinal);
    }

    [Fact]
    public void GcReleasesAttachmentsTheRuntimeNoLongerHasAndLeakedAddresses()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir);
        node.Api.Handle(Add("keep"));
        node.Api.Handle(Add("gone"));
        node.Ipam.Allocate(new AttachmentId("leaked", "eth0")); // a crash between IPAM and the endpoint
        var gc = new GcRequest { NetworkName = "palisade" };
        gc.ValidAttachments.Add(new Attachment { ContainerId = "keep", Ifname = "eth0" });

        var response = node.Api.Handle(new Request { Gc = gc });

        Assert.Null(response.Error);
        Assert.Equal(2u, response.Released);
        Assert.Equal("keep", Assert.Single(node.Endpoints.All).ContainerId);
        Assert.Equal("keep", Assert.Single(node.Ipam.Allocations).Key.ContainerId);
    }

    [Fact]
    public void FiftyConcurrentAddsAllSucceedWithDistinctAddressesAndIds()
    {
        using var dir = new TempDirectory();
        var node = new EndpointNode(dir);

        var responses = new Response[50];
        Parallel.For(0, 50, new ParallelOptions { MaxDegreeOfParallelism = 50 }, i => responses[i] = node.Api.Handle(Add($"c{i}")));

        Assert.All(responses, r => Assert.Null(r.Error));
        Assert.Equal(50, responses.Select(r => r.Result.Ips[0].Address).Distinct().Count());
        Assert.Equal(50, responses.Select(r => r.Result.Ips[1].Address).Distinct().Count());
        Assert.Equal(50, node.Endpoints.All.Select(e => e.Id).Distinct().Count());
        Assert.Single(node.Endpoints.All.Select(e => e.Identity).Distinct()); // same labels, one identity
    }

    [Fact]
    public void ARestartAdoptsWhatExistsDropsWhatVanishedAndReplaysQueuedDels()
    {
        using var dir = new TempDirectory();
        var interfaces = new FakeInterfaces();
        var first = new EndpointNode(dir, interfaces);
        var withPorts = Add("alive", labels: ("app", "web"));
        withPorts.Add.NamedPorts.Add(new NamedPort { Name = "http", Protocol = "TCP", Port = 8080 });
        first.Api.Handle(withPorts);
        first.Api.Handle(Add("vanished"));
        first.Api.Handle(Add("deleted-while-down"));
        var alive = first.Endpoints.Find(new AttachmentId("alive", "eth0"))!;
        interfaces.Links.TryRemove(EndpointNames.HostInterface(new AttachmentId("vanished", "eth0")), out _);
        DelQueue.Enqueue(dir.Sub("del-queue"), new DelRequest { Attachment = new Attachment { ContainerId = "deleted-while-down", Ifname = "eth0" } });

        var second = new EndpointNode(dir, interfaces);
        var report = second.Endpoints.Restore();

        Assert.Equal(["alive", "deleted-while-down"], report.Adopted.Select(e => e.ContainerId).Order());
        Assert.Contains(report.Dropped, d => d.Contains("vanished/eth0", StringComparison.Ordinal));
        Assert.Equal(["deleted-while-down/eth0"], report.Replayed);
        Assert.Empty(report.Problems);
        var adopted = Assert.Single(second.Endpoints.All);
        Assert.Equal(alive.Id, adopted.Id);
        Assert.Equal(alive.Identity, adopted.Identity);
        Assert.Equal(alive.IPv4, adopted.IPv4);
        Assert.Equal([new ContainerPort("http", "TCP", 8080)], adopted.NamedPorts);
        Assert.Equal(200, adopted.HostIfIndex);
        Assert.Equal(adopted, second.Datapath.Installed[alive.Id]);
        Assert.Equal("alive", Assert.Single(second.Ipam.Allocations).Key.ContainerId);
        Assert.Empty(DelQueue.Pending(dir.Sub("del-queue")));
        var next = second.Api.Handle(Add("new"));
        Assert.Null(next.Error);
        Assert.NotEqual(alive.IPv4 + "/32", next.Result.Ips[0].Address);
        Assert.NotEqual(alive.Id, second.Endpoints.Find(new AttachmentId("new", "eth0"))!.Id);
    }

    [Fact]
    public void TheConflistNamesThePluginTheSocketAndTheQueue()
    {
        using var dir = new TempDirectory();

        var path = CniConflist.Write(dir.Path, "/run/x/endpoint.sock", "/run/x/queue");

        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
        Assert.Equal("05-palisade.conflist", System.IO.Path.GetFileName(path));
        Assert.Equal(CniConflist.DefaultVersion, json.RootElement.GetProperty("cniVersion").GetString());
        Assert.Equal("1.0.0", CniConflist.DefaultVersion); // what podman 4 and containerd 1.6 read
        Assert.Equal("palisade", json.RootElement.GetProperty("name").GetString());
        var plugin = json.RootElement.GetProperty("plugins")[0];
        Assert.Equal("palisade-cni", plugin.GetProperty("type").GetString());
        Assert.Equal("/run/x/endpoint.sock", plugin.GetProperty("socket").GetString());
        Assert.Equal("/run/x/queue", plugin.GetProperty("delQueueDir").GetString());
    }
}
