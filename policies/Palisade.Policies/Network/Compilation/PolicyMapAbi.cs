using Palisade.Abi;

namespace Palisade.Policies.Network.Compilation;

// Twins of the enums of bpf/include/pal_netpol.h (the enum test compares them with BTF). They
// live here, not in the datapath, because the compiler produces them and policies/ stays pure;
// the struct twins are in agent/Palisade.Datapath/Abi/NetPolicyAbi.cs.

/// <summary>Prefix lengths and sizes of the policy map (enum pal_netpol_sizes).</summary>
[BpfEnum("pal_netpol_sizes", "PAL_NETPOL_")]
public enum PolicyMapSizes
{
    /// <summary>Key bits always given: the identity and the direction byte.</summary>
    PrefixFixed = 40,
    ProtoBits = 8,
    PortBits = 16,
    PrefixFull = 64,
    Entries = 16384,
}

/// <summary>The direction byte of a policy key (enum pal_netpol_dir).</summary>
[BpfEnum("pal_netpol_dir", "PAL_NETPOL_")]
public enum PolicyDirection : byte
{
    Ingress = 0,
    Egress = 1,
}

/// <summary>Flags of a policy map value (enum pal_netpol_flags).</summary>
[Flags]
[BpfEnum("pal_netpol_flags", "PAL_NETPOL_F_")]
public enum PolicyEntryFlags : byte
{
    /// <summary>An allow entry.</summary>
    None = 0,
    Deny = 1 << 0,
    Audit = 1 << 1,
}

/// <summary>What one direction of an endpoint does with traffic no entry matches (enum pal_netpol_mode).</summary>
[BpfEnum("pal_netpol_mode", "PAL_NETPOL_")]
public enum DirectionMode : byte
{
    /// <summary>No policy applies: no lookup, everything passes.</summary>
    Off = 0,

    /// <summary>Traffic no entry allows is dropped (POLICY_DENIED).</summary>
    Enforce = 1,

    /// <summary>Traffic no entry allows passes, reported as AUDIT.</summary>
    Audit = 2,
}
