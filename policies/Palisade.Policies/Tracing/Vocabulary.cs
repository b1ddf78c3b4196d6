namespace Palisade.Policies.Tracing;

/// <summary>The words a TracingPolicy may use, with Tetragon's aliases.</summary>
public static class Vocabulary
{
    public const string ApiVersion = "cilium.io/v1alpha1";
    public static readonly string[] Kinds = ["TracingPolicy", "TracingPolicyNamespaced"];

    /// <summary>Tetragon allows up to 5 selectors per hook.</summary>
    public const int MaxSelectors = 5;

    /// <summary>Tetragon allows up to 5 matchArgs per selector, one per argument.</summary>
    public const int MaxMatchArgs = 5;

    /// <summary>Argument operators: alias -> canonical name (Tetragon's selectors parser accepts all of these).</summary>
    public static readonly IReadOnlyDictionary<string, string> ArgOperators = Aliases(
        ("GreaterThan", ["gt", "GT", "GreaterThan"]), ("LessThan", ["lt", "LT", "LessThan"]),
        ("Equal", ["eq", "Equal"]), ("NotEqual", ["neq", "NotEqual"]), ("In", ["In"]), ("NotIn", ["NotIn"]),
        ("Prefix", ["prefix", "Prefix"]), ("NotPrefix", ["notprefix", "NotPrefix"]),
        ("Postfix", ["postfix", "Postfix"]), ("NotPostfix", ["notpostfix", "NotPostfix"]),
        ("InMap", ["InMap"]), ("NotInMap", ["NotInMap"]), ("Mask", ["mask", "Mask"]),
        ("SAddr", ["saddr", "Saddr", "SAddr"]), ("DAddr", ["daddr", "Daddr", "DAddr"]),
        ("NotSAddr", ["notsaddr", "NotSaddr", "NotSAddr"]), ("NotDAddr", ["notdaddr", "NotDaddr", "NotDAddr"]),
        ("SPort", ["sport", "Sport", "SPort"]), ("DPort", ["dport", "Dport", "DPort"]),
        ("NotSPort", ["notsport", "NotSport", "NotSPort"]), ("NotDPort", ["notdport", "NotDport", "NotDPort"]),
        ("SPortPriv", ["sportpriv", "SportPriv", "SPortPriv"]), ("DPortPriv", ["dportpriv", "DportPriv", "DPortPriv"]),
        ("NotSPortPriv", ["notsportpriv", "NotSportPriv", "NotSPortPriv"]), ("NotDPortPriv", ["notdportpriv", "NotDportPriv", "NotDPortPriv"]),
        ("Protocol", ["protocol", "Protocol"]), ("Family", ["family", "Family"]), ("State", ["state", "State"]),
        ("CapabilitiesGained", ["CapabilitiesGained"]), ("InRange", ["InRange"]), ("NotInRange", ["NotInRange"]),
        ("SubString", ["SubString"]), ("SubStringIgnCase", ["SubStringIgnCase"]), ("CelExpr", ["CelExpr"]),
        ("FileType", ["FileType"]), ("NotFileType", ["NotFileType"]));

    public static readonly string[] BinaryOperators = ["In", "NotIn", "Prefix", "NotPrefix", "Postfix", "NotPostfix"];
    public static readonly string[] SetOperators = ["In", "NotIn"];

    /// <summary>Actions as Tetragon spells them in docs; matched case-insensitively, as Tetragon does.</summary>
    public static readonly string[] Actions =
        ["Post", "NoPost", "Sigkill", "Signal", "Override", "FollowFD", "UnfollowFD", "CopyFD", "GetUrl", "DnsLookup",
         "TrackSock", "UntrackSock", "NotifyEnforcer", "CleanupEnforcerNotification", "Set"];

    public static readonly string[] ArgTypes =
        ["auto", "string", "int", "uint64", "ulong", "uint32", "sint64", "int64", "long", "sint32", "int32", "skb", "sock", "size_t",
         "char_buf", "char_iovec", "filename", "file", "path", "fd", "cred", "const_buf", "nop", "bpf_attr", "perf_event", "bpf_map",
         "user_namespace", "capability", "kiocb", "iov_iter", "load_info", "module", "syscall64", "sint16", "int16", "uint16",
         "sint8", "int8", "uint8", "kernel_cap_t", "cap_inheritable", "cap_permitted", "cap_effective", "linux_binprm",
         "data_loc", "net_device", "sockaddr", "sockaddr_un", "socket", "dentry", "bpf_prog", "uint", "pointer"];

    public static readonly string[] Namespaces = ["Uts", "Ipc", "Mnt", "Pid", "PidForChildren", "Net", "Time", "TimeForChildren", "Cgroup", "User"];

    public static readonly string[] CapabilitySets = ["Effective", "Inheritable", "Permitted"];

    public static readonly string[] ListTypes = ["syscalls", "generated_syscalls", "generated_ftrace"];

    public static readonly string[] Options = ["policy-mode", "disable-kprobe-multi", "disable-uprobe-multi", "override-method"];

    public static readonly string[] PolicyModes = ["enforce", "monitor"];

    public static readonly string[] LabelOperators = ["In", "NotIn", "Exists", "DoesNotExist"];

    private static Dictionary<string, string> Aliases(params (string Canonical, string[] Names)[] table)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (canonical, names) in table)
        {
            foreach (var n in names)
            {
                map[n] = canonical;
            }
        }
        return map;
    }
}
