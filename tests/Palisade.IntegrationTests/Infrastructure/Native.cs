using System.Runtime.InteropServices;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>Syscalls the tests make directly so that a known syscall comes from a known thread.</summary>
internal static unsafe partial class Native
{
    public const int SIGTERM = 15;

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "gettid")]
    public static partial int GetTid();

    [LibraryImport("libc", EntryPoint = "getpid")]
    public static partial int GetPid();

    [LibraryImport("libc", EntryPoint = "getppid")]
    public static partial int GetPpid();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);
}
