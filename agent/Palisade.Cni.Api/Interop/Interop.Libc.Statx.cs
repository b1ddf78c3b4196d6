using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Palisade.Cni.Api;

internal static partial class Interop
{
    internal static partial class Libc
    {
        private const int AtFdCwd = -100;
        private const int AtSymlinkNoFollow = 0x100;
        private const uint StatxType = 0x1;
        private const int StatxSize = 256;
        private const int StatxModeOffset = 28; // struct statx is the same on every architecture
        private const ushort FileTypeMask = 0xf000; // S_IFMT
        private const ushort SocketType = 0xc000;   // S_IFSOCK

        [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte buffer);

        /// <summary>Whether <paramref name="path"/> itself (not a symlink's target) is a unix socket; null when it cannot be examined.</summary>
        internal static bool? IsSocket(string path)
        {
            Span<byte> buffer = stackalloc byte[StatxSize];
            if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, ref MemoryMarshal.GetReference(buffer)) != 0)
            {
                return null;
            }
            return (BinaryPrimitives.ReadUInt16LittleEndian(buffer[StatxModeOffset..]) & FileTypeMask) == SocketType;
        }
    }
}
