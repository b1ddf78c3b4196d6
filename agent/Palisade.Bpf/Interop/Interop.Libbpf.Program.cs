using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    internal static unsafe partial class Libbpf
    {
        /// <summary>struct bpf_uprobe_opts (libbpf 1.x).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BpfUprobeOpts
        {
            public nuint Sz;
            public nuint RefCtrOffset;
            public ulong BpfCookie;
            public byte Retprobe;
            public byte* FuncName;
        }

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__name")]
        internal static partial byte* ProgramName(nint prog);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__section_name")]
        internal static partial byte* ProgramSectionName(nint prog);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__fd")]
        internal static partial int ProgramFd(nint prog);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__type")]
        internal static partial int ProgramType(nint prog);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__autoload")]
        [return: MarshalAs(UnmanagedType.U1)]
        internal static partial bool ProgramAutoload(nint prog);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__set_autoload", SetLastError = true)]
        internal static partial int ProgramSetAutoload(nint prog, [MarshalAs(UnmanagedType.U1)] bool autoload);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__attach", SetLastError = true)]
        internal static partial SafeBpfLinkHandle ProgramAttach(nint prog);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__attach_tracepoint", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial SafeBpfLinkHandle ProgramAttachTracepoint(nint prog, string category, string name);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__attach_raw_tracepoint", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial SafeBpfLinkHandle ProgramAttachRawTracepoint(nint prog, string name);

        /// <summary>struct bpf_kprobe_opts (libbpf 1.x).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BpfKprobeOpts
        {
            public nuint Sz;
            public ulong BpfCookie;
            public nuint Offset;
            public byte Retprobe;
        }

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__attach_kprobe_opts", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial SafeBpfLinkHandle ProgramAttachKprobeOpts(nint prog, string funcName, BpfKprobeOpts* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__attach_kprobe", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial SafeBpfLinkHandle ProgramAttachKprobe(nint prog, [MarshalAs(UnmanagedType.U1)] bool retprobe, string funcName);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__attach_uprobe_opts", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial SafeBpfLinkHandle ProgramAttachUprobeOpts(nint prog, int pid, string binaryPath, nuint funcOffset, BpfUprobeOpts* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__attach_cgroup", SetLastError = true)]
        internal static partial SafeBpfLinkHandle ProgramAttachCgroup(nint prog, int cgroupFd);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_obj_get_info_by_fd", SetLastError = true)]
        internal static partial int ObjGetInfoByFd(int fd, void* info, uint* infoLength);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__attach_xdp", SetLastError = true)]
        internal static partial SafeBpfLinkHandle ProgramAttachXdp(nint prog, int ifindex);
    }
}
