using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// A CNI network of Debian's reference plugins (bridge + host-local IPAM) owned by one test: a
/// conflist in its own folder, a unique bridge name, host-local's state in that folder, a /24
/// inside <see cref="TestNetwork.TestCidr"/> under the shared blackhole route. The bridge has
/// no gateway address and the pods no default route, so pod traffic stays on the bridge.
/// Dispose removes the bridge, the state and the folder, also after a failure.
/// </summary>
internal sealed class ReferenceBridgeNetwork : ICniTestNetwork, IDisposable
{
    /// <summary>Where Debian's containernetworking-plugins put the reference plugins.</summary>
    public const string PluginDir = "/usr/lib/cni";

    private string? _blackhole;

    public ReferenceBridgeNetwork()
    {
        Assert.True(File.Exists(Path.Combine(PluginDir, "bridge")) && File.Exists(Path.Combine(PluginDir, "host-local")),
            $"the reference CNI plugins are missing from {PluginDir}: apt-get install containernetworking-plugins (build.sh installs it)");
        var id = Random.Shared.Next(0x1000, 0xffff).ToString("x4", CultureInfo.InvariantCulture);
        Name = $"pal-ref-{id}";
        // IFNAMSIZ is 16: "palref" + 4 hex digits leaves room; unique so two runs never share a bridge.
        BridgeName = $"palref{id}";
        Subnet = $"10.234.{Random.Shared.Next(200, 250)}.0/24";
        ConfigDir = Directory.CreateTempSubdirectory("pal-cni-net-").FullName;
        DataDir = Path.Combine(ConfigDir, "host-local");
        try
        {
            _blackhole = BlackholeRoute.Acquire();
            Conflist = new JsonObject
            {
                ["cniVersion"] = "1.0.0",
                ["name"] = Name,
                ["plugins"] = new JsonArray(new JsonObject
                {
                    ["type"] = "bridge",
                    ["bridge"] = BridgeName,
                    ["isGateway"] = false,
                    ["ipMasq"] = false,
                    ["ipam"] = new JsonObject
                    {
                        ["type"] = "host-local",
                        ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = Subnet })),
                        ["dataDir"] = DataDir,
                    },
                }),
            };
            File.WriteAllText(ConflistPath, Conflist.ToJsonString());
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The network's name: podman's `--network` value and host-local's state folder.</summary>
    public string Name { get; }

    public string BridgeName { get; }

    public string Subnet { get; }

    /// <summary>The folder holding only this network's conflist (podman's network_config_dir).</summary>
    public string ConfigDir { get; }

    public string ConflistPath => Path.Combine(ConfigDir, Name + ".conflist");

    public string DataDir { get; }

    public JsonObject Conflist { get; } = [];

    public IReadOnlyList<string> PluginPath { get; } = [PluginDir];

    /// <summary>The addresses host-local holds right now: one file per address, named by it.</summary>
    public IReadOnlyList<string> AllocatedAddresses()
    {
        var dir = Path.Combine(DataDir, Name);
        if (!Directory.Exists(dir))
        {
            return [];
        }
        return Directory.EnumerateFiles(dir).Select(Path.GetFileName).Where(n => IPAddress.TryParse(n, out _)).Select(n => n!).Order().ToList();
    }

    /// <summary>Who holds an address, as host-local records it (the container ID, then the interface).</summary>
    public string HolderOf(string address) => File.ReadAllText(Path.Combine(DataDir, Name, address));

    public bool InSubnet(string address)
    {
        var prefix = Subnet[..Subnet.LastIndexOf('.')] + ".";
        return address.StartsWith(prefix, StringComparison.Ordinal);
    }

    public bool BridgeExists() => Command.Run("ip", "link", "show", "dev", BridgeName).ExitCode == 0;

    public void Dispose()
    {
        // The bridge plugin never deletes its bridge on DEL: it is ours to remove.
        if (BridgeExists())
        {
            Command.Run("ip", "link", "delete", "dev", BridgeName);
        }
        if (Directory.Exists(ConfigDir))
        {
            Directory.Delete(ConfigDir, recursive: true);
        }
        if (_blackhole is { } marker)
        {
            BlackholeRoute.Release(marker);
            _blackhole = null;
        }
    }
}
