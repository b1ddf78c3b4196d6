using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Palisade.Events;
using Palisade.Bpf.Abi;
using Palisade.Runtime.Abi;
using Palisade.Runtime.Processes;

namespace Palisade.Fuzz;

/// <summary>
/// Recorded process-sensor ring-buffer records: the input is a sequence of records, each a
/// little-endian u16 length then the record's bytes, fed in order to one decoder with a
/// small cache (so eviction, fork bookkeeping and exits of unknown processes all run).
/// </summary>
public static unsafe class ProcessEvents
{
    public static void Run(byte[] input)
    {
        var events = 0;
        var decoder = new ProcessEventDecoder("fuzz-node", new ProcessCache(1024, TimeSpan.Zero, TimeProvider.System),
            new BootClock(DateTimeOffset.UnixEpoch), new uint[PalExecEvent.NamespaceCount], ancestors: true, _ => events++);
        var rest = input.AsSpan();
        while (rest.Length >= 2)
        {
            var length = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(rest), rest.Length - 2);
            decoder.OnRecord(rest.Slice(2, length));
            rest = rest[(2 + length)..];
        }
    }

    public static IEnumerable<(string, byte[])> Seeds()
    {
        const string containerId = "1fb931d2f6e5e4cfdbaf30fdb8e2fdd81320bdb3047ded50120a4f82838209ce";
        var exec = Exec(100, 1_000, 1, 500, "true\0bin\0usr\0", "tmp\0", "", "/bin/true\0--version\0", "", "");
        var fork = Fork(101, 2_000, 100, 1_000);
        var childExec = Exec(101, 2_000, 100, 1_000, "sh\0bin\0", "\0", "./run.sh", "/bin/sh\0./run.sh\0a b\0", $"cri-containerd-{containerId}.scope",
            "kubepods-besteffort-pod1a2b3c4d_1111_2222_3333_444455556666.slice", flags: ProcessFlags.Exec | ProcessFlags.Script, prevKtime: 2_000);
        yield return ("exec", Records(exec));
        yield return ("exec-fork-exec-exit", Records(exec, fork, childExec, Exit(101, 2_000, 9), Exit(100, 1_000, 0x100)));
        yield return ("fork-exit-unknown", Records(Fork(7, 70, 6, 60), Exit(7, 70, 0), Exit(8, 0, 0)));
    }

    private static byte[] Records(params byte[][] records)
    {
        var result = new List<byte>();
        foreach (var r in records)
        {
            result.Add((byte)r.Length);
            result.Add((byte)(r.Length >> 8));
            result.AddRange(r);
        }
        return [.. result];
    }

    private static byte[] Exec(uint pid, ulong ktime, uint ppid, ulong pktime, string exe, string cwd, string filename, string args, string cgroup, string cgroupParent,
        ProcessFlags flags = ProcessFlags.Exec, ulong prevKtime = 0)
    {
        var e = new PalExecEvent();
        e.Hdr.Type = (uint)PalEventType.Exec;
        e.Hdr.Pid = e.Hdr.Tid = pid;
        e.Hdr.KtimeNs = ktime;
        e.Hdr.CgroupId = 77;
        e.ParentPid = ppid;
        e.ParentKtime = pktime;
        e.PrevKtime = prevKtime;
        e.Flags = (uint)flags;
        e.Auid = uint.MaxValue;
        Encoding.UTF8.GetBytes(cgroup, new Span<byte>(e.CgroupName, PalExecEvent.CgroupNameSize));
        Encoding.UTF8.GetBytes(cgroupParent, new Span<byte>(e.CgroupParentName, PalExecEvent.CgroupNameSize));
        var data = new Span<byte>(e.Data, PalExecEvent.DataSize);
        var at = 0;
        ushort Put(string s, Span<byte> into)
        {
            var n = Encoding.UTF8.GetBytes(s, into[at..]);
            at += n;
            return (ushort)n;
        }
        e.ExeLen = Put(exe, data);
        e.CwdLen = Put(cwd, data);
        e.FilenameLen = Put(filename, data);
        e.ArgsLen = Put(args, data);
        var size = PalExecEvent.FixedSize + at;
        e.Hdr.Size = (uint)size;
        return MemoryMarshal.AsBytes(new ReadOnlySpan<PalExecEvent>(ref e))[..size].ToArray();
    }

    private static byte[] Fork(uint pid, ulong ktime, uint ppid, ulong pktime)
    {
        var e = new PalForkEvent { ParentPid = ppid, ParentKtime = pktime };
        e.Hdr = new() { Type = (uint)PalEventType.Fork, Pid = pid, Tid = pid, KtimeNs = ktime, Size = (uint)sizeof(PalForkEvent) };
        return MemoryMarshal.AsBytes(new ReadOnlySpan<PalForkEvent>(ref e)).ToArray();
    }

    private static byte[] Exit(uint pid, ulong ktime, uint code)
    {
        var e = new PalExitEvent { Ktime = ktime, ExitCode = code };
        e.Hdr = new() { Type = (uint)PalEventType.Exit, Pid = pid, Tid = pid, KtimeNs = ktime + 5, Size = (uint)sizeof(PalExitEvent) };
        return MemoryMarshal.AsBytes(new ReadOnlySpan<PalExitEvent>(ref e)).ToArray();
    }
}
