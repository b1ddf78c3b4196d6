using System.Text;
using Palisade.Cni;

namespace Palisade.Tests.Cni;

/// <summary>What palisade-cni accepts from a runtime (environment, CNI_ARGS, configuration) and the spec's code for what it refuses.</summary>
public sealed class CniCallTests
{
    internal const string Config = """{"cniVersion":"1.1.0","name":"palisade","type":"palisade-cni"}""";

    internal static Func<string, string?> Env(string command, string? args = null, string containerId = "c0ffee01", string netns = "/run/netns/pod1", string ifname = "eth0", string? path = "/opt/cni/bin")
    {
        var env = new Dictionary<string, string?>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_NETNS"] = netns,
            ["CNI_IFNAME"] = ifname,
            ["CNI_ARGS"] = args,
            ["CNI_PATH"] = path,
        };
        return name => env.GetValueOrDefault(name);
    }

    private static CniCall Parse(Func<string, string?> env, string config = Config) => CniCall.Parse(env, Encoding.UTF8.GetBytes(config));

    private static CniException Refused(Func<string, string?> env, string config = Config) => Assert.Throws<CniException>(() => Parse(env, config));

    [Fact]
    public void AnAddCarriesTheAttachmentPodAndLabelsToTheAgent()
    {
        var call = Parse(Env("ADD", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=1234;PALISADE_LABELS=app=web,tier=front;FOO=bar"),
            """{"cniVersion":"1.0.0","name":"palisade","type":"palisade-cni","mtu":1400,"socket":"/run/p/e.sock"}""");

        var add = call.ToRequest().Add;

        Assert.Equal(("c0ffee01", "eth0", "/run/netns/pod1"), (add.Attachment.ContainerId, add.Attachment.Ifname, add.Netns));
        Assert.Equal(("palisade", "1.0.0", 1400u), (add.NetworkName, add.CniVersion, add.Mtu));
        Assert.Equal(("shop", "web-0", "1234"), (add.PodNamespace, add.PodName, add.PodUid));
        Assert.Equal(new Dictionary<string, string> { ["app"] = "web", ["tier"] = "front" }, add.Labels);
        Assert.Equal("bar", add.Args["FOO"]);
        Assert.Equal("app=web,tier=front", add.Args["PALISADE_LABELS"]);
        Assert.Equal("/run/p/e.sock", call.Config.Socket);
        Assert.Contains("\"mtu\":1400", add.NetworkConfig.ToStringUtf8(), StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultsAreTheAgentsSocketAndQueue()
    {
        var call = Parse(Env("DEL"));

        Assert.Equal(Palisade.Cni.Api.EndpointWire.DefaultSocketPath, call.Config.Socket);
        Assert.Equal(Palisade.Cni.Api.DelQueue.DefaultDirectory, call.Config.DelQueueDir);
    }

    [Fact]
    public void ArgsLabelsOverrideThoseOfCniArgs()
    {
        var call = Parse(Env("ADD", "PALISADE_LABELS=app=web,tier=front"),
            """{"cniVersion":"1.1.0","name":"palisade","type":"palisade-cni","args":{"cni":{"labels":[{"key":"tier","value":"back"},{"key":"team","value":"a"}]}}}""");

        Assert.Equal(new Dictionary<string, string> { ["app"] = "web", ["tier"] = "back", ["team"] = "a" }, call.ToRequest().Add.Labels);
    }

    [Theory]
    [InlineData("ADD", "CNI_CONTAINERID", "", "ADD: CNI_CONTAINERID is not set")]
    [InlineData("ADD", "CNI_NETNS", "", "ADD: CNI_NETNS is not set")]
    [InlineData("CHECK", "CNI_IFNAME", "", "CHECK: CNI_IFNAME is not set")]
    [InlineData("DEL", "CNI_CONTAINERID", "-bad", "DEL: CNI_CONTAINERID \"-bad\" must start with a letter or digit")]
    [InlineData("ADD", "CNI_IFNAME", "averyveryverylongname", "ADD: CNI_IFNAME \"averyveryverylongname\" is longer than 15 characters")]
    [InlineData("ADD", "CNI_IFNAME", "eth/0", "ADD: CNI_IFNAME \"eth/0\" must not contain '/'")]
    [InlineData("ADD", "CNI_NETNS", "netns/pod", "ADD: CNI_NETNS \"netns/pod\" is not an absolute path")]
    [InlineData("GC", "CNI_PATH", "", "GC: CNI_PATH is not set")]
    public void ABadEnvironmentIsCode4NamingTheVariable(string command, string variable, string value, string expected)
    {
        var env = Env(command);
        var e = Refused(name => name == variable ? value : env(name));

        Assert.Equal(4u, e.Code);
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryMissingVariableIsNamedInOneError()
    {
        var e = Refused(name => name == "CNI_COMMAND" ? "ADD" : null);

        Assert.Equal("ADD: CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS are not set", e.Message);
        Assert.Contains("CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME", e.Details, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, "CNI_COMMAND is not set")]
    [InlineData("add", "CNI_COMMAND: \"add\" is not a CNI command")]
    [InlineData("REMOVE", "CNI_COMMAND: \"REMOVE\" is not a CNI command")]
    public void AnUnknownCommandIsCode4(string? command, string expected)
    {
        var e = Refused(name => name == "CNI_COMMAND" ? command : "x");

        Assert.Equal((4u, expected), (e.Code, e.Message));
    }

    [Fact]
    public void DelNeedsNoNetnsAndIgnoresCniArgs()
    {
        var call = Parse(Env("DEL", args: "not-a-pair", netns: ""));

        Assert.Equal("", call.ToDel().Netns);
    }

    [Theory]
    [InlineData("K8S_POD_NAME", "CNI_ARGS: pair \"K8S_POD_NAME\" is not KEY=VALUE")]
    [InlineData("=x", "CNI_ARGS: pair \"=x\" is not KEY=VALUE")]
    [InlineData("FOO=1;BAR=2", "CNI_ARGS: unknown arguments FOO, BAR")]
    [InlineData("IgnoreUnknown=maybe", "CNI_ARGS: IgnoreUnknown=\"maybe\" is not a boolean")]
    [InlineData("PALISADE_LABELS=app", "CNI_ARGS: PALISADE_LABELS: \"app\" is not KEY=VALUE")]
    [InlineData("PALISADE_LABELS=app=web,app=db", "CNI_ARGS: PALISADE_LABELS: label app is given twice")]
    [InlineData("PALISADE_NAMED_PORTS=http", "CNI_ARGS: PALISADE_NAMED_PORTS: \"http\" is not NAME=PORT[/PROTOCOL]")]
    [InlineData("PALISADE_NAMED_PORTS=Http=80", "CNI_ARGS: PALISADE_NAMED_PORTS: port name \"Http\": only lower-case letters, digits and '-' are allowed")]
    [InlineData("PALISADE_NAMED_PORTS=a-very-long-port-name=80", "CNI_ARGS: PALISADE_NAMED_PORTS: port name \"a-very-long-port-name\": longer than 15 characters")]
    [InlineData("PALISADE_NAMED_PORTS=8080=80", "CNI_ARGS: PALISADE_NAMED_PORTS: port name \"8080\": it must contain a letter")]
    [InlineData("PALISADE_NAMED_PORTS=web--a=80", "CNI_ARGS: PALISADE_NAMED_PORTS: port name \"web--a\": no \"--\" and no '-' at either end")]
    [InlineData("PALISADE_NAMED_PORTS=http=0", "CNI_ARGS: PALISADE_NAMED_PORTS: port \"0\" of http is not a number from 1 to 65535")]
    [InlineData("PALISADE_NAMED_PORTS=http=+80", "CNI_ARGS: PALISADE_NAMED_PORTS: port \"+80\" of http is not a number from 1 to 65535")]
    [InlineData("PALISADE_NAMED_PORTS=http=80/ICMP", "CNI_ARGS: PALISADE_NAMED_PORTS: protocol \"ICMP\" of http is not TCP, UDP or SCTP")]
    [InlineData("PALISADE_NAMED_PORTS=http=80,http=81/tcp", "CNI_ARGS: PALISADE_NAMED_PORTS: port name http/TCP is given twice")]
    [InlineData("PALISADE_LABELS=app=-web", "CNI_ARGS: PALISADE_LABELS: label \"app=-web\": value \"-web\" is not a valid label value")]
    [InlineData("PALISADE_LABELS=Example.COM/app=web", "CNI_ARGS: PALISADE_LABELS: label \"Example.COM/app=web\": prefix \"Example.COM\" is not a DNS subdomain")]
    public void BadCniArgsAreCode4NamingThePair(string args, string expected)
    {
        var e = Refused(Env("ADD", args));

        Assert.Equal((4u, expected), (e.Code, e.Message));
    }

    [Fact]
    public void NamedPortsGoToTheAgentWithTcpAsTheDefaultProtocol()
    {
        var call = Parse(Env("ADD", "PALISADE_NAMED_PORTS=http=8080,dns=53/udp,dns=53/TCP"));

        var ports = call.ToRequest().Add.NamedPorts.Select(p => (p.Name, p.Protocol, p.Port));
        Assert.Equal([("http", "TCP", 8080u), ("dns", "UDP", 53u), ("dns", "TCP", 53u)], ports);
    }

    [Fact]
    public void CniArgsSplitAtTheFirstEqualsAndSkipEmptyPairs()
    {
        var args = CniArgs.Parse("K8S_POD_NAME=a=b;;PALISADE_LABELS=example.com/app=web,empty=;");

        Assert.Equal("a=b", args.PodName);
        Assert.Equal(new Dictionary<string, string> { ["example.com/app"] = "web", ["empty"] = "" }, args.Labels);
    }

    [Theory]
    [InlineData("", 6u, "no network configuration on stdin")]
    [InlineData("{\"cniVersion\":", 6u, "the network configuration is not valid JSON")]
    [InlineData("[1]", 6u, "the network configuration is a JSON array, not an object")]
    [InlineData("{\"name\":\"n\",\"type\":\"t\"}", 1u, "cniVersion is missing from the network configuration")]
    [InlineData("{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"type\":\"t\"}", 1u, "cniVersion: \"0.2.0\" is not supported by palisade-cni")]
    [InlineData("{\"cniVersion\":\"2.0.0\",\"name\":\"n\",\"type\":\"t\"}", 1u, "cniVersion: \"2.0.0\" is not supported by palisade-cni")]
    [InlineData("{\"cniVersion\":\"1.x\",\"name\":\"n\",\"type\":\"t\"}", 6u, "cniVersion: \"1.x\" is not a version (MAJOR.MINOR.PATCH)")]
    [InlineData("{\"cniVersion\":1,\"name\":\"n\",\"type\":\"t\"}", 6u, "cniVersion: 1 is a JSON number, not a string")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"type\":\"t\"}", 7u, "name is missing from the network configuration")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"my net\",\"type\":\"t\"}", 7u, "name: \"my net\" has characters a network name cannot have")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\"}", 7u, "type is missing from the network configuration")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"../x\"}", 7u, "type: \"../x\" is not a plugin file name")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"mtu\":\"1500\"}", 6u, "mtu: \"1500\" is a JSON string, not a number")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"mtu\":70000}", 7u, "mtu: 70000 is not a valid MTU")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"mtu\":1.5}", 7u, "mtu: 1.5 is not a valid MTU")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"socket\":\"agent.sock\"}", 7u, "socket: \"agent.sock\" is not an absolute path")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"delQueueDir\":\"q\"}", 7u, "delQueueDir: \"q\" is not an absolute path")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"ipam\":{\"type\":\"host-local\"}}", 2u, "ipam: {\"type\":\"host-local\"} is not supported")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"runtimeConfig\":[]}", 6u, "runtimeConfig: is a JSON array, not an object")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"dns\":{\"nameservers\":[\"dns.local\"]}}", 7u, "dns.nameservers: \"dns.local\" is not an IP address")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"prevResult\":{\"ips\":[{\"address\":\"10.0.0.5\"}]}}", 7u, "prevResult.ips[0].address: \"10.0.0.5\" is not an address in CIDR form")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"prevResult\":{\"interfaces\":[],\"ips\":[{\"address\":\"10.0.0.5/24\",\"interface\":0}]}}", 7u, "prevResult.ips[0].interface: 0 is past the end of interfaces (0)")]
    [InlineData("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\",\"args\":{\"cni\":{\"labels\":[{\"key\":\"a b\",\"value\":\"c\"}]}}}", 7u, "args.cni.labels[0]: label a b=c: name \"a b\" is not a valid label name")]
    public void ABadConfigurationIsTheSpecsCodeNamingTheKey(string config, uint code, string expected)
    {
        var e = Refused(Env("ADD"), config);

        Assert.Equal(code, e.Code);
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
        Assert.NotEmpty(e.Details);
    }

    [Fact]
    public void InvalidUtf8IsADecodeErrorNotACrash()
    {
        // Found by fuzz.sh cni: JsonDocument throws InvalidOperationException when such a string is read.
        var config = Encoding.UTF8.GetBytes(Config).Select(b => b == (byte)'l' ? (byte)0xfd : b).ToArray();

        var e = Assert.Throws<CniException>(() => CniCall.Parse(Env("ADD"), config));

        Assert.Equal((6u, "the network configuration is not valid UTF-8"), (e.Code, e.Message));
    }

    [Theory]
    [InlineData("CHECK", "0.3.1", 1u, "cniVersion \"0.3.1\" does not allow CHECK")]
    [InlineData("CHECK", "1.0.0", 7u, "CHECK: prevResult is missing from the network configuration")]
    [InlineData("STATUS", "1.0.0", 1u, "cniVersion \"1.0.0\" does not allow STATUS")]
    [InlineData("GC", "0.4.0", 1u, "cniVersion \"0.4.0\" does not allow GC")]
    [InlineData("GC", "1.1.0", 7u, "GC: cni.dev/valid-attachments is missing from the network configuration")]
    public void CommandsNewerThanTheConfigsVersionAreRefused(string command, string version, uint code, string expected)
    {
        var e = Refused(Env(command), $$"""{"cniVersion":"{{version}}","name":"n","type":"palisade-cni"}""");

        Assert.Equal((code, expected), (e.Code, e.Message));
    }

    [Fact]
    public void GcCarriesTheValidAttachments()
    {
        var call = Parse(Env("GC"), """{"cniVersion":"1.1.0","name":"n","type":"palisade-cni","cni.dev/valid-attachments":[{"containerID":"a1","ifname":"eth0"},{"containerID":"b2","ifname":"net1"}]}""");

        var gc = call.ToRequest().Gc;

        Assert.Equal(["a1/eth0", "b2/net1"], gc.ValidAttachments.Select(a => $"{a.ContainerId}/{a.Ifname}"));
    }

    [Fact]
    public void CheckCarriesThePrevResultOfAnyVersion()
    {
        var call = Parse(Env("CHECK"), """
            {"cniVersion":"0.4.0","name":"n","type":"palisade-cni","prevResult":{"cniVersion":"0.4.0",
             "interfaces":[{"name":"lxc1"},{"name":"eth0","sandbox":"/run/netns/pod1"}],
             "ips":[{"version":"4","address":"10.200.0.5/24","gateway":"10.200.0.1","interface":1}],
             "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.96.0.10"]}}}
            """);

        var prev = call.ToRequest().Check.PrevResult;

        Assert.Equal(["lxc1", "eth0"], prev.Interfaces.Select(i => i.Name));
        Assert.Equal(("10.200.0.5/24", "10.200.0.1", 1), (prev.Ips[0].Address, prev.Ips[0].Gateway, prev.Ips[0].Interface));
        Assert.Equal("0.0.0.0/0", prev.Routes[0].Dst);
        Assert.Equal("10.96.0.10", prev.Dns.Nameservers[0]);
    }

    [Fact]
    public void DelDoesNotJudgeItsPrevResult()
    {
        var call = Parse(Env("DEL"), """{"cniVersion":"1.1.0","name":"n","type":"palisade-cni","prevResult":{"ips":"garbage"}}""");

        Assert.Null(call.Config.PrevResult);
    }
}
