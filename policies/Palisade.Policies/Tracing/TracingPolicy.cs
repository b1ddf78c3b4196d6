namespace Palisade.Policies.Tracing;

/// <summary>A TracingPolicy or TracingPolicyNamespaced (cilium.io/v1alpha1), as Tetragon defines it.</summary>
public sealed record TracingPolicy(string Kind, string Name, string? Namespace, IReadOnlyDictionary<string, string> Labels, TracingPolicySpec Spec)
{
    public const string NamespacedKind = "TracingPolicyNamespaced";

    public bool IsNamespaced => Kind == NamespacedKind;

    /// <summary>True when the policy applies to some pods only (namespaced, podSelector or containerSelector).</summary>
    public bool IsPodScoped => IsNamespaced || Spec.PodSelector is not null || Spec.ContainerSelector is not null;

    /// <summary>The engine's key: namespaced policies of one name in two namespaces are two policies.</summary>
    public string Key => KeyOf(Kind, Name, Namespace);

    /// <summary>The key of a policy of this kind, name and namespace (also for one that did not parse).</summary>
    public static string KeyOf(string kind, string name, string? ns) =>
        kind == NamespacedKind && !string.IsNullOrEmpty(ns) ? $"{ns}/{name}" : name;
}

/// <summary>spec: the hooks and what to do on them.</summary>
public sealed record TracingPolicySpec(
    IReadOnlyList<KprobeSpec> Kprobes,
    IReadOnlyList<KprobeSpec> Fentries,
    IReadOnlyList<TracepointSpec> Tracepoints,
    IReadOnlyList<UprobeSpec> Uprobes,
    IReadOnlyList<UsdtSpec> Usdts,
    IReadOnlyList<LsmHookSpec> LsmHooks,
    IReadOnlyList<ListSpec> Lists,
    IReadOnlyList<OptionSpec> Options,
    IReadOnlyList<EnforcerSpec> Enforcers,
    LabelSelector? PodSelector,
    LabelSelector? ContainerSelector,
    LabelSelector? HostSelector,
    LabelSelector? NodeSelector,
    bool Loader,
    IReadOnlyList<string> Tags)
{
    /// <summary>policy-mode option: "enforce" (default) or "monitor".</summary>
    public string Mode => Options.FirstOrDefault(o => o.Name == "policy-mode")?.Value ?? "enforce";
}

/// <summary>A kprobe (or fentry) on kernel function <see cref="Call"/>.</summary>
public sealed record KprobeSpec(
    string Call, bool Syscall, bool Return, string? Message, IReadOnlyList<PolicyArg> Args, PolicyArg? ReturnArg,
    string? ReturnArgAction, IReadOnlyList<Selector> Selectors, IReadOnlyList<string> Tags, bool CallNotFound, IReadOnlyList<PolicyArg> Data);

/// <summary>A tracepoint subsystem/event (raw: true for a raw tracepoint).</summary>
public sealed record TracepointSpec(string Subsystem, string Event, bool Raw, string? Message, IReadOnlyList<PolicyArg> Args, IReadOnlyList<Selector> Selectors, IReadOnlyList<string> Tags);

/// <summary>A uprobe on symbols or offsets of the binary at <see cref="Path"/>.</summary>
public sealed record UprobeSpec(string Path, IReadOnlyList<string> Symbols, IReadOnlyList<string> Offsets, bool Return, string? Message,
    IReadOnlyList<PolicyArg> Args, PolicyArg? ReturnArg, IReadOnlyList<Selector> Selectors, IReadOnlyList<string> Tags);

/// <summary>A USDT probe.</summary>
public sealed record UsdtSpec(string Path, string Provider, string Name, string? Message, IReadOnlyList<PolicyArg> Args, IReadOnlyList<Selector> Selectors, IReadOnlyList<string> Tags);

/// <summary>A BPF LSM hook.</summary>
public sealed record LsmHookSpec(string Hook, string? Message, IReadOnlyList<PolicyArg> Args, IReadOnlyList<Selector> Selectors, IReadOnlyList<string> Tags);

/// <summary>An argument to capture: which, as what type.</summary>
public sealed record PolicyArg(uint Index, string Type, string? Label, uint? SizeArgIndex, bool ReturnCopy, bool MaxData, string? Resolve, string? Source, string? BtfType);

/// <summary>One selector: its conditions are ANDed; a hook's selectors are ORed, first match wins.</summary>
public sealed record Selector(
    IReadOnlyList<PidSelector> MatchPids,
    IReadOnlyList<ArgSelector> MatchArgs,
    IReadOnlyList<ArgSelector> MatchData,
    IReadOnlyList<ArgSelector> MatchReturnArgs,
    IReadOnlyList<BinarySelector> MatchBinaries,
    IReadOnlyList<BinarySelector> MatchParentBinaries,
    IReadOnlyList<NamespaceSelector> MatchNamespaces,
    IReadOnlyList<NamespaceChangesSelector> MatchNamespaceChanges,
    IReadOnlyList<CapabilitiesSelector> MatchCapabilities,
    IReadOnlyList<CapabilitiesSelector> MatchCapabilityChanges,
    IReadOnlyList<ActionSelector> MatchActions,
    IReadOnlyList<ActionSelector> MatchReturnActions);

public sealed record PidSelector(string Operator, IReadOnlyList<uint> Values, bool FollowForks, bool IsNamespacePid);

/// <summary>A condition on an argument (or return value): operator and values, operator in its canonical spelling.</summary>
public sealed record ArgSelector(uint Index, IReadOnlyList<uint> Args, string Operator, IReadOnlyList<string> Values);

public sealed record BinarySelector(string Operator, IReadOnlyList<string> Values, bool FollowChildren);

public sealed record NamespaceSelector(string Namespace, string Operator, IReadOnlyList<string> Values);

public sealed record NamespaceChangesSelector(string Operator, IReadOnlyList<string> Values);

public sealed record CapabilitiesSelector(string Type, string Operator, bool IsNamespaceCapability, IReadOnlyList<string> Values);

/// <summary>What to do on a match; <see cref="Action"/> in Tetragon's spelling (Post, Sigkill, ...).</summary>
public sealed record ActionSelector(string Action, uint? ArgSig, int? ArgError, uint? ArgFd, uint? ArgName, string? ArgUrl, string? ArgFqdn, uint? ArgSock,
    uint? ArgIndex, uint? ArgValue, string? RateLimit, string? RateLimitScope, bool KernelStackTrace, bool UserStackTrace, bool ImaHash);

public sealed record ListSpec(string Name, string? Type, IReadOnlyList<string> Values, string? Pattern);

public sealed record OptionSpec(string Name, string Value);

public sealed record EnforcerSpec(IReadOnlyList<string> Calls);
