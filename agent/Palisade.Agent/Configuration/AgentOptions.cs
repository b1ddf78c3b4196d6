using System.Net;

namespace Palisade.Agent.Configuration;

/// <summary>The agent's resolved, validated settings.</summary>
public sealed record AgentOptions
{
    public required string LogLevel { get; init; }

    public required string LogFormat { get; init; }

    /// <summary>Where the health endpoints listen; null when turned off.</summary>
    public required IPEndPoint? HealthServerEndpoint { get; init; }

    /// <summary>Setting key -> where its value came from (default, file, env, flag), for the start-up log.</summary>
    public required IReadOnlyDictionary<string, string> Sources { get; init; }
}
