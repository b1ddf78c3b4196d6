using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Palisade.Bpf;
using Palisade.Datapath.Abi;

namespace Palisade.Datapath.Bpf;

/// <summary>
/// The pod datapath in the kernel: loads bpf/net/endpoint.bpf.c, pins its maps, writes an
/// endpoint's map entries and puts its two tc programs on the host veth. The tc filters
/// belong to the devices, not to this object: they keep forwarding while the agent is
/// stopped, and the next instance adopts the pinned maps and swaps its programs in with an
/// atomic filter replace (no gap, nothing flushed).
/// </summary>
public sealed partial class EndpointDatapath : IEndpointDatapath, INodeDatapath, IPolicyDatapath, IDisposable
{
    /// <summary>tc handle and priority of our filters: fixed, so a replace finds the old filter.</summary>
    public const uint FilterHandle = 1;

    /// <inheritdoc cref="FilterHandle"/>
    public const uint FilterPriority = 1;

    private const string ObjectFile = "endpoint.bpf.o";

    private readonly BpfObject _obj;
    private readonly EndpointDatapathOptions _options;
    private readonly BpfProgram _from;
    private readonly BpfProgram _to;
    private readonly uint _fromId;
    private readonly uint _toId;
    private readonly BpfMap<PalEndpointKey, PalEndpointInfo> _endpoints;
    private readonly BpfMap<uint, PalEndpointInfo> _byIfindex;
    private readonly BpfMap<PalIpcacheKey, PalIpcacheValue> _ipcache;
    private readonly BpfPerCpuMap<uint, ulong> _stats;
    private readonly BpfMap<uint, uint> _netpol;
    private readonly BpfMap<PalCtKey, PalCtEntry> _ct;
    // Modes set by SetPolicy, for an Install after it (the maps hold them too, across restarts).
    private readonly Dictionary<uint, (byte Ingress, byte Egress)> _modes = [];
    private readonly Dictionary<uint, LivePolicy> _policies = [];
    private readonly Lock _gate = new();
    private bool _disposed;

    private EndpointDatapath(BpfObject obj, EndpointDatapathOptions options)
    {
        _obj = obj;
        _options = options;
        _from = obj.Program("pal_from_endpoint");
        _to = obj.Program("pal_to_endpoint");
        _fromId = _from.Id;
        _toId = _to.Id;
        _endpoints = obj.Map("pal_endpoints").Typed<PalEndpointKey, PalEndpointInfo>();
        _byIfindex = obj.Map("pal_endpoints_by_ifindex").Typed<uint, PalEndpointInfo>();
        _ipcache = obj.Map("pal_ipcache").Typed<PalIpcacheKey, PalIpcacheValue>();
        _stats = obj.Map("pal_net_stats").PerCpu<uint, ulong>();
        _netpol = obj.Map("pal_netpol").Typed<uint, uint>();
        _ct = obj.Map("pal_ct").Typed<PalCtKey, PalCtEntry>();
    }

    /// <summary>The conntrack table (pal_ct).</summary>
    public BpfMap ConntrackTable => _obj.Map("pal_ct");

    /// <summary>The ring buffer flow records go to (the sensor's when shared).</summary>
    public BpfMap EventRing => _obj.Map("pal_process_events");

    /// <summary>The socket-owner table the programs read (to share with bpf/net/sock.bpf.c).</summary>
    public BpfMap SocketOwners => _obj.Map("pal_sock_owners");

    /// <summary>The flow-aggregation table.</summary>
    public BpfMap FlowTable => _obj.Map("pal_flows");

    /// <summary>The loaded object (programs, for run-time statistics and tests).</summary>
    public BpfObject Object => _obj;

    /// <summary>Host veth ifindexes whose filters were swapped to this instance's programs at start (adopted from the pins).</summary>
    public IReadOnlyList<int> Adopted { get; private set; } = [];

    /// <summary>
    /// Loads the datapath. With a pin directory that holds maps of an earlier run, those maps
    /// are reused and every endpoint they list whose host veth still exists gets this
    /// instance's programs by atomic filter replace.
    /// </summary>
    public static EndpointDatapath Open(EndpointDatapathOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var obj = BpfObject.OpenEmbedded(typeof(EndpointDatapath).Assembly, ObjectFile);
        try
        {
            obj.Map("pal_flows").MaxEntries = options.FlowEntries;
            obj.Map("pal_ipcache").MaxEntries = options.IpcacheEntries;
            obj.Map("pal_ct").MaxEntries = options.ConntrackEntries;
            obj.SetConstant("drop_report_interval_ns", (ulong)options.DropReportInterval.Ticks * 100);
            obj.SetConstant("wakeup_bytes", options.WakeupBytes);
            obj.SetConstant("report_interval_ns", (ulong)options.ReportInterval.Ticks * 100);
            obj.SetConstant("flow_records", options.FlowRecords ? 1u : 0u);
            if (options.EventRing is { } ring)
            {
                obj.Map("pal_process_events").ReuseFrom(ring);
            }
            if (options.SocketOwners is { } owners)
            {
                obj.Map("pal_sock_owners").ReuseFrom(owners);
            }
            if (options.PinDirectory is { } pins)
            {
                Directory.CreateDirectory(pins);
                // Shared maps are pinned (or not) by their owners.
                obj.PinMapsUnder(pins, m =>
                    (m.Name == "pal_process_events" && options.EventRing is not null) ||
                    (m.Name == "pal_sock_owners" && options.SocketOwners is not null));
            }
            try
            {
                obj.Load();
            }
            catch (BpfLoadException e) when (options.PinDirectory is { } pinned && e.ProgramName is null && Directory.EnumerateFileSystemEntries(pinned).Any())
            {
                throw new InvalidOperationException(
                    $"The datapath maps pinned under {pinned} do not match this agent's ({e.Message}). " +
                    $"Fix: a changed map size or format needs the old pins gone: stop the agent, `rm -r {pinned}`, start it (pods lose connectivity until it runs).", e);
            }
            var datapath = new EndpointDatapath(obj, options);
            datapath.AdoptPinnedEndpoints();
            return datapath;
        }
        catch
        {
            obj.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void Install(Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        Validate(endpoint);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var ifindex = endpoint.HostIfIndex > 0 ? endpoint.HostIfIndex : NetworkNamespace.InterfaceIndex(endpoint.HostIfName);
            // Entries first: a program that meets a packet before them passes it untouched.
            WriteEntries(endpoint, ifindex);
            TcFilter.Replace(_to, ifindex, TcDirection.Egress, FilterHandle, FilterPriority);
            TcFilter.Replace(_from, ifindex, TcDirection.Ingress, FilterHandle, FilterPriority);
        }
    }

    /// <summary>The map entries of <paramref name="endpoint"/> on host device <paramref name="ifindex"/>, without attaching (BPF_PROG_RUN tests use made-up ifindexes).</summary>
    internal void WriteEntries(Endpoint endpoint, int ifindex)
    {
        Validate(endpoint);
        var info = DatapathKeys.EndpointInfo(endpoint, ifindex);
        // A re-install keeps the endpoint's policy modes (SetPolicy's, or those in the maps from before a restart).
        var (ingress, egress) = CurrentModes(endpoint, ifindex);
        info.IngressMode = ingress;
        info.EgressMode = egress;
        _byIfindex.Update((uint)ifindex, info);
        foreach (var address in Addresses(endpoint))
        {
            _endpoints.Update(DatapathKeys.EndpointKey(address), info);
            _ipcache.Update(DatapathKeys.IpcacheKey(DatapathKeys.Host(address)),
                new PalIpcacheValue { Identity = endpoint.Identity, Flags = (uint)IpcacheFlags.LocalEndpoint });
        }
    }

    /// <inheritdoc/>
    public void Remove(Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var ifindex = endpoint.HostIfIndex > 0 ? endpoint.HostIfIndex : IfindexOrZero(endpoint.HostIfName);
            if (ifindex > 0 && _byIfindex.TryLookup((uint)ifindex, out var info) && info.EpId == endpoint.Id)
            {
                // A veth deleted with its namespace takes its filters along; one still here loses ours.
                TcFilter.Remove(ifindex, TcDirection.Ingress, FilterHandle, FilterPriority);
                TcFilter.Remove(ifindex, TcDirection.Egress, FilterHandle, FilterPriority);
                _byIfindex.Delete((uint)ifindex);
            }
            foreach (var address in Addresses(endpoint))
            {
                var key = DatapathKeys.EndpointKey(address);
                // The address may already belong to a newer endpoint: leave that one alone.
                if (_endpoints.TryLookup(key, out var owner) && owner.EpId == endpoint.Id)
                {
                    _endpoints.Delete(key);
                    _ipcache.Delete(DatapathKeys.IpcacheKey(DatapathKeys.Host(address)));
                }
            }
            // A later endpoint with this id must not inherit the policy.
            _netpol.Delete(endpoint.Id);
            ForgetPolicy(endpoint.Id);
            _modes.Remove(endpoint.Id);
        }
    }

    /// <inheritdoc/>
    public string? Check(Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var problems = new List<string>();
        var ifindex = IfindexOrZero(endpoint.HostIfName);
        if (ifindex == 0)
        {
            problems.Add($"host veth {endpoint.HostIfName} is gone");
        }
        else if (endpoint.HostIfIndex > 0 && ifindex != endpoint.HostIfIndex)
        {
            problems.Add($"host veth {endpoint.HostIfName} has ifindex {ifindex}, not {endpoint.HostIfIndex} (it was re-created)");
        }
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var expected = endpoint.HostIfIndex > 0 ? endpoint.HostIfIndex : ifindex;
            if (expected > 0 && (!_byIfindex.TryLookup((uint)expected, out var info) || info.EpId != endpoint.Id))
            {
                problems.Add($"no datapath entry for ifindex {expected}");
            }
            foreach (var address in Addresses(endpoint))
            {
                if (!_endpoints.TryLookup(DatapathKeys.EndpointKey(address), out var byAddress) || byAddress.EpId != endpoint.Id)
                {
                    problems.Add($"address {address} is not mapped to endpoint {endpoint.Id}");
                }
            }
            if (ifindex > 0)
            {
                if (TcFilter.Query(ifindex, TcDirection.Ingress, FilterHandle, FilterPriority) != _fromId)
                {
                    problems.Add($"pal_from_endpoint is not attached on {endpoint.HostIfName} ingress");
                }
                if (TcFilter.Query(ifindex, TcDirection.Egress, FilterHandle, FilterPriority) != _toId)
                {
                    problems.Add($"pal_to_endpoint is not attached on {endpoint.HostIfName} egress");
                }
            }
        }
        return problems.Count == 0 ? null : $"endpoint {endpoint.Id} ({endpoint.ContainerId}/{endpoint.IfName}): {string.Join("; ", problems)}";
    }

    /// <summary>
    /// Every unicast address of this network namespace's interfaces (the node's own addresses:
    /// its NICs, the pod gateways on the host device, loopback): what a packet the node itself
    /// sends to a pod carries as its source, so what <see cref="SetHostAddresses"/> should mark
    /// as the host identity (policies select it as entity <c>host</c>).
    /// </summary>
    public static IReadOnlyList<IPAddress> NodeAddresses() =>
        [.. System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .Where(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
            .Select(a => a.AddressFamily == AddressFamily.InterNetworkV6 && a.ScopeId != 0 ? new IPAddress(a.GetAddressBytes()) : a)
            .Distinct()];

    /// <summary>Marks this node's own addresses (gateway, node IPs) as the host identity.</summary>
    public void SetHostAddresses(IEnumerable<IPAddress> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var address in addresses)
            {
                _ipcache.Update(DatapathKeys.IpcacheKey(DatapathKeys.Host(address)),
                    new PalIpcacheValue { Identity = (uint)ReservedIdentity.Host, Flags = (uint)IpcacheFlags.Host });
            }
        }
    }

    /// <inheritdoc/>
    public void UpsertRemoteNode(RemoteNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var nodeIp = node.NodeAddress.AddressFamily == AddressFamily.InterNetwork
            ? BitConverter.ToUInt32(node.NodeAddress.GetAddressBytes())
            : 0u;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _ipcache.Update(DatapathKeys.IpcacheKey(DatapathKeys.Host(node.NodeAddress)),
                new PalIpcacheValue { Identity = (uint)ReservedIdentity.RemoteNode, Flags = (uint)IpcacheFlags.RemoteNode, NodeIp = nodeIp });
            // Pods of other nodes have no identity here until the cluster shares them: world, marked remote.
            foreach (var cidr in node.PodCidrs)
            {
                _ipcache.Update(DatapathKeys.IpcacheKey(cidr),
                    new PalIpcacheValue { Identity = (uint)ReservedIdentity.World, Flags = (uint)IpcacheFlags.RemoteNode, NodeIp = nodeIp });
            }
        }
    }

    /// <inheritdoc/>
    public void RemoveRemoteNode(RemoteNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _ipcache.Delete(DatapathKeys.IpcacheKey(DatapathKeys.Host(node.NodeAddress)));
            foreach (var cidr in node.PodCidrs)
            {
                _ipcache.Delete(DatapathKeys.IpcacheKey(cidr));
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Order: the entries first, then the direction modes. The entries go into the endpoint's
    /// live map in place, only what changed, in <see cref="PolicyMapUpdate"/>'s order (every
    /// state on the way passes nothing that neither policy passes); when there is no live map
    /// of ours yet (a new endpoint, an agent restart) or it cannot take the change, a new map is
    /// filled and swapped into pal_netpol by one update, which a packet sees whole or not at
    /// all. Once the entries are written the state is new-entries-with-old-modes, and it allows nothing that neither policy
    /// allows: a packet an entry passes is passed by the new policy too (the entries are the
    /// new policy's; a new mode OFF passes everything anyway); a packet no entry matches is
    /// decided by the old mode unless the new one is ENFORCE (switched before the entries, so
    /// such a packet is dropped), and an old mode that passes it (OFF, AUDIT) while the new
    /// one is OFF or AUDIT passes what the new policy passes too (no entry: the new mode passes). The other order would let new modes meet old entries: ENFORCE with an old
    /// allow the new policy lacks. The two copies of the endpoint (by address, by ifindex) each
    /// switch modes in one update, and each packet reads one copy per direction.
    /// </remarks>
    public unsafe void SetPolicy(Endpoint endpoint, EndpointPolicyMap policy)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(policy);
        if (endpoint.Id is 0 or > 65535)
        {
            throw new ArgumentException($"Endpoint.Id {endpoint.Id} is out of range: endpoint ids are 1..65535.", nameof(endpoint));
        }
        CheckMode(policy.IngressMode, nameof(policy.IngressMode), endpoint.Id);
        CheckMode(policy.EgressMode, nameof(policy.EgressMode), endpoint.Id);
        var entries = policy.Entries ?? [];
        if (entries.Count > NetpolKeys.MaxEntries)
        {
            throw new ArgumentException(
                $"The policy of endpoint {endpoint.Id} has {entries.Count} map entries; an endpoint's map holds at most {NetpolKeys.MaxEntries} (PAL_NETPOL_ENTRIES). Fix: fewer or broader rules for this endpoint (port ranges and wildcard identities take fewer entries).",
                nameof(policy));
        }
        for (var i = 0; i < entries.Count; i++)
        {
            var key = entries[i].Key;
            if (key.Prefixlen is < NetpolKeys.PrefixFixed or > NetpolKeys.PrefixFixed + NetpolKeys.MaxL4Prefix || key.Direction > 1)
            {
                throw new ArgumentException(
                    $"Policy entry {i} of endpoint {endpoint.Id}: prefixlen {key.Prefixlen} / direction {key.Direction} is not a policy key (prefixlen {NetpolKeys.PrefixFixed}..{NetpolKeys.PrefixFixed + NetpolKeys.MaxL4Prefix}, direction 0 or 1). Fix: build entries with NetpolKeys.Entry.",
                    nameof(policy));
            }
        }
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // A direction becoming ENFORCE switches before the entries: under ENFORCE only an
            // entry passes, and every entry on the way passes only what a policy passes. One
            // that stays or becomes OFF/AUDIT switches after (below).
            var (oldIngress, oldEgress) = CurrentModes(endpoint, endpoint.HostIfIndex);
            var ingressFirst = policy.IngressMode == NetpolKeys.ModeEnforce ? NetpolKeys.ModeEnforce : oldIngress;
            var egressFirst = policy.EgressMode == NetpolKeys.ModeEnforce ? NetpolKeys.ModeEnforce : oldEgress;
            if ((ingressFirst, egressFirst) != (oldIngress, oldEgress))
            {
                _modes[endpoint.Id] = (ingressFirst, egressFirst);
                WriteModes(endpoint, ingressFirst, egressFirst);
            }
            if (entries.Count == 0)
            {
                // No entries: no map at all (a missing map is a map without entries to the lookup).
                _netpol.Delete(endpoint.Id);
                ForgetPolicy(endpoint.Id);
            }
            else
            {
                var wanted = new Dictionary<PalNetpolKey, PalNetpolValue>(entries.Count, PolicyMapUpdate.KeyComparer);
                foreach (var (key, value) in entries)
                {
                    wanted[key] = value;
                }
                if (!(_policies.TryGetValue(endpoint.Id, out var live) && UpdateInPlace(live, wanted)))
                {
                    SwapPolicy(endpoint.Id, wanted);
                }
            }
            _modes[endpoint.Id] = (policy.IngressMode, policy.EgressMode);
            WriteModes(endpoint, policy.IngressMode, policy.EgressMode);
        }
    }

    /// <summary>
    /// Writes only what changed into the endpoint's live map, in <see cref="PolicyMapUpdate"/>'s
    /// order; false (nothing to undo: every state on the way is safe) when the map is not ours
    /// to change, would overflow on the way, or the kernel refuses a write.
    /// </summary>
    private bool UpdateInPlace(LivePolicy live, Dictionary<PalNetpolKey, PalNetpolValue> wanted)
    {
        var plan = PolicyMapUpdate.Plan(live.Entries, wanted);
        var inserts = plan.Count(op => !op.Delete && !live.Entries.ContainsKey(op.Key));
        if (live.Entries.Count + inserts > NetpolKeys.MaxEntries)
        {
            return false;
        }
        try
        {
            foreach (var op in plan)
            {
                if (op.Delete)
                {
                    live.Map.Delete(op.Key);
                }
                else
                {
                    live.Map.Update(op.Key, op.Value);
                }
            }
        }
        catch (BpfException)
        {
            return false;
        }
        live.Entries = wanted;
        return true;
    }

    /// <summary>A new map with every entry, swapped into pal_netpol by one update (which a packet sees whole or not at all).</summary>
    private void SwapPolicy(uint endpointId, Dictionary<PalNetpolKey, PalNetpolValue> wanted)
    {
        // Sized for the most an endpoint may hold, so later changes fit in place (entries are
        // allocated on update: the size is a limit, not memory).
        var inner = BpfMapFd.Create(BpfMapType.LpmTrie, "pal_netpol_ep", sizeof(uint) * 3, sizeof(uint) * 2, NetpolKeys.MaxEntries, BpfMapFd.NoPrealloc);
        try
        {
            foreach (var (key, value) in wanted)
            {
                inner.Update(key, value);
            }
            _netpol.Update(endpointId, (uint)inner.Fd);
        }
        catch
        {
            inner.Dispose();
            throw;
        }
        ForgetPolicy(endpointId);
        _policies[endpointId] = new LivePolicy(inner, wanted);
    }

    private void ForgetPolicy(uint endpointId)
    {
        if (_policies.Remove(endpointId, out var live))
        {
            live.Map.Dispose();
        }
    }

    /// <summary>The policy map this datapath put in pal_netpol for an endpoint, open, with what it holds.</summary>
    private sealed class LivePolicy(BpfMapFd map, Dictionary<PalNetpolKey, PalNetpolValue> entries)
    {
        public BpfMapFd Map { get; } = map;

        public Dictionary<PalNetpolKey, PalNetpolValue> Entries { get; set; } = entries;
    }

    /// <inheritdoc/>
    public unsafe PolicyMapUsage? Usage(Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_netpol.TryLookup(endpoint.Id, out var id))
            {
                return null;
            }
            using var inner = BpfMapFd.FromId(id);
            if (inner is null)
            {
                return null;
            }
            var entries = inner.CountEntries(sizeof(uint) * 3);
            return new PolicyMapUsage(entries, entries * PolicyEntryBytes);
        }
    }

    /// <summary>
    /// Kernel memory per policy entry, an estimate: an LPM trie node (two child pointers,
    /// prefixlen, flags: 24 bytes) with the key's 8 data bytes and the 8-byte value, plus at
    /// most one intermediate node (24 + 8) per entry, rounded up to the allocator's 64-byte and
    /// 32-byte classes.
    /// </summary>
    public const long PolicyEntryBytes = 64 + 32;

    /// <summary>The endpoint's policy entries as the kernel holds them (status and tests); empty when it has none.</summary>
    public IReadOnlyList<KeyValuePair<PalNetpolKey, PalNetpolValue>> PolicyEntries(Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_netpol.TryLookup(endpoint.Id, out var id))
            {
                return [];
            }
            using var inner = BpfMapFd.FromId(id);
            return inner is null ? [] : inner.ReadAll<PalNetpolKey, PalNetpolValue>();
        }
    }

    /// <summary>The endpoint's direction modes as the datapath holds them (0 off, 1 enforce, 2 audit).</summary>
    public (byte Ingress, byte Egress) PolicyModes(Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return CurrentModes(endpoint, endpoint.HostIfIndex);
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// CIDR entries are the ipcache entries without flags (endpoints, remote nodes and host
    /// addresses all carry one), so after a restart the ones no longer wanted are still found.
    /// A prefix that already has a flagged entry (a pod, a node, a host address) keeps it: that
    /// entry names the address more precisely.
    /// </remarks>
    public void SetCidrIdentities(IReadOnlyCollection<KeyValuePair<IPNetwork, uint>> prefixes)
    {
        ArgumentNullException.ThrowIfNull(prefixes);
        var wanted = new Dictionary<PalIpcacheKey, uint>(new IpcacheKeyComparer());
        foreach (var (prefix, identity) in prefixes)
        {
            if (identity == 0)
            {
                throw new ArgumentException($"CIDR identity of {prefix} is 0 (the wildcard, never an address's identity). Fix: allocate the prefix an identity first.", nameof(prefixes));
            }
            if (prefix.BaseAddress.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            {
                throw new ArgumentException($"CIDR {prefix} is neither IPv4 nor IPv6.", nameof(prefixes));
            }
            wanted[DatapathKeys.IpcacheKey(prefix)] = identity;
        }
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var (key, identity) in wanted)
            {
                if (_ipcache.TryLookup(key, out var existing))
                {
                    if (existing.Flags != 0 || existing.Identity == identity)
                    {
                        continue;
                    }
                }
                _ipcache.Update(key, new PalIpcacheValue { Identity = identity });
            }
            foreach (var key in _ipcache.Keys())
            {
                if (!wanted.ContainsKey(key) && _ipcache.TryLookup(key, out var value) && value.Flags == 0)
                {
                    _ipcache.Delete(key);
                }
            }
        }
    }

    /// <summary>Removes expired conntrack entries; <paramref name="nowBootNs"/> is CLOCK_BOOTTIME in nanoseconds (the programs' clock). Returns how many went.</summary>
    public int CollectConntrack(ulong nowBootNs)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var removed = 0;
            foreach (var key in _ct.Keys())
            {
                if (_ct.TryLookup(key, out var entry) && entry.ExpiresNs <= nowBootNs && _ct.Delete(key))
                {
                    removed++;
                }
            }
            if (removed > 0)
            {
                // The programs never write this counter; user space adds to CPU 0's slot.
                var index = (uint)DatapathCounter.CtGcRemoved;
                var values = _stats.TryLookup(index, out var perCpu) ? perCpu : new ulong[BpfPerCpuMap<uint, ulong>.PossibleCpus];
                values[0] += (ulong)removed;
                _stats.Update(index, values);
            }
            return removed;
        }
    }

    /// <summary>Removes expired conntrack entries as of now (the agent calls it periodically).</summary>
    public int CollectConntrack() => CollectConntrack(BootTimeNs());

    /// <summary>Fill of the conntrack LRU and what it evicted (created minus live minus collected). Iterates the table: for status, not per packet.</summary>
    public (int Entries, int Capacity, ulong Evicted) ConntrackUsage()
    {
        var entries = ConntrackTable.CountEntries();
        var k = Counters();
        var gone = k[DatapathCounter.CtCreated] - Math.Min(k[DatapathCounter.CtCreated], k[DatapathCounter.CtGcRemoved]);
        return (entries, ConntrackTable.MaxEntries, gone > (ulong)entries ? gone - (ulong)entries : 0);
    }

    internal static unsafe ulong BootTimeNs()
    {
        Timespec ts;
        return ClockGettime(7 /* CLOCK_BOOTTIME */, &ts) == 0 ? (ulong)ts.Seconds * 1_000_000_000UL + (ulong)ts.Nanoseconds : 0;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static unsafe partial int ClockGettime(int clock, Timespec* ts);

    private static void CheckMode(byte mode, string field, uint id)
    {
        if (mode > 2)
        {
            throw new ArgumentException($"EndpointPolicyMap.{field} of endpoint {id} is {mode}; modes are 0 (off), 1 (enforce), 2 (audit).", field);
        }
    }

    // Under _gate.
    private (byte Ingress, byte Egress) CurrentModes(Endpoint endpoint, int ifindex)
    {
        if (_modes.TryGetValue(endpoint.Id, out var modes))
        {
            return modes;
        }
        if (ifindex > 0 && _byIfindex.TryLookup((uint)ifindex, out var info) && info.EpId == endpoint.Id)
        {
            return (info.IngressMode, info.EgressMode);
        }
        foreach (var address in Addresses(endpoint))
        {
            if (_endpoints.TryLookup(DatapathKeys.EndpointKey(address), out var byAddress) && byAddress.EpId == endpoint.Id)
            {
                return (byAddress.IngressMode, byAddress.EgressMode);
            }
        }
        return (0, 0);
    }

    // Under _gate: the modes into both copies of an installed endpoint (an endpoint not yet installed gets them at Install).
    private void WriteModes(Endpoint endpoint, byte ingress, byte egress)
    {
        var ifindex = endpoint.HostIfIndex;
        if (ifindex > 0 && _byIfindex.TryLookup((uint)ifindex, out var info) && info.EpId == endpoint.Id)
        {
            info.IngressMode = ingress;
            info.EgressMode = egress;
            _byIfindex.Update((uint)ifindex, info);
        }
        foreach (var address in Addresses(endpoint))
        {
            var key = DatapathKeys.EndpointKey(address);
            if (_endpoints.TryLookup(key, out var byAddress) && byAddress.EpId == endpoint.Id)
            {
                byAddress.IngressMode = ingress;
                byAddress.EgressMode = egress;
                _endpoints.Update(key, byAddress);
                if (ifindex <= 0 && _byIfindex.TryLookup(byAddress.Ifindex, out var viaAddress) && viaAddress.EpId == endpoint.Id)
                {
                    viaAddress.IngressMode = ingress;
                    viaAddress.EgressMode = egress;
                    _byIfindex.Update(byAddress.Ifindex, viaAddress);
                }
            }
        }
    }

    private sealed unsafe class IpcacheKeyComparer : IEqualityComparer<PalIpcacheKey>
    {
        public bool Equals(PalIpcacheKey x, PalIpcacheKey y) =>
            new ReadOnlySpan<byte>(&x, sizeof(PalIpcacheKey)).SequenceEqual(new ReadOnlySpan<byte>(&y, sizeof(PalIpcacheKey)));

        public int GetHashCode(PalIpcacheKey obj)
        {
            var hash = new HashCode();
            hash.AddBytes(new ReadOnlySpan<byte>(&obj, sizeof(PalIpcacheKey)));
            return hash.ToHashCode();
        }
    }

    /// <summary>The datapath counters summed over CPUs (pinned: they survive restarts).</summary>
    public IReadOnlyDictionary<DatapathCounter, ulong> Counters()
    {
        var result = new Dictionary<DatapathCounter, ulong>();
        for (var i = 0; i < (int)DatapathCounter.Count; i++)
        {
            result[(DatapathCounter)i] = _stats.TryLookup((uint)i, out var perCpu) ? perCpu.Aggregate(0UL, (a, b) => a + b) : 0;
        }
        return result;
    }

    /// <summary>
    /// Fill of the flow-aggregation LRU and how many entries it evicted: entries created minus
    /// entries still there (the kernel evicts silently; we never delete). Iterates the table:
    /// for status and metrics, not per packet.
    /// </summary>
    public (int Entries, int Capacity, ulong Evicted) FlowTableUsage()
    {
        var entries = FlowTable.CountEntries();
        var created = Counters()[DatapathCounter.FlowCreated];
        return (entries, FlowTable.MaxEntries, created > (ulong)entries ? created - (ulong)entries : 0);
    }

    /// <summary>
    /// Closes the agent's side. With pins the filters stay and keep forwarding until the next
    /// instance adopts them; without, they are removed (nothing could adopt them).
    /// </summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            if (_options.PinDirectory is null)
            {
                foreach (var ifindex in _byIfindex.Keys())
                {
                    RemoveOurFilter((int)ifindex, TcDirection.Ingress, _fromId);
                    RemoveOurFilter((int)ifindex, TcDirection.Egress, _toId);
                }
            }
        }
        foreach (var live in _policies.Values)
        {
            live.Map.Dispose();
        }
        _policies.Clear();
        _obj.Dispose();
    }

    private void AdoptPinnedEndpoints()
    {
        var adopted = new List<int>();
        foreach (var key in _byIfindex.Keys())
        {
            var ifindex = (int)key;
            // A veth that went away while we were stopped: its filters went with it; the
            // endpoint manager's reconciliation removes the entries.
            if (TcFilter.Query(ifindex, TcDirection.Ingress, FilterHandle, FilterPriority) is null &&
                TcFilter.Query(ifindex, TcDirection.Egress, FilterHandle, FilterPriority) is null)
            {
                continue;
            }
            TcFilter.Replace(_to, ifindex, TcDirection.Egress, FilterHandle, FilterPriority);
            TcFilter.Replace(_from, ifindex, TcDirection.Ingress, FilterHandle, FilterPriority);
            adopted.Add(ifindex);
        }
        Adopted = adopted;
    }

    private static void RemoveOurFilter(int ifindex, TcDirection direction, uint programId)
    {
        if (TcFilter.Query(ifindex, direction, FilterHandle, FilterPriority) == programId)
        {
            TcFilter.Remove(ifindex, direction, FilterHandle, FilterPriority);
        }
    }

    private static IEnumerable<IPAddress> Addresses(Endpoint endpoint)
    {
        if (endpoint.IPv4 is { } v4)
        {
            yield return v4;
        }
        if (endpoint.IPv6 is { } v6)
        {
            yield return v6;
        }
    }

    private static int IfindexOrZero(string name)
    {
        try
        {
            var text = File.ReadAllText($"/sys/class/net/{name}/ifindex").Trim();
            return int.Parse(text, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return 0;
        }
    }

    private static void Validate(Endpoint endpoint)
    {
        if (endpoint.Id is 0 or > 65535)
        {
            throw new ArgumentException($"Endpoint.Id {endpoint.Id} is out of range: endpoint ids are 1..65535.", nameof(endpoint));
        }
        if (string.IsNullOrEmpty(endpoint.HostIfName) || endpoint.HostIfName.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Endpoint.HostIfName '{endpoint.HostIfName}' of endpoint {endpoint.Id} is not an interface name.", nameof(endpoint));
        }
        if (endpoint.HostMac is not { Length: 6 } || endpoint.PodMac is not { Length: 6 })
        {
            throw new ArgumentException($"Endpoint {endpoint.Id}: HostMac and PodMac must be 6 bytes (got {endpoint.HostMac?.Length ?? 0} and {endpoint.PodMac?.Length ?? 0}).", nameof(endpoint));
        }
        if (endpoint.IPv4 is null && endpoint.IPv6 is null)
        {
            throw new ArgumentException($"Endpoint {endpoint.Id} has neither IPv4 nor IPv6: the datapath routes by address. Fix: allocate an address before Install.", nameof(endpoint));
        }
        if (endpoint.IPv4 is { AddressFamily: not AddressFamily.InterNetwork } v4)
        {
            throw new ArgumentException($"Endpoint.IPv4 {v4} of endpoint {endpoint.Id} is not an IPv4 address.", nameof(endpoint));
        }
        if (endpoint.IPv6 is { } v6 && (v6.AddressFamily != AddressFamily.InterNetworkV6 || v6.IsIPv4MappedToIPv6))
        {
            throw new ArgumentException($"Endpoint.IPv6 {v6} of endpoint {endpoint.Id} is not an IPv6 address (IPv4-mapped addresses go in IPv4).", nameof(endpoint));
        }
    }
}
