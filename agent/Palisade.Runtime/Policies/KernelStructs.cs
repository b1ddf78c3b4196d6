using System.Buffers.Binary;
using System.Text;
using Palisade.Events;

namespace Palisade.Runtime.Policies;

/// <summary>
/// The uapi structs some hooks report (union bpf_attr for BPF_PROG_LOAD and BPF_MAP_CREATE,
/// struct perf_event_attr), decoded into Tetragon's bpf_attr_arg, bpf_map_arg and
/// perf_event_arg. Offsets are the stable uapi ones (include/uapi/linux/bpf.h, perf_event.h).
/// </summary>
internal static class KernelStructs
{
    private static readonly string[] ProgTypes =
    [
        "BPF_PROG_TYPE_UNSPEC", "BPF_PROG_TYPE_SOCKET_FILTER", "BPF_PROG_TYPE_KPROBE", "BPF_PROG_TYPE_SCHED_CLS", "BPF_PROG_TYPE_SCHED_ACT",
        "BPF_PROG_TYPE_TRACEPOINT", "BPF_PROG_TYPE_XDP", "BPF_PROG_TYPE_PERF_EVENT", "BPF_PROG_TYPE_CGROUP_SKB", "BPF_PROG_TYPE_CGROUP_SOCK",
        "BPF_PROG_TYPE_LWT_IN", "BPF_PROG_TYPE_LWT_OUT", "BPF_PROG_TYPE_LWT_XMIT", "BPF_PROG_TYPE_SOCK_OPS", "BPF_PROG_TYPE_SK_SKB",
        "BPF_PROG_TYPE_CGROUP_DEVICE", "BPF_PROG_TYPE_SK_MSG", "BPF_PROG_TYPE_RAW_TRACEPOINT", "BPF_PROG_TYPE_CGROUP_SOCK_ADDR",
        "BPF_PROG_TYPE_LWT_SEG6LOCAL", "BPF_PROG_TYPE_LIRC_MODE2", "BPF_PROG_TYPE_SK_REUSEPORT", "BPF_PROG_TYPE_FLOW_DISSECTOR",
        "BPF_PROG_TYPE_CGROUP_SYSCTL", "BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE", "BPF_PROG_TYPE_CGROUP_SOCKOPT", "BPF_PROG_TYPE_TRACING",
        "BPF_PROG_TYPE_STRUCT_OPS", "BPF_PROG_TYPE_EXT", "BPF_PROG_TYPE_LSM", "BPF_PROG_TYPE_SK_LOOKUP", "BPF_PROG_TYPE_SYSCALL",
        "BPF_PROG_TYPE_NETFILTER",
    ];

    private static readonly string[] MapTypes =
    [
        "BPF_MAP_TYPE_UNSPEC", "BPF_MAP_TYPE_HASH", "BPF_MAP_TYPE_ARRAY", "BPF_MAP_TYPE_PROG_ARRAY", "BPF_MAP_TYPE_PERF_EVENT_ARRAY",
        "BPF_MAP_TYPE_PERCPU_HASH", "BPF_MAP_TYPE_PERCPU_ARRAY", "BPF_MAP_TYPE_STACK_TRACE", "BPF_MAP_TYPE_CGROUP_ARRAY", "BPF_MAP_TYPE_LRU_HASH",
        "BPF_MAP_TYPE_LRU_PERCPU_HASH", "BPF_MAP_TYPE_LPM_TRIE", "BPF_MAP_TYPE_ARRAY_OF_MAPS", "BPF_MAP_TYPE_HASH_OF_MAPS", "BPF_MAP_TYPE_DEVMAP",
        "BPF_MAP_TYPE_SOCKMAP", "BPF_MAP_TYPE_CPUMAP", "BPF_MAP_TYPE_XSKMAP", "BPF_MAP_TYPE_SOCKHASH", "BPF_MAP_TYPE_CGROUP_STORAGE",
        "BPF_MAP_TYPE_REUSEPORT_SOCKARRAY", "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE", "BPF_MAP_TYPE_QUEUE", "BPF_MAP_TYPE_STACK",
        "BPF_MAP_TYPE_SK_STORAGE", "BPF_MAP_TYPE_DEVMAP_HASH", "BPF_MAP_TYPE_STRUCT_OPS", "BPF_MAP_TYPE_RINGBUF", "BPF_MAP_TYPE_INODE_STORAGE",
        "BPF_MAP_TYPE_TASK_STORAGE", "BPF_MAP_TYPE_BLOOM_FILTER", "BPF_MAP_TYPE_USER_RINGBUF", "BPF_MAP_TYPE_CGRP_STORAGE", "BPF_MAP_TYPE_ARENA",
    ];

    private static readonly string[] PerfTypes = ["PERF_TYPE_HARDWARE", "PERF_TYPE_SOFTWARE", "PERF_TYPE_TRACEPOINT", "PERF_TYPE_HW_CACHE", "PERF_TYPE_RAW", "PERF_TYPE_BREAKPOINT"];

    public static PolicyArgValue Decode(string type, string? label, ReadOnlySpan<byte> b)
    {
        List<KeyValuePair<string, object>> fields = type switch
        {
            "bpf_attr" when b.Length >= 64 =>
            [
                new("ProgType", Name(ProgTypes, U32(b, 0))),
                new("InsnCnt", U32(b, 4)),
                new("ProgName", CString(b.Slice(48, 16))),
            ],
            "bpf_map" when b.Length >= 44 =>
            [
                new("MapType", Name(MapTypes, U32(b, 0))),
                new("KeySize", U32(b, 4)),
                new("ValueSize", U32(b, 8)),
                new("MaxEntries", U32(b, 12)),
                new("MapName", CString(b.Slice(28, 16))),
            ],
            "perf_event" when b.Length >= 16 =>
            [
                new("Type", Name(PerfTypes, U32(b, 0))),
                new("Config", BinaryPrimitives.ReadUInt64LittleEndian(b[8..])),
            ],
            _ => [],
        };
        return new PolicyArgValue(type + "_arg", label) { Object = fields };
    }

    private static uint U32(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b[offset..]);

    private static string Name(string[] names, uint value) =>
        value < names.Length ? names[value] : value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string CString(ReadOnlySpan<byte> b)
    {
        var end = b.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? b : b[..end]);
    }
}
