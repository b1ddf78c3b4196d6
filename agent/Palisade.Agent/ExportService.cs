using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Events;
using Palisade.Exporters;

namespace Palisade.Agent;

/// <summary>Subscribes the configured exporters to the event hub before any sensor starts, and drains them on stop.</summary>
internal sealed partial class ExportService(AgentOptions options, EventHub hub, ILogger<ExportService> logger) : IHostedService
{
    private readonly List<EventSink> _sinks = [];

    public IReadOnlyList<EventSink> Sinks => _sinks;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var json = new TetragonJsonOptions(options.EnableProcessCred, options.EnableProcessNs);
        if (options.ExportFilename is { } file)
        {
            var sink = new JsonFileSink(hub.Subscribe("file", options.EventQueueSize), options.NodeName, file, json, options.ExportFileRotation);
            _sinks.Add(sink);
            LogFile(logger, sink.Path);
        }
        if (options.ExportStdout != "none")
        {
            _sinks.Add(new ConsoleSink(hub.Subscribe("stdout", options.EventQueueSize), options.NodeName, json: options.ExportStdout == "json", json));
        }
        foreach (var sink in _sinks)
        {
            sink.Start();
        }
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var sink in _sinks)
        {
            await sink.DisposeAsync().ConfigureAwait(false);
            LogSinkStopped(logger, sink.Name, sink.Written, sink.Subscription.Dropped, sink.Failed);
        }
        _sinks.Clear();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Exporting events as JSON lines to {Path}")]
    private static partial void LogFile(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Exporter {Sink}: {Written} events written, {Dropped} dropped (queue full), {Failed} failed")]
    private static partial void LogSinkStopped(ILogger logger, string sink, long written, long dropped, long failed);
}
