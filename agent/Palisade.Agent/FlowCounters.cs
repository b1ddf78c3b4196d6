using Palisade.Datapath.Abi;
using Palisade.Datapath.Flows;

namespace Palisade.Agent;

/// <summary>
/// The flow path's counters at one moment, read for a scrape or a status request: the
/// datapath's per-CPU counters (pal_net_stats, summed), the fill of its flow-aggregation
/// table, and the decoder's counts. A part that is not running is null.
/// </summary>
internal sealed record FlowCounters(
    IReadOnlyDictionary<DatapathCounter, ulong>? Datapath,
    FlowTableFill? Table,
    FlowDecoderStats? Decoder,
    IReadOnlyDictionary<FlowRecordError, long>? Malformed)
{
    /// <summary>Every kernel counter of the datapath but the enum's Count.</summary>
    public static readonly IReadOnlyList<DatapathCounter> DatapathCounters = [.. Enum.GetValues<DatapathCounter>().Where(c => c != DatapathCounter.Count)];

    /// <summary>
    /// Reads what runs: the loaded datapath (kernel counters, and the table when
    /// <paramref name="withTable"/>: it iterates the table's keys) and the decoder.
    /// </summary>
    public static FlowCounters? Read(KernelDatapath? kernel, FlowSensorService? flows, bool withTable)
    {
        var datapath = kernel?.Loaded;
        var decoder = flows?.Decoder;
        if (datapath is null && decoder is null)
        {
            return null;
        }
        IReadOnlyDictionary<DatapathCounter, ulong>? counters = null;
        FlowTableFill? table = null;
        try
        {
            counters = datapath?.Counters();
            if (withTable && datapath is not null)
            {
                var (entries, capacity, evicted) = datapath.FlowTableUsage();
                table = new FlowTableFill(entries, capacity, evicted);
            }
        }
        catch (Palisade.Bpf.BpfException)
        {
            // The datapath closing during the read: the next read counts again.
        }
        catch (ObjectDisposedException)
        {
        }
        return new FlowCounters(counters, table, decoder?.Stats,
            decoder is null ? null : Enum.GetValues<FlowRecordError>().ToDictionary(r => r, decoder.MalformedBy));
    }
}

/// <summary>Entries in the flow-aggregation LRU (pal_flows), its size, and how many it evicted.</summary>
internal readonly record struct FlowTableFill(int Entries, int Capacity, ulong Evicted);
