namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// Two network namespaces joined by a veth pair, named uniquely for this test, with a
/// blackhole route for the test CIDR in the root namespace so that no test packet can
/// leave the machine. Everything is removed on dispose, also after a failure.
/// </summary>
internal sealed class TestNetwork : IDisposable
{
    // 10.234.0.0/16 is the test range: never routed anywhere but into a blackhole in the root namespace.
    public const string TestCidr = "10.234.0.0/16";

    private string? _blackhole;
    private readonly List<string> _namespaces = [];

    public TestNetwork()
    {
        var subnet = Random.Shared.Next(1, 250);
        try
        {
            _blackhole = BlackholeRoute.Acquire();
            // Names are random; another test run on this machine may hold the same ones: pick again.
            string id;
            do
            {
                id = Random.Shared.Next(0x1000, 0xffff).ToString("x4", System.Globalization.CultureInfo.InvariantCulture);
            }
            while (File.Exists(NetnsPath($"pal-{id}-a")) || File.Exists(NetnsPath($"pal-{id}-b")));
            NamespaceA = $"pal-{id}-a";
            NamespaceB = $"pal-{id}-b";
            InterfaceA = $"pal{id}a";
            InterfaceB = $"pal{id}b";
            AddressA = $"10.234.{subnet}.1";
            AddressB = $"10.234.{subnet}.2";
            foreach (var ns in new[] { NamespaceA, NamespaceB })
            {
                Command.Check("ip", "netns", "add", ns);
                _namespaces.Add(ns);
                Command.Check("ip", "-n", ns, "link", "set", "lo", "up");
            }
            Command.Check("ip", "link", "add", InterfaceA, "netns", NamespaceA, "type", "veth", "peer", "name", InterfaceB, "netns", NamespaceB);
            Command.Check("ip", "-n", NamespaceA, "addr", "add", AddressA + "/30", "dev", InterfaceA);
            Command.Check("ip", "-n", NamespaceB, "addr", "add", AddressB + "/30", "dev", InterfaceB);
            Command.Check("ip", "-n", NamespaceA, "link", "set", InterfaceA, "up");
            Command.Check("ip", "-n", NamespaceB, "link", "set", InterfaceB, "up");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string NamespaceA { get; } = "";
    public string NamespaceB { get; } = "";
    public string InterfaceA { get; } = "";
    public string InterfaceB { get; } = "";
    public string AddressA { get; } = "";
    public string AddressB { get; } = "";

    public static string NetnsPath(string ns) => $"/var/run/netns/{ns}";

    /// <summary>Pings B from A; returns ping's result.</summary>
    public CommandResult PingBFromA(int count) =>
        Command.Run("ip", "netns", "exec", NamespaceA, "ping", "-c", count.ToString(System.Globalization.CultureInfo.InvariantCulture), "-i", "0.2", "-W", "2", AddressB);

    public void Dispose()
    {
        // Deleting a namespace deletes the veth end inside it, and with it the peer.
        foreach (var ns in _namespaces)
        {
            Command.Run("ip", "netns", "delete", ns);
        }
        _namespaces.Clear();
        if (_blackhole is { } marker)
        {
            BlackholeRoute.Release(marker);
            _blackhole = null;
        }
    }
}
