using System.Diagnostics;
using System.Globalization;
using System.Net;
using Palisade.Bpf;
using Palisade.Bpf.Probe;
using Palisade.Datapath;
using Palisade.Datapath.Flows;
using Palisade.Datapath.Sockets;
using Palisade.Events;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Flows;

/// <summary>
/// The whole chain that names the process of a flow, on real traffic between two network
/// namespaces: the socket-owner table filled from the connecting and the listening process, a
/// tc program on each side that writes flow records with the owner it looked up (as the
/// datapath's does), the shared ring buffer, the record router and the flow decoder.
/// </summary>
public sealed class FlowProcessTests : IDisposable
{
    private readonly List<Process> _processes = [];

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try
            {
                p.Kill();
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
    }

    [Fact]
    public void ATcpConnectionBetweenTwoNamespacesNamesTheClientOnItsSynAndTheServerOnItsSynAck()
    {
        Kernel.Require(KernelFeature.RawTracepoint, KernelFeature.Ringbuf, KernelFeature.TpBtf, KernelFeature.Sockops, KernelFeature.Tc,
            KernelFeature.CgroupSendmsg4, KernelFeature.CgroupSkb, KernelFeature.CgroupSock, KernelFeature.RdonlyCast);
        using var network = new TestNetwork();
        var netnsA = Inode(network.NamespaceA);
        var netnsB = Inode(network.NamespaceB);
        var client = Pod(11, "client", network.AddressA, netnsA);
        var server = Pod(12, "server", network.AddressB, netnsB);
        using var h = new SensorHarness();
        using var owners = new SocketOwnerSensor();
        owners.Start(h.Sensor.ProcessMap);
        var decoder = new FlowDecoder(new Directory(client, server), new SensorProcesses(h.Sensor), BootTime(), h.Hub.Publish);
        h.Sensor.AttachFlowConsumer(decoder);
        using var emitA = Emitter(h, owners, client, network.InterfaceA, network.NamespaceA);
        using var emitB = Emitter(h, owners, server, network.InterfaceB, network.NamespaceB);

        var listener = Start(network.NamespaceB, "listen", network.AddressB);
        var port = ReadPort(listener);
        var connector = Start(network.NamespaceA, "connect", port.ToString(CultureInfo.InvariantCulture), network.AddressB);
        var clientPort = ReadPort(connector);

        var syn = h.WaitFor<FlowEvent>(f => f.L4.DestinationPort == port && f.L4.Flags == TcpFlags.Syn, "the SYN's flow");
        Assert.Equal((uint)connector.Id, syn.Process?.Pid);
        Assert.EndsWith("/sockowner", syn.Process!.Binary, StringComparison.Ordinal);
        Assert.Equal($"connect {port} {network.AddressB}", syn.Process.Arguments);
        var exec = h.WaitForExec(e => e.Process.Pid == (uint)connector.Id && e.Process.Binary.EndsWith("/sockowner", StringComparison.Ordinal), "exec of the client");
        Assert.Equal(exec.Process.ExecId, syn.Process.ExecId);
        Assert.Equal(clientPort, syn.L4.SourcePort);
        Assert.Equal(new FlowIp(network.AddressA, network.AddressB, IpVersion.IPv4), syn.IP);
        Assert.Equal("client", syn.Source!.PodName);
        Assert.Equal("server", syn.Destination!.PodName);
        Assert.Equal(TrafficDirection.Egress, syn.TrafficDirection);
        Assert.Equal(FlowVerdict.Forwarded, syn.Verdict);
        Assert.Equal("TCP Flags: SYN", syn.Summary);

        var synAck = h.WaitFor<FlowEvent>(f => f.L4.SourcePort == port && f.L4.Flags == (TcpFlags.Syn | TcpFlags.Ack), "the SYN-ACK's flow");
        Assert.Equal((uint)listener.Id, synAck.Process?.Pid);
        Assert.Equal("server", synAck.Source!.PodName);
        Assert.Equal(0, decoder.Stats.Malformed);
        Assert.True(decoder.Stats.WithProcess >= 2);
        h.Sensor.DetachFlowConsumer();
    }

    private static BpfObject Emitter(SensorHarness h, SocketOwnerSensor owners, Endpoint endpoint, string ifname, string netns)
    {
        var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "flow_emit.bpf.o");
        try
        {
            obj.SetConstant("endpoint_netns", endpoint.NetnsInode);
            obj.SetConstant("endpoint_id", endpoint.Id);
            obj.SetConstant("endpoint_identity", endpoint.Identity);
            obj.Map("pal_process_events").ReuseFrom(h.Sensor.EventMap);
            obj.Map("pal_sock_owners").ReuseFrom(owners.OwnerMap);
            obj.Load();
            // The attachment goes with the namespace when the test network is removed.
            obj.Program("flow_emit").AttachTc(ifname, TcDirection.Egress, TestNetwork.NetnsPath(netns));
            return obj;
        }
        catch
        {
            obj.Dispose();
            throw;
        }
    }

    private static DateTimeOffset BootTime() =>
        DateTimeOffset.UtcNow - TimeSpan.FromTicks((long)(Palisade.Runtime.Processes.BootClock.NowBootNs() / 100));

    private static uint Inode(string netns) =>
        uint.Parse(Command.Check("stat", "-L", "-c", "%i", TestNetwork.NetnsPath(netns)).Trim(), CultureInfo.InvariantCulture);

    private static Endpoint Pod(uint id, string name, string address, uint netns) => new()
    {
        Id = id, ContainerId = $"c{id}", IfName = "eth0", Netns = $"/proc/{id}/ns/net", NetnsInode = netns, PodNamespace = "default", PodName = name,
        Identity = 1000 + id, HostIfName = $"lxc{id}", HostMac = new byte[6], PodMac = new byte[6], IPv4 = IPAddress.Parse(address),
    };

    private Process Start(string netns, params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", netns, Helpers.Path("sockowner"), .. args])
        {
            psi.ArgumentList.Add(a);
        }
        var p = Process.Start(psi)!;
        _processes.Add(p);
        return p;
    }

    private static ushort ReadPort(Process p)
    {
        var read = p.StandardOutput.ReadLineAsync();
        var line = read.Wait(TimeSpan.FromSeconds(30)) ? read.Result : throw new TimeoutException("sockowner did not answer");
        return ushort.TryParse(line, CultureInfo.InvariantCulture, out var port) && port != 0 ? port : throw new InvalidOperationException($"sockowner printed \"{line}\", not a port");
    }

    private sealed class Directory(params Endpoint[] endpoints) : IEndpointDirectory
    {
        public Endpoint? ById(uint id) => endpoints.FirstOrDefault(e => e.Id == id);

        public Endpoint? ByAddress(IPAddress address) => endpoints.FirstOrDefault(e => address.Equals(e.IPv4));

        public IReadOnlyCollection<Endpoint> All => endpoints;
    }

    private sealed class SensorProcesses(Palisade.Runtime.ProcessSensor sensor) : IFlowProcessResolver
    {
        public ProcessRecord? Resolve(uint tgid, ulong ktime) => sensor.Resolve(tgid, ktime);
    }
}
