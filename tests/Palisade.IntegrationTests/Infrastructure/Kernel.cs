using Palisade.Bpf;
using Palisade.Bpf.Probe;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// The gate for privileged tests: skip only when not root or when the kernel probe says a
/// feature is missing (with its reason). When the probe says it is there, the test runs and
/// must pass.
/// </summary>
internal static class Kernel
{
    private static readonly Lazy<ProbeReport> s_probe = new(() =>
    {
        KernelEnvironment.EnsureMounts();
        KernelEnvironment.RaiseMemlockLimit();
        return KernelProbe.Run();
    });

    public static ProbeReport Probe => s_probe.Value;

    public static void RequireRoot()
    {
        if (!KernelEnvironment.IsRoot)
        {
            Assert.Skip("needs root to load BPF programs (run the test command as root)");
        }
    }

    public static void Require(params string[] features)
    {
        RequireRoot();
        foreach (var feature in features)
        {
            if (!Probe.IsAvailable(feature))
            {
                Assert.Skip($"{feature} is unavailable on this kernel: {Probe.Find(feature)?.Detail ?? "not probed"}");
            }
        }
    }

    public static System.Reflection.Assembly TestObjects => typeof(Kernel).Assembly;
}
