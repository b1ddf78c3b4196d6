using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    internal static unsafe partial class Libbpf
    {
        [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__parse", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial nint BtfParse(string path, nint btfExt);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__free")]
        internal static partial void BtfFree(nint btf);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__type_cnt")]
        internal static partial uint BtfTypeCount(nint btf);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__type_by_id")]
        internal static partial uint* BtfTypeById(nint btf, uint id);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__name_by_offset")]
        internal static partial byte* BtfNameByOffset(nint btf, uint offset);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__find_by_name_kind", StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int BtfFindByNameKind(nint btf, string name, uint kind);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__resolve_size")]
        internal static partial long BtfResolveSize(nint btf, uint typeId);
    }
}
