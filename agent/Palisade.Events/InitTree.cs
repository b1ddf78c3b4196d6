namespace Palisade.Events;

/// <summary>
/// Tetragon's in_init_tree: a containerized process descended from its container's init
/// (pid 1 in the container's pid namespace) without leaving the container, which a process
/// started by `kubectl exec` or nsenter is not (its parent is the runtime, on the host).
/// </summary>
public static class InitTree
{
    public static bool Contains(ProcessRecord process)
    {
        if (process.ContainerId is not { } container)
        {
            return false;
        }
        var depth = 0;
        for (ProcessRecord? p = process; p is not null && depth < 256; p = p.Parent, depth++)
        {
            if (!string.Equals(p.ContainerId, container, StringComparison.Ordinal))
            {
                return false;
            }
            if (p.NamespacePid == 1)
            {
                return true;
            }
        }
        return false;
    }
}
