using System.Buffers;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Runtime.Processes;

namespace Palisade.Bench;

/// <summary>
/// User-space cost per event, from records recorded off the real kernel (an exec storm of
/// /bin/true: forks, execs and exits). One operation = the whole recorded batch.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(warmupCount: 2, iterationCount: 8)]
public class PipelineBenchmarks
{
    private List<byte[]> _records = [];
    private List<PalisadeEvent> _events = [];
    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 20);
    private Utf8JsonWriter _json = null!;

    [Params(4000)]
    public int Execs { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var helper = Environment.GetEnvironmentVariable("PALISADE_EXECSTORM") ?? throw new InvalidOperationException("set PALISADE_EXECSTORM (bench/run-pipeline.sh does)");
        _records = RecordedEvents.Capture(helper, Execs);
        _events = RecordedEvents.Decode(_records);
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });
        Console.WriteLine($"// recorded {_records.Count} records, {_events.Count} events");
    }

    /// <summary>Decode + enrich (cache lookups, records, events) of every recorded record.</summary>
    [Benchmark(OperationsPerInvoke = 1)]
    public int DecodeAndEnrich()
    {
        var sink = new List<PalisadeEvent>(_events.Count);
        var decoder = RecordedEvents.NewDecoder(sink.Add);
        foreach (var r in _records)
        {
            decoder.OnRecord(r);
        }
        return sink.Count;
    }

    /// <summary>Tetragon JSON encoding of every event the batch produced.</summary>
    [Benchmark]
    public long EncodeTetragonJson()
    {
        long bytes = 0;
        foreach (var e in _events)
        {
            _buffer.ResetWrittenCount();
            _json.Reset(_buffer);
            TetragonJson.Write(_json, e, "bench-node");
            _json.Flush();
            bytes += _buffer.WrittenCount;
        }
        return bytes;
    }

    /// <summary>
    /// What the Elasticsearch sink encodes per event: the Tetragon JSON (kept under
    /// `palisade`), the `_id` (SHA-256 of the identifying fields) and the ECS document.
    /// </summary>
    [Benchmark]
    public long EncodeElasticsearchDocument()
    {
        long bytes = 0;
        var tetragon = new ArrayBufferWriter<byte>(4096);
        using var tetragonJson = new Utf8JsonWriter(tetragon, new JsonWriterOptions { SkipValidation = true });
        foreach (var e in _events)
        {
            tetragon.ResetWrittenCount();
            tetragonJson.Reset(tetragon);
            TetragonJson.Write(tetragonJson, e, "bench-node");
            tetragonJson.Flush();
            bytes += Palisade.Exporters.Elasticsearch.ElasticsearchSink.DocumentId("bench-node", "process_exec", e.Process?.ExecId ?? "", "2026-11-23T00:00:00.000000000Z").Length;
            _buffer.ResetWrittenCount();
            _json.Reset(_buffer);
            Palisade.Exporters.Elasticsearch.EcsDocument.Write(_json, e, tetragon.WrittenSpan, "bench-node", TetragonJsonOptions.Default);
            _json.Flush();
            bytes += _buffer.WrittenCount;
        }
        return bytes;
    }

    public int RecordCount => _records.Count;

    public int EventCount => _events.Count;
}
