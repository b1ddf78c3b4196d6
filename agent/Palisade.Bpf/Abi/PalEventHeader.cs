using System.Runtime.InteropServices;
using Palisade.Abi;

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

/// <summary>Event types (enum pal_event_type): the first field of every ring-buffer record.</summary>
[BpfEnum("pal_event_type", "PAL_EVENT_")]
public enum PalEventType : uint
{
    Invalid = 0,
    /// <summary>Emitted only by test programs.</summary>
    Test = 1,
    Exec = 2,
    Exit = 3,
    Fork = 4,
    /// <summary>A TracingPolicy selector matched.</summary>
    Policy = 5,
    Flow = 6,
    TypeMax = 8,
}

/// <summary>Sizes of the test record (enum pal_test_sizes).</summary>
[BpfEnum("pal_test_sizes", "PAL_TEST_")]
public enum PalTestSizes
{
    PayloadLen = 32,
}

/// <summary>Record of the test programs that prove the ring-buffer path (struct pal_test_event).</summary>
[BpfStruct("pal_test_event")]
[StructLayout(LayoutKind.Sequential)]
public unsafe struct PalTestEvent
{
    public const int PayloadLength = (int)PalTestSizes.PayloadLen;

    public PalEventHeader Hdr;
    public ulong Cookie;
    public fixed byte Comm[16];
    public fixed byte Payload[PayloadLength];
}
