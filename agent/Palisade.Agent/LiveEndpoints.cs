using System.Net;
using Palisade.Datapath;

namespace Palisade.Agent;

/// <summary>
/// The endpoints of this node as flow decoding sees them: whatever DatapathService holds now
/// (none while pod networking is off or starting), so the flow sensor can start first.
/// </summary>
internal sealed class LiveEndpoints(DatapathService datapath) : IEndpointDirectory
{
    public Endpoint? ById(uint id) => datapath.Endpoints?.ById(id);

    public Endpoint? ByAddress(IPAddress address) => datapath.Endpoints?.ByAddress(address);

    public IReadOnlyCollection<Endpoint> All => datapath.Endpoints?.All ?? [];
}
