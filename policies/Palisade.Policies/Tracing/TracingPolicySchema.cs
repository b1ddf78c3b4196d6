using Palisade.Policies.Schema;

namespace Palisade.Policies.Tracing;

/// <summary>The objects of a TracingPolicy, field by field (see <see cref="SchemaType"/>).</summary>
public static class TracingPolicySchema
{
    private static readonly IReadOnlyList<string> ArgOperatorNames = [.. Vocabulary.ArgOperators.Keys];

    private static StringType Str(string d, IReadOnlyList<string>? e = null) => new(d, e);

    private static IntegerType UInt(string d) => new(d, "int32", 0);

    private static BooleanType Bool(string d) => new(d);

    private static ArrayType Strings(string d) => new(d, new StringType(""));

    private static ArrayType ListOf(string d, SchemaType items, int? max = null) => new(d, items, max);

    public static readonly ObjectType LabelRequirement = new("A label requirement: key, operator and values.",
    [
        new("key", Str("The label key."), Required: true),
        new("operator", Str("How the key relates to the values.", Vocabulary.LabelOperators), Required: true),
        new("values", Strings("Values for In and NotIn; empty for Exists and DoesNotExist.")),
    ]);

    public static readonly ObjectType LabelSelector = new("A Kubernetes label selector; requirements are ANDed.",
    [
        new("matchLabels", new StringMapType("Labels that must all be present with these values.")),
        new("matchExpressions", ListOf("Label requirements.", LabelRequirement)),
    ]);

    public static readonly ObjectType Arg = new("An argument of the hooked call to read and report.",
    [
        new("index", UInt("Position of the argument (0 = first)."), Required: true),
        new("type", Str("How to read the argument.", Vocabulary.ArgTypes), Required: true),
        new("label", Str("Name shown for the argument in events.")),
        new("sizeArgIndex", UInt("For char_buf and char_iovec: position + 1 of the argument holding the size.")),
        new("returnCopy", Bool("For char_buf and char_iovec: read the buffer when the call returns.")),
        new("maxData", Bool("Read up to the largest supported size instead of 4096 bytes.")),
        new("resolve", Str("A path of struct fields to follow from the argument (BTF), e.g. mm.owner.pid.")),
        new("source", Str("Where the value comes from (for uprobes: a register or the stack).")),
        new("btfType", Str("The BTF type of the argument, when it cannot be inferred.")),
        new("btfTypeModule", Str("The kernel module defining btfType.")),
    ]);

    public static readonly ObjectType ArgSelector = new("A condition on one argument.",
    [
        new("index", UInt("Position of the argument to test."), Required: true),
        new("args", ListOf("Several argument positions (for operators comparing arguments).", UInt(""))),
        new("operator", Str("How to compare; Tetragon's aliases are accepted.", ArgOperatorNames), Required: true),
        new("values", Strings("Values to compare with (numbers as strings, paths, ports, CIDRs, list:NAME references).")),
    ]);

    public static readonly ObjectType PidSelector = new("A condition on the process id.",
    [
        new("operator", Str("In or NotIn.", Vocabulary.SetOperators), Required: true),
        new("values", ListOf("Process ids.", UInt("")), Required: true),
        new("followForks", Bool("Also match the children of matching processes.")),
        new("isNamespacePID", Bool("The values are ids in the process's pid namespace.")),
    ]);

    public static readonly ObjectType BinarySelector = new("A condition on the executable's path.",
    [
        new("operator", Str("How to compare the path.", Vocabulary.BinaryOperators), Required: true),
        new("values", Strings("Paths or path prefixes/suffixes."), Required: true),
        new("followChildren", Bool("Also match processes the matching binaries start.")),
    ]);

    public static readonly ObjectType NamespaceSelector = new("A condition on one of the process's namespaces.",
    [
        new("namespace", Str("The namespace kind.", Vocabulary.Namespaces), Required: true),
        new("operator", Str("In or NotIn.", Vocabulary.SetOperators), Required: true),
        new("values", Strings("Namespace inode numbers, or host_ns for the host's."), Required: true),
    ]);

    public static readonly ObjectType NamespaceChangesSelector = new("A condition on namespaces the call changes.",
    [
        new("operator", Str("In or NotIn.", Vocabulary.SetOperators), Required: true),
        new("values", Strings("Namespace kinds."), Required: true),
    ]);

    public static readonly ObjectType CapabilitiesSelector = new("A condition on the process's capabilities.",
    [
        new("type", Str("Which capability set.", Vocabulary.CapabilitySets)),
        new("operator", Str("In or NotIn.", Vocabulary.SetOperators), Required: true),
        new("isNamespaceCapability", Bool("Compare capabilities relative to the user namespace.")),
        new("values", Strings("Capability names, e.g. CAP_SYS_ADMIN."), Required: true),
    ]);

    public static readonly ObjectType Action = new("What to do when the selector matches.",
    [
        new("action", Str("The action (matched case-insensitively): " + string.Join(", ", Vocabulary.Actions) + "."), Required: true),
        new("argUrl", Str("URL for GetUrl.")),
        new("argFqdn", Str("Name for DnsLookup.")),
        new("argError", new IntegerType("Error to return for Override, e.g. -1.")),
        new("argSig", UInt("Signal number for Signal.")),
        new("argSock", UInt("Argument position of the socket for TrackSock and UntrackSock.")),
        new("argFd", UInt("Argument position of the fd for FollowFD and CopyFD.")),
        new("argName", UInt("Argument position of the name for FollowFD.")),
        new("argIndex", UInt("Argument position for Set.")),
        new("argValue", UInt("Value for Set.")),
        new("argRegs", new AnyType("Register assignments (not supported by this agent).")),
        new("argNewSymbol", new AnyType("Not supported by this agent.")),
        new("argNewAddr", new AnyType("Not supported by this agent.")),
        new("argNewOffset", new AnyType("Not supported by this agent.")),
        new("rateLimit", Str("Post at most once per interval for the same arguments, e.g. 30s, 1m, 1h.")),
        new("rateLimitScope", Str("What the rate limit is counted per.", ["thread", "process", "global"])),
        new("kernelStackTrace", Bool("Include the kernel stack trace.")),
        new("userStackTrace", Bool("Include the user stack trace.")),
        new("imaHash", Bool("Include the IMA hash of the file.")),
    ]);

    public static readonly ObjectType Selector = new("Conditions (ANDed) and actions; the selectors of a hook are ORed, the first match wins.",
    [
        new("matchPIDs", ListOf("Process id conditions.", PidSelector)),
        new("matchArgs", ListOf("Argument conditions.", ArgSelector)),
        new("matchData", ListOf("Conditions on data arguments.", ArgSelector)),
        new("matchActions", ListOf("Actions when the selector matches.", Action)),
        new("matchReturnArgs", ListOf("Conditions on the return value.", ArgSelector)),
        new("matchReturnActions", ListOf("Actions on return.", Action)),
        new("matchBinaries", ListOf("Executable conditions.", BinarySelector)),
        new("matchParentBinaries", ListOf("Parent executable conditions.", BinarySelector)),
        new("matchNamespaces", ListOf("Namespace conditions.", NamespaceSelector)),
        new("matchNamespaceChanges", ListOf("Namespace change conditions.", NamespaceChangesSelector)),
        new("matchCapabilities", ListOf("Capability conditions.", CapabilitiesSelector)),
        new("matchCapabilityChanges", ListOf("Capability change conditions.", CapabilitiesSelector)),
        new("matchWorkloads", new AnyType("Workload conditions (not supported by this agent).")),
        new("macros", new AnyType("Selector macros (not supported by this agent).")),
    ]);

    private static Field Selectors => new("selectors", ListOf($"Up to {Vocabulary.MaxSelectors} selectors, ORed.", Selector, Vocabulary.MaxSelectors));

    private static Field Args => new("args", ListOf("Arguments to read and report.", Arg));

    private static Field Message => new("message", Str("A message added to the events of this hook."));

    private static Field Tags => new("tags", Strings("Tags added to the events of this hook."));

    public static readonly ObjectType Kprobe = new("A kernel function (or, with syscall: true, a system call) to hook.",
    [
        new("call", Str("The function or system call, or list:NAME for every call of a list."), Required: true),
        new("syscall", Bool("call is a system call (sys_*).")),
        new("return", Bool("Also hook the return and report the return value (needs returnArg).")),
        Message,
        Args,
        new("data", ListOf("Further data to read.", Arg)),
        new("returnArg", Arg),
        new("returnArgAction", Str("Action on the return value: Post, TrackSock or UntrackSock.")),
        Selectors,
        Tags,
        new("callNotFound", Bool("Accept the policy even when the function does not exist on this kernel.")),
        new("ignore", new AnyType("What to ignore when loading (Tetragon's callNotFound).")),
    ]);

    public static readonly ObjectType Tracepoint = new("A kernel tracepoint to hook.",
    [
        new("subsystem", Str("Tracepoint subsystem, e.g. syscalls, sched."), Required: true),
        new("event", Str("Tracepoint event, e.g. sys_enter_openat."), Required: true),
        new("raw", Bool("Attach as a raw tracepoint (arguments are the kernel's, not the format file's).")),
        Message,
        Args,
        Selectors,
        Tags,
    ]);

    public static readonly ObjectType Uprobe = new("A user-space function to hook.",
    [
        new("path", Str("The binary or library."), Required: true),
        new("btfPath", Str("BTF of the binary.")),
        new("symbols", Strings("Function names.")),
        new("offsets", Strings("Offsets into the binary.")),
        new("addrs", Strings("Addresses in the binary.")),
        new("refCtrOffsets", new AnyType("Reference counter offsets (not supported by this agent).")),
        new("return", Bool("Hook the return.")),
        Message,
        Args,
        new("data", ListOf("Further data to read.", Arg)),
        new("returnArg", Arg),
        Selectors,
        Tags,
        new("binaryDigests", new AnyType("Digests the binary must have (not supported by this agent).")),
        new("ignore", new AnyType("What to ignore when loading.")),
    ]);

    public static readonly ObjectType Usdt = new("A user-space statically defined tracepoint.",
    [
        new("path", Str("The binary or library."), Required: true),
        new("btfPath", Str("BTF of the binary.")),
        new("provider", Str("USDT provider."), Required: true),
        new("name", Str("USDT name."), Required: true),
        Message,
        Args,
        Selectors,
        Tags,
    ]);

    public static readonly ObjectType LsmHook = new("A BPF-LSM hook.",
    [
        new("hook", Str("LSM hook name, e.g. file_open."), Required: true),
        Message,
        Args,
        Selectors,
        Tags,
    ]);

    public static readonly ObjectType List = new("A named list of calls or values, referenced as list:NAME.",
    [
        new("name", Str("The list's name."), Required: true),
        new("values", Strings("The entries.")),
        new("type", Str("How the entries are generated.", Vocabulary.ListTypes)),
        new("pattern", Str("A pattern for generated lists.")),
        new("validated", Bool("Set by the controller once validated.")),
    ]);

    public static readonly ObjectType Option = new("A policy option.",
    [
        new("name", Str("The option: " + string.Join(", ", Vocabulary.Options) + "."), Required: true),
        new("value", Str("Its value, e.g. enforce or monitor for policy-mode.")),
    ]);

    public static readonly ObjectType Enforcer = new("An enforcer (not supported by this agent).",
    [
        new("calls", Strings("Calls to enforce on.")),
    ]);

    private static Field Hooks(string name, string d, ObjectType item) => new(name, ListOf(d, item));

    public static readonly ObjectType Spec = new("What to hook, what to report and what to enforce.",
    [
        Hooks("kprobes", "Kernel functions and system calls.", Kprobe),
        Hooks("fentries", "Kernel functions hooked with fentry.", Kprobe),
        Hooks("tracepoints", "Kernel tracepoints.", Tracepoint),
        Hooks("uprobes", "User-space functions.", Uprobe),
        Hooks("usdts", "User-space statically defined tracepoints.", Usdt),
        Hooks("lsmhooks", "BPF-LSM hooks.", LsmHook),
        Hooks("lists", "Named lists.", List),
        Hooks("options", "Options, e.g. policy-mode.", Option),
        Hooks("enforcers", "Enforcers.", Enforcer),
        new("podSelector", LabelSelector with { Description = "Only pods with these labels (TracingPolicyNamespaced: of its namespace)." }),
        new("containerSelector", LabelSelector with { Description = "Only containers matching (label name: the container name)." }),
        new("hostSelector", LabelSelector with { Description = "Only hosts matching." }),
        new("nodeSelector", LabelSelector with { Description = "Only nodes with these labels." }),
        new("loader", Bool("Report shared library loads.")),
        Tags,
    ]);

    /// <summary>Top-level fields of a policy document.</summary>
    public static readonly string[] TopFields = ["apiVersion", "kind", "metadata", "spec"];

    /// <summary>metadata fields the parser reads or tolerates (the API server owns the rest).</summary>
    public static readonly string[] MetadataFields = ["name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"];

    /// <summary>How the policy runs on one node (status.nodes.NODE), written by that node's agent.</summary>
    public static readonly ObjectType NodeStatus = new("How the policy runs on one node.",
    [
        new("state", Str("enabled, partially_enabled, error or disabled.", ["enabled", "partially_enabled", "error", "disabled"])),
        new("mode", Str("enforce or monitor.", Vocabulary.PolicyModes)),
        new("message", Str("Why it is in error or partly enabled.")),
        new("hooks", ListOf("Per hook: how it runs on this node's kernel.", new ObjectType("One hook.",
        [
            new("hook", Str("The hook as the policy names it, e.g. kprobe fd_install.")),
            new("status", Str("native, emulated or unsupported.")),
            new("detail", Str("How it is emulated, or why it is unsupported.")),
        ]))),
        new("kernelMemoryBytes", new IntegerType("Kernel memory of the policy's map entries.", "int64", 0)),
        new("observedGeneration", new IntegerType("The policy generation this status describes.", "int64", 0)),
        new("lastUpdateTime", Str("When the agent last wrote this entry (RFC 3339).")),
    ]);
}
