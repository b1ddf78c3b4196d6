using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Agent.Configuration;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Elasticsearch;

namespace Palisade.Agent;

/// <summary>Subscribes the configured exporters to the event hub before any sensor starts, and drains them on stop.</summary>
internal sealed partial class ExportService(AgentOptions options, EventHub hub, ILogger<ExportService> logger) : IHostedService
{
    private readonly List<EventSink> _sinks = [];

    public IReadOnlyList<EventSink> Sinks => _sinks;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var json = JsonOptions(options);
        var pipeline = options.ExportPipeline;
        if (options.ExportFilename is { } file)
        {
            var sink = new JsonFileSink(hub.Subscribe("file", options.EventQueueSize), options.NodeName, file, json, options.ExportFileRotation, pipeline: pipeline);
            _sinks.Add(sink);
            LogFile(logger, sink.Path);
        }
        if (options.ExportStdout != "none")
        {
            _sinks.Add(new ConsoleSink(hub.Subscribe("stdout", options.EventQueueSize), options.NodeName, json: options.ExportStdout == "json", json, pipeline));
        }
        if (options.Elasticsearch is { } es)
        {
            var sink = new ElasticsearchSink(hub.Subscribe("elasticsearch", options.EventQueueSize), options.NodeName, es, json, pipeline,
                log: message => LogElasticsearch(logger, message));
            _sinks.Add(sink);
            LogElasticsearchStart(logger, string.Join(",", es.Nodes.Select(n => n.GetLeftPart(UriPartial.Path))), es.Index, es.SpoolDir, sink.Client.SpooledBytes);
        }
        foreach (var sink in _sinks)
        {
            sink.Start();
        }
        return Task.CompletedTask;
    }

    /// <summary>The encoding options every sink (and the gRPC stream) shares.</summary>
    public static TetragonJsonOptions JsonOptions(AgentOptions options) =>
        new(options.EnableProcessCred, options.EnableProcessNs) { Redactor = options.Redactor, ClusterName = options.ClusterName, NodeLabels = options.NodeLabels, PolicyRules = options.PolicyRules };

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

    [LoggerMessage(Level = LogLevel.Information, Message = "Indexing events into Elasticsearch at {Url}, index {Index}; spool {SpoolDir} ({Spooled} bytes waiting from before)")]
    private static partial void LogElasticsearchStart(ILogger logger, string url, string index, string spoolDir, long spooled);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Message}")]
    private static partial void LogElasticsearch(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "Exporter {Sink}: {Written} events written, {Dropped} dropped (queue full), {Failed} failed")]
    private static partial void LogSinkStopped(ILogger logger, string sink, long written, long dropped, long failed);
}
