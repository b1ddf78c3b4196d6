namespace Palisade.Policies.Network.Compilation;

/// <summary>
/// Numbers CIDR prefixes as identities (from <see cref="ReservedIdentities.FirstCidr"/>), stable
/// for as long as the agent keeps the allocator: the same prefix keeps its number across
/// compilations and endpoints.
/// </summary>
public sealed class CidrIdentityAllocator
{
    private readonly Dictionary<CidrPrefix, uint> _ids = [];
    private uint _next = ReservedIdentities.FirstCidr;

    public uint IdentityOf(CidrPrefix prefix)
    {
        if (!_ids.TryGetValue(prefix, out var id))
        {
            id = _next++;
            _ids[prefix] = id;
        }
        return id;
    }

    public IReadOnlyDictionary<CidrPrefix, uint> Allocated => _ids;
}
