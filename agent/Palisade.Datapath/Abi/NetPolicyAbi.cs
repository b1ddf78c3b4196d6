using System.Runtime.InteropServices;
using Palisade.Bpf.Abi;

namespace Palisade.Datapath.Abi;

// Twins of the structs of bpf/include/pal_netpol.h; the layout test compares each with the
// BTF of bpf/layout/layout.bpf.c. The enums are in policies/Palisade.Policies/Network/Compilation/PolicyMapAbi.cs.

/// <summary>Key of an endpoint's policy LPM trie (struct pal_netpol_key).</summary>
[BpfStruct("pal_netpol_key")]
[StructLayout(LayoutKind.Sequential)]
public struct PalNetpolKey
{
    /// <summary>PAL_NETPOL_PREFIX_FIXED + the value's l4_prefix; lookups use PAL_NETPOL_PREFIX_FULL.</summary>
    public uint Prefixlen;
    public uint Identity;
    public byte Direction;
    public byte Protocol;

    /// <summary>Network byte order.</summary>
    public ushort Dport;
}

/// <summary>Value of an endpoint's policy LPM trie (struct pal_netpol_value).</summary>
[BpfStruct("pal_netpol_value")]
[StructLayout(LayoutKind.Sequential)]
public struct PalNetpolValue
{
    public byte Flags;
    public byte L4Prefix;
    public ushort ProxyPort;
    public uint Rule;
}
