using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using Palisade.Bpf;
using Palisade.Bpf.Abi;
using Palisade.Bpf.Probe;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

public sealed unsafe class RingBufferTests
{
    private sealed class Collector : IRingBufferConsumer
    {
        public ConcurrentQueue<PalTestEvent> Events { get; } = new();

        public void OnRecord(ReadOnlySpan<byte> record) => Events.Enqueue(MemoryMarshal.Read<PalTestEvent>(record));
    }

    private sealed class Thrower : IRingBufferConsumer
    {
        public void OnRecord(ReadOnlySpan<byte> record) => throw new InvalidOperationException("bad consumer");
    }

    private static BpfObject LoadForThisProcess()
    {
        var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "ringbuf_test.bpf.o");
        obj.SetConstant("target_tgid", (uint)Environment.ProcessId);
        obj.Load();
        return obj;
    }

    private static (int Tid, byte[] Payload) WriteFromNewThread(int fd, string text)
    {
        var payload = Encoding.ASCII.GetBytes(text);
        var tid = 0;
        var thread = new Thread(() =>
        {
            tid = Native.GetTid();
            fixed (byte* p = payload)
            {
                Native.Write(fd, p, (nuint)payload.Length);
            }
        });
        thread.Start();
        thread.Join();
        return (tid, payload);
    }

    [Fact]
    public void ATracepointRecordReachesCSharpWithPidTidCookieAndPayload()
    {
        Kernel.Require(KernelFeature.Tracepoint, KernelFeature.Ringbuf);
        using var obj = LoadForThisProcess();
        var collector = new Collector();
        using var reader = new RingBufferReader(collector, obj.Map("test_events"));
        reader.Start();
        using var link = obj.Program("test_sys_enter_write").AttachTracepoint("syscalls", "sys_enter_write");
        using var devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Write);
        var fd = (int)devNull.DangerousGetHandle();
        obj.Map("test_cookies").Typed<uint, ulong>().Update((uint)fd, 0xC0FFEEUL);

        var (tid, payload) = WriteFromNewThread(fd, "hello palisade ring buffer!");

        Assert.True(Command.WaitUntil(() => !collector.Events.IsEmpty, TimeSpan.FromSeconds(10)), "no record arrived");
        Assert.True(collector.Events.TryDequeue(out var e));
        Assert.Equal((uint)PalEventType.Test, e.Hdr.Type);
        Assert.Equal((uint)sizeof(PalTestEvent), e.Hdr.Size);
        Assert.Equal((uint)Environment.ProcessId, e.Hdr.Pid);
        Assert.Equal((uint)tid, e.Hdr.Tid);
        Assert.NotEqual(0UL, e.Hdr.KtimeNs);
        Assert.NotEqual(0UL, e.Hdr.CgroupId);
        Assert.Equal(0xC0FFEEUL, e.Cookie);
        Assert.Equal(payload, new ReadOnlySpan<byte>(e.Payload, payload.Length).ToArray());
        Assert.Equal(1, reader.Records);
        Assert.Equal(0, reader.ConsumerErrors);
        var hits = obj.Map("test_hits").PerCpu<uint, ulong>();
        Assert.True(hits.TryLookup(0, out var perCpu));
        Assert.Equal(BpfPerCpuMap<uint, ulong>.PossibleCpus, perCpu.Length);
        Assert.Equal(1UL, perCpu.Aggregate(0UL, (a, b) => a + b));
    }

    [Fact]
    public void AThrowingConsumerIsCountedAndReadingGoesOn()
    {
        Kernel.Require(KernelFeature.Tracepoint, KernelFeature.Ringbuf);
        using var obj = LoadForThisProcess();
        using var reader = new RingBufferReader(new Thrower(), obj.Map("test_events"));
        using var link = obj.Program("test_sys_enter_write").AttachTracepoint("syscalls", "sys_enter_write");
        using var devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Write);
        var fd = (int)devNull.DangerousGetHandle();
        obj.Map("test_cookies").Typed<uint, ulong>().Update((uint)fd, 1);

        WriteFromNewThread(fd, "one");
        WriteFromNewThread(fd, "two");
        var drained = reader.Drain();

        Assert.Equal(2, drained);
        Assert.Equal(2, reader.ConsumerErrors);
        Assert.Equal(0, reader.Records);
        Assert.IsType<InvalidOperationException>(reader.LastConsumerError);
    }

    [Fact]
    public void RecordsSubmittedWithoutAWakeupStillArrive()
    {
        Kernel.Require(KernelFeature.Tracepoint, KernelFeature.Ringbuf);
        using var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "ringbuf_test.bpf.o");
        obj.SetConstant("target_tgid", (uint)Environment.ProcessId);
        obj.SetConstant("no_wakeup", 1u);
        obj.Load();
        var collector = new Collector();
        using var reader = new RingBufferReader(collector, obj.Map("test_events"));
        reader.Start();
        using var link = obj.Program("test_sys_enter_write").AttachTracepoint("syscalls", "sys_enter_write");
        using var devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Write);
        var fd = (int)devNull.DangerousGetHandle();
        obj.Map("test_cookies").Typed<uint, ulong>().Update((uint)fd, 9);

        WriteFromNewThread(fd, "quiet");

        Assert.True(Command.WaitUntil(() => !collector.Events.IsEmpty, TimeSpan.FromSeconds(10)), "a record queued without a wakeup was never read");
    }

    [Fact]
    public void StopDrainsWhatIsAlreadyInTheBuffer()
    {
        Kernel.Require(KernelFeature.Tracepoint, KernelFeature.Ringbuf);
        using var obj = LoadForThisProcess();
        var collector = new Collector();
        using var reader = new RingBufferReader(collector, obj.Map("test_events"));
        using var link = obj.Program("test_sys_enter_write").AttachTracepoint("syscalls", "sys_enter_write");
        using var devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Write);
        var fd = (int)devNull.DangerousGetHandle();
        obj.Map("test_cookies").Typed<uint, ulong>().Update((uint)fd, 7);
        for (var i = 0; i < 100; i++)
        {
            WriteFromNewThread(fd, $"event {i}");
        }

        reader.Start();
        reader.Stop();

        Assert.Equal(100, collector.Events.Count);
    }
}
