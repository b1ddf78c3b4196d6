using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Palisade.Datapath.Services;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Policies.Services;

namespace Palisade.IntegrationTests.Services;

/// <summary>
/// The socket-LB programs on this kernel, through <see cref="ServiceDatapath"/>: real sockets of
/// this test process (its cgroup is under the root the programs attach to) connect to virtual
/// addresses that no interface has, and reach loopback servers standing for backends. The
/// virtual range is blackholed, so a connect the programs did not translate goes nowhere.
/// </summary>
public sealed class SocketLbTests : IDisposable
{
    private const string VipRange4 = "10.250.0.0/16";
    private const string VipRange6 = "fd00:250::/64";

    private readonly string _blackhole4;
    private readonly string _blackhole6;
    private readonly List<Backend> _servers = [];
    private readonly ServiceDatapath _lb;
    private readonly int _subnet = Random.Shared.Next(1, 250);

    public SocketLbTests()
    {
        Kernel.RequireRoot();
        _blackhole4 = BlackholeRoute.Acquire(VipRange4);
        _blackhole6 = BlackholeRoute.Acquire(VipRange6);
        _lb = new ServiceDatapath(new ServiceDatapathOptions { MaglevTableSize = 251, MaxSlots = 4096, MaxBackends = 1024, MaxFrontends = 1024 });
        _lb.Start();
    }

    public void Dispose()
    {
        _lb.Dispose();
        _servers.ForEach(s => s.Dispose());
        BlackholeRoute.Release(_blackhole4, VipRange4);
        BlackholeRoute.Release(_blackhole6, VipRange6);
    }

    private IPAddress Vip(int host) => IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.250.{_subnet}.{host}"));

    private IPAddress Vip6(int host) => IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"fd00:250::{_subnet:x}:{host:x}"));

    private Backend Server(string name, bool udp = false, IPAddress? address = null)
    {
        var s = new Backend(name, address ?? IPAddress.Loopback, udp);
        _servers.Add(s);
        return s;
    }

    private static ServiceFrontend Frontend(IPAddress vip, ushort port, IEnumerable<Backend> backends, L4Protocol protocol = L4Protocol.Tcp,
        uint affinity = 0, LbAlgorithm algorithm = LbAlgorithm.Default, IEnumerable<Backend>? terminating = null) =>
        new(new ServicePortName("test", "svc", ""), vip, port, protocol, FrontendKind.ClusterIP,
            [.. backends.Select(b => b.AsBackend)], [.. (terminating ?? []).Select(b => b.AsBackend)], affinity, algorithm);

    /// <summary>Connects to address:port and reads the backend's name.</summary>
    private static string Ask(IPAddress address, int port)
    {
        using var client = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(new IPEndPoint(address, port));
        using var stream = new NetworkStream(client);
        using var reader = new StreamReader(stream);
        return reader.ReadLine() ?? "";
    }

    [Fact]
    public void AClusterIpSpreadsNewConnectionsOverEveryBackendAndGetpeernameNamesTheService()
    {
        var a = Server("a");
        var b = Server("b");
        var c = Server("c");
        var vip = Vip(1);
        _lb.Apply([Frontend(vip, 80, [a, b, c])]);

        var seen = Enumerable.Range(0, 60).Select(_ => Ask(vip, 80)).ToList();
        Assert.All(new[] { "a", "b", "c" }, name => Assert.Contains(name, seen));

        // getpeername(2) of a translated socket shows the service, not the backend (python calls it for real;
        // .NET would answer from the endpoint it was given).
        var peer = Command.Run("python3", "-c",
            $"import socket\ns = socket.create_connection(('{vip}', 80))\nprint('%s:%d' % s.getpeername())\n");
        Assert.Equal($"{vip}:80", peer.Stdout.Trim());

        var stats = _lb.Stats();
        Assert.True(stats.Translated >= 61, stats.ToString());
        Assert.True(stats.Reversed >= 1, stats.ToString());
        Assert.Equal(61UL, _lb.Counters(Frontend(vip, 80, []))!.Value.Translated);
    }

    [Fact]
    public void ARemovedBackendGetsNoNewConnectionsWhileItsEstablishedOneGoesOn()
    {
        var a = Server("a");
        var b = Server("b");
        var vip = Vip(2);
        _lb.Apply([Frontend(vip, 8080, [a, b])]);

        // An established connection to each backend.
        var open = new List<(Socket Socket, StreamReader Reader, string Backend)>();
        while (open.Select(o => o.Backend).Distinct().Count() < 2)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Connect(new IPEndPoint(vip, 8080));
            var reader = new StreamReader(new NetworkStream(s));
            open.Add((s, reader, reader.ReadLine()!));
            Assert.True(open.Count < 200, "200 connections never reached both backends");
        }

        _lb.Apply([Frontend(vip, 8080, [b], terminating: [a])]);
        Assert.All(Enumerable.Range(0, 30).Select(_ => Ask(vip, 8080)), name => Assert.Equal("b", name));

        // The connection that has backend a still talks to a.
        var toA = open.First(o => o.Backend == "a");
        toA.Socket.Send("again\n"u8);
        Assert.Equal("a:again", toA.Reader.ReadLine());
        open.ForEach(o => o.Socket.Dispose());
    }

    [Fact]
    public void AFrontendWithoutBackendsRefusesAtOnce()
    {
        var vip = Vip(3);
        _lb.Apply([Frontend(vip, 80, [])]);
        var e = Assert.Throws<SocketException>(() => Ask(vip, 80));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
        Assert.Equal(1UL, _lb.Counters(Frontend(vip, 80, []))!.Value.Refused);

        // Removed entirely: the address is nobody's, the blackhole answers (unreachable), not the LB.
        _lb.Apply([]);
        var gone = Assert.Throws<SocketException>(() => Ask(vip, 80));
        Assert.NotEqual(SocketError.ConnectionRefused, gone.SocketErrorCode);
    }

    [Fact]
    public void ClientIpAffinityPinsTheClientToOneBackend()
    {
        var vip = Vip(4);
        _lb.Apply([Frontend(vip, 80, [Server("a"), Server("b"), Server("c")], affinity: 600)]);
        var seen = Enumerable.Range(0, 30).Select(_ => Ask(vip, 80)).Distinct().ToList();
        Assert.Single(seen);
        Assert.True(_lb.Stats().AffinityHits >= 29);
    }

    [Fact]
    public void UdpRoundTripsWithTheServiceAddressAsTheReplySourceAndOneSocketKeepsItsBackend()
    {
        var vip = Vip(5);
        _lb.Apply([Frontend(vip, 53, [Server("a", udp: true), Server("b", udp: true)], L4Protocol.Udp)]);
        // Unconnected sendto/recvfrom, several datagrams on one socket; then connected sockets.
        var script = $$"""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(5)
            names = set()
            for i in range(10):
                s.sendto(b'ping', ('{{vip}}', 53))
                data, peer = s.recvfrom(64)
                names.add(data.decode())
                assert peer == ('{{vip}}', 53), peer
            print(len(names))
            seen = set()
            for i in range(40):
                c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                c.settimeout(5)
                c.connect(('{{vip}}', 53))
                c.send(b'ping')
                seen.add(c.recv(64).decode())
                assert c.getpeername() == ('{{vip}}', 53), c.getpeername()
                c.close()
            print(','.join(sorted(seen)))
            """;
        var run = Command.Run("python3", "-c", script);
        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = run.Stdout.Trim().Split('\n');
        Assert.Equal("1", lines[0]);
        Assert.Equal("a,b", lines[1]);
    }

    [Fact]
    public void AnIpv6FrontendAndAnIpv4FrontendReachedFromADualStackSocket()
    {
        var vip6 = Vip6(6);
        _lb.Apply([Frontend(vip6, 80, [Server("v6", address: IPAddress.IPv6Loopback)]), Frontend(Vip(6), 80, [Server("v4")])]);
        Assert.Equal("v6", Ask(vip6, 80));

        // An IPv6 socket connecting to ::ffff:VIP4 is translated by the IPv4 frontend.
        var mapped = Command.Run("python3", "-c",
            $"import socket\ns = socket.socket(socket.AF_INET6)\ns.connect(('::ffff:{Vip(6)}', 80))\nprint(s.recv(16).decode().strip(), s.getpeername()[0])\n");
        Assert.Equal($"v4 ::ffff:{Vip(6)}", mapped.Stdout.Trim());
    }

    [Fact]
    public void MaglevFrontendsUseEveryBackendAndChangesKeepTheTableConsistent()
    {
        var vip = Vip(7);
        var a = Server("a");
        var b = Server("b");
        _lb.Apply([Frontend(vip, 80, [a, b], algorithm: LbAlgorithm.Maglev)]);
        var seen = Enumerable.Range(0, 60).Select(_ => Ask(vip, 80)).ToHashSet();
        Assert.Equal(["a", "b"], seen.Order());

        // Down to one backend: the table follows (no connection lands on a removed backend).
        _lb.Apply([Frontend(vip, 80, [b], algorithm: LbAlgorithm.Maglev)]);
        Assert.All(Enumerable.Range(0, 20).Select(_ => Ask(vip, 80)), n => Assert.Equal("b", n));
        Assert.Equal(0UL, _lb.Stats().BackendMiss);
    }

    /// <summary>A loopback server that writes its name to each connection (TCP: then echoes lines as NAME:LINE) or datagram.</summary>
    private sealed class Backend : IDisposable
    {
        private readonly Socket _socket;
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentBag<Socket> _accepted = [];

        public Backend(string name, IPAddress address, bool udp)
        {
            Name = name;
            _socket = new Socket(address.AddressFamily, udp ? SocketType.Dgram : SocketType.Stream, udp ? ProtocolType.Udp : ProtocolType.Tcp);
            _socket.Bind(new IPEndPoint(address, 0));
            Port = (ushort)((IPEndPoint)_socket.LocalEndPoint!).Port;
            Address = address;
            if (udp)
            {
                _ = Task.Run(ServeUdp);
            }
            else
            {
                _socket.Listen(256);
                _ = Task.Run(ServeTcp);
            }
        }

        public string Name { get; }
        public ushort Port { get; }
        public IPAddress Address { get; }
        public ServiceBackend AsBackend => new(Address, Port, PodName: Name);

        private async Task ServeTcp()
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket conn;
                try
                {
                    conn = await _socket.AcceptAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
                _accepted.Add(conn);
                _ = Task.Run(async () =>
                {
                    try
                    {
                        using var stream = new NetworkStream(conn, ownsSocket: true);
                        using var reader = new StreamReader(stream);
                        var writer = new StreamWriter(stream) { AutoFlush = true, NewLine = "\n" };
                        await writer.WriteLineAsync(Name);
                        while (await reader.ReadLineAsync(_stop.Token) is { } line)
                        {
                            await writer.WriteLineAsync($"{Name}:{line}");
                        }
                    }
                    catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
                    {
                    }
                });
            }
        }

        private async Task ServeUdp()
        {
            var buffer = new byte[64];
            var name = Encoding.ASCII.GetBytes(Name);
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var r = await _socket.ReceiveFromAsync(buffer, new IPEndPoint(Address.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0), _stop.Token);
                    await _socket.SendToAsync(name, r.RemoteEndPoint, _stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Dispose();
            foreach (var s in _accepted)
            {
                s.Dispose();
            }
        }
    }
}
