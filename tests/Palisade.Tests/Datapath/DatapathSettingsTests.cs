using System.Net;
using Palisade.Agent.Configuration;

namespace Palisade.Tests.Datapath;

public sealed class DatapathSettingsTests
{
    private static AgentOptions Resolve(params (string Key, string Value)[] values) =>
        AgentConfiguration.Resolve([new SettingsLayer("command line", values.ToDictionary(v => v.Key, v => v.Value))]);

    private static string Errors(params (string Key, string Value)[] values) =>
        string.Join("\n", Assert.Throws<AgentConfigurationException>(() => Resolve(values)).Errors);

    [Fact]
    public void PodNetworkingIsOffWithoutAPodCidr()
    {
        Assert.Null(Resolve().Datapath);
    }

    [Fact]
    public void APodCidrTurnsItOnWithTheDocumentedDefaults()
    {
        var datapath = Resolve(("pod-cidr", "10.244.1.0/24"), ("pod-cidr-v6", "fd00:244:1::/64")).Datapath!;

        Assert.Equal([IPNetwork.Parse("10.244.1.0/24"), IPNetwork.Parse("fd00:244:1::/64")], datapath.PodCidrs);
        Assert.Equal("/var/lib/palisade/ipam", datapath.IpamStateDir);
        Assert.Equal("/var/run/palisade/endpoint.sock", datapath.EndpointSocket);
        Assert.Equal("/etc/cni/net.d", datapath.CniConfDir);
        Assert.Equal("palisade_host", datapath.HostDevice);
        Assert.Equal(1500, datapath.Mtu);
    }

    [Fact]
    public void IdentitiesAreClusterWideWithTheKubernetesApiAndLocalWithout()
    {
        var cluster = Resolve(("pod-cidr", "10.244.1.0/24"), ("kubernetes", "true")).Datapath!;
        var standalone = Resolve(("pod-cidr", "10.244.1.0/24"), ("kubernetes", "false")).Datapath!;
        var forcedLocal = Resolve(("pod-cidr", "10.244.1.0/24"), ("kubernetes", "true"), ("identity-allocation-mode", "local")).Datapath!;

        Assert.Equal(IdentityAllocationMode.Crd, cluster.IdentityAllocation);
        Assert.Equal(TimeSpan.FromMinutes(15), cluster.IdentityGcInterval);
        Assert.Equal(TimeSpan.FromMinutes(30), cluster.IdentityHeartbeatTimeout);
        Assert.Equal(IdentityAllocationMode.Local, standalone.IdentityAllocation);
        Assert.Equal(IdentityAllocationMode.Local, forcedLocal.IdentityAllocation);
    }

    [Fact]
    public void BadIdentitySettingsSayWhatIsWrong()
    {
        Assert.Contains("identity-allocation-mode: crd (from command line) needs the Kubernetes API", Errors(("pod-cidr", "10.244.1.0/24"), ("kubernetes", "false"), ("identity-allocation-mode", "crd")), StringComparison.Ordinal);
        Assert.Contains("identity-allocation-mode: \"etcd\" (from command line) is not one of auto, crd, local", Errors(("pod-cidr", "10.244.1.0/24"), ("identity-allocation-mode", "etcd")), StringComparison.Ordinal);
        Assert.Contains("identity-heartbeat-timeout: 10s is shorter than a minute", Errors(("pod-cidr", "10.244.1.0/24"), ("identity-heartbeat-timeout", "10s")), StringComparison.Ordinal);
        Assert.Contains("identity-gc-interval: \"soon\" (from command line) is not a duration", Errors(("pod-cidr", "10.244.1.0/24"), ("identity-gc-interval", "soon")), StringComparison.Ordinal);
    }

    [Fact]
    public void PodCidrTakesAListOfBothFamilies()
    {
        Assert.Equal(2, Resolve(("pod-cidr", "10.244.1.0/24, fd00:244:1::/64")).Datapath!.PodCidrs.Count);
    }

    [Fact]
    public void BadPodCidrsSayWhatIsWrong()
    {
        Assert.Contains("\"10.244.1.5/24\" (from command line) is not a CIDR (its host bits are not zero: the network is 10.244.1.0/24)", Errors(("pod-cidr", "10.244.1.5/24")), StringComparison.Ordinal);
        Assert.Contains("is a second IPv4 pod CIDR besides 10.244.1.0/24", Errors(("pod-cidr", "10.244.1.0/24,10.244.2.0/24")), StringComparison.Ordinal);
        Assert.Contains("too small", Errors(("pod-cidr", "10.244.1.0/31")), StringComparison.Ordinal);
        Assert.Contains("is IPv4. Fix: put IPv4 pod CIDRs in pod-cidr", Errors(("pod-cidr-v6", "10.244.1.0/24")), StringComparison.Ordinal);
        Assert.Contains("pod-mtu: \"1000\" (from command line) must be a whole number from 1280 to 65535 (IPv6 needs 1280)", Errors(("pod-cidr-v6", "fd00::/64"), ("pod-mtu", "1000")), StringComparison.Ordinal);
        Assert.Contains("datapath-host-device: \"a-name-much-too-long\"", Errors(("pod-cidr", "10.244.1.0/24"), ("datapath-host-device", "a-name-much-too-long")), StringComparison.Ordinal);
        Assert.Contains("ipam-state-dir: \"relative/dir\" (from command line) must be an absolute path", Errors(("pod-cidr", "10.244.1.0/24"), ("ipam-state-dir", "relative/dir")), StringComparison.Ordinal);
    }

    [Fact]
    public void RemoteNodesAreParsedAndCheckedAgainstOurCidr()
    {
        var datapath = Resolve(("pod-cidr", "10.244.1.0/24"), ("remote-nodes", "node-b@192.168.1.12=10.244.2.0/24; node-c@192.168.1.13=10.244.3.0/24,10.244.4.0/24\nnode-d6@fd00::13=fd00:244:4::/64")).Datapath!;

        Assert.Equal(["node-b", "node-c", "node-d6"], datapath.RemoteNodes.Select(n => n.Name));
        Assert.Equal(IPAddress.Parse("192.168.1.13"), datapath.RemoteNodes[1].NodeAddress);
        Assert.Equal(2, datapath.RemoteNodes[1].PodCidrs.Count);

        Assert.Contains("is not NAME@NODE-ADDRESS=CIDR[,CIDR]", Errors(("pod-cidr", "10.244.1.0/24"), ("remote-nodes", "node-b 192.168.1.12")), StringComparison.Ordinal);
        Assert.Contains("node node-b's pod CIDR 10.244.1.0/25 overlaps this node's", Errors(("pod-cidr", "10.244.1.0/24"), ("remote-nodes", "node-b@192.168.1.12=10.244.1.0/25")), StringComparison.Ordinal);
        Assert.Contains("is not of the node address's family", Errors(("pod-cidr", "10.244.1.0/24"), ("remote-nodes", "node-b@192.168.1.12=fd00:1::/64")), StringComparison.Ordinal);
        Assert.Contains("remote-nodes is set but no pod CIDR is", Errors(("remote-nodes", "node-b@192.168.1.12=10.244.2.0/24")), StringComparison.Ordinal);
    }
}
