using System.Runtime.InteropServices;
using System.Text;
using Palisade.Bpf.Abi;
using Palisade.Events;
using Palisade.Runtime.Abi;
using Palisade.Runtime.Processes;

namespace Palisade.Tests;

/// <summary>The decoder on hand-built records laid out as the kernel writes them: no kernel needed.</summary>
public sealed unsafe class DecoderTests
{
    private const string ContainerId = "1fb931d2f6e5e4cfdbaf30fdb8e2fdd81320bdb3047ded50120a4f82838209ce";

    private sealed class FakePods : IPodResolver
    {
        public List<ContainerContext> Asked { get; } = [];

        public PodInfo? Resolve(in ContainerContext container)
        {
            Asked.Add(container);
            return new PodInfo("default", "xwing", container.PodUid);
        }
    }

    private static byte[] ExecRecord(uint pid, ulong ktime, string cgroupLeaf, string cgroupParent)
    {
        var exe = Encoding.UTF8.GetBytes("true\0bin\0usr\0");
        var cwd = Encoding.UTF8.GetBytes("tmp\0");
        var args = Encoding.UTF8.GetBytes("/bin/true\0--version\0");
        var e = new PalExecEvent();
        e.Hdr.Type = (uint)PalEventType.Exec;
        e.Hdr.Pid = pid;
        e.Hdr.Tid = pid;
        e.Hdr.KtimeNs = ktime;
        e.Hdr.CgroupId = 77;
        e.Flags = (uint)ProcessFlags.Exec;
        e.Auid = uint.MaxValue;
        e.ExeLen = (ushort)exe.Length;
        e.CwdLen = (ushort)cwd.Length;
        e.ArgsLen = (ushort)args.Length;
        Encoding.UTF8.GetBytes(cgroupLeaf, new Span<byte>(e.CgroupName, PalExecEvent.CgroupNameSize));
        Encoding.UTF8.GetBytes(cgroupParent, new Span<byte>(e.CgroupParentName, PalExecEvent.CgroupNameSize));
        var data = new Span<byte>(e.Data, PalExecEvent.DataSize);
        exe.CopyTo(data);
        cwd.CopyTo(data[exe.Length..]);
        args.CopyTo(data[(exe.Length + cwd.Length)..]);
        var size = PalExecEvent.FixedSize + exe.Length + cwd.Length + args.Length;
        e.Hdr.Size = (uint)size;
        return MemoryMarshal.AsBytes(new ReadOnlySpan<PalExecEvent>(ref e))[..size].ToArray();
    }

    [Fact]
    public void AnExecRecordBecomesAnEventWithPathsArgumentsContainerAndPod()
    {
        var events = new List<PalisadeEvent>();
        var pods = new FakePods();
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var decoder = new ProcessEventDecoder("node-1", new ProcessCache(1024, TimeSpan.FromSeconds(10), time),
            new BootClock(DateTimeOffset.UnixEpoch), new uint[10], ancestors: false, events.Add, pods);

        decoder.OnRecord(ExecRecord(4242, 5_000_000_000, $"cri-containerd-{ContainerId}.scope", "kubepods-besteffort-pod1a2b3c4d_1111_2222_3333_444455556666.slice"));

        var exec = Assert.IsType<ProcessExecEvent>(Assert.Single(events));
        var p = exec.Process;
        Assert.Equal("/usr/bin/true", p.Binary);
        Assert.Equal("/tmp", p.Cwd);
        Assert.Equal("--version", p.Arguments);
        Assert.Equal(ExecId.Create("node-1", 5_000_000_000, 4242), p.ExecId);
        Assert.Equal(DateTimeOffset.UnixEpoch.AddSeconds(5), p.StartTime);
        Assert.Equal(ContainerId, p.ContainerId);
        Assert.Equal("xwing", p.Pod?.Name);
        Assert.Equal(new ContainerContext(ContainerId, "1a2b3c4d-1111-2222-3333-444455556666", 77), Assert.Single(pods.Asked));
    }

    [Fact]
    public void HostProcessesDoNotAskForAPod()
    {
        var events = new List<PalisadeEvent>();
        var pods = new FakePods();
        var decoder = new ProcessEventDecoder("node-1", new ProcessCache(1024, TimeSpan.FromSeconds(10), TimeProvider.System),
            new BootClock(DateTimeOffset.UnixEpoch), new uint[10], ancestors: false, events.Add, pods);

        decoder.OnRecord(ExecRecord(1, 1, "session-1.scope", "user-0.slice"));

        Assert.Null(Assert.IsType<ProcessExecEvent>(Assert.Single(events)).Process.Pod);
        Assert.Empty(pods.Asked);
    }

    [Fact]
    public void TruncatedOrUnknownRecordsAreCountedNotThrown()
    {
        var decoder = new ProcessEventDecoder("n", new ProcessCache(1024, TimeSpan.FromSeconds(1), TimeProvider.System),
            new BootClock(DateTimeOffset.UnixEpoch), new uint[10], false, _ => { });
        var record = ExecRecord(1, 1, "", "");

        decoder.OnRecord(record.AsSpan(0, PalExecEvent.FixedSize - 1));
        decoder.OnRecord(new byte[3]);
        record[0] = 99; // unknown type
        decoder.OnRecord(record);

        Assert.Equal(3, decoder.Stats.Malformed);
        Assert.Equal(0, decoder.Stats.Exec);
    }
}
