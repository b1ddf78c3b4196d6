using Palisade.Datapath.Identity;
using Palisade.Kubernetes.Identities;

namespace Palisade.Agent;

/// <summary>
/// The cluster's identities (<see cref="ClusterIdentityAllocator"/>, the Kubernetes side) as the
/// datapath's identity backend. The endpoint API calls it on its own threads, so waiting for
/// the API here blocks one request, bounded by the allocator's timeout; a failure is
/// <see cref="IdentityUnavailableException"/>, which CNI ADD answers as "try again later" (11).
/// </summary>
public sealed class ClusterIdentityBackend : IIdentityBackend
{
    private readonly ClusterIdentityAllocator _allocator;

    public ClusterIdentityBackend(ClusterIdentityAllocator allocator)
    {
        _allocator = allocator;
        _allocator.Changed += (id, labels) => Changed?.Invoke(id, labels);
    }

    public event Action<uint, IReadOnlyList<string>?>? Changed;

    public ClusterIdentityAllocator Allocator => _allocator;

    public uint Acquire(IReadOnlyList<string> labels) => Translate(() => _allocator.AcquireAsync(labels));

    public uint Adopt(uint number, IReadOnlyList<string> labels) => Translate(() => _allocator.AdoptAsync(number, labels));

    public uint Move(uint from, IReadOnlyList<string> labels)
    {
        if (_allocator.Holds(from, labels))
        {
            return from;
        }
        var to = Acquire(labels);
        Release(from);
        return to;
    }

    public void Release(uint number) => _allocator.Release(number);

    // Identities no endpoint came back for are the cluster's garbage collection's, after the heartbeat timeout.
    public void CompleteRestore()
    {
    }

    public IReadOnlyList<string>? LabelsOf(uint number) => _allocator.LabelsOf(number);

    public int Count => _allocator.HeldCount;

    public IReadOnlyDictionary<uint, IReadOnlyList<string>> Known() => _allocator.Known();

    private static uint Translate(Func<Task<uint>> call)
    {
        try
        {
            return call().GetAwaiter().GetResult();
        }
        catch (IdentityAllocationException e)
        {
            throw new IdentityUnavailableException(e.Message, e);
        }
    }
}
