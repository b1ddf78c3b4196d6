using System.Net;
using Palisade.Cni.Api;
using Palisade.Datapath.Identity;
using Palisade.Datapath.Ipam;
using Palisade.Datapath.Netlink;

namespace Palisade.Datapath.Endpoints;

/// <summary>What <see cref="NodeEndpoints"/> is built from; every part explicit, so tests swap the kernel-facing ones.</summary>
public sealed record NodeEndpointsOptions
{
    public required NodeIpam Ipam { get; init; }
    public required IIdentityBackend Identities { get; init; }
    public required EndpointRegistry Registry { get; init; }
    public required IEndpointInterfaces Interfaces { get; init; }
    public required IEndpointDatapath Datapath { get; init; }

    /// <summary>Where the plugin queues DELs while the agent is down (replayed by <see cref="NodeEndpoints.Restore"/>).</summary>
    public string DelQueueDirectory { get; init; } = DelQueue.DefaultDirectory;

    /// <summary>MTU of both veth ends when the network config gives none.</summary>
    public int DefaultMtu { get; init; } = 1500;

    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// The labels of a pod and of its namespace, as the cluster has them now; namespace labels
/// null while the Namespace is not seen (an endpoint then keeps the ones it has).
/// </summary>
public sealed record PodLabels(IReadOnlyDictionary<string, string> Labels, IReadOnlyDictionary<string, string>? NamespaceLabels, IReadOnlyList<ContainerPort>? NamedPorts = null);

/// <summary>Where endpoints' labels come from when the cluster is watched: the Pod object CNI_ARGS names, and its Namespace.</summary>
public interface IPodLabelSource
{
    /// <summary>The pod's labels and its namespace's; null when the pod is not known (yet).</summary>
    PodLabels? Find(string podNamespace, string podName);
}

/// <summary>
/// The endpoints of this node: ADD allocates the addresses, makes the interfaces, takes the
/// identity, installs the endpoint into the BPF datapath and records it, all or nothing; DEL
/// undoes that and is idempotent; CHECK names each thing that is wrong; GC releases what the
/// runtime no longer has. Requests for different attachments run in parallel; two requests for
/// the same attachment at once get "try again later".
/// </summary>
public sealed partial class NodeEndpoints : IEndpointDirectory
{
    /// <summary>Endpoint ids are 16-bit in the datapath's maps; 0 means none.</summary>
    public const uint MaxEndpointId = 65535;

    private readonly NodeEndpointsOptions _options;
    private readonly Lock _sync = new();
    private readonly Dictionary<AttachmentId, Endpoint> _byAttachment = [];
    private readonly Dictionary<uint, Endpoint> _byId = [];
    private readonly Dictionary<IPAddress, Endpoint> _byAddress = [];
    private readonly HashSet<AttachmentId> _busy = [];
    private readonly HashSet<AttachmentId> _relabelPending = [];
    private readonly HashSet<uint> _reservedIds = [];
    private uint _nextId = 1;

    public NodeEndpoints(NodeEndpointsOptions options) => _options = options;

    public NodeIpam Ipam => _options.Ipam;

    public IIdentityBackend Identities => _options.Identities;

    /// <summary>Why the node cannot take ADDs now (STATUS answers 50 with it); null when ready.</summary>
    public string? NotReadyReason { get; set; }

    /// <summary>
    /// With Kubernetes: the Pod and Namespace labels endpoints take, instead of CNI_ARGS'
    /// (which stay the fallback while the pod is not known). Null: CNI_ARGS' alone.
    /// </summary>
    public IPodLabelSource? PodLabels { get; set; }

    /// <summary>An endpoint's labels changed and it moved to another identity: (before, after). Raised on the caller's thread.</summary>
    public event Action<Endpoint, Endpoint>? Relabeled;

    /// <summary>An endpoint was added (ADD done). Raised on the caller's thread.</summary>
    public event Action<Endpoint>? Added;

    /// <summary>An endpoint was deleted (DEL or GC). Raised on the caller's thread.</summary>
    public event Action<Endpoint>? Removed;

    /// <summary>An endpoint's labels could not be updated (it keeps its identity): the reason.</summary>
    public event Action<string>? RelabelFailed;

    public Endpoint? ById(uint id)
    {
        lock (_sync)
        {
            return _byId.GetValueOrDefault(id);
        }
    }

    public Endpoint? ByAddress(IPAddress address)
    {
        lock (_sync)
        {
            return _byAddress.GetValueOrDefault(address);
        }
    }

    public IReadOnlyCollection<Endpoint> All
    {
        get
        {
            lock (_sync)
            {
                return [.. _byId.Values];
            }
        }
    }

    public Endpoint? Find(AttachmentId attachment)
    {
        lock (_sync)
        {
            return _byAttachment.GetValueOrDefault(attachment);
        }
    }

    /// <summary>What ADD is given, after the endpoint API's request is read.</summary>
    public sealed record AddSpec(AttachmentId Attachment, string Netns, string? PodNamespace, string? PodName,
        IReadOnlyDictionary<string, string> Labels, IReadOnlyDictionary<string, string>? NamespaceLabels = null, int Mtu = 0, IReadOnlyList<ContainerPort>? NamedPorts = null);

    /// <summary>Creates the endpoint, or throws <see cref="EndpointException"/> having undone every step it took.</summary>
    public Endpoint Add(AddSpec spec)
    {
        Validate(spec.Attachment, spec.Netns, requireNetns: true);
        if (NotReadyReason is { } reason)
        {
            throw new EndpointException(ErrorCodes.TryAgainLater, $"the agent is not ready for ADD: {reason}");
        }
        uint id;
        lock (_sync)
        {
            if (_byAttachment.TryGetValue(spec.Attachment, out var existing))
            {
                throw new EndpointException(ErrorCodes.AttachmentExists,
                    $"container {spec.Attachment.ContainerId} has an endpoint on {spec.Attachment.IfName} already (endpoint {existing.Id}, {string.Join(", ", new[] { existing.IPv4, existing.IPv6 }.OfType<IPAddress>())}, host interface {existing.HostIfName})",
                    "ADD of an existing attachment is an error (CNI spec); DEL it first, or use another CNI_IFNAME");
            }
            Claim(spec.Attachment);
            id = ReserveId();
        }
        var undo = new Stack<Action>();
        undo.Push(() =>
        {
            lock (_sync)
            {
                _reservedIds.Remove(id);
                _busy.Remove(spec.Attachment);
            }
        });
        try
        {
            var endpoint = Build(spec, id, undo);
            lock (_sync)
            {
                Index(endpoint);
                _reservedIds.Remove(id);
                // The pod's labels may have arrived, or changed, while ADD ran: looked at again below.
                _relabelPending.Add(spec.Attachment);
            }
            Unclaim(spec.Attachment);
            var added = Find(spec.Attachment) ?? endpoint;
            Added?.Invoke(added);
            return added;
        }
        catch (Exception e)
        {
            while (undo.TryPop(out var step))
            {
                try
                {
                    step();
                }
#pragma warning disable CA1031 // rolling back: each step is best effort, the first error is what the caller hears
                catch (Exception)
#pragma warning restore CA1031
                {
                }
            }
            throw Translate(e, "ADD", spec.Attachment);
        }
    }

    private Endpoint Build(AddSpec spec, uint id, Stack<Action> undo)
    {
        var ipam = _options.Ipam;
        var addresses = ipam.Allocate(spec.Attachment);
        undo.Push(() => ipam.Release(spec.Attachment));

        var hostIfName = EndpointNames.HostInterface(spec.Attachment);
        var mtu = spec.Mtu > 0 ? spec.Mtu : _options.DefaultMtu;
        var created = _options.Interfaces.Create(new InterfaceSpec(spec.Attachment, spec.Netns, hostIfName,
            addresses.IPv4, addresses.IPv6, ipam.IPv4?.Gateway, ipam.IPv6?.Gateway, mtu));
        undo.Push(() => _options.Interfaces.Delete(Orphan(spec.Attachment)));
        var known = LabelsFor(spec.PodNamespace, spec.PodName);
        var podLabels = known?.Labels ?? spec.Labels;
        var namespaceLabels = known?.NamespaceLabels ?? spec.NamespaceLabels ?? IdentityLabels.DefaultNamespaceLabels(spec.PodNamespace);
        var labels = IdentityLabels.For(spec.PodNamespace, podLabels, namespaceLabels);
        var identity = _options.Identities.Acquire(labels);
        undo.Push(() => _options.Identities.Release(identity));
        var endpoint = new Endpoint
        {
            Id = id,
            ContainerId = spec.Attachment.ContainerId,
            IfName = spec.Attachment.IfName,
            Netns = spec.Netns,
            NetnsInode = created.NetnsInode,
            PodNamespace = spec.PodNamespace,
            PodName = spec.PodName,
            Labels = podLabels,
            NamespaceLabels = namespaceLabels,
            NamedPorts = known?.NamedPorts ?? spec.NamedPorts ?? [],
            Identity = identity,
            HostIfName = hostIfName,
            HostIfIndex = created.HostIfIndex,
            HostMac = created.HostMac,
            PodMac = created.PodMac,
            IPv4 = addresses.IPv4,
            IPv6 = addresses.IPv6,
            Created = _options.Time.GetUtcNow(),
        };
        try
        {
            _options.Datapath.Install(endpoint);
        }
        catch (Exception e) when (e is not EndpointException)
        {
            throw new EndpointException(ErrorCodes.DatapathFailed, $"the BPF datapath could not install endpoint {id} ({hostIfName}): {e.Message}");
        }
        undo.Push(() => _options.Datapath.Remove(endpoint));
        _options.Registry.Save(endpoint);
        return endpoint;
    }

    /// <summary>
    /// Deletes the attachment's endpoint; true when there was one. Idempotent, and works when the
    /// namespace is gone. Addresses and a host interface left by a crash in the middle of ADD are released too.
    /// </summary>
    public bool Delete(AttachmentId attachment)
    {
        Validate(attachment, netns: "", requireNetns: false);
        Endpoint? endpoint;
        lock (_sync)
        {
            endpoint = _byAttachment.GetValueOrDefault(attachment);
            Claim(attachment);
        }
        try
        {
            if (endpoint is null)
            {
                // Nothing recorded: at most a host interface and addresses a crash left behind.
                _options.Interfaces.Delete(Orphan(attachment));
                _options.Ipam.Release(attachment);
                return false;
            }
            _options.Datapath.Remove(endpoint);
            _options.Interfaces.Delete(endpoint);
            _options.Registry.Remove(endpoint);
            _options.Identities.Release(endpoint.Identity);
            _options.Ipam.Release(attachment);
            lock (_sync)
            {
                Unindex(endpoint);
            }
            Removed?.Invoke(endpoint);
            return true;
        }
        catch (Exception e)
        {
            throw Translate(e, "DEL", attachment);
        }
        finally
        {
            Unclaim(attachment);
        }
    }

    /// <summary>
    /// The labels of pod <paramref name="podName"/> in <paramref name="podNamespace"/> (every
    /// pod of the namespace when <paramref name="podName"/> is null) may have changed: each
    /// endpoint of it takes its labels from <see cref="PodLabels"/> again and, when they
    /// differ, moves to their identity in place (datapath entries rewritten, no interface
    /// touched, no packet lost). An endpoint busy with ADD or DEL is looked at when that ends.
    /// </summary>
    public void RefreshLabels(string podNamespace, string? podName)
    {
        foreach (var endpoint in All.Where(e => e.PodNamespace == podNamespace && (podName is null || e.PodName == podName)))
        {
            Relabel(new AttachmentId(endpoint.ContainerId, endpoint.IfName));
        }
    }

    private PodLabels? LabelsFor(string? podNamespace, string? podName) =>
        PodLabels is { } source && !string.IsNullOrEmpty(podNamespace) && !string.IsNullOrEmpty(podName) ? source.Find(podNamespace, podName) : null;

    private void Relabel(AttachmentId attachment)
    {
        Endpoint? before;
        lock (_sync)
        {
            if (!_byAttachment.TryGetValue(attachment, out before))
            {
                return;
            }
            if (!_busy.Add(attachment))
            {
                _relabelPending.Add(attachment);
                return;
            }
        }
        try
        {
            if (LabelsFor(before.PodNamespace, before.PodName) is not { } now)
            {
                return;
            }
            var namespaceLabels = now.NamespaceLabels ?? before.NamespaceLabels;
            var namedPorts = now.NamedPorts ?? before.NamedPorts;
            var sameLabels = SameLabels(now.Labels, before.Labels) && SameLabels(namespaceLabels, before.NamespaceLabels);
            if (sameLabels && namedPorts.SequenceEqual(before.NamedPorts))
            {
                return;
            }
            var identity = sameLabels
                ? before.Identity
                : _options.Identities.Move(before.Identity, IdentityLabels.For(before.PodNamespace, now.Labels, namespaceLabels));
            var after = before with { Labels = now.Labels, NamespaceLabels = namespaceLabels, NamedPorts = namedPorts, Identity = identity };
            try
            {
                if (identity != before.Identity)
                {
                    _options.Datapath.Install(after);
                }
                _options.Registry.Save(after);
            }
            catch
            {
                _options.Identities.Move(identity, IdentityLabels.For(before.PodNamespace, before.Labels, before.NamespaceLabels));
                if (identity != before.Identity)
                {
                    _options.Datapath.Install(before);
                }
                throw;
            }
            lock (_sync)
            {
                Index(after);
            }
            Relabeled?.Invoke(before, after);
        }
#pragma warning disable CA1031 // a label update that fails leaves the endpoint working with its old identity: reported, not thrown at the informer
        catch (Exception e)
#pragma warning restore CA1031
        {
            RelabelFailed?.Invoke($"endpoint {before.Id} ({before.PodNamespace}/{before.PodName}, {attachment}): labels not updated, it keeps identity {before.Identity}: {e.Message}");
        }
        finally
        {
            Unclaim(attachment);
        }
    }

    /// <summary>Ends a request's hold on the attachment; a label update that came meanwhile runs now.</summary>
    private void Unclaim(AttachmentId attachment)
    {
        bool again;
        lock (_sync)
        {
            _busy.Remove(attachment);
            again = _relabelPending.Remove(attachment);
        }
        if (again)
        {
            Relabel(attachment);
        }
    }

    private static bool SameLabels(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    /// <summary>Every problem of the attachment's endpoint (empty: healthy); throws when there is no endpoint.</summary>
    public IReadOnlyList<string> Check(AttachmentId attachment)
    {
        Validate(attachment, netns: "", requireNetns: false);
        var endpoint = Find(attachment) ?? throw new EndpointException(ErrorCodes.UnknownContainer,
            $"container {attachment.ContainerId} has no endpoint on {attachment.IfName}", "CHECK needs an attachment ADD made and DEL did not remove");
        try
        {
            var problems = new List<string>(_options.Interfaces.Check(endpoint, _options.Ipam.IPv4?.Gateway, _options.Ipam.IPv6?.Gateway));
            if (_options.Datapath.Check(endpoint) is { } missing)
            {
                problems.Add($"BPF datapath: {missing}");
            }
            return problems;
        }
        catch (Exception e)
        {
            throw Translate(e, "CHECK", attachment);
        }
    }

    /// <summary>
    /// CNI GC: deletes every endpoint whose attachment is not in <paramref name="valid"/>, then
    /// releases addresses held by attachments that have no endpoint. Returns how many were released.
    /// </summary>
    public int Collect(IReadOnlyCollection<AttachmentId> valid)
    {
        var keep = valid.ToHashSet();
        var released = 0;
        foreach (var endpoint in All.Where(e => !keep.Contains(new AttachmentId(e.ContainerId, e.IfName))))
        {
            if (Delete(new AttachmentId(endpoint.ContainerId, endpoint.IfName)))
            {
                released++;
            }
        }
        released += ReleaseLeakedAddresses().Count;
        return released;
    }

    /// <summary>Releases addresses whose attachment has no endpoint and no request in flight.</summary>
    public IReadOnlyList<AttachmentId> ReleaseLeakedAddresses() =>
        _options.Ipam.ReleaseUnowned(owner =>
        {
            lock (_sync)
            {
                return _byAttachment.ContainsKey(owner) || _busy.Contains(owner);
            }
        });

    private void Claim(AttachmentId attachment)
    {
        if (!_busy.Add(attachment))
        {
            throw new EndpointException(ErrorCodes.TryAgainLater, $"another request for container {attachment.ContainerId} on {attachment.IfName} is in progress");
        }
    }

    private uint ReserveId()
    {
        for (uint tried = 0; tried < MaxEndpointId; tried++)
        {
            var candidate = _nextId;
            _nextId = _nextId == MaxEndpointId ? 1 : _nextId + 1;
            if (!_byId.ContainsKey(candidate) && _reservedIds.Add(candidate))
            {
                return candidate;
            }
        }
        throw new EndpointException(ErrorCodes.AddressesExhausted, $"every endpoint id from 1 to {MaxEndpointId} is in use");
    }

    private void Index(Endpoint endpoint)
    {
        _byAttachment[new AttachmentId(endpoint.ContainerId, endpoint.IfName)] = endpoint;
        _byId[endpoint.Id] = endpoint;
        foreach (var address in new[] { endpoint.IPv4, endpoint.IPv6 }.OfType<IPAddress>())
        {
            _byAddress[address] = endpoint;
        }
    }

    private void Unindex(Endpoint endpoint)
    {
        _byAttachment.Remove(new AttachmentId(endpoint.ContainerId, endpoint.IfName));
        _byId.Remove(endpoint.Id);
        foreach (var address in new[] { endpoint.IPv4, endpoint.IPv6 }.OfType<IPAddress>())
        {
            _byAddress.Remove(address);
        }
    }

    /// <summary>A stand-in for an attachment with no record: only its host interface's name is known.</summary>
    private static Endpoint Orphan(AttachmentId attachment) => new()
    {
        Id = 0,
        ContainerId = attachment.ContainerId,
        IfName = attachment.IfName,
        Netns = "",
        HostIfName = EndpointNames.HostInterface(attachment),
        HostMac = [],
        PodMac = [],
    };

    private static void Validate(AttachmentId attachment, string netns, bool requireNetns)
    {
        if (string.IsNullOrWhiteSpace(attachment.ContainerId))
        {
            throw new EndpointException(ErrorCodes.InvalidEnvironment, "CNI_CONTAINERID is empty", "the runtime must name the container");
        }
        if (EndpointNames.InvalidInterfaceName(attachment.IfName) is { } why)
        {
            throw new EndpointException(ErrorCodes.InvalidEnvironment, $"CNI_IFNAME \"{attachment.IfName}\" is not a valid interface name: {why}", "use e.g. eth0");
        }
        if (requireNetns && string.IsNullOrWhiteSpace(netns))
        {
            throw new EndpointException(ErrorCodes.InvalidEnvironment, "CNI_NETNS is empty", "ADD needs the path of the container's network namespace");
        }
    }

    private static EndpointException Translate(Exception e, string operation, AttachmentId attachment) => e switch
    {
        EndpointException known => known,
        IdentityUnavailableException identity => new EndpointException(ErrorCodes.TryAgainLater, $"{operation} {attachment}: no security identity: {identity.Message}"),
        IpamException ipam when ipam.InnerException is IOException or UnauthorizedAccessException => new EndpointException(ErrorCodes.StateFailed, ipam.Message),
        IpamException ipam => new EndpointException(ErrorCodes.AddressesExhausted, ipam.Message),
        NetlinkException netlink => new EndpointException(ErrorCodes.InterfaceSetupFailed, $"{operation} {attachment}: {netlink.Message}"),
        IOException or UnauthorizedAccessException => new EndpointException(ErrorCodes.StateFailed, $"{operation} {attachment}: the agent's state could not be written: {e.Message}"),
        _ => new EndpointException(ErrorCodes.Internal, $"{operation} {attachment}: {e.GetType().Name}: {e.Message}"),
    };
}
