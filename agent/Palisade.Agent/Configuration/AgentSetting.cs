namespace Palisade.Agent.Configuration;

/// <summary>
/// One user-facing agent setting. The same key is the YAML key, the file name in
/// --config-dir, the flag (--key) and, upper-cased with '_' for '-', the environment
/// variable PALISADE_KEY. docs/configuration.md documents each (a test checks it does).
/// </summary>
public sealed record AgentSetting(string Key, string Default, string Description, IReadOnlyList<string>? Allowed = null)
{
    /// <summary>The environment variable that sets it.</summary>
    public string EnvironmentVariable => "PALISADE_" + Key.Replace('-', '_').ToUpperInvariant();

    /// <summary>The command-line flag that sets it.</summary>
    public string Flag => "--" + Key;
}

/// <summary>Every setting the agent reads, with its default. Names follow Tetragon's flags where the concept is shared.</summary>
public static class AgentSettings
{
    public static readonly AgentSetting LogLevel = new(
        "log-level", "info", "Minimum level of the agent's own logs (written to stderr).",
        ["trace", "debug", "info", "warn", "error"]);

    public static readonly AgentSetting LogFormat = new(
        "log-format", "text", "Format of the agent's own logs: human-readable text or one JSON object per line (Serilog compact JSON).",
        ["text", "json"]);

    public static readonly AgentSetting HealthServerAddress = new(
        "health-server-address", "127.0.0.1:6789",
        "host:port of the HTTP endpoints /healthz, /readyz and /v1/probe. ':PORT' listens on every address; an empty value turns the server off.");

    /// <summary>Settings that select where other settings come from; read before everything else.</summary>
    public static readonly AgentSetting ConfigFile = new(
        "config-file", "/etc/palisade/palisade.yaml", "YAML file of settings (keys as in this table). Missing is fine for the default path, an error for a path given explicitly.");

    public static readonly AgentSetting ConfigDir = new(
        "config-dir", "", "Directory where each file is one setting: the file name is the key, the content the value (a Kubernetes ConfigMap mounted as a volume).");

    public static readonly IReadOnlyList<AgentSetting> All = [LogLevel, LogFormat, HealthServerAddress, ConfigFile, ConfigDir];

    public static AgentSetting? Find(string key) => All.FirstOrDefault(s => s.Key == key);
}
