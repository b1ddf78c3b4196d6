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
}
