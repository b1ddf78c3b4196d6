using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Palisade.Agent;
using Palisade.Agent.Configuration;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Elasticsearch;

namespace Palisade.Bench;

/// <summary>
/// Events per second each sink sustains on one core: the benchmark process is pinned to
/// core 0 (the sink's encoding, writing, HTTP and HTTP/2 work all happen there); the other end
/// of the sink (a lean `_bulk` server, a gRPC stream reader) runs as its own process on core 1.
/// One operation = <see cref="Events"/> events, cycled from a real recorded exec storm, taken
/// from a full queue until the output has them all.
/// </summary>
[Config(typeof(OneCoreConfig))]
[MemoryDiagnoser]
public class SinkBenchmarks
{
    private sealed class OneCoreConfig : ManualConfig
    {
        public OneCoreConfig() => AddJob(Job.Default
            .WithAffinity(1) // CPU 0 only
            .WithWarmupCount(5).WithIterationCount(8)
            .WithInvocationCount(1).WithUnrollFactor(1));
    }

    private const string Node = "bench-node";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"palisade-sink-bench-{Environment.ProcessId}");
    private PalisadeEvent[] _events = [];
    private EventHub _hub = null!;
    private EventSink? _sink;
    private PeerProcess? _peer;
    private int _peerPort;
    private WebApplication? _grpcHost;
    private long _target;

    [Params(40_000)]
    public int Events { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var helper = Environment.GetEnvironmentVariable("PALISADE_EXECSTORM") ?? throw new InvalidOperationException("set PALISADE_EXECSTORM (bench/run-sinks.sh does)");
        var recorded = RecordedEvents.Decode(RecordedEvents.Capture(helper, 4000));
        _events = [.. Enumerable.Range(0, Events).Select(i => recorded[i % recorded.Count])];
        Directory.CreateDirectory(_dir);
        Console.WriteLine($"// {recorded.Count} recorded events cycled to {_events.Length}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (File.Exists(Path.Combine(_dir, "events.json")))
        {
            var bytes = Directory.EnumerateFiles(_dir, "events.json*").Sum(f => new FileInfo(f).Length);
            Console.WriteLine($"// json file: {bytes / (double)_events.Length:F0} bytes per event");
        }
        if (_peer?.Totals is { Length: 3 } es && es[0] > 0)
        {
            Console.WriteLine($"// elasticsearch: {es[0]} items, {es[1] / (double)es[0]:F0} bytes per event on the wire (gzip), {es[2] / (double)es[0]:F0} uncompressed (action + ECS document)");
        }
        if (_peer?.Totals is { Length: 2 } grpc && grpc[0] > 0)
        {
            Console.WriteLine($"// grpc: {grpc[0]} messages, {grpc[1] / (double)grpc[0]:F0} protobuf bytes per event");
        }
        _peer?.Dispose();
        _grpcHost?.StopAsync().GetAwaiter().GetResult();
        Directory.Delete(_dir, recursive: true);
    }

    private EventSubscription FilledQueue()
    {
        _hub = new EventHub();
        var subscription = _hub.Subscribe("bench", _events.Length);
        foreach (var e in _events)
        {
            _hub.Publish(e);
        }
        return subscription;
    }

    // ---- JSON lines file (default rotation: 10 MiB, 5 backups) ----

    [IterationSetup(Target = nameof(JsonFile))]
    public void JsonFileSetup()
    {
        foreach (var f in Directory.EnumerateFiles(_dir))
        {
            File.Delete(f);
        }
        _sink = new JsonFileSink(FilledQueue(), Node, Path.Combine(_dir, "events.json"));
    }

    [Benchmark]
    public long JsonFile()
    {
        _sink!.Start();
        _sink.DisposeAsync().AsTask().GetAwaiter().GetResult(); // drains the queue, then stops
        return _sink.Written != _events.Length ? throw new InvalidOperationException($"file sink wrote {_sink.Written} of {_events.Length}") : _sink.Written;
    }

    // ---- Elasticsearch _bulk to a loopback server (defaults: 1000 per request, gzip, spool) ----

    [IterationSetup(Target = nameof(ElasticsearchBulk))]
    public void ElasticsearchSetup()
    {
        if (_peer is null)
        {
            using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            probe.Start();
            _peerPort = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            _peer = new PeerProcess(1, "peer-es", _peerPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        _target = (_peer.Totals.Length > 0 ? _peer.Totals[0] : 0) + _events.Length;
        var spool = Path.Combine(_dir, "spool");
        if (Directory.Exists(spool))
        {
            Directory.Delete(spool, recursive: true);
        }
        _sink = new ElasticsearchSink(FilledQueue(), Node, new ElasticsearchOptions { Nodes = [new Uri($"http://127.0.0.1:{_peerPort}/")], SpoolDir = spool });
    }

    [Benchmark]
    public long ElasticsearchBulk()
    {
        _sink!.Start();
        _peer!.WaitFor(_target);
        _sink.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return ((ElasticsearchSink)_sink).Client.Indexed;
    }

    // ---- gRPC GetEvents stream over the unix socket (the agent's own service) ----

    [IterationSetup(Target = nameof(GrpcStream))]
    public void GrpcSetup()
    {
        if (_grpcHost is null)
        {
            var socket = Path.Combine(_dir, "api.sock");
            var options = AgentConfiguration.Load(new Dictionary<string, string>
            {
                ["server-address"] = "unix://" + socket,
                ["node-name"] = Node,
                ["event-queue-size"] = Events.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }, new Dictionary<string, string>());
            var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "palisade-bench" });
            builder.Logging.ClearProviders();
            builder.Services.AddRoutingCore();
            builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.ListenUnixSocket(socket, o => o.Protocols = HttpProtocols.Http2));
            builder.Services.AddGrpc();
            builder.Services.AddSingleton(options);
            // What SensorsService asks about the agent; never started here, so nothing is loaded.
            builder.Services.AddSingleton<AgentReadiness>();
            builder.Services.AddSingleton(TimeProvider.System);
            builder.Services.AddSingleton<Palisade.Kubernetes.PodCache>();
            builder.Services.AddSingleton<KernelSetupService>();
            builder.Services.AddSingleton<ProcessSensorService>();
            builder.Services.AddSingleton<PolicyService>();
            builder.Services.AddSingleton<KubernetesService>();
            _hub = new EventHub();
            builder.Services.AddSingleton(_hub);
            builder.Services.AddSingleton<ExportService>();
            _grpcHost = builder.Build();
            _grpcHost.UseRouting();
            _grpcHost.MapGrpcService<Palisade.Agent.Api.SensorsService>();
            _grpcHost.StartAsync().GetAwaiter().GetResult();
            _peer = new PeerProcess(1, "peer-grpc", socket);
            while (_hub.Subscriptions.Count == 0)
            {
                Thread.Sleep(10);
            }
        }
        _target = (_peer!.Totals.Length > 0 ? _peer.Totals[0] : 0) + _events.Length;
    }

    [Benchmark]
    public long GrpcStream()
    {
        // Publishing 40 000 events into the stream's queue costs ~1 ms of the operation.
        foreach (var e in _events)
        {
            _hub.Publish(e);
        }
        _peer!.WaitFor(_target);
        return _target;
    }
}
