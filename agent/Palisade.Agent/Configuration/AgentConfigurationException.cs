namespace Palisade.Agent.Configuration;

/// <summary>The agent's settings are invalid; <see cref="Errors"/> names each field, value, source and fix.</summary>
public sealed class AgentConfigurationException(IReadOnlyList<string> errors)
    : Exception("Invalid agent configuration:" + Environment.NewLine + string.Join(Environment.NewLine, errors.Select(e => "  " + e)))
{
    public IReadOnlyList<string> Errors { get; } = errors;
}
