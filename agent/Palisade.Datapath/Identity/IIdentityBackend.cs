namespace Palisade.Datapath.Identity;

/// <summary>
/// Where the numbers of security identities come from. Standalone: this node alone, persisted
/// (<see cref="IdentityAllocator"/>). In a cluster: the Kubernetes API, so that every node gives
/// the same labels the same number (one cluster-scoped object per identity). Endpoints hold
/// numbers through it; the policy engine reads every identity known, this node's and the
/// cluster's, through <see cref="Known"/> and <see cref="Changed"/>.
/// </summary>
public interface IIdentityBackend
{
    /// <summary>The identity of <paramref name="labels"/> (sorted, as <see cref="IdentityLabels.For"/> makes them), held once more. Throws <see cref="IdentityUnavailableException"/> when no number can be had now.</summary>
    uint Acquire(IReadOnlyList<string> labels);

    /// <summary>An endpoint found at start holds <paramref name="number"/> for <paramref name="labels"/>: hold it again (same number when it is still theirs).</summary>
    uint Adopt(uint number, IReadOnlyList<string> labels);

    /// <summary>The endpoint holding <paramref name="from"/> now has <paramref name="labels"/>: it holds their identity instead (<paramref name="from"/> when unchanged).</summary>
    uint Move(uint from, IReadOnlyList<string> labels);

    /// <summary>Drops one hold of <paramref name="number"/>.</summary>
    void Release(uint number);

    /// <summary>After every endpoint was adopted at start.</summary>
    void CompleteRestore();

    /// <summary>The labels of an identity; null when it is not known.</summary>
    IReadOnlyList<string>? LabelsOf(uint number);

    /// <summary>How many identities endpoints of this node hold.</summary>
    int Count { get; }

    /// <summary>Every identity known now, number to labels: this node's and, in a cluster, the other nodes'.</summary>
    IReadOnlyDictionary<uint, IReadOnlyList<string>> Known();

    /// <summary>An identity appeared or changed (labels), or went (labels null). Raised on the thread that learned it.</summary>
    event Action<uint, IReadOnlyList<string>?>? Changed;
}

/// <summary>No identity number can be had now (the cluster's API cannot be reached, or refuses): a retryable failure, never a made-up number.</summary>
public sealed class IdentityUnavailableException : Exception
{
    public IdentityUnavailableException(string message) : base(message)
    {
    }

    public IdentityUnavailableException(string message, Exception inner) : base(message, inner)
    {
    }

    public IdentityUnavailableException()
    {
    }
}
