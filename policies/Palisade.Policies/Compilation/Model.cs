namespace Palisade.Policies.Compilation;

// The compiled form of a policy: pure data, the input of the engine that writes BPF maps.
// Enum values equal the C enums in bpf/include/pal_policy.h.

/// <summary>How a slot's value is obtained in the kernel (enum pal_pol_xkind).</summary>
public enum SlotKind : byte
{
    None = 0, Int = 1, UserString = 2, FdPath = 3, Ret = 4, RetFdPath = 5, UserSockaddr = 6, CtxSock = 7,
    FdSock = 8, RetFdSock = 9, ExecPath = 10, Cred = 11, Const = 12, UserBuffer = 13, SyscallNr = 14, SyscallArgs = 15, TaskCap = 16,
    KFile = 17, KPath = 18, KDentry = 19, KSock = 20, KCred = 21, KBinprm = 22, KString = 23, KSkb = 24, KNetDev = 25, KUserNs = 26,
}

/// <summary>Task values selectors can test (enum pal_pol_pslot).</summary>
public enum Pseudo : byte
{
    None = 0, Binary = 8, Pid = 9, NsPid = 10, CapEffective = 11, CapPermitted = 12, CapInheritable = 13,
    NsChanged = 14, CapChanged = 15, Return = 16, PidTree = 17, NsPidTree = 18, NsBase = 20,
}

/// <summary>String match classes (enum pal_pol_class).</summary>
public enum StringClass : byte { Equal = 1, Prefix = 2, Postfix = 3 }

/// <summary>Integer filter operators (enum pal_pol_op).</summary>
public enum FilterOp : byte { Equal = 1, GreaterThan = 2, LessThan = 3, Mask = 4, Range = 5, Addr4 = 6, Addr6 = 7, URange = 8 }

/// <summary>Fields of a socket value (enum pal_pol_field).</summary>
public enum SockField : byte { Value = 0, Family = 1, Protocol = 2, SPort = 3, DPort = 4, SAddr = 5, DAddr = 6, Type = 7, State = 8 }

/// <summary>Where in the kernel a point runs.</summary>
public enum PointKind
{
    SyscallExit, SyscallEnter, Exec, Connect, Uprobe, Kprobe,
    /// <summary>A kernel tracepoint (raw_tp), named by <see cref="HookTarget.Place"/>.</summary>
    Tracepoint,
    /// <summary>A cgroup skb hook: <see cref="HookTarget.Place"/> is cgroup_skb/ingress or cgroup_skb/egress.</summary>
    CgroupSkb,
}

/// <summary>Point flags (PAL_PT_*).</summary>
[Flags]
public enum PointFlags : byte { None = 0, Gate = 1, ReturnOk = 2, TcpOnly = 4, GateEqual = 8, SockOnly = 16 }

/// <summary>Action flags (PAL_A_*).</summary>
[Flags]
public enum ActionFlags : ushort { None = 0, Post = 1, Sigkill = 2, Signal = 4, Override = 8, UserSpace = 16, TrackSock = 32, UntrackSock = 64 }

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
