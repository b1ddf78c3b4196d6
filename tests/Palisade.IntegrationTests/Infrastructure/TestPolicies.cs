namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>TracingPolicies several tests use.</summary>
internal static class TestPolicies
{
    /// <summary>Kills any program executed from under <paramref name="prefix"/> (give it with its trailing '/') before it runs.</summary>
    public static string ExecPrefixKill(string name, string prefix) => $"""
        apiVersion: cilium.io/v1alpha1
        kind: TracingPolicy
        metadata:
          name: {name}
        spec:
          kprobes:
          - call: "security_bprm_check"
            syscall: false
            args:
            - index: 0
              type: "linux_binprm"
            selectors:
            - matchArgs:
              - index: 0
                operator: "Prefix"
                values:
                - "{prefix}"
              matchActions:
              - action: Sigkill
        """;

    /// <summary>
    /// Kills whoever gets an fd for <paramref name="path"/> (fd_install, resolved path Equal).
    /// <paramref name="extraSelector"/> adds conditions to the selector (indented as a matchArgs
    /// sibling); <paramref name="label"/> ("key: value") and <paramref name="mode"/> (policy-mode)
    /// are added when given.
    /// </summary>
    public static string FdInstallKill(string name, string path, string extraSelector = "", string actions = "- action: Sigkill",
        string? label = null, string? mode = null, string? ns = null, string? podLabel = null)
    {
        var labels = label is null ? "" : $"\n  labels:\n    {label}";
        var options = mode is null ? "" : $"\n  options:\n  - name: policy-mode\n    value: {mode}";
        // ns: a TracingPolicyNamespaced in that namespace; podLabel ("key: value"): a podSelector.
        var kind = ns is null ? "TracingPolicy" : "TracingPolicyNamespaced";
        var namespaceLine = ns is null ? "" : $"\n  namespace: {ns}";
        var podSelector = podLabel is null ? "" : $"\n  podSelector:\n    matchLabels:\n      {podLabel}";
        return $"""
            apiVersion: cilium.io/v1alpha1
            kind: {kind}
            metadata:
              name: {name}{namespaceLine}{labels}
            spec:{options}{podSelector}
              kprobes:
              - call: "fd_install"
                syscall: false
                args:
                - index: 0
                  type: int
                - index: 1
                  type: "file"
                selectors:
                - matchArgs:
                  - index: 1
                    operator: "Equal"
                    values:
                    - "{path}"
            {extraSelector}
                  matchActions:
                  {actions}
            """;
    }
}
