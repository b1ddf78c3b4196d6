using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Palisade.Cni.Api;
using Palisade.Datapath;
using Palisade.Datapath.Endpoints;

namespace Palisade.Agent.Configuration;

/// <summary>The pod-networking settings, resolved: present only when pod networking is on (a pod CIDR is configured, or pod-networking is true).</summary>
public sealed record DatapathOptions
{
    /// <summary>This node's pod CIDRs as configured, at most one per family; empty: they come from this node's Node object (Kubernetes).</summary>
    public required IReadOnlyList<IPNetwork> PodCidrs { get; init; }

    /// <summary>True when the pod CIDRs are read from the Node's spec.podCIDRs (none configured).</summary>
    public bool PodCidrsFromNode => PodCidrs.Count == 0;
    public string IpamStateDir { get; init; } = "/var/lib/palisade/ipam";
    public string EndpointStateDir { get; init; } = "/var/lib/palisade/endpoints";
    public string EndpointSocket { get; init; } = EndpointWire.DefaultSocketPath;
    public string DelQueueDir { get; init; } = DelQueue.DefaultDirectory;
    public string CniConfDir { get; init; } = "/etc/cni/net.d";
    /// <summary>The cniVersion of the conflist the agent writes.</summary>
    public string CniVersion { get; init; } = CniConflist.DefaultVersion;
    public string HostDevice { get; init; } = Palisade.Datapath.Endpoints.HostDevice.DefaultName;
    public int Mtu { get; init; } = 1500;
    public IReadOnlyList<RemoteNode> RemoteNodes { get; init; } = [];

    /// <summary>Where identity numbers come from: this node (persisted) or the Kubernetes API (the same on every node).</summary>
    public IdentityAllocationMode IdentityAllocation { get; init; } = IdentityAllocationMode.Local;

    /// <summary>With <see cref="IdentityAllocationMode.Crd"/>: how often this node deletes identities no node uses.</summary>
    public TimeSpan IdentityGcInterval { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>With <see cref="IdentityAllocationMode.Crd"/>: how long an identity may go unused before it is deleted.</summary>
    public TimeSpan IdentityHeartbeatTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How often expired conntrack entries are removed from the datapath's table.</summary>
    public TimeSpan ConntrackGcInterval { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>Where security identity numbers come from.</summary>
public enum IdentityAllocationMode
{
    /// <summary>This node alone, persisted in endpoint-state-dir/identities.json.</summary>
    Local,

    /// <summary>The Kubernetes API: one PalisadeIdentity object per identity, shared by every node.</summary>
    Crd,
}

/// <summary>The settings of pod networking (palisade-cni, IPAM, endpoints, native routing). Off unless a pod CIDR is set.</summary>
public static class DatapathSettings
{
    public static readonly AgentSetting PodNetworking = new(
        "pod-networking", "auto", "Run pod networking (palisade-cni's endpoint socket, IPAM, the CNI conflist, routes to other nodes). auto: on when pod-cidr or pod-cidr-v6 is set. true: on; without a pod CIDR set, this node's pod CIDRs are read from its Node object's spec.podCIDRs (needs the Kubernetes API) and the other Nodes are routed. false: off.",
        ["auto", "true", "false"]);

    public static readonly AgentSetting PodCidr = new(
        "pod-cidr", "", "This node's pod CIDR(s), comma-separated, at most one IPv4 and one IPv6 (e.g. 10.244.1.0/24,fd00:244:1::/64). Setting one turns pod networking on: the endpoint socket, IPAM and the CNI conflist. Empty (with pod-cidr-v6 empty): off.");

    public static readonly AgentSetting PodCidrV6 = new(
        "pod-cidr-v6", "", "This node's IPv6 pod CIDR, when pod-cidr does not list one (dual-stack with both).");

    public static readonly AgentSetting IpamStateDir = new(
        "ipam-state-dir", "/var/lib/palisade/ipam", "Where each allocated pod address is recorded (one file per address), so allocations survive restarts.");

    public static readonly AgentSetting EndpointStateDir = new(
        "endpoint-state-dir", "/var/lib/palisade/endpoints", "Where the endpoint registry (one file per endpoint) and identities.json live; read at start to adopt the endpoints that still exist.");

    public static readonly AgentSetting EndpointSocket = new(
        "endpoint-socket", EndpointWire.DefaultSocketPath, "Unix socket (mode 0600) where palisade-cni reaches the agent.");

    public static readonly AgentSetting CniDelQueueDir = new(
        "cni-del-queue-dir", DelQueue.DefaultDirectory, "Where palisade-cni queues DELs while the agent is down; replayed at start.");

    public static readonly AgentSetting CniConfDir = new(
        "cni-conf-dir", "/etc/cni/net.d", "Directory the agent writes 05-palisade.conflist into once it is ready (removed on a clean stop).");

    public static readonly AgentSetting CniVersion = new(
        "cni-version", CniConflist.DefaultVersion, "cniVersion of the conflist the agent writes: 1.0.0 (default; what podman 4 and containerd 1.6 read), 1.1.0 (adds STATUS and GC; containerd 2, CRI-O 1.30 and later), 0.4.0 or 0.3.1 for older runtimes. palisade-cni answers every one.");

    public static readonly AgentSetting DatapathHostDevice = new(
        "datapath-host-device", Palisade.Datapath.Endpoints.HostDevice.DefaultName, "Host device (one end of a veth pair, the other end NAME_n, or palisade_net for palisade_host) that holds the pods' gateway addresses; created when missing.");

    public static readonly AgentSetting PodMtu = new(
        "pod-mtu", "1500", "MTU of both ends of a pod's veth pair, unless the network config gives one (576 to 65535; 1280 or more with an IPv6 pod CIDR).");

    public static readonly AgentSetting RemoteNodes = new(
        "remote-nodes", "", "Other nodes for native routing: NAME@NODE-ADDRESS=CIDR[,CIDR] entries separated by ';' or new lines, e.g. node-b@192.168.1.12=10.244.2.0/24. Each CIDR gets a route via its node address.");

    public static readonly AgentSetting IdentityAllocation = new(
        "identity-allocation-mode", "auto", "Where security identity numbers come from. crd: the Kubernetes API, one cluster-scoped PalisadeIdentity (palisade.io/v1alpha1) per identity, so every node gives the same labels the same number. local: this node alone, persisted in endpoint-state-dir/identities.json. auto: crd when the Kubernetes API is used (kubernetes), else local.",
        ["auto", "crd", "local"]);

    public static readonly AgentSetting IdentityGcInterval = new(
        "identity-gc-interval", "15m", "With identity-allocation-mode crd: how often each agent deletes the identities no node has used for identity-heartbeat-timeout (as Cilium's operator flag of the same name).");

    public static readonly AgentSetting IdentityHeartbeatTimeout = new(
        "identity-heartbeat-timeout", "30m", "With identity-allocation-mode crd: an identity whose palisade.io/last-used annotation is older than this, and that no endpoint of the deleting node holds, is deleted. Every node refreshes the annotation of the identities it uses every quarter of this. Keep it well above the clock skew between nodes.");

    public static readonly AgentSetting ConntrackGcInterval = new(
        "conntrack-gc-interval", "1m", "How often the agent removes expired entries from the datapath's connection-tracking table (Cilium's conntrack-gc-interval). The table is an LRU, so when it is full the least recently used connection is evicted even between collections.");

    public static readonly IReadOnlyList<AgentSetting> All =
        [PodNetworking, PodCidr, PodCidrV6, IpamStateDir, EndpointStateDir, EndpointSocket, CniDelQueueDir, CniConfDir, CniVersion, DatapathHostDevice, PodMtu, RemoteNodes,
            IdentityAllocation, IdentityGcInterval, IdentityHeartbeatTimeout, ConntrackGcInterval];

    /// <summary>The datapath options, or null when pod networking is off; problems go to <paramref name="errors"/>.</summary>
    /// <param name="kubernetes">Whether the Kubernetes API is watched (pod CIDRs can then come from the Node).</param>
    public static DatapathOptions? Resolve(IReadOnlyDictionary<string, (string Value, string Source)> values, bool kubernetes, List<string> errors)
    {
        var cidrs = new List<IPNetwork>();
        void Cidrs(AgentSetting setting, bool v6Only)
        {
            var (value, source) = values[setting.Key];
            foreach (var text in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!Palisade.Datapath.Ipam.Cidr.TryParse(text, out var cidr, out var problem))
                {
                    errors.Add($"{setting.Key}: \"{text}\" (from {source}) is not a CIDR ({problem}). Fix: e.g. 10.244.1.0/24 or fd00:244:1::/64.");
                    continue;
                }
                var v6 = cidr.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6;
                if (v6Only && !v6)
                {
                    errors.Add($"{setting.Key}: \"{text}\" (from {source}) is IPv4. Fix: put IPv4 pod CIDRs in {PodCidr.Key}.");
                    continue;
                }
                if (cidr.PrefixLength > MaxPrefix(cidr))
                {
                    errors.Add($"{setting.Key}: \"{text}\" (from {source}) is too small for a gateway and a pod. Fix: at most a /{MaxPrefix(cidr)}; a /24 holds 253 pods.");
                    continue;
                }
                if (cidrs.Any(c => c.BaseAddress.AddressFamily == cidr.BaseAddress.AddressFamily))
                {
                    var other = cidrs.First(c => c.BaseAddress.AddressFamily == cidr.BaseAddress.AddressFamily);
                    errors.Add($"{setting.Key}: \"{text}\" (from {source}) is a second {(v6 ? "IPv6" : "IPv4")} pod CIDR besides {other}. Fix: one per family.");
                    continue;
                }
                cidrs.Add(cidr);
            }
        }
        Cidrs(PodCidr, v6Only: false);
        Cidrs(PodCidrV6, v6Only: true);

        string Directory(AgentSetting setting)
        {
            var (value, source) = values[setting.Key];
            if (!Path.IsPathFullyQualified(value))
            {
                errors.Add($"{setting.Key}: \"{value}\" (from {source}) must be an absolute path, such as {setting.Default}.");
            }
            return value;
        }
        var ipamDir = Directory(IpamStateDir);
        var endpointDir = Directory(EndpointStateDir);
        var socket = Directory(EndpointSocket);
        if (socket.Length > 100)
        {
            errors.Add($"{EndpointSocket.Key}: \"{socket}\" is {socket.Length} characters; a unix socket path must fit in 107. Fix: a shorter path, such as {EndpointSocket.Default}.");
        }
        var delQueue = Directory(CniDelQueueDir);
        var confDir = Directory(CniConfDir);
        var (cniVersion, cniVersionSource) = values[CniVersion.Key];
        if (!CniConflist.Versions.Contains(cniVersion))
        {
            errors.Add($"{CniVersion.Key}: \"{cniVersion}\" (from {cniVersionSource}) is not a CNI version palisade-cni speaks. Fix: one of {string.Join(", ", CniConflist.Versions)}.");
        }
        if (Path.IsPathFullyQualified(ipamDir) && Path.IsPathFullyQualified(endpointDir) && Path.GetFullPath(ipamDir).TrimEnd('/') == Path.GetFullPath(endpointDir).TrimEnd('/'))
        {
            errors.Add($"{IpamStateDir.Key} and {EndpointStateDir.Key} are both \"{ipamDir}\". Fix: give each a directory of its own (every file in the IPAM one is read as an allocation).");
        }
        var (device, deviceSource) = values[DatapathHostDevice.Key];
        if (EndpointNames.InvalidInterfaceName(device) is { } why)
        {
            errors.Add($"{DatapathHostDevice.Key}: \"{device}\" (from {deviceSource}) is not an interface name: {why}. Fix: e.g. {DatapathHostDevice.Default}.");
        }
        var (mtuText, mtuSource) = values[PodMtu.Key];
        var minMtu = cidrs.Any(c => c.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6) ? 1280 : 576;
        if (!int.TryParse(mtuText, NumberStyles.None, CultureInfo.InvariantCulture, out var mtu) || mtu < minMtu || mtu > 65535)
        {
            errors.Add($"{PodMtu.Key}: \"{mtuText}\" (from {mtuSource}) must be a whole number from {minMtu} to 65535{(minMtu == 1280 ? " (IPv6 needs 1280)" : "")}.");
        }
        var remoteErrors = new List<string>();
        var remote = RemoteNodeRoutes.Parse(values[RemoteNodes.Key].Value, remoteErrors);
        errors.AddRange(remoteErrors.Select(e => $"{RemoteNodes.Key} (from {values[RemoteNodes.Key].Source}): {e}"));
        foreach (var node in remote)
        {
            foreach (var overlap in node.PodCidrs.Where(c => cidrs.Any(own => Overlaps(own, c))))
            {
                errors.Add($"{RemoteNodes.Key}: node {node.Name}'s pod CIDR {overlap} overlaps this node's. Fix: every node needs pod CIDRs of its own.");
            }
        }
        var (mode, modeSource) = values.TryGetValue(PodNetworking.Key, out var m) ? m : (PodNetworking.Default, "default");
        mode = mode.ToLowerInvariant();
        if (!PodNetworking.Allowed!.Contains(mode))
        {
            errors.Add($"{PodNetworking.Key}: \"{mode}\" (from {modeSource}) is not one of {string.Join(", ", PodNetworking.Allowed!)}.");
            mode = PodNetworking.Default;
        }
        if (mode == "false")
        {
            return null;
        }
        if (cidrs.Count == 0)
        {
            if (mode == "true" && !kubernetes)
            {
                errors.Add($"{PodNetworking.Key}: true (from {modeSource}) without {PodCidr.Key} needs the Kubernetes API, to read this node's pod CIDRs from its Node's spec.podCIDRs. Fix: set {PodCidr.Key}, or turn the Kubernetes API on (--kubeconfig, or run in a pod).");
                return null;
            }
            if (mode != "true")
            {
                if (remote.Count > 0)
                {
                    errors.Add($"{RemoteNodes.Key} is set but no pod CIDR is. Fix: set {PodCidr.Key}, or {PodNetworking.Key}: true with the Kubernetes API (native routing is part of pod networking).");
                }
                return null;
            }
        }
        var (identityMode, identitySource) = values.TryGetValue(IdentityAllocation.Key, out var im) ? im : (IdentityAllocation.Default, "default");
        identityMode = identityMode.ToLowerInvariant();
        if (!IdentityAllocation.Allowed!.Contains(identityMode))
        {
            errors.Add($"{IdentityAllocation.Key}: \"{identityMode}\" (from {identitySource}) is not one of {string.Join(", ", IdentityAllocation.Allowed!)}.");
        }
        else if (identityMode == "crd" && !kubernetes)
        {
            errors.Add($"{IdentityAllocation.Key}: crd (from {identitySource}) needs the Kubernetes API. Fix: turn it on (kubernetes: true, --kubeconfig, or run in a pod), or use {IdentityAllocation.Key}: local.");
        }
        var gcInterval = Duration(IdentityGcInterval);
        var heartbeat = Duration(IdentityHeartbeatTimeout);
        var conntrackGc = Duration(ConntrackGcInterval);
        if (gcInterval > TimeSpan.Zero && heartbeat > TimeSpan.Zero && heartbeat < TimeSpan.FromMinutes(1))
        {
            errors.Add($"{IdentityHeartbeatTimeout.Key}: {heartbeat.TotalSeconds:0.#}s is shorter than a minute: identities in use could be deleted between two refreshes. Fix: e.g. {IdentityHeartbeatTimeout.Default}.");
        }
        TimeSpan Duration(AgentSetting setting)
        {
            var entry = values.TryGetValue(setting.Key, out var e) ? e : (setting.Default, "default");
            var parsed = AgentConfiguration.ParseDuration(setting, entry, errors);
            if (parsed <= TimeSpan.Zero && !errors.Any(x => x.StartsWith(setting.Key, StringComparison.Ordinal)))
            {
                errors.Add($"{setting.Key}: \"{entry.Item1}\" (from {entry.Item2}) must be a positive duration, such as {setting.Default}.");
            }
            return parsed;
        }
        return new DatapathOptions
        {
            IdentityAllocation = identityMode == "crd" || (identityMode == "auto" && kubernetes) ? IdentityAllocationMode.Crd : IdentityAllocationMode.Local,
            IdentityGcInterval = gcInterval,
            IdentityHeartbeatTimeout = heartbeat,
            ConntrackGcInterval = conntrackGc,
            PodCidrs = cidrs,
            IpamStateDir = ipamDir,
            EndpointStateDir = endpointDir,
            EndpointSocket = socket,
            DelQueueDir = delQueue,
            CniConfDir = confDir,
            CniVersion = cniVersion,
            HostDevice = device,
            Mtu = mtu,
            RemoteNodes = remote,
        };
    }

    /// <summary>The longest prefix a pod CIDR may have: room for the gateway and one pod.</summary>
    internal static int MaxPrefix(IPNetwork cidr) => cidr.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6 ? 126 : 30;

    /// <summary>True when the two CIDRs share an address.</summary>
    internal static bool Overlaps(IPNetwork a, IPNetwork b) =>
        a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily && (a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress));
}
