using System.Globalization;
using System.Net;

namespace Palisade.Policies.Compilation;

/// <summary>
/// Turns a validated TracingPolicy into the engine's compiled form: for each hook, where it runs
/// on this kernel (native, emulated through <see cref="HookCatalog"/>, or unsupported and why)
/// and its selectors as string dimensions and integer tests. Pure: no I/O, no privileges.
/// </summary>
public static class PolicyCompiler
{
    /// <summary>Longest string value a selector can match (LPM data limit, with the NUL of Equal).</summary>
    public const int MaxStringValue = 251;

    private sealed class Unsupported(string reason) : Exception(reason);

    public static CompiledPolicy Compile(TracingPolicy policy, KernelFacts facts)
    {
        var errors = new List<PolicyError>();
        var hooks = new List<CompiledHook>();
        var spec = policy.Spec;
        var index = 0;
        for (var i = 0; i < spec.Kprobes.Count; i++)
        {
            hooks.Add(CompileKprobe(policy, spec.Kprobes[i], $"spec.kprobes[{i}]", index++, facts, errors));
        }
        for (var i = 0; i < spec.Tracepoints.Count; i++)
        {
            hooks.Add(CompileTracepoint(policy, spec.Tracepoints[i], $"spec.tracepoints[{i}]", index++, facts, errors));
        }
        for (var i = 0; i < spec.LsmHooks.Count; i++)
        {
            var h = spec.LsmHooks[i];
            var asKprobe = new KprobeSpec("lsm:" + h.Hook, false, false, h.Message, h.Args, null, null, h.Selectors, h.Tags, false, []);
            var compiled = CompileKprobe(policy, asKprobe, $"spec.lsmhooks[{i}]", index++, facts, errors);
            hooks.Add(compiled with { HookType = "lsm", Name = h.Hook, Status = compiled.Status.Mode == HookMode.Unsupported
                ? compiled.Status with { Detail = compiled.Status.Detail.Replace("lsm:", "", StringComparison.Ordinal) }
                : compiled.Status with { Detail = "BPF-LSM is not available (or not used); " + compiled.Status.Detail } });
        }
        for (var i = 0; i < spec.Uprobes.Count; i++)
        {
            hooks.Add(CompileUprobe(policy, spec.Uprobes[i], $"spec.uprobes[{i}]", index++, facts, errors));
        }
        for (var i = 0; i < spec.Usdts.Count; i++)
        {
            var u = spec.Usdts[i];
            hooks.Add(new CompiledHook(index++, "usdt", $"{u.Provider}:{u.Name}",
                new HookStatus(HookMode.Unsupported, "USDT probes are not implemented by this version of Palisade"), [], [], u.Args, null, u.Message, u.Tags));
        }
        for (var i = 0; i < spec.Fentries.Count; i++)
        {
            hooks.Add(new CompiledHook(index++, "fentry", spec.Fentries[i].Call,
                new HookStatus(HookMode.Unsupported, "fentry needs BPF trampolines, which this kernel refuses"), [], [], spec.Fentries[i].Args, null, spec.Fentries[i].Message, spec.Fentries[i].Tags));
        }
        if (spec.Enforcers.Count > 0)
        {
            hooks.Add(new CompiledHook(index++, "enforcer", string.Join(",", spec.Enforcers.SelectMany(e => e.Calls)),
                new HookStatus(HookMode.Unsupported, "enforcers need bpf_override_return or fmod_ret, which this kernel lacks"), [], [], [], null, null, []));
        }
        if (spec.Loader)
        {
            hooks.Add(new CompiledHook(index++, "loader", "loader", new HookStatus(HookMode.Unsupported, "the loader sensor is not implemented by this version of Palisade"), [], [], [], null, null, []));
        }
        if (policy.IsPodScoped && !facts.PodScoping)
        {
            // Scoping needs the pods the Kubernetes integration watches; refusing is honest,
            // running unscoped would enforce on every process.
            errors.Add(new PolicyError(policy.IsNamespaced ? "kind" : spec.PodSelector is not null ? "spec.podSelector" : "spec.containerSelector",
                "pod and container scoping needs the Kubernetes integration, which is not enabled; the policy would apply to every process. Start the agent with --kubernetes (in a cluster, or with --kubeconfig)", 0, 0));
        }
        return new CompiledPolicy(policy, hooks, errors);
    }

    // ---------------------------------------------------------------- hooks

    private static CompiledHook CompileKprobe(TracingPolicy policy, KprobeSpec k, string path, int index, KernelFacts facts, List<PolicyError> errors)
    {
        var name = k.Call;
        try
        {
            var (targets, how) = ResolveKprobe(policy, k, facts);
            var selectors = WithReturnArgAction(CompileSelectors(policy, k.Selectors, k.Args, path, errors, tracepoint: false, facts), k.ReturnArgAction, path);
            CheckTargets(k.Args, k.ReturnArg, k.Return, targets, selectors);
            var mode = targets.All(t => t.Kind == PointKind.Kprobe) ? HookMode.Native : HookMode.Emulated;
            return new CompiledHook(index, "kprobe", name, new HookStatus(mode, how), targets, selectors, k.Args, k.ReturnArg, k.Message, k.Tags);
        }
        catch (Unsupported u)
        {
            return new CompiledHook(index, "kprobe", name, new HookStatus(HookMode.Unsupported, u.Message), [], [], k.Args, k.ReturnArg, k.Message, k.Tags);
        }
    }

    private static (List<HookTarget> Targets, string How) ResolveKprobe(TracingPolicy policy, KprobeSpec k, KernelFacts facts)
    {
        if (k.Call.StartsWith("list:", StringComparison.Ordinal))
        {
            var listName = k.Call[5..];
            var list = policy.Spec.Lists.FirstOrDefault(l => l.Name == listName)
                ?? throw new Unsupported($"list \"{listName}\" is not defined in spec.lists");
            if (list.Type == "generated_syscalls")
            {
                return ([SyscallTarget(-1, k, exit: true)], "every syscall, at its exit (raw_tp sys_exit)");
            }
            if (list.Type != "syscalls")
            {
                throw new Unsupported($"list \"{listName}\" of type {list.Type ?? "(none)"} names kernel functions, which need kprobes; kprobes are not available on this kernel");
            }
            var targets = new List<HookTarget>();
            foreach (var v in list.Values)
            {
                if (v.StartsWith("__ia32_", StringComparison.Ordinal))
                {
                    continue; // 32-bit compat entry points: no separate tracepoint; the 64-bit one is hooked
                }
                var sc = HookCatalog.SyscallName(v, true) ?? throw new Unsupported($"list \"{listName}\": \"{v}\" is not an x86-64 syscall");
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
        throw new Unsupported(facts.Kprobes
            ? $"{k.Call}: {nativeRefusal}, and no emulation exists for this function"
            : $"{k.Call}: kprobes are not available on this kernel and Palisade has no emulation for this function (see docs/policies.md for the emulated functions)");
    }

    /// <summary>returnArgAction: TrackSock and UntrackSock act on the returned socket for every selector that matches.</summary>
    private static List<CompiledSelector> WithReturnArgAction(List<CompiledSelector> selectors, string? action, string path)
    {
        var flag = action switch
        {
            null or "Post" => ActionFlags.None,
            "TrackSock" => ActionFlags.TrackSock,
            "UntrackSock" => ActionFlags.UntrackSock,
            _ => throw new Unsupported($"{path}.returnArgAction {action} is not implemented by this version of Palisade (Post, TrackSock, UntrackSock)"),
        };
        return flag == ActionFlags.None ? selectors
            : selectors.Select(s => s with { Actions = s.Actions with { Flags = s.Actions.Flags | flag, SockArg = SelectorActions.ReturnSock } }).ToList();
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
        _ when TypeFamily(a.Type) == Family.Int => new SlotSource(SlotKind.Int, (byte)a.Index),
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
                throw new Unsupported($"{k.Call}: argument index {a.Index}: syscalls have 6 arguments (0..5)");
            }
            var reg = (byte)a.Index;
            args[a.Index] = a.Type switch
            {
                "string" or "filename" => new SlotSource(SlotKind.UserString, reg),
                "char_buf" or "const_buf" => new SlotSource(SlotKind.UserBuffer, reg, a.SizeArgIndex is > 0 and <= 6 ? (byte)(a.SizeArgIndex.Value - 1) : (byte)0xff),
                "fd" => new SlotSource(SlotKind.FdPath, reg),
                "sockaddr" => new SlotSource(SlotKind.UserSockaddr, reg),
                "nop" => new SlotSource(SlotKind.Int, reg),
                _ when TypeFamily(a.Type) == Family.Int => new SlotSource(SlotKind.Int, reg),
                _ => throw new Unsupported($"{k.Call}: argument {a.Index} of type \"{a.Type}\" is a kernel object; a syscall's arguments are user values (use int, string, fd, char_buf or sockaddr)"),
            };
        }
        return new HookTarget(exit ? PointKind.SyscallExit : PointKind.SyscallEnter, nr, k.Call)
        {
            Args = args,
            Return = exit ? new SlotSource(SlotKind.Ret) : null,
        };
    }

    private static CompiledHook CompileTracepoint(TracingPolicy policy, TracepointSpec t, string path, int index, KernelFacts facts, List<PolicyError> errors)
    {
        var name = $"{t.Subsystem}/{t.Event}";
        try
        {
            var target = ResolveTracepoint(t);
            var selectors = CompileSelectors(policy, t.Selectors, t.Args, path, errors, tracepoint: true, facts);
            CheckTargets(t.Args, null, false, [target], selectors);
            var how = $"tracepoint {name} ({target.Describe()})";
            return new CompiledHook(index, "tracepoint", name, new HookStatus(HookMode.Native, how), [target], selectors, t.Args, null, t.Message, t.Tags)
            { Subsystem = t.Subsystem, Event = t.Event };
        }
        catch (Unsupported u)
        {
            return new CompiledHook(index, "tracepoint", name, new HookStatus(HookMode.Unsupported, u.Message), [], [], t.Args, null, t.Message, t.Tags)
            { Subsystem = t.Subsystem, Event = t.Event };
        }
    }

    private static CompiledHook CompileUprobe(TracingPolicy policy, UprobeSpec u, string path, int index, KernelFacts facts, List<PolicyError> errors)
    {
        var name = string.Join(",", u.Symbols.Concat(u.Offsets));
        try
        {
            if (u.Offsets.Count > 0 || u.Return || u.Symbols.Count == 0)
            {
                throw new Unsupported(u.Return ? "return uprobes are not implemented by this version of Palisade" : "uprobes on offsets are not implemented by this version of Palisade; use symbols");
            }
            // Tetragon's container sees the host's /proc at /procRoot.
            var binary = u.Path.StartsWith("/procRoot/", StringComparison.Ordinal) ? facts.ProcRoot + u.Path["/procRoot".Length..] : u.Path;
            var args = new Dictionary<uint, SlotSource>();
            foreach (var a in u.Args)
            {
                if (a.Index > 5)
                {
                    throw new Unsupported($"uprobe argument index {a.Index}: the first 6 register arguments (0..5) are available");
                }
                args[a.Index] = a.Type switch
                {
                    "string" or "filename" => new SlotSource(SlotKind.UserString, (byte)a.Index),
                    "char_buf" => new SlotSource(SlotKind.UserBuffer, (byte)a.Index, a.SizeArgIndex is > 0 and <= 6 ? (byte)(a.SizeArgIndex.Value - 1) : (byte)0xff),
                    _ when TypeFamily(a.Type) == Family.Int => new SlotSource(SlotKind.Int, (byte)a.Index),
                    _ => throw new Unsupported($"uprobe argument {a.Index} of type \"{a.Type}\" is not supported (int types, string, char_buf)"),
                };
            }
            var targets = u.Symbols.Select(sym => new HookTarget(PointKind.Uprobe, -1, sym) { Args = args, Binary = binary }).ToList();
            var selectors = CompileSelectors(policy, u.Selectors, u.Args, path, errors, tracepoint: false, facts);
            CheckTargets(u.Args, null, false, targets, selectors);
            return new CompiledHook(index, "uprobe", name, new HookStatus(HookMode.Native, $"uprobe on {binary}: {name}"), targets, selectors, u.Args, null, u.Message, u.Tags)
            { Subsystem = binary };
        }
        catch (Unsupported e)
        {
            return new CompiledHook(index, "uprobe", name, new HookStatus(HookMode.Unsupported, e.Message), [], [], u.Args, null, u.Message, u.Tags) { Subsystem = u.Path };
        }
    }

    // Tracepoint field indexes count the four common fields: index 4 is the first event field.
    private static HookTarget ResolveTracepoint(TracepointSpec t)
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
                    _ => throw new Unsupported($"{t.Subsystem}/{t.Event}: field index {a.Index} does not exist (4: id, 5: {(enter ? "args" : "ret")})"),
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
                throw new Unsupported($"syscalls/{t.Event}: {sc} is not an x86-64 syscall");
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
                    throw new Unsupported($"syscalls/{t.Event}: field index {a.Index} is not a field of this tracepoint");
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
                    : throw new Unsupported($"sched/sched_process_exec: argument {a.Index} is not supported (raw: index 2 linux_binprm; tracepoint: index 4 filename)");
            }
            return new HookTarget(PointKind.Exec, -1, "sched/sched_process_exec") { Args = args };
        }
        throw new Unsupported($"tracepoint {t.Subsystem}/{t.Event}: only syscall tracepoints, raw_syscalls and sched_process_exec are implemented by this version of Palisade");
    }

    /// <summary>Every argument and every tested value must exist at every target.</summary>
    private static void CheckTargets(IReadOnlyList<PolicyArg> args, PolicyArg? returnArg, bool wantsReturn, List<HookTarget> targets, IReadOnlyList<CompiledSelector> selectors)
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
                    throw new Unsupported($"{t.Function}: argument {a.Index} ({a.Type}) is not available at {t.Describe()}");
                }
                var want = TypeFamily(a.Type);
                var have = SourceFamily(src.Kind);
                if (want != Family.Other && have != Family.Other && want != have && a.Type != "nop")
                {
                    throw new Unsupported($"{t.Function}: argument {a.Index} is declared \"{a.Type}\" but the emulation at {t.Describe()} provides {have.ToString().ToLowerInvariant()}");
                }
            }
            if ((wantsReturn || returnArg is not null || selectors.Any(s => s.Ints.Any(i => i.Ref.Pseudo == Pseudo.Return))) && t.Kind is not PointKind.SyscallExit && t.Return is null)
            {
                throw new Unsupported($"{t.Function}: the return value is not available at {t.Describe()}");
            }
            if (selectors.Any(s => (s.Actions.Flags & ActionFlags.Override) != 0) && t.Kind is not (PointKind.Connect or PointKind.CgroupSkb))
            {
                throw new Unsupported($"{t.Function}: Override needs bpf_override_return (kprobes), which this kernel lacks; only connect and packet hooks can refuse a call here");
            }
            foreach (var s in selectors.Where(s => (s.Actions.Flags & (ActionFlags.TrackSock | ActionFlags.UntrackSock)) != 0))
            {
                var sock = s.Actions.SockArg == SelectorActions.ReturnSock ? t.Return : t.Args.TryGetValue((uint)s.Actions.SockArg, out var a) ? a : null;
                if (sock is not { } src || SourceFamily(src.Kind) != Family.Sock)
                {
                    throw new Unsupported($"{t.Function}: {((s.Actions.Flags & ActionFlags.TrackSock) != 0 ? "TrackSock" : "UntrackSock")} needs a socket in {(s.Actions.SockArg == SelectorActions.ReturnSock ? "the return value" : $"argument {s.Actions.SockArg}")}, which {t.Describe()} does not provide");
                }
            }
        }
    }

    // ---------------------------------------------------------------- selectors

    private enum Family { Int, String, Sock, Cred, Other }

    private static Family TypeFamily(string type) => type switch
    {
        "string" or "filename" or "file" or "path" or "fd" or "char_buf" or "char_iovec" or "linux_binprm" or "dentry" or "data_loc" or "const_buf" or "net_device" => Family.String,
        "sock" or "skb" or "sockaddr" or "socket" => Family.Sock,
        "cred" => Family.Cred,
        "int" or "uint64" or "ulong" or "uint32" or "sint64" or "int64" or "long" or "sint32" or "int32" or "size_t" or "sint16" or "int16"
            or "uint16" or "sint8" or "int8" or "uint8" or "capability" or "kernel_cap_t" or "cap_inheritable" or "cap_permitted" or "cap_effective"
            or "syscall64" or "uint" or "pointer" or "auto" => Family.Int,
        _ => Family.Other,
    };

    private static Family SourceFamily(SlotKind kind) => kind switch
    {
        SlotKind.UserString or SlotKind.FdPath or SlotKind.RetFdPath or SlotKind.ExecPath or SlotKind.UserBuffer
            or SlotKind.KFile or SlotKind.KPath or SlotKind.KDentry or SlotKind.KBinprm or SlotKind.KString or SlotKind.KNetDev => Family.String,
        SlotKind.UserSockaddr or SlotKind.CtxSock or SlotKind.FdSock or SlotKind.RetFdSock or SlotKind.KSock or SlotKind.KSkb => Family.Sock,
        SlotKind.Cred or SlotKind.KCred => Family.Cred,
        SlotKind.SyscallArgs or SlotKind.KUserNs => Family.Other,
        _ => Family.Int,
    };

    private static List<CompiledSelector> CompileSelectors(TracingPolicy policy, IReadOnlyList<Selector> selectors, IReadOnlyList<PolicyArg> args,
        string path, List<PolicyError> errors, bool tracepoint, KernelFacts facts)
    {
        var result = new List<CompiledSelector>();
        if (selectors.Count == 0)
        {
            result.Add(new CompiledSelector(0, [], [], SelectorActions.PostOnly));
            return result;
        }
        for (var i = 0; i < selectors.Count; i++)
        {
            var s = selectors[i];
            var sp = $"{path}.selectors[{i}]";
            var strings = new List<StringMatch>();
            var ints = new List<IntMatch>();
            foreach (var unsupported in new (string Name, int Count)[] { ("matchData", s.MatchData.Count), ("matchParentBinaries", s.MatchParentBinaries.Count) })
            {
                if (unsupported.Count > 0)
                {
                    throw new Unsupported($"{sp}.{unsupported.Name} is not implemented by this version of Palisade");
                }
            }
            for (var j = 0; j < s.MatchArgs.Count; j++)
            {
                CompileArg(policy, s.MatchArgs[j], args, $"{sp}.matchArgs[{j}]", strings, ints, errors, tracepoint, isReturn: false);
            }
            for (var j = 0; j < s.MatchReturnArgs.Count; j++)
            {
                CompileArg(policy, s.MatchReturnArgs[j], args, $"{sp}.matchReturnArgs[{j}]", strings, ints, errors, tracepoint, isReturn: true);
            }
            foreach (var p in s.MatchPids)
            {
                var pseudo = p.FollowForks ? (p.IsNamespacePid ? Pseudo.NsPidTree : Pseudo.PidTree) : p.IsNamespacePid ? Pseudo.NsPid : Pseudo.Pid;
                ints.Add(new IntMatch(ValueRef.Of(pseudo), SockField.Value, p.Operator == "NotIn", p.Values.Select(v => new IntTest(FilterOp.Equal, v)).ToList()));
            }
            for (var j = 0; j < s.MatchBinaries.Count; j++)
            {
                var b = s.MatchBinaries[j];
                var (cls, neg) = StringOp(b.Operator) ?? throw new Unsupported($"{sp}.matchBinaries[{j}].operator {b.Operator} is not supported");
                CheckStrings(b.Values, $"{sp}.matchBinaries[{j}].values", errors);
                strings.Add(new StringMatch(ValueRef.Of(Pseudo.Binary), cls, neg, b.FollowChildren, b.Values));
            }
            for (var j = 0; j < s.MatchNamespaces.Count; j++)
            {
                var n = s.MatchNamespaces[j];
                var slot = Array.IndexOf(Vocabulary.Namespaces, n.Namespace);
                var tests = new List<IntTest>();
                foreach (var v in n.Values)
                {
                    if (v == "host_ns")
                    {
                        tests.Add(new IntTest(FilterOp.Equal, facts.HostNamespaces.TryGetValue(n.Namespace, out var host)
                            ? host
                            : throw new Unsupported($"host_ns: the host's {n.Namespace} namespace is unknown (the agent reads /proc/1/ns at start-up)")));
                    }
                    else if (uint.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var inum))
                    {
                        tests.Add(new IntTest(FilterOp.Equal, inum));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{sp}.matchNamespaces[{j}].values", $"\"{v}\" is not a namespace inode number or host_ns", 0, 0));
                    }
                }
                ints.Add(new IntMatch(ValueRef.Of(Pseudo.NsBase + (byte)slot), SockField.Value, n.Operator == "NotIn", tests));
            }
            for (var j = 0; j < s.MatchNamespaceChanges.Count; j++)
            {
                var n = s.MatchNamespaceChanges[j];
                ulong mask = 0;
                foreach (var v in n.Values)
                {
                    var slot = Array.FindIndex(Vocabulary.Namespaces, x => string.Equals(x, v, StringComparison.OrdinalIgnoreCase));
                    if (slot < 0)
                    {
                        errors.Add(new PolicyError($"{sp}.matchNamespaceChanges[{j}].values", $"unknown namespace \"{v}\"", 0, 0));
                        continue;
                    }
                    mask |= 1UL << slot;
                }
                ints.Add(new IntMatch(ValueRef.Of(Pseudo.NsChanged), SockField.Value, n.Operator == "NotIn", [new IntTest(FilterOp.Mask, mask)]));
            }
            CompileCaps(s.MatchCapabilities, $"{sp}.matchCapabilities", ints, errors, changes: false, facts);
            CompileCaps(s.MatchCapabilityChanges, $"{sp}.matchCapabilityChanges", ints, errors, changes: true, facts);
            var actions = CompileActions(s.MatchActions, $"{sp}.matchActions", errors);
            if (s.MatchReturnActions.Count > 0)
            {
                throw new Unsupported($"{sp}.matchReturnActions is not implemented by this version of Palisade");
            }
            result.Add(new CompiledSelector(i, strings, ints, actions));
        }
        return result;
    }

    private static void CompileCaps(IReadOnlyList<CapabilitiesSelector> caps, string path, List<IntMatch> ints, List<PolicyError> errors, bool changes, KernelFacts facts)
    {
        for (var j = 0; j < caps.Count; j++)
        {
            var c = caps[j];
            if (c.IsNamespaceCapability)
            {
                // Tetragon: the capabilities are tested only outside the host user namespace.
                if (!facts.HostNamespaces.TryGetValue("User", out var hostUser))
                {
                    throw new Unsupported($"{path}[{j}].isNamespaceCapability: the host's user namespace is unknown (the agent reads /proc/1/ns at start-up)");
                }
                ints.Add(new IntMatch(ValueRef.Of(Pseudo.NsBase + (byte)Array.IndexOf(Vocabulary.Namespaces, "User")), SockField.Value, true, [new IntTest(FilterOp.Equal, hostUser)]));
            }
            ulong mask = 0;
            foreach (var v in c.Values)
            {
                var bit = Capabilities.Bit(v.ToUpperInvariant());
                if (bit < 0)
                {
                    errors.Add(new PolicyError($"{path}[{j}].values", $"unknown capability \"{v}\"", 0, 0));
                    continue;
                }
                mask |= 1UL << bit;
            }
            var pseudo = changes ? Pseudo.CapChanged : c.Type switch
            {
                "Permitted" => Pseudo.CapPermitted,
                "Inheritable" => Pseudo.CapInheritable,
                _ => Pseudo.CapEffective,
            };
            ints.Add(new IntMatch(ValueRef.Of(pseudo), SockField.Value, c.Operator == "NotIn", [new IntTest(FilterOp.Mask, mask)]));
        }
    }

    private static SelectorActions CompileActions(IReadOnlyList<ActionSelector> actions, string path, List<PolicyError> errors)
    {
        if (actions.Count == 0)
        {
            return SelectorActions.PostOnly;
        }
        var flags = ActionFlags.Post;
        uint signal = 0;
        int error = 0;
        ulong rate = 0;
        byte scope = 0;
        string? url = null, fqdn = null;
        var noPost = false;
        var sockArg = 0;
        var names = new List<string>();
        for (var j = 0; j < actions.Count; j++)
        {
            var a = actions[j];
            var name = Vocabulary.Actions.FirstOrDefault(x => string.Equals(x, a.Action, StringComparison.OrdinalIgnoreCase)) ?? a.Action;
            names.Add(name);
            switch (name)
            {
                case "Post":
                    foreach (var (option, on) in new[] { ("kernelStackTrace", a.KernelStackTrace), ("userStackTrace", a.UserStackTrace), ("imaHash", a.ImaHash) })
                    {
                        if (on)
                        {
                            throw new Unsupported($"{path}[{j}].{option} is not implemented by this version of Palisade");
                        }
                    }
                    if (a.RateLimit is not null)
                    {
                        rate = ParseDuration(a.RateLimit, $"{path}[{j}].rateLimit", errors);
                        scope = a.RateLimitScope switch { "process" => 1, "global" => 2, _ => 0 };
                    }
                    break;
                case "NoPost":
                    noPost = true;
                    break;
                case "Sigkill":
                    flags |= ActionFlags.Sigkill;
                    break;
                case "Signal":
                    flags |= ActionFlags.Signal;
                    signal = a.ArgSig ?? 0;
                    if (signal is 0 or > 64)
                    {
                        errors.Add(new PolicyError($"{path}[{j}].argSig", $"Signal needs argSig between 1 and 64, got {a.ArgSig?.ToString(CultureInfo.InvariantCulture) ?? "none"}", 0, 0));
                    }
                    break;
                case "Override":
                    flags |= ActionFlags.Override;
                    error = a.ArgError ?? -1;
                    break;
                case "TrackSock" or "UntrackSock":
                    flags |= name == "TrackSock" ? ActionFlags.TrackSock : ActionFlags.UntrackSock;
                    sockArg = (int)(a.ArgSock ?? 0);
                    break;
                case "GetUrl":
                    flags |= ActionFlags.UserSpace;
                    url = a.ArgUrl;
                    break;
                case "DnsLookup":
                    flags |= ActionFlags.UserSpace;
                    fqdn = a.ArgFqdn;
                    break;
                default:
                    throw new Unsupported($"{path}[{j}].action {name} is not implemented by this version of Palisade");
            }
        }
        if (noPost)
        {
            flags &= ~ActionFlags.Post;
        }
        return new SelectorActions(flags, signal, error, rate, scope, names, url, fqdn) { SockArg = sockArg };
    }

    private static ulong ParseDuration(string text, string path, List<PolicyError> errors)
    {
        var unit = text.Length > 0 && char.IsLetter(text[^1]) ? text[^1] : 's';
        var number = char.IsLetter(text[^1]) ? text[..^1] : text;
        if (!ulong.TryParse(number, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || unit is not ('s' or 'm' or 'h'))
        {
            errors.Add(new PolicyError(path, $"\"{text}\" is not a duration; use a number with s, m or h (\"30s\", \"1m\")", 0, 0));
            return 0;
        }
        return n * (unit switch { 'm' => 60UL, 'h' => 3600UL, _ => 1UL }) * 1_000_000_000UL;
    }

    private static (StringClass, bool)? StringOp(string op) => op switch
    {
        "Equal" or "In" => (StringClass.Equal, false),
        "NotEqual" or "NotIn" => (StringClass.Equal, true),
        "Prefix" => (StringClass.Prefix, false),
        "NotPrefix" => (StringClass.Prefix, true),
        "Postfix" => (StringClass.Postfix, false),
        "NotPostfix" => (StringClass.Postfix, true),
        _ => null,
    };

    private static void CheckStrings(IReadOnlyList<string> values, string path, List<PolicyError> errors)
    {
        foreach (var v in values)
        {
            if (System.Text.Encoding.UTF8.GetByteCount(v) > MaxStringValue)
            {
                errors.Add(new PolicyError(path, $"value \"{v[..20]}...\" is {System.Text.Encoding.UTF8.GetByteCount(v)} bytes; at most {MaxStringValue} can be matched in the kernel", 0, 0));
            }
        }
    }

    private static void CompileArg(TracingPolicy policy, ArgSelector m, IReadOnlyList<PolicyArg> args, string path, List<StringMatch> strings, List<IntMatch> ints,
        List<PolicyError> errors, bool tracepoint, bool isReturn)
    {
        ValueRef vref;
        string type;
        if (isReturn)
        {
            vref = ValueRef.Of(Pseudo.Return);
            type = "int";
        }
        else
        {
            var arg = m.Args.Count > 0 && m.Args[0] < args.Count ? args[(int)m.Args[0]]
                : args.FirstOrDefault(a => a.Index == m.Index) ?? (tracepoint && m.Index < args.Count ? args[(int)m.Index] : null);
            if (arg is null)
            {
                errors.Add(new PolicyError($"{path}.index", $"no argument with index {m.Index} in args; add it to args or fix the index", 0, 0));
                return;
            }
            vref = ValueRef.Arg(arg.Index);
            type = arg.Type;
        }
        var family = TypeFamily(type);
        var op = m.Operator;
        var values = ExpandLists(policy, m.Values);
        if (family == Family.String)
        {
            var so = StringOp(op) ?? throw new Unsupported($"{path}.operator {op} on a {type} argument is not implemented in the kernel by this version of Palisade");
            CheckStrings(values, $"{path}.values", errors);
            strings.Add(new StringMatch(vref, so.Item1, so.Item2, false, values));
            return;
        }
        if (family == Family.Sock)
        {
            ints.Add(CompileSock(vref, op, values, path, errors));
            return;
        }
        if (family != Family.Int)
        {
            throw new Unsupported($"{path}: matching a {type} argument is not implemented by this version of Palisade");
        }
        var negate = op is "NotEqual" or "NotIn" or "NotInRange" or "NotInMap";
        var tests = new List<IntTest>();
        foreach (var v in values)
        {
            switch (op)
            {
                case "Equal" or "NotEqual" or "In" or "NotIn" or "InMap" or "NotInMap" or "InRange" or "NotInRange":
                    if (v.Contains(':', StringComparison.Ordinal))
                    {
                        var parts = v.Split(':');
                        if (parts.Length == 2 && TryInt(parts[0], out var lo) && TryInt(parts[1], out var hi))
                        {
                            tests.Add(new IntTest(FilterOp.Range, (ulong)lo, (ulong)hi));
                        }
                        else
                        {
                            errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not a range \"low:high\"", 0, 0));
                        }
                    }
                    else if (TryInt(v, out var n))
                    {
                        tests.Add(op is "InRange" or "NotInRange" ? new IntTest(FilterOp.Range, (ulong)n, (ulong)n) : new IntTest(FilterOp.Equal, (ulong)n));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not an integer (decimal or 0x hex) for a {type} argument", 0, 0));
                    }
                    break;
                case "GreaterThan" or "LessThan" or "Mask":
                    if (TryInt(v, out var x))
                    {
                        tests.Add(new IntTest(op switch { "GreaterThan" => FilterOp.GreaterThan, "LessThan" => FilterOp.LessThan, _ => FilterOp.Mask }, (ulong)x));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not an integer (decimal or 0x hex)", 0, 0));
                    }
                    break;
                default:
                    throw new Unsupported($"{path}.operator {op} on a {type} argument is not implemented by this version of Palisade");
            }
        }
        ints.Add(new IntMatch(vref, SockField.Value, negate, tests));
    }

    private static IReadOnlyList<string> ExpandLists(TracingPolicy policy, IReadOnlyList<string> values)
    {
        if (!values.Any(v => v.StartsWith("list:", StringComparison.Ordinal)))
        {
            return values;
        }
        var result = new List<string>();
        foreach (var v in values)
        {
            if (!v.StartsWith("list:", StringComparison.Ordinal))
            {
                result.Add(v);
                continue;
            }
            var list = policy.Spec.Lists.FirstOrDefault(l => l.Name == v[5..]) ?? throw new Unsupported($"list \"{v[5..]}\" is not defined");
            foreach (var item in list.Values)
            {
                var sc = HookCatalog.SyscallName(item, true);
                if (sc is not null)
                {
                    result.Add(SyscallTable.X64[sc].ToString(CultureInfo.InvariantCulture));
                }
            }
        }
        return result;
    }

    private static bool TryInt(string s, out long value)
    {
        s = s.Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            var ok = ulong.TryParse(s[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var u);
            value = (long)u;
            return ok;
        }
        if (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out value))
        {
            return true;
        }
        var okU = ulong.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var big);
        value = (long)big;
        return okU;
    }

    private static IntMatch CompileSock(ValueRef vref, string op, IReadOnlyList<string> values, string path, List<PolicyError> errors)
    {
        var negate = op.StartsWith("Not", StringComparison.Ordinal);
        var baseOp = negate ? op[3..] : op;
        var tests = new List<IntTest>();
        SockField field;
        switch (baseOp)
        {
            case "SPort" or "DPort":
                field = baseOp == "SPort" ? SockField.SPort : SockField.DPort;
                foreach (var v in values)
                {
                    var parts = v.Split(':');
                    if (parts.All(p => ushort.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)) && parts.Length <= 2)
                    {
                        var lo = ulong.Parse(parts[0], CultureInfo.InvariantCulture);
                        tests.Add(new IntTest(FilterOp.URange, lo, parts.Length == 2 ? ulong.Parse(parts[1], CultureInfo.InvariantCulture) : lo));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not a port (0-65535) or a range \"low:high\"", 0, 0));
                    }
                }
                break;
            case "SPortPriv" or "DPortPriv":
                field = baseOp == "SPortPriv" ? SockField.SPort : SockField.DPort;
                tests.Add(new IntTest(FilterOp.URange, 0, 1023));
                break;
            case "SAddr" or "DAddr":
                field = baseOp == "SAddr" ? SockField.SAddr : SockField.DAddr;
                foreach (var v in values)
                {
                    if (Cidr(v) is { } test)
                    {
                        tests.Add(test);
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not an IP address or CIDR (10.0.0.0/8, fd00::/8)", 0, 0));
                    }
                }
                break;
            case "Protocol" or "Family" or "State":
                field = baseOp switch { "Protocol" => SockField.Protocol, "Family" => SockField.Family, _ => SockField.State };
                foreach (var v in values)
                {
                    var n = SocketNames.Value(baseOp, v);
                    if (n >= 0)
                    {
                        tests.Add(new IntTest(FilterOp.Equal, (ulong)n));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not a {baseOp.ToLowerInvariant()} name or number", 0, 0));
                    }
                }
                break;
            default:
                throw new Unsupported($"{path}.operator {op} on a socket argument is not implemented by this version of Palisade");
        }
        return new IntMatch(vref, field, negate, tests);
    }

    /// <summary>An address test: a /n of IPv4 or IPv6 in the byte order the kernel keeps.</summary>
    public static IntTest? Cidr(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addrText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addrText, out var addr))
        {
            return null;
        }
        var bytes = addr.GetAddressBytes();
        var bits = bytes.Length * 8;
        var prefix = bits;
        if (slash >= 0 && (!int.TryParse(text[(slash + 1)..], NumberStyles.Integer, CultureInfo.InvariantCulture, out prefix) || prefix < 0 || prefix > bits))
        {
            return null;
        }
        var mask = new byte[bytes.Length];
        for (var b = 0; b < prefix; b++)
        {
            mask[b / 8] |= (byte)(0x80 >> (b % 8));
        }
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] &= mask[i];
        }
        if (bytes.Length == 4)
        {
            return new IntTest(FilterOp.Addr4, BitConverter.ToUInt32(bytes), 0, BitConverter.ToUInt32(mask));
        }
        return new IntTest(FilterOp.Addr6, BitConverter.ToUInt64(bytes, 0), BitConverter.ToUInt64(bytes, 8), BitConverter.ToUInt64(mask, 0), BitConverter.ToUInt64(mask, 8));
    }
}
