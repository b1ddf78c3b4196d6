using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    internal static unsafe partial class Libbpf
    {
        /// <summary>struct bpf_object_open_opts (libbpf 1.x, 80 bytes on 64-bit).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BpfObjectOpenOpts
        {
            public nuint Sz;
            public byte* ObjectName;
            public byte RelaxedMaps;
            public byte* PinRootPath;
            public uint Reserved; // stub of the removed attach_prog_fd
            public byte* Kconfig;
            public byte* BtfCustomPath;
            public byte* KernelLogBuf;
            public nuint KernelLogSize;
            public uint KernelLogLevel;
        }

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__open_mem", SetLastError = true)]
        internal static partial SafeBpfObjectHandle ObjectOpenMem(void* objBuf, nuint objBufSz, BpfObjectOpenOpts* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__load", SetLastError = true)]
        internal static partial int ObjectLoad(SafeBpfObjectHandle obj);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__close")]
        internal static partial void ObjectClose(nint obj);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__next_program")]
        internal static partial nint ObjectNextProgram(SafeBpfObjectHandle obj, nint prog);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__next_map")]
        internal static partial nint ObjectNextMap(SafeBpfObjectHandle obj, nint map);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__btf")]
        internal static partial nint ObjectBtf(SafeBpfObjectHandle obj);
    }
}
