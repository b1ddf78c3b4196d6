using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    internal static unsafe partial class Libbpf
    {
        /// <summary>struct bpf_test_run_opts.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BpfTestRunOpts
        {
            public nuint Sz;
            public void* DataIn;
            public void* DataOut;
            public uint DataSizeIn;
            public uint DataSizeOut;
            public void* CtxIn;
            public void* CtxOut;
            public uint CtxSizeIn;
            public uint CtxSizeOut;
            public uint Retval;
            public int Repeat;
            public uint Duration;
            public uint Flags;
            public uint Cpu;
            public uint BatchSize;
        }

        /// <summary>Loads a tiny program of the type calling the helper; 1 = available, 0 = not, negative = error.</summary>
        [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_probe_bpf_helper")]
        internal static partial int ProbeHelper(int progType, int helperId, void* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_probe_bpf_map_type")]
        internal static partial int ProbeMapType(int mapType, void* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_prog_test_run_opts", SetLastError = true)]
        internal static partial int ProgTestRunOpts(int progFd, BpfTestRunOpts* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_prog_get_next_id", SetLastError = true)]
        internal static partial int ProgGetNextId(uint startId, uint* nextId);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_get_next_id", SetLastError = true)]
        internal static partial int MapGetNextId(uint startId, uint* nextId);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_link_get_next_id", SetLastError = true)]
        internal static partial int LinkGetNextId(uint startId, uint* nextId);
    }
}
