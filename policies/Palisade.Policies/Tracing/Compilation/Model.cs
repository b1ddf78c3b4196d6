using Palisade.Abi;

namespace Palisade.Policies.Tracing.Compilation;

// The compiled form of a policy: pure data, the input of the engine that writes BPF maps.
// Enum values equal the C enums in bpf/include/pal_policy.h.

/// <summary>How a slot's value is obtained in the kernel (enum pal_pol_xkind).</summary>
[BpfEnum("pal_pol_xkind", "PAL_X_")]
public enum SlotKind : byte
{
    None = 0, Int = 1, [BpfEnumerator("PAL_X_USTR")] UserString = 2, FdPath = 3, Ret = 4, RetFdPath = 5,
    [BpfEnumerator("PAL_X_USOCKADDR")] UserSockaddr = 6, CtxSock = 7, FdSock = 8, RetFdSock = 9, ExecPath = 10, Cred = 11, Const = 12,
    [BpfEnumerator("PAL_X_UBUF")] UserBuffer = 13, [BpfEnumerator("PAL_X_NR")] SyscallNr = 14, [BpfEnumerator("PAL_X_ARGS")] SyscallArgs = 15,
    [BpfEnumerator("PAL_X_TASKCAP")] TaskCap = 16,
    [BpfEnumerator("PAL_X_KFILE")] KFile = 17, [BpfEnumerator("PAL_X_KPATH")] KPath = 18, [BpfEnumerator("PAL_X_KDENTRY")] KDentry = 19,
    [BpfEnumerator("PAL_X_KSOCK")] KSock = 20, [BpfEnumerator("PAL_X_KCRED")] KCred = 21, [BpfEnumerator("PAL_X_KBINPRM")] KBinprm = 22,
    [BpfEnumerator("PAL_X_KSTR")] KString = 23, [BpfEnumerator("PAL_X_KSKB")] KSkb = 24, [BpfEnumerator("PAL_X_KNETDEV")] KNetDev = 25,
    [BpfEnumerator("PAL_X_KUSERNS")] KUserNs = 26,
}

/// <summary>Task values selectors can test (enum pal_pol_pslot).</summary>
[BpfEnum("pal_pol_pslot", "PAL_PS_")]
public enum Pseudo : byte
{
    None = 0, Binary = 8, Pid = 9, [BpfEnumerator("PAL_PS_NSPID")] NsPid = 10,
    [BpfEnumerator("PAL_PS_CAP_EFF")] CapEffective = 11, [BpfEnumerator("PAL_PS_CAP_PERM")] CapPermitted = 12,
    [BpfEnumerator("PAL_PS_CAP_INH")] CapInheritable = 13,
    NsChanged = 14, CapChanged = 15, [BpfEnumerator("PAL_PS_RET")] Return = 16, PidTree = 17,
    [BpfEnumerator("PAL_PS_NSPID_TREE")] NsPidTree = 18, NsBase = 20,
    /// <summary>Slot numbers stay below this.</summary>
    Max = 32,
}

/// <summary>String match classes (enum pal_pol_class).</summary>
[BpfEnum("pal_pol_class", "PAL_C_")]
public enum StringClass : byte { [BpfEnumerator("PAL_C_EQ")] Equal = 1, Prefix = 2, Postfix = 3 }

/// <summary>Integer filter operators (enum pal_pol_op).</summary>
[BpfEnum("pal_pol_op", "PAL_OP_")]
public enum FilterOp : byte
{
    [BpfEnumerator("PAL_OP_EQ")] Equal = 1, [BpfEnumerator("PAL_OP_GT")] GreaterThan = 2, [BpfEnumerator("PAL_OP_LT")] LessThan = 3,
    Mask = 4, Range = 5, Addr4 = 6, Addr6 = 7, [BpfEnumerator("PAL_OP_URANGE")] URange = 8,
}

/// <summary>Fields of a socket value (enum pal_pol_field).</summary>
[BpfEnum("pal_pol_field", "PAL_F_")]
public enum SockField : byte
{
    Value = 0, Family = 1, Protocol = 2, [BpfEnumerator("PAL_F_SPORT")] SPort = 3, [BpfEnumerator("PAL_F_DPORT")] DPort = 4,
    [BpfEnumerator("PAL_F_SADDR")] SAddr = 5, [BpfEnumerator("PAL_F_DADDR")] DAddr = 6, Type = 7, State = 8,
}

/// <summary>Where in the kernel a point runs.</summary>
public enum PointKind
{
    SyscallExit, SyscallEnter, Exec, Connect, Uprobe, Kprobe,
    /// <summary>A kernel tracepoint (raw_tp), named by <see cref="HookTarget.Place"/>.</summary>
    Tracepoint,
    /// <summary>A cgroup skb hook: <see cref="HookTarget.Place"/> is cgroup_skb/ingress or cgroup_skb/egress.</summary>
    CgroupSkb,
}

/// <summary>Point flags (enum pal_pol_point_flags).</summary>
[Flags]
[BpfEnum("pal_pol_point_flags", "PAL_PT_")]
public enum PointFlags : byte
{
    None = 0, Gate = 1, [BpfEnumerator("PAL_PT_RET_OK")] ReturnOk = 2, [BpfEnumerator("PAL_PT_TCP")] TcpOnly = 4,
    [BpfEnumerator("PAL_PT_GATE_EQ")] GateEqual = 8, [BpfEnumerator("PAL_PT_SOCK")] SockOnly = 16,
}

/// <summary>Action flags (enum pal_pol_action_flags).</summary>
[Flags]
[BpfEnum("pal_pol_action_flags", "PAL_A_")]
public enum ActionFlags : ushort
{
    None = 0, Post = 1, Sigkill = 2, Signal = 4, Override = 8, [BpfEnumerator("PAL_A_USERSPACE")] UserSpace = 16,
    [BpfEnumerator("PAL_A_TRACK")] TrackSock = 32, [BpfEnumerator("PAL_A_UNTRACK")] UntrackSock = 64,
}

/// <summary>
/// Which kernel function an inet_sock_set_state point stands for (enum pal_pol_sock_state_fn):
/// the gate mask on register 5, which the kernel fills in per transition.
/// </summary>
[Flags]
[BpfEnum("pal_pol_sock_state_fn", "PAL_SS_")]
internal enum SockStateFunction : ulong { Listen = 1, Child = 2, TcpSet = 4 }

/// <summary>Which output function a cgroup skb point stands for (enum pal_pol_skb_output): the gate mask on register 5.</summary>
[Flags]
[BpfEnum("pal_pol_skb_output", "PAL_SKB_")]
internal enum SkbOutput : ulong { Ip = 1, IpMc = 2, Ip6 = 4 }

/// <summary>How one value is read: kind, register and extras.</summary>
public readonly record struct SlotSource(SlotKind Kind, byte Src = 0, byte SizeSrc = 0xff, uint Const = 0);

/// <summary>
/// One kernel place a hook runs at. Points with the same <see cref="Key"/> are shared by every hook
/// of every policy that lands there; their selectors are evaluated together.
/// </summary>
public sealed record HookTarget(PointKind Kind, int Syscall, string Function, PointFlags Flags = PointFlags.None, byte GateSrc = 0, ulong GateMask = 0)
{
    /// <summary>Source of each policy argument, by the argument's index.</summary>
    public IReadOnlyDictionary<uint, SlotSource> Args { get; init; } = new Dictionary<uint, SlotSource>();

    /// <summary>Source of the return value, when the hook has one.</summary>
    public SlotSource? Return { get; init; }

    /// <summary>The ELF file of a uprobe.</summary>
    public string? Binary { get; init; }

    /// <summary>The kernel tracepoint or cgroup hook of a <see cref="PointKind.Tracepoint"/> or <see cref="PointKind.CgroupSkb"/> point.</summary>
    public string? Place { get; init; }

    public string Key => $"{Kind}:{Syscall}:{Binary}:{Place}:{Function}:{(byte)Flags}:{GateSrc}:{GateMask}";

    public string Describe() => Kind switch
    {
        PointKind.SyscallExit => $"exit of {SyscallName}",
        PointKind.SyscallEnter => $"entry of {SyscallName}",
        PointKind.Exec => "sched_process_exec",
        PointKind.Connect => "cgroup connect4/connect6",
        PointKind.Uprobe => $"uprobe {Function}",
        PointKind.Kprobe => $"kprobe {Function}",
        PointKind.Tracepoint => $"tracepoint {Place}",
        PointKind.CgroupSkb => Place ?? "cgroup skb",
        _ => Kind.ToString(),
    };

    private string SyscallName => SyscallTable.NameOf(Syscall) ?? (Syscall < 0 ? "every syscall" : Syscall.ToString(System.Globalization.CultureInfo.InvariantCulture));
}

/// <summary>A value a selector tests: a policy argument (by index), or a task value.</summary>
public readonly record struct ValueRef(int ArgIndex, Pseudo Pseudo)
{
    public static ValueRef Arg(uint index) => new((int)index, Pseudo.None);
    public static ValueRef Of(Pseudo p) => new(-1, p);
    public bool IsArg => ArgIndex >= 0;
}

public sealed record StringMatch(ValueRef Ref, StringClass Class, bool Negate, bool Follow, IReadOnlyList<string> Values);

public sealed record IntTest(FilterOp Op, ulong A, ulong B = 0, ulong C = 0, ulong D = 0);

/// <summary>An integer condition: passes when any test passes (or, negated, when none does).</summary>
public sealed record IntMatch(ValueRef Ref, SockField Field, bool Negate, IReadOnlyList<IntTest> Tests);

public sealed record SelectorActions(ActionFlags Flags, uint Signal, int Error, ulong RateLimitNs, byte RateScope, IReadOnlyList<string> Names, string? Url, string? Fqdn)
{
    /// <summary>TrackSock / UntrackSock: the argument index holding the socket, or <see cref="ReturnSock"/> for the return value.</summary>
    public int SockArg { get; init; }

    public const int ReturnSock = -1;

    public static readonly SelectorActions PostOnly = new(ActionFlags.Post, 0, 0, 0, 0, ["Post"], null, null);
}

public sealed record CompiledSelector(int Index, IReadOnlyList<StringMatch> Strings, IReadOnlyList<IntMatch> Ints, SelectorActions Actions);

public enum HookMode { Native, Emulated, Unsupported }

/// <summary>Where a hook runs on this kernel, or why it does not.</summary>
public sealed record HookStatus(HookMode Mode, string Detail);

/// <summary>A hook of a policy, compiled.</summary>
public sealed record CompiledHook(
    int Index, string HookType, string Name, HookStatus Status, IReadOnlyList<HookTarget> Targets, IReadOnlyList<CompiledSelector> Selectors,
    IReadOnlyList<PolicyArg> Args, PolicyArg? ReturnArg, string? Message, IReadOnlyList<string> Tags)
{
    /// <summary>tracepoint subsystem/event, uprobe path/symbol: for the event.</summary>
    public string? Subsystem { get; init; }
    public string? Event { get; init; }
    public bool Runs => Status.Mode != HookMode.Unsupported;
}

/// <summary>A policy, compiled: one entry per hook, each either running or unsupported with a reason.</summary>
public sealed record CompiledPolicy(TracingPolicy Policy, IReadOnlyList<CompiledHook> Hooks, IReadOnlyList<PolicyError> Errors)
{
    public bool Monitor => Policy.Spec.Mode == "monitor";

    /// <summary>enabled: every hook runs; partial: some do; error: none does, or the policy did not compile.</summary>
    public string State => Errors.Count > 0 || Hooks.Count == 0 || Hooks.All(h => !h.Runs) ? "error" : Hooks.All(h => h.Runs) ? "enabled" : "partially_enabled";
}

/// <summary>What the compiler needs to know about the machine: pure input, so compilation stays a pure function.</summary>
public sealed record KernelFacts(bool Kprobes, IReadOnlyDictionary<string, uint> HostNamespaces)
{
    /// <summary>Where the host's /proc is (Tetragon's /procRoot in uprobe paths).</summary>
    public string ProcRoot { get; init; } = "/proc";

    /// <summary>
    /// True when the agent watches pods (Kubernetes integration on), so pod-scoped policies
    /// (TracingPolicyNamespaced, podSelector, containerSelector) can be limited to the pods'
    /// cgroups. Without it they are refused rather than run on every process.
    /// </summary>
    public bool PodScoping { get; init; }
}
