using System.Diagnostics;
using Palisade.Bpf;
using Palisade.Runtime;

namespace Palisade.Bench;

/// <summary>
/// Records real process-sensor ring-buffer records: loads the sensor's BPF object, runs an
/// exec storm, copies every record. Benchmarks then replay them through user space only.
/// </summary>
internal static class RecordedEvents
{
    private sealed class Recorder : IRingBufferConsumer
    {
        public List<byte[]> Records { get; } = [];

        public void OnRecord(ReadOnlySpan<byte> record) => Records.Add(record.ToArray());
    }

    public static List<byte[]> Capture(string stormHelper, int execs)
    {
        KernelEnvironment.EnsureMounts();
        using var obj = BpfObject.OpenEmbedded(typeof(ProcessSensor).Assembly, "process.bpf.o");
        obj.Map("pal_process_events").MaxEntries = 64 * 1024 * 1024;
        obj.Load();
        var recorder = new Recorder();
        using var reader = new RingBufferReader(recorder, obj.Map("pal_process_events"));
        reader.Start();
        obj.Program("pal_fork").Attach();
        obj.Program("pal_exit").Attach();
        obj.Program("pal_exec").Attach();
        using (var storm = Process.Start(stormHelper, [execs.ToString(System.Globalization.CultureInfo.InvariantCulture), "2", "/bin/true"]))
        {
            storm.WaitForExit();
        }
        reader.Stop();
        return recorder.Records;
    }

    /// <summary>The events user space makes of <paramref name="records"/> (decode + enrich, as the agent does).</summary>
    public static List<Palisade.Events.PalisadeEvent> Decode(List<byte[]> records)
    {
        var events = new List<Palisade.Events.PalisadeEvent>();
        var decoder = NewDecoder(events.Add);
        foreach (var r in records)
        {
            decoder.OnRecord(r);
        }
        return events;
    }

    public static Palisade.Runtime.Processes.ProcessEventDecoder NewDecoder(Action<Palisade.Events.PalisadeEvent> sink) =>
        new("bench-node", new Palisade.Runtime.Processes.ProcessCache(1 << 20, TimeSpan.FromSeconds(10), TimeProvider.System),
            new Palisade.Runtime.Processes.BootClock(DateTimeOffset.UnixEpoch), new uint[10], ancestors: false, sink);
}
