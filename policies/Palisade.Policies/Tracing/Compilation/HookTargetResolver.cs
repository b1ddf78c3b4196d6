namespace Palisade.Policies.Tracing.Compilation;

/// <summary>
/// Where a hook runs on this kernel: a native kprobe, a syscall or other tracepoint, or the
/// emulation <see cref="HookCatalog"/> lists; and the check that every argument and tested value
/// exists at each of those places.
/// </summary>
internal static class HookTargetResolver
{
    internal static (List<HookTarget> Targets, string How) ResolveKprobe(TracingPolicy policy, KprobeSpec k, KernelFacts facts)
    {
        if (k.Call.StartsWith("list:", StringComparison.Ordinal))
        {
            var listName = k.Call[5..];
            var list = policy.Spec.Lists.FirstOrDefault(l => l.Name == listName)
                ?? throw new UnsupportedHookException($"list \"{listName}\" is not defined in spec.lists");
            if (list.Type == "generated_syscalls")
            {
                return ([SyscallTarget(-1, k, exit: true)], "every syscall, at its exit (raw_tp sys_exit)");
            }
            if (list.Type != "syscalls")
            {
                throw new UnsupportedHookException($"list \"{listName}\" of type {list.Type ?? "(none)"} names kernel functions, which need kprobes; kprobes are not available on this kernel");
            }
            var targets = new List<HookTarget>();
            foreach (var v in list.Values)
            {
                if (v.StartsWith("__ia32_", StringComparison.Ordinal))
                {
                    continue; // 32-bit compat entry points: no separate tracepoint; the 64-bit one is hooked
                }
                var sc = HookCatalog.SyscallName(v, true) ?? throw new UnsupportedHookException($"list \"{listName}\": \"{v}\" is not an x86-64 syscall");
                targets.Add(SyscallTarget(SyscallTable.X64[sc], k, exit: !HookCatalog.EntrySyscalls.Contains(sc)));
            }
            return (targets, $"{targets.Count} syscalls of list \"{listName}\" on the syscall tracepoints");
        }
        var syscall = HookCatalog.SyscallName(k.Call, k.Syscall);
        if (syscall is not null)
        {
            var exit = !HookCatalog.EntrySyscalls.Contains(syscall);
            return ([SyscallTarget(SyscallTable.X64[syscall], k, exit)], $"syscall tracepoint: {(exit ? "exit" : "entry")} of {syscall} (raw_tp sys_{(exit ? "exit" : "enter")})");
        }
        string? nativeRefusal = null;
        if (facts.Kprobes && !k.Call.StartsWith("lsm:", StringComparison.Ordinal))
        {
            nativeRefusal = NativeRefusal(k);
            if (nativeRefusal is null)
            {
                return ([NativeKprobe(k)], $"kprobe on {k.Call}");
            }
        }
        if (HookCatalog.Table.TryGetValue(k.Call, out var emulation))
        {
            return (emulation.Targets.ToList(), emulation.How + (nativeRefusal is null ? "" : $" (not native: {nativeRefusal})"));
        }
        throw new UnsupportedHookException(facts.Kprobes
            ? $"{k.Call}: {nativeRefusal}, and no emulation exists for this function"
            : $"{k.Call}: kprobes are not available on this kernel and Palisade has no emulation for this function (see docs/policies.md for the emulated functions)");
    }

    /// <summary>Argument kinds a native kprobe reads from kernel pointers.</summary>
    private static SlotSource? NativeArg(PolicyArg a) => a.Type switch
    {
        "file" => new SlotSource(SlotKind.KFile, (byte)a.Index),
        "path" => new SlotSource(SlotKind.KPath, (byte)a.Index),
        "dentry" => new SlotSource(SlotKind.KDentry, (byte)a.Index),
        "sock" => new SlotSource(SlotKind.KSock, (byte)a.Index),
        "skb" => new SlotSource(SlotKind.KSkb, (byte)a.Index),
        "net_device" => new SlotSource(SlotKind.KNetDev, (byte)a.Index),
        "user_namespace" => new SlotSource(SlotKind.KUserNs, (byte)a.Index),
        "cred" => new SlotSource(SlotKind.KCred, (byte)a.Index),
        "linux_binprm" => new SlotSource(SlotKind.KBinprm, (byte)a.Index),
        "string" => new SlotSource(SlotKind.KString, (byte)a.Index),
        "nop" => new SlotSource(SlotKind.Int, (byte)a.Index),
        _ when ValueFamilies.OfType(a.Type) == ValueFamily.Int => new SlotSource(SlotKind.Int, (byte)a.Index),
        _ => null,
    };

    /// <summary>Why a kprobe cannot run natively here, or null when it can.</summary>
    private static string? NativeRefusal(KprobeSpec k)
    {
        if (k.Return || k.ReturnArg is not null || k.Selectors.Any(s => s.MatchReturnArgs.Count > 0))
        {
            return "return probes are not implemented natively by this version of Palisade";
        }
        if (k.Selectors.SelectMany(s => s.MatchActions).Any(a => string.Equals(a.Action, "Override", StringComparison.OrdinalIgnoreCase)))
        {
            return "Override needs bpf_override_return, which Palisade does not use yet";
        }
        var bad = k.Args.FirstOrDefault(a => a.Index > 5 || NativeArg(a) is null);
        return bad is null ? null : $"argument {bad.Index} of type \"{bad.Type}\" is not read natively by this version of Palisade";
    }

    private static HookTarget NativeKprobe(KprobeSpec k) =>
        new(PointKind.Kprobe, -1, k.Call) { Args = k.Args.ToDictionary(a => a.Index, a => NativeArg(a)!.Value) };

    private static HookTarget SyscallTarget(int nr, KprobeSpec k, bool exit)
    {
        var args = new Dictionary<uint, SlotSource>();
        foreach (var a in k.Args)
        {
            if (a.Index > 5)
            {
                throw new UnsupportedHookException($"{k.Call}: argument index {a.Index}: syscalls have 6 arguments (0..5)");
            }
            var reg = (byte)a.Index;
            args[a.Index] = a.Type switch
            {
                "string" or "filename" => new SlotSource(SlotKind.UserString, reg),
                "char_buf" or "const_buf" => new SlotSource(SlotKind.UserBuffer, reg, a.SizeArgIndex is > 0 and <= 6 ? (byte)(a.SizeArgIndex.Value - 1) : (byte)0xff),
                "fd" => new SlotSource(SlotKind.FdPath, reg),
                "sockaddr" => new SlotSource(SlotKind.UserSockaddr, reg),
                "nop" => new SlotSource(SlotKind.Int, reg),
                _ when ValueFamilies.OfType(a.Type) == ValueFamily.Int => new SlotSource(SlotKind.Int, reg),
                _ => throw new UnsupportedHookException($"{k.Call}: argument {a.Index} of type \"{a.Type}\" is a kernel object; a syscall's arguments are user values (use int, string, fd, char_buf or sockaddr)"),
            };
        }
        return new HookTarget(exit ? PointKind.SyscallExit : PointKind.SyscallEnter, nr, k.Call)
        {
            Args = args,
            Return = exit ? new SlotSource(SlotKind.Ret) : null,
        };
    }

    // Tracepoint field indexes count the four common fields: index 4 is the first event field.
    internal static HookTarget ResolveTracepoint(TracepointSpec t)
    {
        var args = new Dictionary<uint, SlotSource>();
        if (t.Subsystem == "raw_syscalls" && t.Event is "sys_enter" or "sys_exit")
        {
            var enter = t.Event == "sys_enter";
            foreach (var a in t.Args)
            {
                args[a.Index] = a.Index switch
                {
                    4 => new SlotSource(SlotKind.SyscallNr),
                    5 => enter ? new SlotSource(SlotKind.SyscallArgs) : new SlotSource(SlotKind.Ret),
                    _ => throw new UnsupportedHookException($"{t.Subsystem}/{t.Event}: field index {a.Index} does not exist (4: id, 5: {(enter ? "args" : "ret")})"),
                };
            }
            return new HookTarget(enter ? PointKind.SyscallEnter : PointKind.SyscallExit, -1, $"{t.Subsystem}/{t.Event}") { Args = args };
        }
        if (t.Subsystem == "syscalls" && (t.Event.StartsWith("sys_enter_", StringComparison.Ordinal) || t.Event.StartsWith("sys_exit_", StringComparison.Ordinal)))
        {
            var enter = t.Event.StartsWith("sys_enter_", StringComparison.Ordinal);
            var sc = t.Event[(enter ? "sys_enter_".Length : "sys_exit_".Length)..];
            if (!SyscallTable.X64.TryGetValue(sc, out var nr))
            {
                throw new UnsupportedHookException($"syscalls/{t.Event}: {sc} is not an x86-64 syscall");
            }
            foreach (var a in t.Args)
            {
                if (a.Index == 4)
                {
                    args[a.Index] = new SlotSource(SlotKind.SyscallNr);
                }
                else if (!enter && a.Index == 5)
                {
                    args[a.Index] = new SlotSource(SlotKind.Ret);
                }
                else if (enter && a.Index is >= 5 and <= 10)
                {
                    var reg = (byte)(a.Index - 5);
                    args[a.Index] = a.Type is "string" or "filename" ? new SlotSource(SlotKind.UserString, reg)
                        : a.Type == "char_buf" ? new SlotSource(SlotKind.UserBuffer, reg, a.SizeArgIndex is > 0 ? (byte)(a.SizeArgIndex.Value - 1 - 5 + 5) : (byte)0xff)
                        : new SlotSource(SlotKind.Int, reg);
                }
                else
                {
                    throw new UnsupportedHookException($"syscalls/{t.Event}: field index {a.Index} is not a field of this tracepoint");
                }
            }
            return new HookTarget(enter ? PointKind.SyscallEnter : PointKind.SyscallExit, nr, $"syscalls/{t.Event}") { Args = args };
        }
        if (t.Subsystem == "sched" && t.Event == "sched_process_exec")
        {
            foreach (var a in t.Args)
            {
                args[a.Index] = t.Raw && a.Index == 2 || !t.Raw && a.Index == 4
                    ? new SlotSource(SlotKind.ExecPath)
                    : throw new UnsupportedHookException($"sched/sched_process_exec: argument {a.Index} is not supported (raw: index 2 linux_binprm; tracepoint: index 4 filename)");
            }
            return new HookTarget(PointKind.Exec, -1, "sched/sched_process_exec") { Args = args };
        }
        throw new UnsupportedHookException($"tracepoint {t.Subsystem}/{t.Event}: only syscall tracepoints, raw_syscalls and sched_process_exec are implemented by this version of Palisade");
    }

    /// <summary>Every argument and every tested value must exist at every target.</summary>
    internal static void CheckTargets(IReadOnlyList<PolicyArg> args, PolicyArg? returnArg, bool wantsReturn, List<HookTarget> targets, IReadOnlyList<CompiledSelector> selectors)
    {
        foreach (var t in targets)
        {
            foreach (var a in args)
            {
                if (!t.Args.TryGetValue(a.Index, out var src))
                {
                    if (a.Type == "nop")
                    {
                        continue;
                    }
                    throw new UnsupportedHookException($"{t.Function}: argument {a.Index} ({a.Type}) is not available at {t.Describe()}");
                }
                var want = ValueFamilies.OfType(a.Type);
                var have = ValueFamilies.OfSource(src.Kind);
                if (want != ValueFamily.Other && have != ValueFamily.Other && want != have && a.Type != "nop")
                {
                    throw new UnsupportedHookException($"{t.Function}: argument {a.Index} is declared \"{a.Type}\" but the emulation at {t.Describe()} provides {have.ToString().ToLowerInvariant()}");
                }
            }
            if ((wantsReturn || returnArg is not null || selectors.Any(s => s.Ints.Any(i => i.Ref.Pseudo == Pseudo.Return))) && t.Kind is not PointKind.SyscallExit && t.Return is null)
            {
                throw new UnsupportedHookException($"{t.Function}: the return value is not available at {t.Describe()}");
            }
            if (selectors.Any(s => (s.Actions.Flags & ActionFlags.Override) != 0) && t.Kind is not (PointKind.Connect or PointKind.CgroupSkb))
            {
                throw new UnsupportedHookException($"{t.Function}: Override needs bpf_override_return (kprobes), which this kernel lacks; only connect and packet hooks can refuse a call here");
            }
            foreach (var s in selectors.Where(s => (s.Actions.Flags & (ActionFlags.TrackSock | ActionFlags.UntrackSock)) != 0))
            {
                var sock = s.Actions.SockArg == SelectorActions.ReturnSock ? t.Return : t.Args.TryGetValue((uint)s.Actions.SockArg, out var a) ? a : null;
                if (sock is not { } src || ValueFamilies.OfSource(src.Kind) != ValueFamily.Sock)
                {
                    throw new UnsupportedHookException($"{t.Function}: {((s.Actions.Flags & ActionFlags.TrackSock) != 0 ? "TrackSock" : "UntrackSock")} needs a socket in {(s.Actions.SockArg == SelectorActions.ReturnSock ? "the return value" : $"argument {s.Actions.SockArg}")}, which {t.Describe()} does not provide");
                }
            }
        }
    }
}
