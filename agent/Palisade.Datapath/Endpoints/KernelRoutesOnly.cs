namespace Palisade.Datapath.Endpoints;

/// <summary>
/// The datapath to use until the BPF one is injected: endpoints are forwarded by the kernel's
/// routing alone (the /32 routes and permanent neighbor entries <see cref="VethInterfaces"/>
/// makes), so there is nothing to install. Also what tests use when they need no BPF.
/// </summary>
public sealed class KernelRoutesOnly : IEndpointDatapath, INodeDatapath
{
    public void Install(Endpoint endpoint)
    {
    }

    public void Remove(Endpoint endpoint)
    {
    }

    public string? Check(Endpoint endpoint) => null;

    public void UpsertRemoteNode(RemoteNode node)
    {
    }

    public void RemoveRemoteNode(RemoteNode node)
    {
    }
}
