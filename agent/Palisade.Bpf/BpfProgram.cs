using System.Runtime.InteropServices;

namespace Palisade.Bpf;

/// <summary>Kernel program types we name (values of enum bpf_prog_type).</summary>
public enum BpfProgramType
{
    Unspecified = 0, SocketFilter = 1, Kprobe = 2, SchedCls = 3, SchedAct = 4, Tracepoint = 5, Xdp = 6,
    PerfEvent = 7, CgroupSkb = 8, CgroupSock = 9, LwtIn = 10, LwtOut = 11, LwtXmit = 12, SockOps = 13,
    SkSkb = 14, CgroupDevice = 15, SkMsg = 16, RawTracepoint = 17, CgroupSockAddr = 18, LwtSeg6Local = 19,
    LircMode2 = 20, SkReuseport = 21, FlowDissector = 22, CgroupSysctl = 23, RawTracepointWritable = 24,
    CgroupSockopt = 25, Tracing = 26, StructOps = 27, Ext = 28, Lsm = 29, SkLookup = 30, Syscall = 31,
}

/// <summary>Where on a device a tc program runs.</summary>
public enum TcDirection
{
    Ingress = Interop.Libbpf.BpfTcIngress,
    Egress = Interop.Libbpf.BpfTcEgress,
}

/// <summary>One program of a <see cref="BpfObject"/>; attach methods return a disposable attachment.</summary>
public sealed unsafe class BpfProgram
{
    private readonly BpfObject _owner;

    internal BpfProgram(BpfObject owner, nint pointer)
    {
        _owner = owner;
        Pointer = pointer;
        Name = Marshal.PtrToStringUTF8((nint)Interop.Libbpf.ProgramName(pointer)) ?? "?";
        SectionName = Marshal.PtrToStringUTF8((nint)Interop.Libbpf.ProgramSectionName(pointer)) ?? "?";
    }

    internal nint Pointer { get; }

    /// <summary>The C function name.</summary>
    public string Name { get; }

    /// <summary>The ELF section, e.g. "tracepoint/syscalls/sys_enter_openat".</summary>
    public string SectionName { get; }

    public BpfObject Object => _owner;

    public BpfProgramType Type => (BpfProgramType)Interop.Libbpf.ProgramType(Pointer);

    /// <summary>The program's fd once loaded; negative before.</summary>
    public int Fd
    {
        get
        {
            _owner.ThrowIfDisposed();
            return Interop.Libbpf.ProgramFd(Pointer);
        }
    }

    /// <summary>Whether <see cref="BpfObject.Load"/> loads this program. Set before load.</summary>
    public bool Autoload
    {
        get => Interop.Libbpf.ProgramAutoload(Pointer);
        set
        {
            _owner.ThrowIfDisposed();
            if (Interop.Libbpf.ProgramSetAutoload(Pointer, value) != 0)
            {
                throw new BpfException("set autoload", Describe(), BpfException.LastErrno(), "Autoload can only change before Load().");
            }
        }
    }

    /// <summary>Attaches by section name (tp_btf, fentry, lsm, fully named tracepoints, ...).</summary>
    public BpfLink Attach() =>
        Link("attach", SectionName, () => Interop.Libbpf.ProgramAttach(Pointer));

    /// <summary>Attaches to tracefs tracepoint <paramref name="category"/>/<paramref name="name"/>.</summary>
    public BpfLink AttachTracepoint(string category, string name) =>
        Link("attach tracepoint", $"{category}/{name}", () => Interop.Libbpf.ProgramAttachTracepoint(Pointer, category, name));

    /// <summary>Attaches to raw tracepoint <paramref name="name"/> (e.g. "sys_enter").</summary>
    public BpfLink AttachRawTracepoint(string name) =>
        Link("attach raw tracepoint", name, () => Interop.Libbpf.ProgramAttachRawTracepoint(Pointer, name));

    /// <summary>Attaches a kprobe (or kretprobe) to kernel function <paramref name="function"/>.</summary>
    public BpfLink AttachKprobe(string function, bool retprobe = false) =>
        Link(retprobe ? "attach kretprobe" : "attach kprobe", function, () => Interop.Libbpf.ProgramAttachKprobe(Pointer, retprobe, function));

    /// <summary>Attaches a kprobe with a cookie the program reads with bpf_get_attach_cookie().</summary>
    public BpfLink AttachKprobe(string function, ulong cookie) =>
        Link("attach kprobe", function, () =>
        {
            var opts = new Interop.Libbpf.BpfKprobeOpts { Sz = (nuint)sizeof(Interop.Libbpf.BpfKprobeOpts), BpfCookie = cookie };
            return Interop.Libbpf.ProgramAttachKprobeOpts(Pointer, function, &opts);
        });

    /// <summary>
    /// Attaches a uprobe (or uretprobe) to <paramref name="function"/> in the ELF file at
    /// <paramref name="binaryPath"/>; <paramref name="pid"/> -1 means every process.
    /// </summary>
    public BpfLink AttachUprobe(string binaryPath, string function, int pid = -1, bool retprobe = false, ulong cookie = 0)
    {
        return Link(retprobe ? "attach uretprobe" : "attach uprobe", $"{binaryPath}:{function}", () =>
        {
            var fn = Marshal.StringToCoTaskMemUTF8(function);
            try
            {
                var opts = new Interop.Libbpf.BpfUprobeOpts
                {
                    Sz = (nuint)sizeof(Interop.Libbpf.BpfUprobeOpts),
                    Retprobe = retprobe ? (byte)1 : (byte)0,
                    FuncName = (byte*)fn,
                    BpfCookie = cookie,
                };
                return Interop.Libbpf.ProgramAttachUprobeOpts(Pointer, pid, binaryPath, 0, &opts);
            }
            finally
            {
                Marshal.FreeCoTaskMem(fn);
            }
        });
    }

    /// <summary>Attaches a cgroup program (sock_addr, skb, sock, sockops) to the cgroup v2 directory <paramref name="cgroupPath"/>.</summary>
    public BpfLink AttachCgroup(string cgroupPath)
    {
        var fd = Interop.Libc.Open(cgroupPath, Interop.Libc.O_RDONLY | Interop.Libc.O_DIRECTORY | Interop.Libc.O_CLOEXEC);
        if (fd < 0)
        {
            throw new BpfException("open cgroup", cgroupPath, BpfException.LastErrno(), "The path must be a directory of the cgroup v2 hierarchy.");
        }
        // The link holds its own reference to the cgroup, so our fd can go right away.
        using var cgroup = new SafeFdHandle(fd);
        return Link("attach cgroup", cgroupPath, () => Interop.Libbpf.ProgramAttachCgroup(Pointer, cgroup.Fd));
    }

    /// <summary>Attaches an XDP program to interface <paramref name="interfaceName"/> in network namespace <paramref name="netnsPath"/> (null: ours).</summary>
    public BpfLink AttachXdp(string interfaceName, string? netnsPath = null) =>
        NetworkNamespace.Run(netnsPath, () =>
        {
            var ifindex = NetworkNamespace.InterfaceIndex(interfaceName, netnsPath);
            return Link("attach xdp", $"{interfaceName} (ifindex {ifindex})", () => Interop.Libbpf.ProgramAttachXdp(Pointer, ifindex));
        });

    /// <summary>
    /// Attaches a tc (clsact) program on <paramref name="interfaceName"/> in network namespace
    /// <paramref name="netnsPath"/> (null: ours). Creates the clsact qdisc when missing and
    /// removes it on detach only if it created it.
    /// </summary>
    public TcAttachment AttachTc(string interfaceName, TcDirection direction, string? netnsPath = null, uint priority = 0, uint handle = 0)
    {
        _owner.ThrowIfDisposed();
        var fd = Fd;
        if (fd < 0)
        {
            throw new InvalidOperationException($"Program {Name} is not loaded.");
        }
        var attachment = NetworkNamespace.Run(netnsPath, () => TcAttachment.Create(this, fd, interfaceName, direction, netnsPath, priority, handle));
        return _owner.Track(attachment);
    }

    /// <summary>The kernel's id of the loaded program (what tc and bpftool show).</summary>
    public uint Id
    {
        get
        {
            var fd = Fd;
            if (fd < 0)
            {
                throw new InvalidOperationException($"Program {Name} is not loaded.");
            }
            // struct bpf_prog_info starts with type and id; the kernel fills only what fits.
            var info = stackalloc uint[2];
            var length = 8u;
            if (Interop.Libbpf.ObjGetInfoByFd(fd, info, &length) != 0)
            {
                throw new BpfException("get info", Describe(), BpfException.LastErrno());
            }
            return info[1];
        }
    }

    /// <summary>Runs the program once in the kernel on <paramref name="data"/> (BPF_PROG_RUN) and returns its verdict and output.</summary>
    public BpfTestRunResult TestRun(ReadOnlySpan<byte> data, int outputSize = 0, int repeat = 1) =>
        TestRun(data, [], outputSize, repeat);

    /// <summary>
    /// BPF_PROG_RUN with a context: for tc programs the leading bytes of a struct __sk_buff
    /// (mark, priority, ingress_ifindex, ifindex, ...); the kernel rejects fields it does not let a test set.
    /// </summary>
    public BpfTestRunResult TestRun(ReadOnlySpan<byte> data, ReadOnlySpan<byte> context, int outputSize = 0, int repeat = 1)
    {
        var fd = Fd;
        if (fd < 0)
        {
            throw new InvalidOperationException($"Program {Name} is not loaded.");
        }
        var output = outputSize > 0 ? new byte[outputSize] : [];
        fixed (byte* input = data)
        fixed (byte* outp = output)
        fixed (byte* ctx = context)
        {
            var opts = new Interop.Libbpf.BpfTestRunOpts
            {
                Sz = (nuint)sizeof(Interop.Libbpf.BpfTestRunOpts),
                DataIn = input,
                DataSizeIn = (uint)data.Length,
                CtxIn = context.IsEmpty ? null : ctx,
                CtxSizeIn = (uint)context.Length,
                DataOut = output.Length > 0 ? outp : null,
                DataSizeOut = (uint)output.Length,
                Repeat = repeat,
            };
            if (Interop.Libbpf.ProgTestRunOpts(fd, &opts) != 0)
            {
                throw new BpfException("test run", Describe(), BpfException.LastErrno());
            }
            return new BpfTestRunResult(opts.Retval, output.AsSpan(0, (int)Math.Min(opts.DataSizeOut, (uint)output.Length)).ToArray(), opts.Duration);
        }
    }

    internal string Describe() => $"program {Name} ({SectionName}) of object {_owner.Name}";

    private BpfLink Link(string operation, string target, Func<SafeBpfLinkHandle> attach)
    {
        _owner.ThrowIfDisposed();
        using var capture = LibbpfLog.Capture();
        var handle = attach();
        if (handle.IsInvalid)
        {
            var errno = BpfException.LastErrno();
            handle.Dispose();
            throw new BpfException(operation, $"{Describe()} -> {target}", errno, capture.Text.Trim());
        }
        return _owner.Track(new BpfLink(_owner, handle, $"{Name} -> {target}"));
    }
}

/// <summary>What one BPF_PROG_RUN returned.</summary>
public sealed record BpfTestRunResult(uint ReturnValue, byte[] Output, uint DurationNs);
