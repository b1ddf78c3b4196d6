using System.Diagnostics;

namespace Palisade.Bpf.Probe;

/// <summary>
/// Finds out what this kernel really supports by loading and attaching tiny programs
/// (bpf/probe/probe.bpf.c) one at a time, not by reading version numbers. Each attachment
/// is removed at once; tc and xdp run in a throw-away network namespace and cgroup hooks on
/// an empty cgroup made for the purpose, so probing never touches live traffic.
/// </summary>
public static class KernelProbe
{
    private const string ObjectFile = "probe.bpf.o";
    private const int ProgTypeTracepoint = 5;
    private const int MapTypeRingbuf = 27;
    private const int FuncOverrideReturn = 58;
    private const int FuncSendSignal = 109;
    private const int FuncRingbufOutput = 130;

    // A kernel function present on every kernel we support, used only as an attach target.
    private const string KprobeTarget = "vfs_read";

    /// <summary>Runs every probe. Needs root; without it every feature reports why.</summary>
    public static ProbeReport Run()
    {
        using var quiet = LibbpfLog.ExpectFailures();
        var clock = Stopwatch.StartNew();
        var elf = BpfObject.ReadEmbedded(typeof(KernelProbe).Assembly, ObjectFile);
        var results = new List<ProbeResult>();
        var cgroup = ScratchCgroup.TryCreate(out var cgroupError);
        try
        {
            results.Add(Program(elf, KernelFeature.Tracepoint, "probe_tracepoint", p => p.AttachTracepoint("syscalls", "sys_enter_getppid")));
            results.Add(Program(elf, KernelFeature.RawTracepoint, "probe_raw_tp", p => p.AttachRawTracepoint("sys_enter")));
            results.Add(Program(elf, KernelFeature.TpBtf, "probe_tp_btf", p => p.Attach()));
            results.Add(Program(elf, KernelFeature.Kprobe, "probe_kprobe", p => p.AttachKprobe(KprobeTarget)));
            results.Add(Program(elf, KernelFeature.Kretprobe, "probe_kretprobe", p => p.AttachKprobe(KprobeTarget, retprobe: true)));
            results.Add(Program(elf, KernelFeature.Fentry, "probe_fentry", p => p.Attach()));
            results.Add(Program(elf, KernelFeature.Fexit, "probe_fexit", p => p.Attach()));
            results.Add(Program(elf, KernelFeature.Lsm, "probe_lsm", p => p.Attach()));
            var libc = LibcPath();
            results.Add(libc is null
                ? new ProbeResult(KernelFeature.Uprobe, false, "cannot find libc in /proc/self/maps to attach to")
                : Program(elf, KernelFeature.Uprobe, "probe_uprobe", p => p.AttachUprobe(libc, "getpid", Environment.ProcessId)));
            results.Add(libc is null
                ? new ProbeResult(KernelFeature.Uretprobe, false, "cannot find libc in /proc/self/maps to attach to")
                : Program(elf, KernelFeature.Uretprobe, "probe_uretprobe", p => p.AttachUprobe(libc, "getpid", Environment.ProcessId, retprobe: true)));
            results.Add(Program(elf, KernelFeature.Tc, "probe_tc", null, inScratchNetns: p =>
            {
                using var a = p.AttachTc("lo", TcDirection.Ingress);
                return "loaded and attached (clsact ingress on lo of a scratch netns)";
            }));
            results.Add(Program(elf, KernelFeature.Xdp, "probe_xdp", null, inScratchNetns: p =>
            {
                using var a = p.AttachXdp("lo");
                return "loaded and attached (lo of a scratch netns)";
            }));
            foreach (var hook in KernelFeature.SockAddrHooks)
            {
                results.Add(CgroupProgram(elf, hook, "probe_" + hook["cgroup/".Length..], cgroup, cgroupError));
            }
            results.Add(CgroupProgram(elf, KernelFeature.CgroupSkb, "probe_cgroup_skb", cgroup, cgroupError));
            results.Add(CgroupProgram(elf, KernelFeature.CgroupSock, "probe_cgroup_sock", cgroup, cgroupError));
            results.Add(CgroupProgram(elf, KernelFeature.Sockops, "probe_sockops", cgroup, cgroupError));
            results.Add(Ringbuf());
            results.Add(Helper(KernelFeature.SendSignal, FuncSendSignal, "bpf_send_signal"));
            results.Add(Program(elf, KernelFeature.RdonlyCast, "probe_rdonly_cast", p => p.AttachRawTracepoint("sys_enter")));
            results.Add(OverrideReturn(elf, results.First(r => r.Name == KernelFeature.Kprobe).Available));
            results.Add(BpfLsmActive());
            results.Add(BtfPresent());
        }
        finally
        {
            cgroup?.Dispose();
        }
        return new ProbeReport(KernelEnvironment.KernelRelease, Lockdown(), results, clock.ElapsedMilliseconds);
    }

    private static ProbeResult Program(byte[] elf, string feature, string program, Func<BpfProgram, BpfAttachment>? attach,
        Func<BpfProgram, string>? inScratchNetns = null)
    {
        BpfObject obj;
        try
        {
            obj = BpfObject.Open(elf, "probe");
        }
        catch (BpfException e)
        {
            return new ProbeResult(feature, false, $"open: {e.ErrnoName}");
        }
        using (obj)
        {
            foreach (var p in obj.Programs)
            {
                p.Autoload = p.Name == program;
            }
            try
            {
                obj.Load();
            }
            catch (BpfLoadException e)
            {
                return new ProbeResult(feature, false, $"load: {Errnos.Describe(e.Errno)}{Hint(feature, "load", e.Errno)}{LastLine(e.VerifierLog)}");
            }
            var prog = obj.Program(program);
            try
            {
                if (inScratchNetns is not null)
                {
                    var detail = NetworkNamespace.RunInScratch(() => inScratchNetns(prog));
                    return new ProbeResult(feature, true, detail);
                }
                using var attachment = attach!(prog);
                return new ProbeResult(feature, true, $"loaded and attached ({attachment.Description})");
            }
            catch (BpfException e)
            {
                return new ProbeResult(feature, false, $"loaded, attach failed: {Errnos.Describe(e.Errno)}{Hint(feature, "attach", e.Errno)}");
            }
        }
    }

    private static ProbeResult CgroupProgram(byte[] elf, string feature, string program, ScratchCgroup? cgroup, string? cgroupError) =>
        cgroup is null
            ? new ProbeResult(feature, false, $"no cgroup v2 hierarchy to attach to: {cgroupError}")
            : Program(elf, feature, program, p => p.AttachCgroup(cgroup.Path));

    private static unsafe ProbeResult Ringbuf()
    {
        var map = Interop.Libbpf.ProbeMapType(MapTypeRingbuf, null);
        if (map != 1)
        {
            return new ProbeResult(KernelFeature.Ringbuf, false, map == 0 ? "BPF_MAP_TYPE_RINGBUF cannot be created" : $"map probe failed: {Errnos.Describe(-map)}");
        }
        var helper = Interop.Libbpf.ProbeHelper(ProgTypeTracepoint, FuncRingbufOutput, null);
        return helper == 1
            ? new ProbeResult(KernelFeature.Ringbuf, true, "ring buffer map created, bpf_ringbuf_output accepted in a tracepoint program")
            : new ProbeResult(KernelFeature.Ringbuf, false, "bpf_ringbuf_output is not accepted in tracepoint programs");
    }

    private static unsafe ProbeResult Helper(string feature, int helperId, string helperName)
    {
        var rc = Interop.Libbpf.ProbeHelper(ProgTypeTracepoint, helperId, null);
        return rc switch
        {
            1 => new ProbeResult(feature, true, $"{helperName} accepted by the verifier in a tracepoint program"),
            0 => new ProbeResult(feature, false, $"{helperName} rejected by the verifier in a tracepoint program"),
            _ => new ProbeResult(feature, false, $"helper probe failed: {Errnos.Describe(-rc)}"),
        };
    }

    private static ProbeResult OverrideReturn(byte[] elf, bool kprobes)
    {
        var loaded = Program(elf, KernelFeature.OverrideReturn, "probe_override_return", _ => throw new BpfException("attach kprobe", "none", Errnos.ENOENT));
        if (loaded.Detail.StartsWith("load:", StringComparison.Ordinal) || loaded.Detail.StartsWith("open:", StringComparison.Ordinal))
        {
            return loaded with { Detail = loaded.Detail + " (kernel built without CONFIG_BPF_KPROBE_OVERRIDE)" };
        }
        if (!kprobes)
        {
            return new ProbeResult(KernelFeature.OverrideReturn, false, "program loads, but bpf_override_return runs only in kprobes, which this kernel cannot attach");
        }
        var target = ErrorInjectableFunction();
        return target is null
            ? new ProbeResult(KernelFeature.OverrideReturn, false, "program loads, but no error-injectable function is listed in debugfs error_injection/list")
            : Program(elf, KernelFeature.OverrideReturn, "probe_override_return", p => p.AttachKprobe(target));
    }

    private static ProbeResult BpfLsmActive()
    {
        const string path = "/sys/kernel/security/lsm";
        if (!File.Exists(path))
        {
            return new ProbeResult(KernelFeature.BpfLsmActive, false, $"{path} is missing (securityfs not mounted?)");
        }
        var lsms = File.ReadAllText(path).Trim();
        return lsms.Split(',').Contains("bpf")
            ? new ProbeResult(KernelFeature.BpfLsmActive, true, $"bpf is in the active LSM list ({lsms})")
            : new ProbeResult(KernelFeature.BpfLsmActive, false, $"bpf is not in the active LSM list ({lsms}); add lsm=...,bpf to the kernel command line");
    }

    private static ProbeResult BtfPresent()
    {
        const string path = "/sys/kernel/btf/vmlinux";
        if (!File.Exists(path))
        {
            return new ProbeResult(KernelFeature.Btf, false, $"{path} is missing (kernel built without CONFIG_DEBUG_INFO_BTF)");
        }
        try
        {
            using var btf = Btf.Load(path);
            return new ProbeResult(KernelFeature.Btf, true, $"{path}: {btf.TypeCount} types");
        }
        catch (BpfException e)
        {
            return new ProbeResult(KernelFeature.Btf, false, $"{path} does not parse: {e.ErrnoName}");
        }
    }

    private static string Lockdown()
    {
        const string path = "/sys/kernel/security/lockdown";
        if (!File.Exists(path))
        {
            return "unknown (no securityfs lockdown file)";
        }
        // "[none] integrity confidentiality": the bracketed word is the active mode.
        var text = File.ReadAllText(path);
        var start = text.IndexOf('[', StringComparison.Ordinal);
        var end = text.IndexOf(']', StringComparison.Ordinal);
        return start >= 0 && end > start ? text[(start + 1)..end] : text.Trim();
    }

    private static string Hint(string feature, string phase, int errno) => (feature, phase, errno) switch
    {
        (KernelFeature.Kprobe or KernelFeature.Kretprobe, "attach", Errnos.ENOENT) =>
            " (no kprobe PMU and no tracefs kprobe_events: kernel built without CONFIG_KPROBES)",
        (KernelFeature.Fentry or KernelFeature.Fexit or KernelFeature.Lsm, _, Errnos.EPERM or Errnos.ENOTSUPP or Errnos.EOPNOTSUPP) when KernelEnvironment.IsRoot =>
            " (this kernel refuses BPF trampoline programs: fentry, fexit and lsm)",
        (KernelFeature.Lsm, "load", _) => " (BPF LSM hooks need CONFIG_BPF_LSM and bpf in the lsm= list)",
        (_, _, Errnos.EPERM) when !KernelEnvironment.IsRoot => " (run as root)",
        _ => string.Empty,
    };

    private static string LastLine(string verifierLog)
    {
        var line = verifierLog.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .LastOrDefault(l => !l.StartsWith("processed ", StringComparison.Ordinal));
        return string.IsNullOrEmpty(line) ? string.Empty : $": {line}";
    }

    /// <summary>The path of the libc this process has mapped (a uprobe target every process has).</summary>
    internal static string? LibcPath()
    {
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            var slash = line.IndexOf('/', StringComparison.Ordinal);
            if (slash > 0 && line.Contains("/libc.so.6", StringComparison.Ordinal))
            {
                return line[slash..].Trim();
            }
        }
        return null;
    }

    private static string? ErrorInjectableFunction()
    {
        foreach (var path in new[] { "/sys/kernel/debug/error_injection/list" })
        {
            if (File.Exists(path))
            {
                return File.ReadLines(path).Select(l => l.Split('\t', ' ')[0]).FirstOrDefault(f => f.Length > 0);
            }
        }
        return null;
    }

    /// <summary>An empty cgroup for attaching cgroup programs with no process in it to affect.</summary>
    private sealed class ScratchCgroup : IDisposable
    {
        private ScratchCgroup(string path) => Path = path;

        public string Path { get; }

        public static ScratchCgroup? TryCreate(out string? error)
        {
            var root = KernelEnvironment.Cgroup2Root();
            if (root is null)
            {
                error = "cgroup2 is not mounted";
                return null;
            }
            var path = System.IO.Path.Combine(root, $"palisade-probe-{Environment.ProcessId}");
            try
            {
                Directory.CreateDirectory(path);
                error = null;
                return new ScratchCgroup(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = $"cannot create {path}: {e.Message}";
                return null;
            }
        }

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path);
            }
            catch (IOException)
            {
                // Still referenced by a link being torn down; the kernel frees it when the last user goes.
            }
        }
    }
}
