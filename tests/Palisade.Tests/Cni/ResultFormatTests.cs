using System.Text;
using System.Text.Json.Nodes;
using Palisade.Cni;
using Palisade.Cni.Api;

namespace Palisade.Tests.Cni;

/// <summary>The agent's result printed in the shape of each CNI version a runtime may ask for.</summary>
public sealed class ResultFormatTests
{
    private static JsonNode Print(Result result, string version) =>
        JsonNode.Parse(Encoding.UTF8.GetString(ResultFormat.Serialize(ResultFormat.ToJson(result, version))))!;

    [Theory]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void OneDotXHasInterfaceMtuAndNoIpVersion(string version)
    {
        var json = Print(FakeEndpointApi.SampleResult(), version);

        Assert.Equal(version, (string?)json["cniVersion"]);
        Assert.Equal("""{"name":"lxc1a2b3c","mac":"aa:bb:cc:00:00:01"}""", json["interfaces"]![0]!.ToJsonString());
        Assert.Equal("""{"name":"eth0","mac":"aa:bb:cc:00:00:02","mtu":1500,"sandbox":"/run/netns/pod"}""", json["interfaces"]![1]!.ToJsonString());
        Assert.Equal("""{"interface":1,"address":"10.200.0.5/24","gateway":"10.200.0.1"}""", json["ips"]![0]!.ToJsonString());
        Assert.Equal("""[{"dst":"0.0.0.0/0","gw":"10.200.0.1"},{"dst":"::/0"}]""", json["routes"]!.ToJsonString());
        Assert.Null(json["dns"]);
    }

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    public void ZeroDotXHasAVersionPerIpAndNoInterfaceMtu(string version)
    {
        var json = Print(FakeEndpointApi.SampleResult(), version);

        Assert.Equal(version, (string?)json["cniVersion"]);
        Assert.Equal("""{"name":"eth0","mac":"aa:bb:cc:00:00:02","sandbox":"/run/netns/pod"}""", json["interfaces"]![1]!.ToJsonString());
        Assert.Equal("""{"version":"4","interface":1,"address":"10.200.0.5/24","gateway":"10.200.0.1"}""", json["ips"]![0]!.ToJsonString());
        Assert.Equal("""{"version":"6","interface":1,"address":"fd00:200::5/64","gateway":"fd00:200::1"}""", json["ips"]![1]!.ToJsonString());
    }

    [Fact]
    public void AnIpWithoutInterfaceAndEmptyListsAreLeftOut()
    {
        var json = Print(new Result { Ips = { new IpConfig { Address = "10.0.0.2/32", Interface = -1 } } }, "1.1.0");

        Assert.Equal("""{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.2/32"}]}""", json.ToJsonString());
    }

    [Fact]
    public void DnsIsPrintedWhenSet()
    {
        var result = FakeEndpointApi.SampleResult();
        result.Dns = new Dns { Nameservers = { "10.96.0.10" }, Search = { "svc.cluster.local" } };

        var json = Print(result, "0.4.0");

        Assert.Equal("""{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]}""", json["dns"]!.ToJsonString());
    }

    [Fact]
    public void AChainedAddAppendsOursAfterThePreviousResult()
    {
        var previous = new Result
        {
            Interfaces = { new Interface { Name = "tap0" } },
            Ips = { new IpConfig { Address = "192.168.0.2/24", Interface = 0 } },
        };

        var merged = ResultFormat.Merge(previous, FakeEndpointApi.SampleResult());

        Assert.Equal(["tap0", "lxc1a2b3c", "eth0"], merged.Interfaces.Select(i => i.Name));
        Assert.Equal([0, 2, 2], merged.Ips.Select(i => i.Interface));
        Assert.Single(previous.Interfaces);
    }

    [Fact]
    public void APrevResultReadBackPrintsTheSame()
    {
        var printed = Encoding.UTF8.GetString(ResultFormat.Serialize(ResultFormat.ToJson(FakeEndpointApi.SampleResult(), "0.4.0")));
        var config = $$"""{"cniVersion":"0.4.0","name":"n","type":"palisade-cni","prevResult":{{printed}}}""";

        var call = CniCall.Parse(CniCallTests.Env("CHECK"), Encoding.UTF8.GetBytes(config));

        Assert.Equal(FakeEndpointApi.SampleResult().Ips, call.Config.PrevResult!.Ips);
        Assert.Equal(FakeEndpointApi.SampleResult().Routes, call.Config.PrevResult.Routes);
    }
}
