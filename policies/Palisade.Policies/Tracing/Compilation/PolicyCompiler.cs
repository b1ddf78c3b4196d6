namespace Palisade.Policies.Tracing.Compilation;

/// <summary>
/// Turns a validated TracingPolicy into the engine's compiled form: for each hook, where it runs
/// on this kernel (native, emulated through <see cref="HookCatalog"/>, or unsupported and why)
/// and its selectors as string dimensions and integer tests. Pure: no I/O, no privileges.
/// </summary>
public static class PolicyCompiler
{
    /// <summary>Longest string value a selector can match (LPM data limit, with the NUL of Equal).</summary>
    public const int MaxStringValue = 251;

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

    private static CompiledHook CompileKprobe(TracingPolicy policy, KprobeSpec k, string path, int index, KernelFacts facts, List<PolicyError> errors)
    {
        var name = k.Call;
        try
        {
            var (targets, how) = HookTargetResolver.ResolveKprobe(policy, k, facts);
            var selectors = ActionCompiler.WithReturnArgAction(SelectorCompiler.CompileSelectors(policy, k.Selectors, k.Args, path, errors, tracepoint: false, facts), k.ReturnArgAction, path);
            HookTargetResolver.CheckTargets(k.Args, k.ReturnArg, k.Return, targets, selectors);
            var mode = targets.All(t => t.Kind == PointKind.Kprobe) ? HookMode.Native : HookMode.Emulated;
            return new CompiledHook(index, "kprobe", name, new HookStatus(mode, how), targets, selectors, k.Args, k.ReturnArg, k.Message, k.Tags);
        }
        catch (UnsupportedHookException u)
        {
            return new CompiledHook(index, "kprobe", name, new HookStatus(HookMode.Unsupported, u.Message), [], [], k.Args, k.ReturnArg, k.Message, k.Tags);
        }
    }

    private static CompiledHook CompileTracepoint(TracingPolicy policy, TracepointSpec t, string path, int index, KernelFacts facts, List<PolicyError> errors)
    {
        var name = $"{t.Subsystem}/{t.Event}";
        try
        {
            var target = HookTargetResolver.ResolveTracepoint(t);
            var selectors = SelectorCompiler.CompileSelectors(policy, t.Selectors, t.Args, path, errors, tracepoint: true, facts);
            HookTargetResolver.CheckTargets(t.Args, null, false, [target], selectors);
            var how = $"tracepoint {name} ({target.Describe()})";
            return new CompiledHook(index, "tracepoint", name, new HookStatus(HookMode.Native, how), [target], selectors, t.Args, null, t.Message, t.Tags)
            { Subsystem = t.Subsystem, Event = t.Event };
        }
        catch (UnsupportedHookException u)
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
                throw new UnsupportedHookException(u.Return ? "return uprobes are not implemented by this version of Palisade" : "uprobes on offsets are not implemented by this version of Palisade; use symbols");
            }
            // Tetragon's container sees the host's /proc at /procRoot.
            var binary = u.Path.StartsWith("/procRoot/", StringComparison.Ordinal) ? facts.ProcRoot + u.Path["/procRoot".Length..] : u.Path;
            var args = new Dictionary<uint, SlotSource>();
            foreach (var a in u.Args)
            {
                if (a.Index > 5)
                {
                    throw new UnsupportedHookException($"uprobe argument index {a.Index}: the first 6 register arguments (0..5) are available");
                }
                args[a.Index] = a.Type switch
                {
                    "string" or "filename" => new SlotSource(SlotKind.UserString, (byte)a.Index),
                    "char_buf" => new SlotSource(SlotKind.UserBuffer, (byte)a.Index, a.SizeArgIndex is > 0 and <= 6 ? (byte)(a.SizeArgIndex.Value - 1) : (byte)0xff),
                    _ when ValueFamilies.OfType(a.Type) == ValueFamily.Int => new SlotSource(SlotKind.Int, (byte)a.Index),
                    _ => throw new UnsupportedHookException($"uprobe argument {a.Index} of type \"{a.Type}\" is not supported (int types, string, char_buf)"),
                };
            }
            var targets = u.Symbols.Select(sym => new HookTarget(PointKind.Uprobe, -1, sym) { Args = args, Binary = binary }).ToList();
            var selectors = SelectorCompiler.CompileSelectors(policy, u.Selectors, u.Args, path, errors, tracepoint: false, facts);
            HookTargetResolver.CheckTargets(u.Args, null, false, targets, selectors);
            return new CompiledHook(index, "uprobe", name, new HookStatus(HookMode.Native, $"uprobe on {binary}: {name}"), targets, selectors, u.Args, null, u.Message, u.Tags)
            { Subsystem = binary };
        }
        catch (UnsupportedHookException e)
        {
            return new CompiledHook(index, "uprobe", name, new HookStatus(HookMode.Unsupported, e.Message), [], [], u.Args, null, u.Message, u.Tags) { Subsystem = u.Path };
        }
    }

    /// <summary>An address test: a /n of IPv4 or IPv6 in the byte order the kernel keeps.</summary>
    public static IntTest? Cidr(string text) => SocketMatchCompiler.Cidr(text);
}
