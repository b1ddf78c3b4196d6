namespace Palisade.Bpf;

/// <summary>
/// A tc filter that outlives the agent: attached by ifindex at a fixed handle and priority
/// with BPF_TC_F_REPLACE, so a restarted agent swaps its new program in atomically (no
/// moment without a filter) and nothing detaches it when the object is disposed. Unlike
/// <see cref="TcAttachment"/> it is not tracked by its object; remove it with <see cref="Remove"/>.
/// Works in the calling thread's network namespace.
/// </summary>
public static unsafe class TcFilter
{
    private const uint ReplaceFlag = 1 << 0; // BPF_TC_F_REPLACE

    /// <summary>
    /// Attaches <paramref name="program"/> on <paramref name="ifindex"/> at
    /// <paramref name="handle"/>/<paramref name="priority"/>, replacing whatever filter is
    /// there; creates the clsact qdisc when missing. Returns the kernel's program id.
    /// </summary>
    public static uint Replace(BpfProgram program, int ifindex, TcDirection direction, uint handle, uint priority)
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentOutOfRangeException.ThrowIfZero(handle);
        ArgumentOutOfRangeException.ThrowIfZero(priority);
        var fd = program.Fd;
        if (fd < 0)
        {
            throw new InvalidOperationException($"Program {program.Name} is not loaded.");
        }
        var target = $"{program.Describe()} -> ifindex {ifindex} {direction.ToString().ToLowerInvariant()}";
        var hook = Hook(ifindex, direction);
        var rc = Interop.Libbpf.TcHookCreate(&hook);
        if (rc != 0 && rc != -Errnos.EEXIST)
        {
            throw new BpfException("create clsact qdisc", target, -rc);
        }
        var opts = new Interop.Libbpf.BpfTcOpts
        {
            Sz = (nuint)sizeof(Interop.Libbpf.BpfTcOpts),
            ProgFd = fd,
            Flags = ReplaceFlag,
            Handle = handle,
            Priority = priority,
        };
        rc = Interop.Libbpf.TcAttach(&hook, &opts);
        if (rc != 0)
        {
            throw new BpfException("attach tc", target, -rc);
        }
        return opts.ProgId;
    }

    /// <summary>The id of the program attached at <paramref name="handle"/>/<paramref name="priority"/>, or null when there is no such filter (or no device).</summary>
    public static uint? Query(int ifindex, TcDirection direction, uint handle, uint priority)
    {
        var hook = Hook(ifindex, direction);
        var opts = new Interop.Libbpf.BpfTcOpts
        {
            Sz = (nuint)sizeof(Interop.Libbpf.BpfTcOpts),
            Handle = handle,
            Priority = priority,
        };
        var rc = Interop.Libbpf.TcQuery(&hook, &opts);
        if (rc is -Errnos.ENOENT or -Errnos.ENODEV or -Errnos.EINVAL)
        {
            return null;
        }
        return rc != 0 ? throw new BpfException("query tc", $"ifindex {ifindex} {direction.ToString().ToLowerInvariant()}", -rc) : opts.ProgId;
    }

    /// <summary>Removes the filter; false when it (or the device) is gone already.</summary>
    public static bool Remove(int ifindex, TcDirection direction, uint handle, uint priority)
    {
        var hook = Hook(ifindex, direction);
        var opts = new Interop.Libbpf.BpfTcOpts
        {
            Sz = (nuint)sizeof(Interop.Libbpf.BpfTcOpts),
            Handle = handle,
            Priority = priority,
        };
        var rc = Interop.Libbpf.TcDetach(&hook, &opts);
        if (rc is -Errnos.ENOENT or -Errnos.ENODEV or -Errnos.EINVAL)
        {
            return false;
        }
        return rc != 0 ? throw new BpfException("detach tc", $"ifindex {ifindex} {direction.ToString().ToLowerInvariant()}", -rc) : true;
    }

    private static Interop.Libbpf.BpfTcHook Hook(int ifindex, TcDirection direction) => new()
    {
        Sz = (nuint)sizeof(Interop.Libbpf.BpfTcHook),
        Ifindex = ifindex,
        AttachPoint = (int)direction,
    };
}
