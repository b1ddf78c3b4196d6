using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Palisade.Bpf;
using Palisade.Bpf.Probe;

namespace Palisade.Agent;

/// <summary>
/// First start-up step: mounts what eBPF needs, raises RLIMIT_MEMLOCK, routes libbpf's
/// messages into our logs and probes the kernel, so every later step (and the user) knows
/// which hooks exist here.
/// </summary>
internal sealed partial class KernelSetupService(ILogger<KernelSetupService> logger) : IHostedService
{
    private volatile ProbeReport? _probe;

    /// <summary>The start-up kernel probe; null until it has run.</summary>
    public ProbeReport? Probe => _probe;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        LibbpfLog.SetSink((level, message) =>
        {
            if (level == LibbpfLogLevel.Warning)
            {
                LogLibbpfWarning(logger, message);
            }
            else
            {
                LogLibbpfInfo(logger, message);
            }
        });
        if (!KernelEnvironment.IsRoot)
        {
            LogNotRoot(logger);
        }
        foreach (var mount in KernelEnvironment.EnsureMounts())
        {
            if (mount.Error is not null)
            {
                LogMountFailed(logger, mount.FsType, mount.Path, mount.Error);
            }
            else if (mount.MountedNow)
            {
                LogMounted(logger, mount.FsType, mount.Path);
            }
        }
        var memlock = KernelEnvironment.RaiseMemlockLimit();
        if (!memlock.Unlimited)
        {
            if (KernelEnvironment.BpfMemoryIsMemcgAccounted)
            {
                LogMemlockIrrelevant(logger, memlock.LimitBytes / 1024, memlock.Error ?? "");
            }
            else
            {
                LogMemlockFailed(logger, memlock.LimitBytes / 1024, memlock.Error ?? "");
            }
        }

        var report = KernelProbe.Run();
        _probe = report;
        LogProbeSummary(logger, report.Features.Count(f => f.Available), report.Features.Count, report.KernelRelease, report.Lockdown, report.DurationMs,
            Environment.NewLine + report.ToTable());
        foreach (var feature in report.Features)
        {
            LogFeature(logger, feature.Name, feature.Available, feature.Detail);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        LibbpfLog.SetSink(null);
        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "libbpf: {Message}")]
    private static partial void LogLibbpfWarning(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Debug, Message = "libbpf: {Message}")]
    private static partial void LogLibbpfInfo(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Not running as root: loading BPF programs will fail. Run the agent as root or with CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_ADMIN.")]
    private static partial void LogNotRoot(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not mount {FsType} at {Path}: {Error}")]
    private static partial void LogMountFailed(ILogger logger, string fsType, string path, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Mounted {FsType} at {Path}")]
    private static partial void LogMounted(ILogger logger, string fsType, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "RLIMIT_MEMLOCK stays at {LimitKiB} KiB ({Error}); this kernel charges BPF maps to it, so large maps may fail to load. Give the agent CAP_SYS_RESOURCE or raise the limit.")]
    private static partial void LogMemlockFailed(ILogger logger, ulong limitKiB, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "RLIMIT_MEMLOCK stays at {LimitKiB} KiB ({Error}); harmless, this kernel charges BPF memory to the memory cgroup")]
    private static partial void LogMemlockIrrelevant(ILogger logger, ulong limitKiB, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Kernel probe: {Available} of {Total} features available on kernel {Kernel} (lockdown {Lockdown}) in {DurationMs} ms{Table}")]
    private static partial void LogProbeSummary(ILogger logger, int available, int total, string kernel, string lockdown, long durationMs, string table);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Kernel feature {Feature}: available={Available} {Detail}")]
    private static partial void LogFeature(ILogger logger, string feature, bool available, string detail);
}
