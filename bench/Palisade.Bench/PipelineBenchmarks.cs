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
    private ProcessEventDecoder _decoder = null!;
    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 20);
    private Utf8JsonWriter _json = null!;

    [Params(4000)]
    public int Execs { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var helper = Environment.GetEnvironmentVariable("PALISADE_EXECSTORM") ?? throw new InvalidOperationException("set PALISADE_EXECSTORM (bench/run-pipeline.sh does)");
        _records = RecordedEvents.Capture(helper, Execs);
        _decoder = NewDecoder(_events);
        foreach (var r in _records)
        {
            _decoder.OnRecord(r);
        }
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });
        Console.WriteLine($"// recorded {_records.Count} records, {_events.Count} events");
    }

    private static ProcessEventDecoder NewDecoder(List<PalisadeEvent> sink) =>
        new("bench-node", new ProcessCache(1 << 20, TimeSpan.FromSeconds(10), TimeProvider.System),
            new BootClock(DateTimeOffset.UnixEpoch), new uint[10], ancestors: false, sink.Add);

    /// <summary>Decode + enrich (cache lookups, records, events) of every recorded record.</summary>
    [Benchmark(OperationsPerInvoke = 1)]
    public int DecodeAndEnrich()
    {
        var sink = new List<PalisadeEvent>(_events.Count);
        var decoder = NewDecoder(sink);
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

    public int RecordCount => _records.Count;

    public int EventCount => _events.Count;
}
