using System.Runtime.InteropServices;

namespace Palisade.Runtime.Processes;

/// <summary>Turns the kernel's boot-time nanoseconds (bpf_ktime_get_boot_ns, /proc start times) into wall-clock time.</summary>
public sealed partial class BootClock
{
    private const int ClockBoottime = 7;

    /// <summary>Wall-clock time at boot, measured once: the offset between CLOCK_REALTIME and CLOCK_BOOTTIME.</summary>
    public DateTimeOffset BootTime { get; }

    public BootClock(TimeProvider time)
    {
        BootTime = time.GetUtcNow() - TimeSpan.FromTicks((long)(NowBootNs() / 100));
    }

    /// <summary>For tests: a clock with a known boot time.</summary>
    public BootClock(DateTimeOffset bootTime) => BootTime = bootTime;

    public DateTimeOffset ToWallClock(ulong bootNs) => BootTime + TimeSpan.FromTicks((long)(bootNs / 100));

    public static unsafe ulong NowBootNs()
    {
        Timespec ts;
        return ClockGettime(ClockBoottime, &ts) == 0 ? (ulong)ts.Seconds * 1_000_000_000UL + (ulong)ts.Nanoseconds : 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static unsafe partial int ClockGettime(int clock, Timespec* ts);
}
