using System.Text.Json.Nodes;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>What a runtime passes to a plugin besides its config: the CNI_* variables of one attachment.</summary>
internal sealed record CniAttachment(string ContainerId, string NetnsPath, string IfName = "eth0", string? Args = null);

/// <summary>One plugin call: exit code, stdout (a result or the spec's error object) and stderr.</summary>
internal sealed record CniOutcome(string Plugin, string Command, int ExitCode, string Stdout, string Stderr)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Stdout as JSON; null when empty (DEL and CHECK print nothing on success).</summary>
    public JsonObject? Json => string.IsNullOrWhiteSpace(Stdout) ? null : JsonNode.Parse(Stdout)?.AsObject();

    /// <summary>The spec's error code when the plugin failed with an error object, else null.</summary>
    public int? ErrorCode => Succeeded ? null : (int?)Json?["code"];

    /// <summary>The first IPv4 address of an ADD result, without its prefix length.</summary>
    public string FirstAddress()
    {
        var ips = Json?["ips"]?.AsArray();
        Assert.True(ips is { Count: > 0 }, $"{Plugin} {Command} returned no ips: {Stdout}");
        return ((string)ips![0]!["address"]!).Split('/')[0];
    }

    /// <summary>The first address of an ADD result of one family (IPv6 when <paramref name="v6"/>), without its prefix length.</summary>
    public string FirstAddress(bool v6)
    {
        var address = Json?["ips"]?.AsArray().Select(ip => ((string?)ip?["address"])?.Split('/')[0])
            .FirstOrDefault(a => a is not null && a.Contains(':', StringComparison.Ordinal) == v6);
        Assert.True(address is not null, $"{Plugin} {Command} returned no {(v6 ? "IPv6" : "IPv4")} address: {Stdout}");
        return address!;
    }

    public override string ToString() => $"{Plugin} {Command} exited {ExitCode}: {Stdout}{Stderr}";
}

/// <summary>
/// Calls CNI plugin binaries exactly as a container runtime does (libcni's conventions): the
/// CNI_* environment, the network config on stdin, the binary found by its `type` in CNI_PATH;
/// for a conflist, each plugin in order with the previous result as `prevResult` on ADD and
/// CHECK, and in reverse order with the ADD result on DEL.
/// </summary>
internal sealed class CniInvoker(IReadOnlyList<string> pluginPath)
{
    // A plugin that hangs (waiting on a lock, an agent that does not answer) must fail the test, not stall it.
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(60);

    public IReadOnlyList<string> PluginPath { get; } = pluginPath;

    /// <summary>Runs one plugin with one config object.</summary>
    public CniOutcome Invoke(string command, JsonObject config, CniAttachment attachment)
    {
        var type = (string?)config["type"];
        if (string.IsNullOrEmpty(type))
        {
            throw new ArgumentException($"the plugin config has no \"type\" (the plugin binary to run): {config.ToJsonString()}", nameof(config));
        }
        var binary = PluginPath.Select(dir => Path.Combine(dir, type)).FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"plugin \"{type}\" is in none of CNI_PATH {string.Join(':', PluginPath)}");
        var environment = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = attachment.ContainerId,
            ["CNI_NETNS"] = attachment.NetnsPath,
            ["CNI_IFNAME"] = attachment.IfName,
            ["CNI_ARGS"] = attachment.Args ?? "",
            ["CNI_PATH"] = string.Join(':', PluginPath),
        };
        var result = EnvironmentCommand.Run(binary, [], environment, config.ToJsonString(), s_bound);
        return new CniOutcome(type, command, result.ExitCode, result.Stdout, result.Stderr);
    }

    /// <summary>VERSION: what spec versions the plugin speaks (no attachment needed).</summary>
    public CniOutcome Version(string type, string cniVersion = "1.0.0") =>
        Invoke("VERSION", new JsonObject { ["cniVersion"] = cniVersion, ["type"] = type }, new CniAttachment("", ""));

    /// <summary>ADD through every plugin of the list; returns the last plugin's outcome (or the first failure).</summary>
    public CniOutcome Add(JsonObject conflist, CniAttachment attachment) => Chain("ADD", conflist, attachment, prevResult: null);

    /// <summary>CHECK through every plugin with the ADD result as prevResult.</summary>
    public CniOutcome Check(JsonObject conflist, CniAttachment attachment, JsonObject addResult) => Chain("CHECK", conflist, attachment, addResult);

    /// <summary>DEL through every plugin in reverse order with the ADD result (when known) as prevResult.</summary>
    public CniOutcome Del(JsonObject conflist, CniAttachment attachment, JsonObject? addResult)
    {
        CniOutcome? last = null;
        foreach (var plugin in Plugins(conflist).Reverse())
        {
            last = Invoke("DEL", PluginConfig(conflist, plugin, addResult), attachment);
            if (!last.Succeeded)
            {
                return last;
            }
        }
        return last ?? throw new ArgumentException("the conflist has no plugins", nameof(conflist));
    }

    private CniOutcome Chain(string command, JsonObject conflist, CniAttachment attachment, JsonObject? prevResult)
    {
        CniOutcome? last = null;
        var previous = prevResult;
        foreach (var plugin in Plugins(conflist))
        {
            last = Invoke(command, PluginConfig(conflist, plugin, previous), attachment);
            if (!last.Succeeded)
            {
                return last;
            }
            // ADD passes each plugin's result on; CHECK passes the same ADD result to every plugin.
            if (command == "ADD")
            {
                previous = last.Json;
            }
        }
        return last ?? throw new ArgumentException("the conflist has no plugins", nameof(conflist));
    }

    private static IEnumerable<JsonObject> Plugins(JsonObject conflist) =>
        conflist["plugins"]?.AsArray().Select(p => p!.AsObject())
        ?? throw new ArgumentException($"the conflist has no \"plugins\" array: {conflist.ToJsonString()}", nameof(conflist));

    // libcni's buildOneConfig: the plugin object plus the list's name and cniVersion, and prevResult.
    private static JsonObject PluginConfig(JsonObject conflist, JsonObject plugin, JsonObject? prevResult)
    {
        var config = plugin.DeepClone().AsObject();
        config["name"] = conflist["name"]?.DeepClone();
        config["cniVersion"] = conflist["cniVersion"]?.DeepClone();
        if (prevResult is not null)
        {
            config["prevResult"] = prevResult.DeepClone();
        }
        return config;
    }
}
