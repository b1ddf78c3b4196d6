using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    /// <summary>The few libc calls the loader and the agent need.</summary>
    internal static unsafe partial class Libc
    {
        internal const int CLONE_NEWNET = 0x40000000;
        internal const int O_RDONLY = 0;
        internal const int O_DIRECTORY = 0x10000;
        internal const int O_CLOEXEC = 0x80000;
        internal const int RLIMIT_MEMLOCK = 8;
        internal const ulong RLIM_INFINITY = ulong.MaxValue;

        [StructLayout(LayoutKind.Sequential)]
        internal struct RLimit
        {
            public ulong Current;
            public ulong Max;
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Open(string path, int flags);

        internal const int PROT_READ = 1;
        internal const int MAP_SHARED = 1;

        [LibraryImport(Libraries.Libc, EntryPoint = "mmap", SetLastError = true)]
        internal static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

        [LibraryImport(Libraries.Libc, EntryPoint = "munmap", SetLastError = true)]
        internal static partial int Munmap(nint addr, nuint length);

        [LibraryImport(Libraries.Libc, EntryPoint = "close", SetLastError = true)]
        internal static partial int Close(int fd);

        [LibraryImport(Libraries.Libc, EntryPoint = "setns", SetLastError = true)]
        internal static partial int Setns(int fd, int nstype);

        [LibraryImport(Libraries.Libc, EntryPoint = "unshare", SetLastError = true)]
        internal static partial int Unshare(int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Mount(string source, string target, string fsType, ulong flags, nint data);

        [LibraryImport(Libraries.Libc, EntryPoint = "getrlimit", SetLastError = true)]
        internal static partial int GetRlimit(int resource, RLimit* rlim);

        [LibraryImport(Libraries.Libc, EntryPoint = "setrlimit", SetLastError = true)]
        internal static partial int SetRlimit(int resource, RLimit* rlim);

        [LibraryImport(Libraries.Libc, EntryPoint = "if_nametoindex", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial uint IfNameToIndex(string name);

        [LibraryImport(Libraries.Libc, EntryPoint = "gettid")]
        internal static partial int GetTid();

        [LibraryImport(Libraries.Libc, EntryPoint = "getppid")]
        internal static partial int GetPpid();

        [LibraryImport(Libraries.Libc, EntryPoint = "geteuid")]
        internal static partial uint GetEuid();

        [LibraryImport(Libraries.Libc, EntryPoint = "strerror")]
        internal static partial byte* StrError(int errnum);
    }
}
