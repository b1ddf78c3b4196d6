using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    internal static unsafe partial class Libbpf
    {
        internal const int BpfTcIngress = 1 << 0;
        internal const int BpfTcEgress = 1 << 1;

        /// <summary>struct bpf_tc_hook.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BpfTcHook
        {
            public nuint Sz;
            public int Ifindex;
            public int AttachPoint;
            public uint Parent;
        }

        /// <summary>struct bpf_tc_opts.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BpfTcOpts
        {
            public nuint Sz;
            public int ProgFd;
            public uint Flags;
            public uint ProgId;
            public uint Handle;
            public uint Priority;
        }

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_hook_create")]
        internal static partial int TcHookCreate(BpfTcHook* hook);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_hook_destroy")]
        internal static partial int TcHookDestroy(BpfTcHook* hook);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_attach")]
        internal static partial int TcAttach(BpfTcHook* hook, BpfTcOpts* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_detach")]
        internal static partial int TcDetach(BpfTcHook* hook, BpfTcOpts* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_query")]
        internal static partial int TcQuery(BpfTcHook* hook, BpfTcOpts* opts);
    }
}
