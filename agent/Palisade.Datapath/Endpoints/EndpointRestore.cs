using Palisade.Cni.Api;
using Palisade.Datapath.Identity;

namespace Palisade.Datapath.Endpoints;

/// <summary>What <see cref="NodeEndpoints.Restore"/> found: for the start-up log and the status.</summary>
public sealed record RestoreReport(
    IReadOnlyList<Endpoint> Adopted,
    IReadOnlyList<string> Dropped,
    IReadOnlyList<string> Replayed,
    IReadOnlyList<string> Problems,
    IReadOnlyList<AttachmentId> LeakedAddresses);

public sealed partial class NodeEndpoints
{
    /// <summary>
    /// Start-up: reads the registry, adopts each endpoint whose host interface still exists
    /// (installed into the datapath again, over what is pinned: nothing is flushed), drops the
    /// ones that vanished (their addresses and datapath entries released), releases addresses
    /// no endpoint holds, then replays the DELs the plugin queued while the agent was down.
    /// </summary>
    public RestoreReport Restore()
    {
        var adopted = new List<Endpoint>();
        var dropped = new List<string>();
        var replayed = new List<string>();
        var problems = new List<string>();
        foreach (var recorded in _options.Registry.Load(problems))
        {
            var attachment = new AttachmentId(recorded.ContainerId, recorded.IfName);
            try
            {
                if (_options.Interfaces.HostIfIndex(recorded.HostIfName) is not { } index)
                {
                    // Its namespace went while the agent was down (the pod end took the host end with it).
                    _options.Datapath.Remove(recorded);
                    _options.Registry.Remove(recorded);
                    _options.Ipam.Release(attachment);
                    dropped.Add($"{attachment} (endpoint {recorded.Id}, {recorded.HostIfName}): host interface gone");
                    continue;
                }
                var labels = IdentityLabels.For(recorded.PodNamespace, recorded.Labels, recorded.NamespaceLabels);
                var identity = _options.Identities.Adopt(recorded.Identity, labels);
                var endpoint = recorded with { HostIfIndex = index, Identity = identity };
                lock (_sync)
                {
                    if (_byId.ContainsKey(endpoint.Id) || _byAttachment.ContainsKey(attachment))
                    {
                        problems.Add($"{attachment}: endpoint {endpoint.Id} is recorded twice; the second record is ignored");
                        _options.Identities.Release(identity);
                        continue;
                    }
                    Index(endpoint);
                    _nextId = endpoint.Id == MaxEndpointId ? 1 : Math.Max(_nextId, endpoint.Id + 1);
                }
                if (_options.Ipam.Find(attachment) is null)
                {
                    problems.Add($"{attachment}: IPAM had no record of its addresses; they stay the endpoint's but may be handed out again (check {_options.Registry.Directory})");
                }
                _options.Datapath.Install(endpoint);
                if (endpoint != recorded)
                {
                    _options.Registry.Save(endpoint);
                }
                adopted.Add(endpoint);
            }
#pragma warning disable CA1031 // one endpoint that cannot be adopted must not stop the others or the agent
            catch (Exception e)
#pragma warning restore CA1031
            {
                problems.Add($"{attachment} (endpoint {recorded.Id}): not adopted: {e.GetType().Name}: {e.Message}");
            }
        }
        _options.Identities.CompleteRestore();
        var leaked = ReleaseLeakedAddresses();
        foreach (var (path, request) in DelQueue.Pending(_options.DelQueueDirectory))
        {
            if (request?.Attachment is not { } a)
            {
                problems.Add($"{path}: queued DEL does not parse; removed");
                DelQueue.Complete(path);
                continue;
            }
            try
            {
                var existed = Delete(new AttachmentId(a.ContainerId, a.Ifname));
                replayed.Add($"{a.ContainerId}/{a.Ifname}{(existed ? "" : " (no endpoint)")}");
                DelQueue.Complete(path);
            }
            catch (EndpointException e)
            {
                // Kept in the queue: the next start tries again.
                problems.Add($"queued DEL of {a.ContainerId}/{a.Ifname} failed: {e.Message}");
            }
        }
        return new RestoreReport(adopted, dropped, replayed, problems, leaked);
    }
}
