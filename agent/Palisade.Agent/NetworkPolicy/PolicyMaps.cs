using Palisade.Datapath;
using Palisade.Datapath.Bpf;
using Palisade.Policies.Network.Compilation;

namespace Palisade.Agent.NetworkPolicy;

/// <summary>The compiler's endpoint policy as the datapath stores it (struct pal_netpol_key/value).</summary>
internal static class PolicyMaps
{
    public static EndpointPolicyMap From(EndpointPolicy policy) => new(
        (byte)policy.Ingress.Mode,
        (byte)policy.Egress.Mode,
        [.. policy.Entries.Select(e => NetpolKeys.Entry(e.Identity, (byte)e.Direction, e.Protocol, e.Port, e.L4Prefix, (byte)e.Flags, e.Rule))]);

    public static bool Same(EndpointPolicyMap a, EndpointPolicyMap b) =>
        a.IngressMode == b.IngressMode && a.EgressMode == b.EgressMode && a.Entries.Count == b.Entries.Count
        && a.Entries.Zip(b.Entries).All(x => x.First.Key.Equals(x.Second.Key) && x.First.Value.Equals(x.Second.Value));
}
