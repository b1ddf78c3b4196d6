using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// Pod networking by the real agent and the real plugin, owned by one test: an agent with its
/// own pod CIDRs (IPv4 and IPv6, blackholed in the root namespace), state directories, endpoint
/// socket, host device and bpffs pin directory, and the conflist it writes once ready; podman
/// and <see cref="CniInvoker"/> attach to it like to any <see cref="ICniTestNetwork"/>. Dispose
/// stops the agent and removes everything it made.
/// </summary>
internal sealed class PalisadeNetwork : ICniTestNetwork, IDisposable
{
    private readonly string _id = Guid.NewGuid().ToString("N")[..6];
    private readonly string _dir;
    private readonly string[] _agentArgs;
    private readonly string _blackholeV4;
    private readonly string _blackholeV6;

    /// <param name="extraAgentArgs">More agent arguments (e.g. --remote-nodes), after the network's own.</param>
    public PalisadeNetwork(params string[] extraAgentArgs)
    {
        Kernel.RequireRoot();
        var plugin = Path.Combine(Path.GetDirectoryName(AgentProcess.Launcher())!, "palisade-cni");
        Assert.True(File.Exists(plugin), $"{plugin} is missing: ./build.sh publishes it");
        _dir = Directory.CreateTempSubdirectory("pal-net-").FullName;
        var n = Random.Shared.Next(1, 250);
        PodCidr = string.Create(CultureInfo.InvariantCulture, $"10.216.{n}.0/24");
        PodCidrV6 = string.Create(CultureInfo.InvariantCulture, $"fd00:216:{n:x}::/64");
        Gateway = string.Create(CultureInfo.InvariantCulture, $"10.216.{n}.1");
        _blackholeV4 = BlackholeRoute.Acquire(PodCidr);
        _blackholeV6 = BlackholeRoute.Acquire(PodCidrV6);
        var plugins = Directory.CreateDirectory(Path.Combine(_dir, "plugins")).FullName;
        File.CreateSymbolicLink(Path.Combine(plugins, "palisade-cni"), plugin);
        PluginPath = [plugins];
        ConfigDir = Path.Combine(_dir, "net.d");
        HostDevice = "palh" + _id;
        PinDirectory = "/sys/fs/bpf/paltest-" + _id;
        EventsFile = Path.Combine(_dir, "events.json");
        _agentArgs =
        [
            "--pod-cidr", PodCidr + "," + PodCidrV6,
            "--ipam-state-dir", Path.Combine(_dir, "ipam"),
            "--endpoint-state-dir", Path.Combine(_dir, "endpoints"),
            "--endpoint-socket", Path.Combine(_dir, "run", "endpoint.sock"),
            "--cni-del-queue-dir", DelQueueDir,
            "--cni-conf-dir", ConfigDir,
            "--datapath-host-device", HostDevice,
            "--bpf-dir", PinDirectory,
            "--export-filename", EventsFile,
            "--node-name", "pal-node-" + _id,
            .. extraAgentArgs,
        ];
        try
        {
            Start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name => "palisade";

    /// <summary>The agent's --node-name.</summary>
    public string NodeName => "pal-node-" + _id;

    public string ConfigDir { get; }

    public JsonObject Conflist => JsonNode.Parse(File.ReadAllText(Path.Combine(ConfigDir, "05-palisade.conflist")))!.AsObject();

    public IReadOnlyList<string> PluginPath { get; }

    public string PodCidr { get; }

    public string PodCidrV6 { get; }

    /// <summary>The pods' IPv4 gateway (on the host device).</summary>
    public string Gateway { get; }

    public string HostDevice { get; }

    public string PinDirectory { get; }

    public string EventsFile { get; }

    public string DelQueueDir => Path.Combine(_dir, "cni-del-queue");

    public AgentProcess? Agent { get; private set; }

    /// <summary>Starts the agent and waits until it is ready and has written the conflist.</summary>
    public void Start()
    {
        Agent = AgentProcess.Start(_agentArgs);
        Agent.WaitReady();
        var conflist = Path.Combine(ConfigDir, "05-palisade.conflist");
        Assert.True(Command.WaitUntil(() => File.Exists(conflist), TimeSpan.FromSeconds(60)),
            $"the agent wrote no {conflist}; its datapath status: {DatapathStatus()}\n{Agent.Log}");
    }

    /// <summary>Stops the agent (SIGTERM) and waits for it to exit.</summary>
    public void Stop()
    {
        Agent?.Terminate();
        Agent?.Dispose();
        Agent = null;
    }

    /// <summary>The "datapath" object of the agent's /v1/status.</summary>
    public JsonElement DatapathStatus()
    {
        using var status = Agent!.Status();
        return status.RootElement.GetProperty("datapath").Clone();
    }

    /// <summary>Pod IPv4 addresses allocated now.</summary>
    public int AllocatedV4() => DatapathStatus().GetProperty("pools").EnumerateArray()
        .First(p => p.GetProperty("cidr").GetString() == PodCidr).GetProperty("allocated").GetInt32();

    /// <summary>The flow lines the agent exported so far.</summary>
    public IReadOnlyList<JsonObject> Flows()
    {
        if (!File.Exists(EventsFile))
        {
            return [];
        }
        var lines = new List<JsonObject>();
        using var stream = new FileStream(EventsFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            if (line.Contains("\"flow\"", StringComparison.Ordinal) && JsonNode.Parse(line)?["flow"] is JsonObject flow)
            {
                lines.Add(flow);
            }
        }
        return lines;
    }

    /// <summary>Waits (bounded) for the first exported flow that <paramref name="match"/> accepts; fails naming <paramref name="what"/> and listing the flows seen.</summary>
    public JsonObject WaitForFlow(Func<JsonObject, bool> match, string what)
    {
        JsonObject? found = null;
        // The exporter writes asynchronously: a safety net, not a timing assertion.
        Assert.True(Command.WaitUntil(() => (found = Flows().FirstOrDefault(match)) is not null, TimeSpan.FromSeconds(30)),
            $"no {what} in {EventsFile}:\n{string.Join('\n', Flows().Select(f => f.ToJsonString()))}");
        return found!;
    }

    public void Dispose()
    {
        Stop();
        Command.Run("ip", "link", "del", HostDevice);
        if (Directory.Exists(PinDirectory))
        {
            Directory.Delete(PinDirectory, recursive: true);
        }
        BlackholeRoute.Release(_blackholeV6, PodCidrV6);
        BlackholeRoute.Release(_blackholeV4, PodCidr);
        Directory.Delete(_dir, recursive: true);
    }
}
