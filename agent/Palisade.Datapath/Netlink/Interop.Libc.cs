using System.Runtime.InteropServices;

namespace Palisade.Datapath.Netlink;

internal static partial class Interop
{
    /// <summary>The libc calls the netlink socket and the state files need.</summary>
    internal static unsafe partial class Libc
    {
        private const string Library = "libc";

        internal const int AF_NETLINK = 16;
        internal const int SOCK_RAW = 3;
        internal const int SOCK_CLOEXEC = 0x80000;
        internal const int NETLINK_ROUTE = 0;
        internal const int SOL_NETLINK = 270;
        internal const int NETLINK_CAP_ACK = 10;
        internal const int NETLINK_EXT_ACK = 11;
        internal const int SOL_SOCKET = 1;
        internal const int SO_RCVBUF = 8;
        internal const int O_RDONLY = 0;
        internal const int O_CLOEXEC = 0x80000;
        internal const int O_DIRECTORY = 0x10000;
        internal const int EINTR = 4;

        [LibraryImport(Library, EntryPoint = "socket", SetLastError = true)]
        internal static partial int Socket(int domain, int type, int protocol);

        [LibraryImport(Library, EntryPoint = "setsockopt", SetLastError = true)]
        internal static partial int SetSockOpt(int fd, int level, int name, int* value, uint length);

        [LibraryImport(Library, EntryPoint = "send", SetLastError = true)]
        internal static partial nint Send(int fd, byte* buffer, nuint length, int flags);

        [LibraryImport(Library, EntryPoint = "recv", SetLastError = true)]
        internal static partial nint Recv(int fd, byte* buffer, nuint length, int flags);

        [LibraryImport(Library, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Open(string path, int flags);

        [LibraryImport(Library, EntryPoint = "fsync", SetLastError = true)]
        internal static partial int Fsync(int fd);

        [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
        internal static partial int Close(int fd);
    }
}

/// <summary>Owns a file descriptor the datapath opened (a netlink socket, a netns, a directory).</summary>
internal sealed class SafeDescriptor : SafeHandle
{
    public SafeDescriptor(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle.ToInt64() < 0;

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Interop.Libc.Close((int)handle) == 0;
}
