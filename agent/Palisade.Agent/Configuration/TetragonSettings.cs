namespace Palisade.Agent.Configuration;

/// <summary>
/// Tetragon agent keys (pkg/option/flags.go) that have no meaning here. An existing Tetragon
/// ConfigMap carries them, so each is a warning that names it and says why, never an error;
/// only a key neither agent knows stops the start. Tetragon's keys that do apply are settings
/// or aliases of settings (<see cref="AgentSettings"/>).
/// </summary>
public static class TetragonSettings
{
    /// <summary>Key -> why it does nothing here (and what to use instead, when something does).</summary>
    public static readonly IReadOnlyDictionary<string, string> NotApplicable = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["bpf-lib"] = "the BPF objects are built into the agent",
        ["btf"] = "the kernel's own BTF (/sys/kernel/btf/vmlinux) is always used",
        ["kernel"] = "the kernel's features are probed at start (palisade probe)",
        ["verbose"] = "verifier logs come with log-level debug",
        ["data-cache-size"] = "there is no separate data-event cache",
        ["force-small-progs"] = "one program set serves every supported kernel",
        ["force-large-progs"] = "one program set serves every supported kernel",
        ["k8s-controlplane-retry"] = "the Kubernetes client retries with backoff without limit",
        ["gops-address"] = "gops is a Go tool",
        ["cpuprofile"] = "use dotnet-trace or perf",
        ["memprofile"] = "use dotnet-gcdump",
        ["pprof-address"] = "pprof is a Go tool; use dotnet-counters",
        ["enable-export-aggregation"] = "events are exported one by one (flows are aggregated in the kernel, see flow-report-interval)",
        ["export-aggregation-window-size"] = "events are exported one by one",
        ["export-aggregation-buffer-size"] = "events are exported one by one; see event-queue-size",
        ["netns-dir"] = "network namespaces are read from the processes themselves",
        ["disable-kprobe-multi"] = "hooks are chosen by the start-up probe",
        ["disable-uprobe-multi"] = "hooks are chosen by the start-up probe",
        ["use-perf-ring-buffer"] = "the BPF ring buffer is always used",
        ["rb-size-total"] = "rb-size is the size of the one ring buffer",
        ["rb-queue-size"] = "see event-queue-size",
        ["release-pinned-bpf"] = "pins of an earlier run are removed at start unless keep-sensors-on-exit is true",
        ["enable-policy-filter"] = "pod and namespace scoping of policies is always on with Kubernetes",
        ["enable-policy-filter-cgroup-map"] = "pod and namespace scoping of policies is always on with Kubernetes",
        ["enable-policy-filter-debug"] = "use log-level debug",
        ["enable-pid-set-filter"] = "not supported",
        ["enable-msg-handling-latency"] = "not supported",
        ["enable-pod-info"] = "the PodInfo resource is not supported",
        ["enable-tracing-policy-crd"] = "TracingPolicy objects are watched whenever kubernetes is on",
        ["expose-stack-addresses"] = "stack traces are not exported",
        ["generate-docs"] = "see docs/configuration.md",
        ["cgroup-rate"] = "not supported; see export-rate-limit",
        ["health-server-interval"] = "health is computed on each request",
        ["enable-cri"] = "container ids come from cgroups and pods from the Kubernetes API",
        ["cri-endpoint"] = "container ids come from cgroups and pods from the Kubernetes API",
        ["enable-cgidmap"] = "pods are resolved by cgroup id always",
        ["enable-cgidmap-debug"] = "use log-level debug",
        ["enable-cgtrackerid"] = "pods are resolved by cgroup id always",
        ["event-cache-retries"] = "see kubernetes-pod-wait",
        ["event-cache-retry-delay"] = "see kubernetes-pod-wait",
        ["enable-compatibility-syscall64-size-type"] = "syscall64 arguments are written as Tetragon 1.4 does",
        ["execve-map-entries"] = "see process-cache-size",
        ["execve-map-size"] = "see process-cache-size",
    };

    /// <summary>The warning for a Tetragon key that does nothing here, or null when <paramref name="key"/> is not one.</summary>
    public static string? Warning(string key, string source) =>
        NotApplicable.TryGetValue(key, out var why)
            ? $"{key} (from {source}) is a Tetragon setting with no effect on Palisade: {why}. It is ignored."
            : null;
}
