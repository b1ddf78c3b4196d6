using System.Diagnostics;
using System.Globalization;
using Palisade.Bpf.Probe;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Sockets;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Runtime.Abi;

namespace Palisade.IntegrationTests.Flows;

/// <summary>
/// The socket-owner table names the process behind each local socket of a network namespace:
/// a TCP listener, a TCP client, unconnected, connected and bound UDP sockets, each opened by
/// its own process, map (netns inode, port, protocol) to that process's tgid and exec ktime,
/// and each entry goes when its socket closes.
/// </summary>
public sealed class SocketOwnerTableTests : IDisposable
{
    private readonly string _netns;
    private readonly List<Process> _processes = [];

    public SocketOwnerTableTests()
    {
        string id;
        do
        {
            id = Random.Shared.Next(0x1000, 0xffff).ToString("x4", CultureInfo.InvariantCulture);
        }
        while (File.Exists(TestNetwork.NetnsPath($"pal-{id}-sock")));
        _netns = $"pal-{id}-sock";
    }

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
        Command.Run("ip", "netns", "delete", _netns);
    }

    [Fact]
    public void EachSocketOfANamespaceIsOwnedByTheProcessThatOpenedItUntilItCloses()
    {
        Kernel.Require(KernelFeature.RawTracepoint, KernelFeature.Ringbuf, KernelFeature.TpBtf, KernelFeature.Sockops,
            KernelFeature.CgroupSendmsg4, KernelFeature.CgroupSkb, KernelFeature.CgroupSock, KernelFeature.RdonlyCast);
        using var h = new SensorHarness();
        using var owners = new SocketOwnerSensor();
        owners.Start(h.Sensor.ProcessMap);
        Command.Check("ip", "netns", "add", _netns);
        Command.Check("ip", "-n", _netns, "link", "set", "lo", "up");
        var netns = uint.Parse(Command.Check("stat", "-L", "-c", "%i", TestNetwork.NetnsPath(_netns)).Trim(), CultureInfo.InvariantCulture);

        var server = Start("listen");
        var serverPort = ReadPort(server);
        var client = Start("connect", serverPort.ToString(CultureInfo.InvariantCulture));
        var clientPort = ReadPort(client);
        Step(server, "accepted");
        var udpSend = Start("udp-send");
        var udpConnect = Start("udp-connect");
        var udpBind = Start("udp-bind");
        var sockets = new (Process Process, SocketKey Key, string What)[]
        {
            (server, new SocketKey(netns, serverPort, SocketKey.Tcp), "TCP listener"),
            (client, new SocketKey(netns, clientPort, SocketKey.Tcp), "TCP client"),
            (udpSend, new SocketKey(netns, ReadPort(udpSend), SocketKey.Udp), "unconnected UDP sender"),
            (udpConnect, new SocketKey(netns, ReadPort(udpConnect), SocketKey.Udp), "connected UDP sender"),
            (udpBind, new SocketKey(netns, ReadPort(udpBind), SocketKey.Udp), "bound UDP socket"),
        };

        var table = h.Sensor.ProcessMap.Typed<uint, PalProc>();
        foreach (var (process, key, what) in sockets)
        {
            Assert.True(owners.TryGetOwner(key, out var owner), $"{what} ({key}) has no entry; table: {string.Join(", ", owners.Entries().Where(e => e.Key.Netns == netns))}");
            Assert.Equal((uint)process.Id, owner.Tgid);
            Assert.True(table.TryLookup((uint)process.Id, out var proc), $"{what}: pid {process.Id} is not in the process table");
            Assert.Equal(proc.Ktime, owner.Ktime);
            // The exec identity the flow will carry is the one the exec event announced.
            var exec = h.WaitForExec(e => e.Process.Pid == (uint)process.Id && e.Process.Binary.EndsWith("/sockowner", StringComparison.Ordinal), $"exec of the {what}");
            Assert.Equal(exec.Process.Ktime, owner.Ktime);
            Assert.NotEqual(0UL, owner.Cookie);
        }

        // The accepted connection shares the listener's port; its close must not remove the listener's entry.
        Step(client, "closed");
        Step(server, "closed-conn");
        Assert.True(Command.WaitUntil(() => !owners.TryGetOwner(sockets[1].Key, out _), TimeSpan.FromSeconds(30)), "the TCP client's entry stayed after close");
        Assert.True(owners.TryGetOwner(sockets[0].Key, out var listener) && listener.Tgid == (uint)server.Id, "closing the accepted connection removed the listener's entry");

        foreach (var (process, key, what) in sockets.Where(s => s.Process != client))
        {
            Step(process, "closed");
            Assert.True(Command.WaitUntil(() => !owners.TryGetOwner(key, out _), TimeSpan.FromSeconds(30)), $"the {what}'s entry stayed after close");
        }
        var stats = owners.Stats();
        Assert.True(stats.Owned >= 5, $"owned {stats.Owned}");
        Assert.True(stats.Released >= 5, $"released {stats.Released}");
        Assert.DoesNotContain(owners.Entries(), e => e.Key.Netns == netns);
    }

    [Fact]
    public void APinnedTableOutlivesItsSensorAndOneThatDoesNotFitIsReplaced()
    {
        Kernel.Require(KernelFeature.RawTracepoint, KernelFeature.Ringbuf, KernelFeature.TpBtf, KernelFeature.Sockops,
            KernelFeature.CgroupSendmsg4, KernelFeature.CgroupSkb, KernelFeature.CgroupSock, KernelFeature.RdonlyCast);
        var pins = $"/sys/fs/bpf/palisade-test-{Guid.NewGuid():N}";
        try
        {
            using var h = new SensorHarness();
            var key = new PalSockKey { Netns = 1, Port = 4242, Proto = SocketKey.Udp, Family = SocketKey.Inet };
            using (var first = new SocketOwnerSensor(new SocketOwnerOptions { PinDirectory = pins }))
            {
                first.Start(h.Sensor.ProcessMap);
                first.OwnerMap.Typed<PalSockKey, PalSockOwner>().Update(key, new PalSockOwner { Tgid = 7, Ktime = 8, Cookie = 9 });
            }
            using (var second = new SocketOwnerSensor(new SocketOwnerOptions { PinDirectory = pins }))
            {
                second.Start(h.Sensor.ProcessMap);
                Assert.False(second.StaleRemoved);
                Assert.True(second.TryGetOwner(new SocketKey(1, 4242, SocketKey.Udp), out var kept), "the pinned entry did not survive the sensor");
                Assert.Equal(new SocketOwner(7, 8, 9), kept);
            }
            using var resized = new SocketOwnerSensor(new SocketOwnerOptions { PinDirectory = pins, TableEntries = 4096 });
            resized.Start(h.Sensor.ProcessMap);
            Assert.True(resized.StaleRemoved);
            Assert.Equal(4096, resized.Stats().Capacity);
            Assert.False(resized.TryGetOwner(new SocketKey(1, 4242, SocketKey.Udp), out _));
        }
        finally
        {
            if (Directory.Exists(pins))
            {
                Directory.Delete(pins, recursive: true);
            }
        }
    }

    private Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", _netns, Helpers.Path("sockowner"), .. args])
        {
            psi.ArgumentList.Add(a);
        }
        var p = Process.Start(psi)!;
        _processes.Add(p);
        return p;
    }

    private static ushort ReadPort(Process p)
    {
        var line = ReadLine(p);
        return ushort.TryParse(line, CultureInfo.InvariantCulture, out var port) && port != 0 ? port : throw new InvalidOperationException($"sockowner printed \"{line}\", not a port");
    }

    private static void Step(Process p, string expected)
    {
        p.StandardInput.WriteLine();
        p.StandardInput.Flush();
        Assert.Equal(expected, ReadLine(p));
    }

    private static string? ReadLine(Process p)
    {
        var read = p.StandardOutput.ReadLineAsync();
        return read.Wait(TimeSpan.FromSeconds(30)) ? read.Result : throw new TimeoutException("sockowner did not answer");
    }
}
