using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Palisade.Agent;

/// <summary>Registered last: when it starts, every earlier start-up step has finished, so the agent is ready.</summary>
internal sealed partial class ReadinessService(AgentReadiness readiness, ILogger<ReadinessService> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        readiness.Set(true);
        LogReady(logger);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        readiness.Set(false);
        LogStopping(logger);
        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Palisade agent ready")]
    private static partial void LogReady(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Palisade agent stopping: detaching programs")]
    private static partial void LogStopping(ILogger logger);
}
