using System.Net;
using Palisade.Datapath.Abi;

namespace Palisade.Datapath;

/// <summary>
/// One endpoint's compiled network policy as the datapath stores it: the mode of each direction
/// (values of enum pal_netpol_mode: 0 off, 1 enforce, 2 audit) and the entries of its policy map
/// (struct pal_netpol_key/value, the port in network order). The agent builds it from the
/// compiler's EndpointPolicy (policies/Palisade.Policies/Network/Compilation).
/// </summary>
public sealed record EndpointPolicyMap(byte IngressMode, byte EgressMode, IReadOnlyList<KeyValuePair<PalNetpolKey, PalNetpolValue>> Entries)
{
    /// <summary>No policy: both directions off, no entries.</summary>
    public static readonly EndpointPolicyMap None = new(0, 0, []);
}

/// <summary>What an endpoint's policy occupies in the kernel.</summary>
public sealed record PolicyMapUsage(int Entries, long Bytes);

/// <summary>
/// What the policy engine needs of the BPF datapath. The datapath keeps the policy of an
/// endpoint across re-installs of that endpoint and across agent restarts (pinned).
/// </summary>
public interface IPolicyDatapath
{
    /// <summary>
    /// Replaces the endpoint's policy. The change is atomic for packets: a packet is decided by
    /// the old policy or by the new one, never by a mix that allows what neither allows.
    /// Established connections (conntrack) keep flowing; new ones obey the new policy.
    /// </summary>
    void SetPolicy(Endpoint endpoint, EndpointPolicyMap policy);

    /// <summary>
    /// Replaces the set of CIDR identities in the ipcache (prefix -> identity): new and changed
    /// prefixes are written before the ones no longer wanted are removed.
    /// </summary>
    void SetCidrIdentities(IReadOnlyCollection<KeyValuePair<IPNetwork, uint>> prefixes);

    /// <summary>The endpoint's policy map size in the kernel; null when it has none.</summary>
    PolicyMapUsage? Usage(Endpoint endpoint);
}
