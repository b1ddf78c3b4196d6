using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Palisade.Bpf;
using Palisade.Bpf.Abi;
using Palisade.Datapath.Abi;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>Collects the flow records (PAL_EVENT_FLOW) of a datapath's ring buffer.</summary>
internal sealed class FlowRecords : IRingBufferConsumer, IDisposable
{
    private readonly ConcurrentQueue<PalFlowEvent> _records = new();
    private readonly RingBufferReader _reader;
    private readonly bool _background;

    public FlowRecords(BpfMap ring, bool background)
    {
        _reader = new RingBufferReader(this, ring);
        _background = background;
        if (background)
        {
            _reader.Start("test-flows");
        }
    }

    public void OnRecord(ReadOnlySpan<byte> record)
    {
        if (record.Length >= Marshal.SizeOf<PalFlowEvent>() && MemoryMarshal.Read<PalEventHeader>(record).Type == (uint)PalEventType.Flow)
        {
            _records.Enqueue(MemoryMarshal.Read<PalFlowEvent>(record));
        }
    }

    /// <summary>Records so far (after consuming what waits, when the reader runs on the caller's thread).</summary>
    public List<PalFlowEvent> Take()
    {
        if (!_background)
        {
            _reader.Drain();
        }
        var list = new List<PalFlowEvent>();
        while (_records.TryDequeue(out var e))
        {
            list.Add(e);
        }
        return list;
    }

    /// <summary>Waits (bounded) until a record matching <paramref name="match"/> arrived among those collected.</summary>
    public bool WaitFor(List<PalFlowEvent> seen, Func<PalFlowEvent, bool> match) =>
        Command.WaitUntil(() =>
        {
            seen.AddRange(Take());
            return seen.Any(match);
        }, TimeSpan.FromSeconds(10));

    public void Dispose()
    {
        _reader.Stop();
        _reader.Dispose();
    }
}
