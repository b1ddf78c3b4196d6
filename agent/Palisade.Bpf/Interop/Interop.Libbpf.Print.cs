using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    internal static unsafe partial class Libbpf
    {
        internal const int LibbpfWarn = 0;
        internal const int LibbpfInfo = 1;
        internal const int LibbpfDebug = 2;

        /// <summary>libbpf_set_print: fn(level, format, va_list). On x86-64 a va_list argument is a pointer.</summary>
        [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_set_print")]
        internal static partial nint SetPrint(delegate* unmanaged<int, byte*, nint, int> fn);
    }

    internal static unsafe partial class Libc
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "vsnprintf")]
        internal static partial int Vsnprintf(byte* buffer, nuint size, byte* format, nint args);
    }
}
