using System.Globalization;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// A real container runtime for the tests: Debian's podman (CNI network backend) with runc,
/// running containers from a busybox rootfs on a CNI network the test owns. Everything podman
/// keeps is isolated in a temp folder (`--root`, `--runroot`, `--tmpdir`, a containers.conf
/// naming the test's plugin and network folders), so nothing in /var/lib/containers or /run
/// carries over between runs. Dispose removes the containers, their namespaces, a
/// `cni-podman0` bridge podman made, and the folder, also after a failure.
/// </summary>
internal sealed class Podman : IDisposable
{
    // Podman's own default network; we never use it, but a failed call can leave it behind.
    private const string DefaultBridge = "cni-podman0";

    private readonly string _dir;
    private readonly string _network;
    private readonly bool _defaultBridgeExisted;
    private readonly List<string> _containers = [];
    private readonly Dictionary<string, string> _netns = [];
    private readonly Dictionary<string, string> _environment;

    /// <summary>Podman attached to <paramref name="network"/> (its conflist folder and plugin path).</summary>
    public Podman(ICniTestNetwork network) : this(network.Name, network.ConfigDir, network.PluginPath)
    {
    }

    /// <param name="network">The CNI network's name (the conflist's `name`) in <paramref name="networkConfigDir"/>.</param>
    /// <param name="networkConfigDir">A folder holding the test's conflist (podman's network_config_dir).</param>
    /// <param name="pluginDirs">Where the plugin binaries are (podman's cni_plugin_dirs).</param>
    public Podman(string network, string networkConfigDir, IReadOnlyList<string> pluginDirs)
    {
        Assert.True(File.Exists("/usr/bin/podman") && File.Exists("/usr/sbin/runc"),
            "podman or runc is missing: apt-get install podman runc (build.sh installs them)");
        _network = network;
        _defaultBridgeExisted = LinkExists(DefaultBridge);
        _dir = Directory.CreateTempSubdirectory("pal-podman-").FullName;
        _environment = new() { ["CONTAINERS_CONF"] = Path.Combine(_dir, "containers.conf") };
        try
        {
            Rootfs = BusyboxRootfs.Build(Path.Combine(_dir, "rootfs"));
            var plugins = string.Join(", ", pluginDirs.Select(Quote));
            // default_network names ours too: a call that forgets --network must not make cni-podman0.
            // events_logger=file keeps podman's events in our tmpdir instead of the journal.
            File.WriteAllText(_environment["CONTAINERS_CONF"], $"""
                [network]
                network_backend = "cni"
                cni_plugin_dirs = [{plugins}]
                network_config_dir = {Quote(networkConfigDir)}
                default_network = {Quote(network)}

                [engine]
                events_logger = "file"
                runtime = "runc"
                """);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The folder holding everything podman keeps for this harness (storage, run state, config, rootfs).</summary>
    public string StateDir => _dir;

    /// <summary>The busybox rootfs every container runs from.</summary>
    public string Rootfs { get; } = "";

    /// <summary>Runs <paramref name="script"/> in a container that is removed when it ends; returns its exit code and output.</summary>
    public CommandResult Run(string script, TimeSpan? timeout = null) =>
        Invoke(["run", "--rm", .. ContainerArgs(script)], timeout ?? TimeSpan.FromSeconds(120));

    /// <summary>Starts <paramref name="script"/> in a detached container and returns its ID.</summary>
    public string RunDetached(string script)
    {
        var result = Invoke(["run", "-d", .. ContainerArgs(script)], TimeSpan.FromSeconds(120));
        var id = result.Stdout.Trim().Split('\n')[^1].Trim();
        if (result.ExitCode == 0 && id.Length > 0)
        {
            _containers.Add(id);
            _netns[id] = Inspect(id, "{{.NetworkSettings.SandboxKey}}");
            return id;
        }
        throw new InvalidOperationException($"podman run -d exited {result.ExitCode}: {result.Stderr}{result.Stdout}");
    }

    /// <summary>The container's address on the test network.</summary>
    public string AddressOf(string id) => Inspect(id, $"{{{{(index .NetworkSettings.Networks \"{_network}\").IPAddress}}}}");

    /// <summary>The network namespace podman made for the container (/run/netns/cni-...).</summary>
    public string NetnsOf(string id) => _netns[id];

    /// <summary>Stops and removes a container; podman calls CNI DEL on the way.</summary>
    public void Remove(string id)
    {
        var result = Invoke(["rm", "--force", "--time", "0", id], TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, $"podman rm {id} exited {result.ExitCode}: {result.Stderr}");
        _containers.Remove(id);
    }

    /// <summary>IDs of every container this podman knows, running or not.</summary>
    public IReadOnlyList<string> Containers() =>
        Invoke(["ps", "--all", "--no-trunc", "--quiet"], TimeSpan.FromSeconds(60)).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public void Dispose()
    {
        if (File.Exists(_environment["CONTAINERS_CONF"]))
        {
            // Every container, including ones a failed call half-made and we never saw an ID for.
            Invoke(["rm", "--all", "--force", "--time", "0"], TimeSpan.FromSeconds(120));
        }
        _containers.Clear();
        foreach (var netns in _netns.Values.Where(File.Exists))
        {
            Command.Run("ip", "netns", "delete", Path.GetFileName(netns));
        }
        _netns.Clear();
        if (!_defaultBridgeExisted && LinkExists(DefaultBridge))
        {
            Command.Run("ip", "link", "delete", "dev", DefaultBridge);
        }
        // Nothing may stay mounted under the folder (podman bind-mounts /etc/hosts etc. into a container's rootfs).
        foreach (var mount in MountsUnder(_dir).Reverse())
        {
            Command.Run("umount", "--lazy", mount);
        }
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private string[] ContainerArgs(string script) =>
    [
        // The rlimits runc would otherwise copy fail with EPERM here; --network must precede --rootfs,
        // since everything after the rootfs is the command.
        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
        "--network", _network,
        "--rootfs", Rootfs,
        "/bin/sh", "-c", script,
    ];

    private string Inspect(string id, string format)
    {
        var result = Invoke(["inspect", "--format", format, id], TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, $"podman inspect {id} exited {result.ExitCode}: {result.Stderr}");
        return result.Stdout.Trim();
    }

    private CommandResult Invoke(string[] args, TimeSpan timeout) =>
        EnvironmentCommand.Run("podman",
            ["--root", Path.Combine(_dir, "root"), "--runroot", Path.Combine(_dir, "runroot"), "--tmpdir", Path.Combine(_dir, "tmp"),
             "--runtime", "runc", "--cgroup-manager", "cgroupfs", .. args],
            _environment, stdin: null, timeout);

    private static bool LinkExists(string name) => Command.Run("ip", "link", "show", "dev", name).ExitCode == 0;

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static IEnumerable<string> MountsUnder(string dir) =>
        File.ReadLines("/proc/self/mountinfo")
            .Select(line => line.Split(' '))
            .Where(fields => fields.Length > 4)
            .Select(fields => UnescapeMountPath(fields[4]))
            .Where(path => path == dir || path.StartsWith(dir + "/", StringComparison.Ordinal));

    // mountinfo escapes space, tab, newline and backslash as \ooo.
    private static string UnescapeMountPath(string path) =>
        System.Text.RegularExpressions.Regex.Replace(path, @"\\([0-7]{3})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString(CultureInfo.InvariantCulture));
}
