using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Policies.Tracing.Compilation;

namespace Palisade.Tests;

/// <summary>The compiler is pure: where each hook runs on a kernel without kprobes, and how selectors become conditions.</summary>
public sealed class PolicyCompilerTests
{
    private static readonly KernelFacts Facts = new(false, new Dictionary<string, uint> { ["Net"] = 4026531833 });

    private static CompiledPolicy Compile(string spec)
    {
        var parsed = TracingPolicyParser.Parse($"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: t\nspec:\n{spec}", "t.yaml");
        Assert.Empty(parsed.Errors);
        return PolicyCompiler.Compile(Assert.Single(parsed.Policies), Facts);
    }

    [Fact]
    public void SyscallKprobeRunsAtTheSyscallExit()
    {
        var c = Compile("  kprobes:\n  - call: sys_openat\n    syscall: true\n    args:\n    - index: 1\n      type: string\n");
        var hook = Assert.Single(c.Hooks);
        Assert.Equal(HookMode.Emulated, hook.Status.Mode);
        var target = Assert.Single(hook.Targets);
        Assert.Equal(PointKind.SyscallExit, target.Kind);
        Assert.Equal(SyscallTable.X64["openat"], target.Syscall);
        Assert.Equal(new SlotSource(SlotKind.UserString, 1), target.Args[1]);
        Assert.Equal("enabled", c.State);
    }

    [Fact]
    public void FdInstallIsEmulatedOnEveryOpenWithTheFileResolvedFromTheReturnedFd()
    {
        var c = Compile("  kprobes:\n  - call: fd_install\n    args:\n    - index: 0\n      type: int\n    - index: 1\n      type: file\n    selectors:\n    - matchArgs:\n      - index: 1\n        operator: Prefix\n        values: [\"/etc\"]\n      matchActions:\n      - action: Sigkill\n");
        var hook = Assert.Single(c.Hooks);
        Assert.Equal(["open", "openat", "openat2", "creat"], hook.Targets.Select(t => SyscallTable.NameOf(t.Syscall)!).ToArray());
        Assert.All(hook.Targets, t => Assert.Equal(SlotKind.RetFdPath, t.Args[1].Kind));
        var sel = Assert.Single(hook.Selectors);
        var m = Assert.Single(sel.Strings);
        Assert.Equal(StringClass.Prefix, m.Class);
        Assert.Equal(ActionFlags.Post | ActionFlags.Sigkill, sel.Actions.Flags);
    }

    [Fact]
    public void WithKprobesFileHooksRunNativelyAndReturnProbesFallBackToEmulation()
    {
        var parsed = TracingPolicyParser.Parse("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: t\nspec:\n  kprobes:\n  - call: fd_install\n    args:\n    - index: 0\n      type: int\n    - index: 1\n      type: file\n  - call: security_file_permission\n    return: true\n    args:\n    - index: 0\n      type: file\n    - index: 1\n      type: int\n    returnArg:\n      index: 0\n      type: int\n", "t.yaml");
        var c = PolicyCompiler.Compile(Assert.Single(parsed.Policies), Facts with { Kprobes = true });
        var native = c.Hooks[0];
        Assert.Equal(HookMode.Native, native.Status.Mode);
        var t = Assert.Single(native.Targets);
        Assert.Equal(PointKind.Kprobe, t.Kind);
        Assert.Equal(SlotKind.KFile, t.Args[1].Kind);
        Assert.Equal(HookMode.Emulated, c.Hooks[1].Status.Mode);
        Assert.Contains("not native: return probes", c.Hooks[1].Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownKernelFunctionIsUnsupportedWithTheReason()
    {
        var c = Compile("  kprobes:\n  - call: tty_write\n    args:\n    - index: 0\n      type: int\n");
        var hook = Assert.Single(c.Hooks);
        Assert.Equal(HookMode.Unsupported, hook.Status.Mode);
        Assert.Contains("kprobes are not available", hook.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("error", c.State);
    }

    [Fact]
    public void OverrideOutsideConnectIsRefusedNotFaked()
    {
        var c = Compile("  kprobes:\n  - call: sys_linkat\n    syscall: true\n    args:\n    - index: 0\n      type: int\n    selectors:\n    - matchActions:\n      - action: Override\n        argError: -1\n");
        Assert.Contains("bpf_override_return", Assert.Single(c.Hooks).Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("DAddr", "10.0.0.0/33", "is not an IP address or CIDR")]
    [InlineData("DPort", "70000", "is not a port")]
    [InlineData("Family", "AF_BOGUS", "is not a family name or number")]
    public void BadSocketValuesGetPreciseErrors(string op, string value, string message)
    {
        var c = Compile($"  kprobes:\n  - call: tcp_connect\n    args:\n    - index: 0\n      type: sock\n    selectors:\n    - matchArgs:\n      - index: 0\n        operator: {op}\n        values: [\"{value}\"]\n");
        var error = Assert.Single(c.Errors);
        Assert.Equal("spec.kprobes[0].selectors[0].matchArgs[0].values", error.Path);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CidrIsKeptInKernelByteOrder()
    {
        var t = PolicyCompiler.Cidr("10.1.0.0/16")!;
        Assert.Equal(FilterOp.Addr4, t.Op);
        Assert.Equal(BitConverter.ToUInt32([10, 1, 0, 0]), (uint)t.A);
        Assert.Equal(BitConverter.ToUInt32([255, 255, 0, 0]), (uint)t.C);
    }

    [Fact]
    public void HostNsResolvesFromTheFactsAndIsRefusedWhenUnknown()
    {
        var known = Compile("  kprobes:\n  - call: fd_install\n    args:\n    - index: 1\n      type: file\n    selectors:\n    - matchNamespaces:\n      - namespace: Net\n        operator: In\n        values: [host_ns]\n");
        var test = Assert.Single(Assert.Single(Assert.Single(known.Hooks).Selectors).Ints).Tests.Single();
        Assert.Equal(4026531833UL, test.A);
        var unknown = Compile("  kprobes:\n  - call: fd_install\n    args:\n    - index: 1\n      type: file\n    selectors:\n    - matchNamespaces:\n      - namespace: Mnt\n        operator: In\n        values: [host_ns]\n");
        Assert.Contains("host_ns", Assert.Single(unknown.Hooks).Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void SyscallTableMatchesTheUapiHeaderWhenPresent()
    {
        const string header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
        Assert.SkipUnless(File.Exists(header), "the uapi header is not installed");
        foreach (var line in File.ReadLines(header).Where(l => l.StartsWith("#define __NR_", StringComparison.Ordinal)))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture), SyscallTable.X64[parts[1]["__NR_".Length..]]);
        }
    }

    [Fact]
    public void SocketStateFunctionsShareOneTracepointGatedByWhichTransitionItIs()
    {
        var c = Compile("  kprobes:\n  - call: tcp_set_state\n    args:\n    - index: 0\n      type: sock\n    - index: 1\n      type: int\n  - call: inet_csk_listen_start\n    args:\n    - index: 0\n      type: sock\n  - call: tcp_create_openreq_child\n    return: true\n    args:\n    - index: 0\n      type: sock\n    returnArg:\n      index: 0\n      type: sock\n");
        Assert.Equal("enabled", c.State);
        var targets = c.Hooks.Select(h => Assert.Single(h.Targets)).ToList();
        Assert.All(targets, t => Assert.Equal((PointKind.Tracepoint, "inet_sock_set_state", PointFlags.Gate, (byte)5), (t.Kind, t.Place, t.Flags, t.GateSrc)));
        Assert.Equal([4UL, 1UL, 2UL], targets.Select(t => t.GateMask).ToArray()); // PAL_SS_TCP_SET, _LISTEN, _CHILD
        Assert.Equal(3, targets.Select(t => t.Key).Distinct().Count());
        Assert.Equal(SlotKind.KSock, targets[2].Return!.Value.Kind);
    }

    [Fact]
    public void PacketFunctionsRunOnCgroupSkbHooksAndMayDropThePacket()
    {
        var c = Compile("  kprobes:\n  - call: ip_output\n    args:\n    - index: 2\n      type: skb\n    selectors:\n    - matchArgs:\n      - index: 2\n        operator: DPort\n        values: [\"53\"]\n      - index: 2\n        operator: NotDAddr\n        values: [\"127.0.0.53\"]\n      matchActions:\n      - action: Sigkill\n  - call: __cgroup_bpf_run_filter_skb\n    args:\n    - index: 0\n      type: sock\n    - index: 1\n      type: skb\n    - index: 2\n      type: int\n    selectors:\n    - matchActions:\n      - action: Override\n        argError: -1\n");
        Assert.Equal("enabled", c.State);
        var ip = Assert.Single(c.Hooks[0].Targets);
        Assert.Equal((PointKind.CgroupSkb, "cgroup_skb/egress", 1UL), (ip.Kind, ip.Place, ip.GateMask));
        Assert.Equal(SlotKind.KSkb, ip.Args[2].Kind);
        var ints = Assert.Single(c.Hooks[0].Selectors).Ints;
        Assert.Contains(ints, m => m.Field == SockField.DPort && !m.Negate);
        Assert.Contains(ints, m => m.Field == SockField.DAddr && m.Negate);
        // Both directions; Override (drop) is allowed on packet hooks, unlike on syscalls.
        Assert.Equal(["cgroup_skb/ingress", "cgroup_skb/egress"], c.Hooks[1].Targets.Select(t => t.Place!).ToArray());
    }

    [Fact]
    public void TrackSockActsOnTheNamedArgumentOrTheReturnedSocket()
    {
        var c = Compile("  kprobes:\n  - call: sk_alloc\n    return: true\n    args:\n    - index: 1\n      type: int\n    returnArg:\n      index: 0\n      type: sock\n    returnArgAction: TrackSock\n  - call: __sk_free\n    args:\n    - index: 0\n      type: sock\n    selectors:\n    - matchActions:\n      - action: UntrackSock\n        argSock: 0\n");
        Assert.Equal("enabled", c.State);
        var alloc = Assert.Single(c.Hooks[0].Selectors).Actions;
        Assert.True(alloc.Flags.HasFlag(ActionFlags.TrackSock));
        Assert.Equal(SelectorActions.ReturnSock, alloc.SockArg);
        Assert.Equal(SlotKind.RetFdSock, Assert.Single(c.Hooks[0].Targets).Return!.Value.Kind);
        var free = Assert.Single(c.Hooks[1].Selectors).Actions;
        Assert.True(free.Flags.HasFlag(ActionFlags.UntrackSock));
        Assert.Equal(0, free.SockArg);
        Assert.Equal(PointFlags.SockOnly, Assert.Single(c.Hooks[1].Targets).Flags);
    }

    [Theory]
    [InlineData("  kprobes:\n  - call: sk_alloc\n    args:\n    - index: 1\n      type: int\n    selectors:\n    - matchActions:\n      - action: TrackSock\n        argSock: 1\n", "TrackSock needs a socket in argument 1")]
    [InlineData("  kprobes:\n  - call: kfree_skb_reason\n    args:\n    - index: 0\n      type: skb\n    selectors:\n    - matchActions:\n      - action: Post\n        kernelStackTrace: true\n", "kernelStackTrace is not implemented")]
    [InlineData("  kprobes:\n  - call: tcp_set_state\n    args:\n    - index: 0\n      type: sock\n    selectors:\n    - matchActions:\n      - action: Override\n        argError: -1\n", "only connect and packet hooks can refuse")]
    public void UnsupportedUsesSayWhy(string spec, string reason)
    {
        var hook = Assert.Single(Compile(spec).Hooks);
        Assert.Equal(HookMode.Unsupported, hook.Status.Mode);
        Assert.Contains(reason, hook.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryEmulatedFunctionIsInTheDocsTable()
    {
        var doc = File.ReadAllText(RepoPaths.File("docs", "policies.md"));
        var missing = HookCatalog.Table.Values.Select(e => e.Function).Distinct().Where(f => !doc.Contains($"`{f}`", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "docs/policies.md does not list: " + string.Join(", ", missing));
    }
}
