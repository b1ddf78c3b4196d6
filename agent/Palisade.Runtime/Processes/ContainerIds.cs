using System.Text.RegularExpressions;

namespace Palisade.Runtime.Processes;

/// <summary>A container found from cgroup names: the runtime's id and, for Kubernetes, the pod's uid.</summary>
public sealed record CgroupContainer(string ContainerId, string Runtime, string? PodUid);

/// <summary>
/// Reads container ids out of cgroup names as containerd, CRI-O, Docker and Podman write
/// them under the systemd and cgroupfs drivers.
/// </summary>
public static partial class ContainerIds
{
    /// <summary>The container of a process from its cgroup's leaf name and the leaf's parent; null for host processes.</summary>
    public static CgroupContainer? FromCgroup(string? leaf, string? parent)
    {
        if (string.IsNullOrEmpty(leaf))
        {
            return null;
        }
        string id, runtime;
        var scope = ScopeName().Match(leaf);
        if (scope.Success)
        {
            id = scope.Groups["id"].Value;
            runtime = scope.Groups["rt"].Value switch
            {
                "cri-containerd" or "containerd" => "containerd",
                "crio" => "cri-o",
                "libpod" => "podman",
                var other => other,
            };
        }
        else if (BareId().IsMatch(leaf))
        {
            // cgroupfs driver: /kubepods/<qos>/pod<uid>/<id> or /docker/<id>
            id = leaf;
            runtime = parent is not null && parent.StartsWith("pod", StringComparison.Ordinal) ? "kubernetes" : "docker";
        }
        else
        {
            return null;
        }
        return new CgroupContainer(id, runtime, PodUidFrom(parent));
    }

    /// <summary>The pod uid in a pod cgroup name ("pod&lt;uid&gt;" or "kubepods-besteffort-pod&lt;uid_with_underscores&gt;.slice").</summary>
    public static string? PodUidFrom(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return null;
        }
        var m = PodName().Match(name);
        return m.Success ? m.Groups["uid"].Value.Replace('_', '-') : null;
    }

    /// <summary>Tetragon's "docker" field: the first 31 characters of the container id.</summary>
    public static string Short(string containerId) => containerId.Length > 31 ? containerId[..31] : containerId;

    [GeneratedRegex(@"^(?<rt>cri-containerd|containerd|crio|docker|libpod)-(?<id>[0-9a-f]{64})\.scope$")]
    private static partial Regex ScopeName();

    [GeneratedRegex(@"^[0-9a-f]{64}$")]
    private static partial Regex BareId();

    [GeneratedRegex(@"pod(?<uid>[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(\.slice)?$")]
    private static partial Regex PodName();
}
