using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    internal static unsafe partial class Libbpf
    {
        /// <summary>struct bpf_map_batch_opts.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BpfMapBatchOpts
        {
            public nuint Sz;
            public ulong ElemFlags;
            public ulong Flags;
        }

        /// <summary>struct bpf_map_create_opts up to map_ifindex (libbpf accepts a smaller sz than its own).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BpfMapCreateOpts
        {
            public nuint Sz;
            public uint BtfFd;
            public uint BtfKeyTypeId;
            public uint BtfValueTypeId;
            public uint BtfVmlinuxValueTypeId;
            public uint InnerMapFd;
            public uint MapFlags;
            public ulong MapExtra;
            public uint NumaNode;
            public uint MapIfindex;
        }

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_get_fd_by_id", SetLastError = true)]
        internal static partial int MapGetFdById(uint id);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__name")]
        internal static partial byte* MapName(nint map);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__fd")]
        internal static partial int MapFd(nint map);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__type")]
        internal static partial int MapType(nint map);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__key_size")]
        internal static partial uint MapKeySize(nint map);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__value_size")]
        internal static partial uint MapValueSize(nint map);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__max_entries")]
        internal static partial uint MapMaxEntries(nint map);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__set_max_entries", SetLastError = true)]
        internal static partial int MapSetMaxEntries(nint map, uint maxEntries);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__set_value_size", SetLastError = true)]
        internal static partial int MapSetValueSize(nint map, uint size);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__initial_value")]
        internal static partial void* MapInitialValue(nint map, nuint* size);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__set_pin_path", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int MapSetPinPath(nint map, string? path);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__reuse_fd", SetLastError = true)]
        internal static partial int MapReuseFd(nint map, int fd);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__unpin", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int MapUnpin(nint map, string? path);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_lookup_elem", SetLastError = true)]
        internal static partial int MapLookupElem(int fd, void* key, void* value);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_update_elem", SetLastError = true)]
        internal static partial int MapUpdateElem(int fd, void* key, void* value, ulong flags);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_delete_elem", SetLastError = true)]
        internal static partial int MapDeleteElem(int fd, void* key);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_get_next_key", SetLastError = true)]
        internal static partial int MapGetNextKey(int fd, void* key, void* nextKey);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_lookup_batch", SetLastError = true)]
        internal static partial int MapLookupBatch(int fd, void* inBatch, void* outBatch, void* keys, void* values, uint* count, BpfMapBatchOpts* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_update_batch", SetLastError = true)]
        internal static partial int MapUpdateBatch(int fd, void* keys, void* values, uint* count, BpfMapBatchOpts* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int MapCreate(int mapType, string? name, uint keySize, uint valueSize, uint maxEntries, void* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_num_possible_cpus")]
        internal static partial int NumPossibleCpus();
    }
}
