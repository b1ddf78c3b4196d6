using System.Net;

namespace Palisade.Agent.Configuration;

/// <summary>The agent's resolved, validated settings.</summary>
public sealed record AgentOptions
{
    public required string LogLevel { get; init; }

    public required string LogFormat { get; init; }

    /// <summary>Where the health endpoints listen; null when turned off.</summary>
    public required IPEndPoint? HealthServerEndpoint { get; init; }

    public required string NodeName { get; init; }

    /// <summary>Null when no file export is configured.</summary>
    public required string? ExportFilename { get; init; }

    /// <summary>Rotation of the JSON file.</summary>
    public Palisade.Exporters.FileRotation ExportFileRotation { get; init; } = Palisade.Exporters.FileRotation.Default;

    public required string ExportStdout { get; init; }

    public required int EventQueueSize { get; init; }

    public required bool EnableAncestors { get; init; }

    public required bool EnableProcessCred { get; init; }

    public required bool EnableProcessNs { get; init; }

    public required int ProcessCacheSize { get; init; }

    public required TimeSpan ProcessCacheGrace { get; init; }

    public required int ProcessArgsMax { get; init; }

    public required int RingBufferSize { get; init; }

    public required string ProcFs { get; init; }

    /// <summary>Null when no policy directory is configured.</summary>
    public string? TracingPolicyDir { get; init; }

    /// <summary>Labels a policy from the directory must carry (all of them); empty: no filter.</summary>
    public IReadOnlyDictionary<string, string> TracingPolicySelector { get; init; } = new Dictionary<string, string>();

    /// <summary>Setting key -> where its value came from (default, file, env, flag), for the start-up log.</summary>
    public required IReadOnlyDictionary<string, string> Sources { get; init; }
}
