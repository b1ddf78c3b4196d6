using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    internal static partial class Libbpf
    {
        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_link__destroy")]
        internal static partial int LinkDestroy(nint link);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_link__fd")]
        internal static partial int LinkFd(SafeBpfLinkHandle link);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_link__pin", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int LinkPin(SafeBpfLinkHandle link, string path);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_link__open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial SafeBpfLinkHandle LinkOpen(string path);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_link__unpin", SetLastError = true)]
        internal static partial int LinkUnpin(SafeBpfLinkHandle link);
    }
}
