using System.Diagnostics;
using Palisade.Bpf;
using Palisade.Bpf.Probe;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>
/// The probe's verdict for each feature must equal what really happens when a program of
/// that kind is loaded, attached and triggered from this process: not a hard-coded list.
/// </summary>
public sealed class ProbeLiveTests
{
    // Slots of live_counts in bpf/live_test.bpf.c.
    private static readonly Dictionary<string, (string Program, uint Slot)> Programs = new()
    {
        [KernelFeature.Tracepoint] = ("live_tracepoint", 0),
        [KernelFeature.RawTracepoint] = ("live_raw_tp", 1),
        [KernelFeature.TpBtf] = ("live_tp_btf", 2),
        [KernelFeature.Kprobe] = ("live_kprobe", 3),
        [KernelFeature.Fentry] = ("live_fentry", 4),
        [KernelFeature.Lsm] = ("live_lsm", 5),
        [KernelFeature.Uprobe] = ("live_uprobe", 6),
        [KernelFeature.CgroupConnect4] = ("live_connect4", 7),
    };

    public static TheoryData<string> Features => [.. Programs.Keys];

    [Theory]
    [MemberData(nameof(Features))]
    public void ProbeVerdictMatchesWhatReallyHappens(string feature)
    {
        Kernel.RequireRoot();

        var (works, evidence) = TryLive(feature);

        var probe = Kernel.Probe.Find(feature);
        Assert.NotNull(probe);
        Assert.True(works == probe.Available,
            $"probe says {feature} is {(probe.Available ? "available" : "unavailable")} ({probe.Detail}) but live: {evidence}");
    }

    [Fact]
    public void SendSignalFromATracepointKillsTheProcessBeforeItsNewProgramRuns()
    {
        Kernel.RequireRoot();
        using var obj = Open("live_kill_on_exec");
        obj.Load();
        using var link = obj.Program("live_kill_on_exec").Attach();
        var psi = new ProcessStartInfo("/bin/sh", ["-c", "read line; exec /bin/echo survived"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        using var child = Process.Start(psi)!;
        obj.Map("kill_targets").Typed<uint, uint>().Update((uint)child.Id, 1);

        child.StandardInput.WriteLine("go");
        var output = child.StandardOutput.ReadToEnd();
        Assert.True(child.WaitForExit(TimeSpan.FromSeconds(30)));

        var killed = child.ExitCode == 128 + 9;
        Assert.Equal(Kernel.Probe.IsAvailable(KernelFeature.SendSignal), killed);
        if (killed)
        {
            Assert.Equal(string.Empty, output);
        }
    }

    private static BpfObject Open(string program)
    {
        var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "live_test.bpf.o");
        obj.SetConstant("target_tgid", (uint)Environment.ProcessId);
        foreach (var p in obj.Programs)
        {
            p.Autoload = p.Name == program;
        }
        return obj;
    }

    private static (bool Works, string Evidence) TryLive(string feature)
    {
        var (program, slot) = Programs[feature];
        using var obj = Open(program);
        try
        {
            obj.Load();
        }
        catch (BpfLoadException e)
        {
            return (false, $"load failed: {e.ErrnoName}");
        }
        var prog = obj.Program(program);
        using var cgroup = feature == KernelFeature.CgroupConnect4 ? new TestCgroup() : null;
        BpfAttachment attachment;
        try
        {
            attachment = feature switch
            {
                KernelFeature.Tracepoint or KernelFeature.TpBtf or KernelFeature.Kprobe or KernelFeature.Fentry or KernelFeature.Lsm => prog.Attach(),
                KernelFeature.RawTracepoint => prog.AttachRawTracepoint("sys_enter"),
                KernelFeature.Uprobe => prog.AttachUprobe(KernelProbe.LibcPath() ?? throw new InvalidOperationException("libc is not mapped"), "getppid", Environment.ProcessId),
                KernelFeature.CgroupConnect4 => prog.AttachCgroup(cgroup!.Path),
                _ => throw new ArgumentOutOfRangeException(nameof(feature)),
            };
        }
        catch (BpfException e)
        {
            return (false, $"attach failed: {e.ErrnoName}");
        }
        using (attachment)
        {
            Trigger(feature, cgroup);
            var count = obj.Map("live_counts").Typed<uint, ulong>().Lookup(slot);
            return (count > 0, $"attached; the program ran {count} times when triggered");
        }
    }

    private static void Trigger(string feature, TestCgroup? cgroup)
    {
        switch (feature)
        {
            case KernelFeature.Kprobe or KernelFeature.Fentry or KernelFeature.Lsm:
                File.ReadAllBytes("/proc/self/stat");
                break;
            case KernelFeature.TpBtf:
                Command.Check("/bin/true");
                break;
            case KernelFeature.CgroupConnect4:
                // Port 9 (discard) is closed on loopback: the connect is refused, but the hook runs first.
                Command.Run("/bin/bash", "-c", $"{cgroup!.EnterCommand}; exec 3<>/dev/tcp/127.0.0.1/9");
                break;
            default:
                Native.GetPpid();
                break;
        }
    }
}
