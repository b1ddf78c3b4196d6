using System.Runtime.InteropServices;

namespace Palisade.Bpf.Abi;

/// <summary>Header at the start of every ring-buffer record (struct pal_event_header).</summary>
[BpfStruct("pal_event_header")]
[StructLayout(LayoutKind.Sequential)]
public struct PalEventHeader
{
    public uint Type;
    public uint Size;
    public ulong KtimeNs;
    public uint Pid;
    public uint Tid;
    public ulong CgroupId;
}

/// <summary>Event types (enum pal_event_type).</summary>
public enum PalEventType : uint
{
    Invalid = 0,
    Test = 1,
}

/// <summary>Record of the test programs that prove the ring-buffer path (struct pal_test_event).</summary>
[BpfStruct("pal_test_event")]
[StructLayout(LayoutKind.Sequential)]
public unsafe struct PalTestEvent
{
    public const int PayloadLength = 32;

    public PalEventHeader Hdr;
    public ulong Cookie;
    public fixed byte Comm[16];
    public fixed byte Payload[PayloadLength];
}
