namespace Palisade.Events;

/// <summary>What the kernel tells us about where a process runs, for finding its pod.</summary>
public readonly record struct ContainerContext(string? ContainerId, string? PodUid, ulong CgroupId);

/// <summary>
/// Attaches Kubernetes context to processes. The process sensor asks once per exec (a
/// forked child inherits its parent's answer); the Kubernetes integration implements it
/// from the pods it watches. Must be fast and must not block: it runs on the ring-buffer
/// thread.
/// </summary>
public interface IPodResolver
{
    /// <summary>The pod of a process in this container, or null (host process, or pod not known yet).</summary>
    PodInfo? Resolve(in ContainerContext container);
}

/// <summary>No Kubernetes: no pod context.</summary>
public sealed class NoPodResolver : IPodResolver
{
    public static readonly NoPodResolver Instance = new();

    public PodInfo? Resolve(in ContainerContext container) => null;
}
