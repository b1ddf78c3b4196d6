using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Palisade.Bpf;
using Palisade.Bpf.Probe;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Flows;

/// <summary>
/// The real agent: flow records written to its ring buffer by a tc program (a stand-in for the
/// datapath's, sharing the agent's pinned ring buffer and socket-owner table) come out of
/// `palisade observe` through GetFlows, naming the process that made the connection.
/// </summary>
public sealed class ObserveAgentTests : IDisposable
{
    private readonly string _pins = $"/sys/fs/bpf/palisade-test-{Guid.NewGuid():N}";
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
        if (Directory.Exists(_pins))
        {
            foreach (var links in Directory.EnumerateDirectories(_pins, "links", SearchOption.AllDirectories).ToList())
            {
                Directory.Delete(links, recursive: true);
            }
            Directory.Delete(_pins, recursive: true);
        }
    }

    [Fact]
    public void ObserveShowsAFlowOfTheAgentWithTheProcessThatConnected()
    {
        Kernel.Require(KernelFeature.RawTracepoint, KernelFeature.Ringbuf, KernelFeature.TpBtf, KernelFeature.Sockops, KernelFeature.Tc,
            KernelFeature.CgroupSendmsg4, KernelFeature.CgroupSkb, KernelFeature.CgroupSock, KernelFeature.RdonlyCast);
        using var agent = AgentProcess.Start("--bpf-dir", _pins, "--keep-sensors-on-exit");
        agent.WaitReady();
        using var network = new TestNetwork();
        var events = Path.Combine(_pins, "process", "maps", "pal_process_events");
        var owners = Path.Combine(_pins, "sockets", "maps", "pal_sock_owners");
        Assert.True(Command.WaitUntil(() => File.Exists(events) && File.Exists(owners), TimeSpan.FromSeconds(30)), $"the agent pinned no ring buffer or socket-owner table\n{agent.Log}");

        using var emitter = BpfObject.OpenEmbedded(Kernel.TestObjects, "flow_emit.bpf.o");
        emitter.SetConstant("endpoint_netns", uint.Parse(Command.Check("stat", "-L", "-c", "%i", TestNetwork.NetnsPath(network.NamespaceA)).Trim(), CultureInfo.InvariantCulture));
        emitter.SetConstant("endpoint_id", 11u);
        emitter.SetConstant("endpoint_identity", 1011u);
        emitter.Map("pal_process_events").MaxEntries = PinnedMaxEntries(events);
        emitter.Map("pal_process_events").SetPinPath(events);
        emitter.Map("pal_sock_owners").MaxEntries = PinnedMaxEntries(owners);
        emitter.Map("pal_sock_owners").SetPinPath(owners);
        emitter.Load();
        emitter.Program("flow_emit").AttachTc(network.InterfaceA, TcDirection.Egress, TestNetwork.NetnsPath(network.NamespaceA));

        var listener = Start(network.NamespaceB, "listen", network.AddressB);
        var port = ReadPort(listener);
        var connector = Start(network.NamespaceA, "connect", port.ToString(CultureInfo.InvariantCulture), network.AddressB);
        ReadPort(connector);

        JsonElement flow = default;
        var seen = "";
        Assert.True(Command.WaitUntil(() =>
        {
            var r = agent.Cli("observe", "--to-port", port.ToString(CultureInfo.InvariantCulture), "--protocol", "tcp", "--type", "policy-verdict", "-o", "json");
            seen = r.Stdout + r.Stderr;
            var line = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
            if (line is null)
            {
                return false;
            }
            flow = JsonDocument.Parse(line).RootElement.Clone();
            return true;
        }, TimeSpan.FromSeconds(30)), $"observe showed no flow to port {port}: {seen}\n{agent.Log}");

        var f = flow.GetProperty("flow");
        Assert.Equal(port, f.GetProperty("l4").GetProperty("TCP").GetProperty("destination_port").GetInt32());
        Assert.True(f.GetProperty("l4").GetProperty("TCP").GetProperty("flags").GetProperty("SYN").GetBoolean());
        Assert.Equal("FORWARDED", f.GetProperty("verdict").GetString());
        Assert.Equal("EGRESS", f.GetProperty("traffic_direction").GetString());
        Assert.Equal(network.AddressA, f.GetProperty("IP").GetProperty("source").GetString());
        Assert.Equal(connector.Id, f.GetProperty("process").GetProperty("pid").GetInt32());
        Assert.EndsWith("/sockowner", f.GetProperty("process").GetProperty("binary").GetString(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(flow.GetProperty("node_name").GetString()));

        var compact = agent.Cli("observe", "--to-port", port.ToString(CultureInfo.InvariantCulture), "--verdict", "FORWARDED");
        Assert.Contains($"pid={connector.Id} ", compact.Stdout, StringComparison.Ordinal);
        Assert.Contains("TCP Flags: SYN", compact.Stdout, StringComparison.Ordinal);
        // Nothing of another port or of the drops passes the filters.
        Assert.Equal("", agent.Cli("observe", "--to-port", port.ToString(CultureInfo.InvariantCulture), "--verdict", "DROPPED").Stdout);
    }

    private static int PinnedMaxEntries(string path) =>
        JsonDocument.Parse(Command.Check("bpftool", "-j", "map", "show", "pinned", path)).RootElement.GetProperty("max_entries").GetInt32();

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
}
