using System.Globalization;
using System.Net;
using Palisade.Datapath.Services;
using Palisade.Policies.Services;

namespace Palisade.Agent.Configuration;

/// <summary>The service load-balancing settings, resolved: present only when socket-LB is on.</summary>
public sealed record ServiceLbOptions
{
    /// <summary>service-dir: Service and EndpointSlice files; null: none.</summary>
    public string? ServiceDir { get; init; }

    /// <summary>With Kubernetes: Services and EndpointSlices from the API as well.</summary>
    public bool FromKubernetes { get; init; }

    public LbAlgorithm Algorithm { get; init; } = LbAlgorithm.Random;

    public int MaglevTableSize { get; init; } = Maglev.DefaultSize;

    public MaglevSeed MaglevSeed { get; init; } = MaglevSeed.Default;

    /// <summary>Frontends and backends at most (bpf-lb-map-max).</summary>
    public int MapMax { get; init; } = 65536;

    /// <summary>nodeport-addresses: the node addresses NodePort frontends listen on are those in these CIDRs; empty: every address of the node.</summary>
    public IReadOnlyList<IPNetwork> NodePortAddresses { get; init; } = [];

    public ServiceDatapathOptions DatapathOptions() => new()
    {
        DefaultAlgorithm = Algorithm,
        MaglevTableSize = MaglevTableSize,
        MaglevSeed = MaglevSeed,
        MaxFrontends = Math.Min(MapMax, 65535),
        MaxBackends = MapMax,
        MaxSlots = MapMax * 4,
        SocketRevNatEntries = MapMax * 4,
        AffinityEntries = MapMax,
    };
}

/// <summary>The settings of services in BPF (socket-LB replacing kube-proxy), under Cilium's names where Cilium has one.</summary>
public static class ServiceSettings
{
    public static readonly AgentSetting ServiceDir = new(
        "service-dir", "", "Directory of Kubernetes Service and EndpointSlice files (*.yaml, *.yml, *.json; several documents per file, or a v1 List); adding, editing or removing a file applies live. Setting it turns socket-LB on. A file with errors keeps its last good version in force. Empty: none.");

    public static readonly AgentSetting KubeProxyReplacement = new(
        "kube-proxy-replacement", "false", "Serve services in BPF (socket-LB) instead of kube-proxy: ClusterIP, NodePort, ExternalIPs and LoadBalancer IPs of local sockets are translated at connect/sendmsg. With Kubernetes the Services and EndpointSlices of the API are served; kube-proxy's rules can stay in place (translated sockets never reach them) and be removed once this runs. false: only --service-dir's services, if any.", ["true", "false"]);

    public static readonly AgentSetting LbAlgorithm = new(
        "bpf-lb-algorithm", "random", "How a backend is chosen for a new connection: random, or maglev (consistent hashing: every node picks from the same table for the same backends). A service chooses for itself with the annotation service.cilium.io/lb-algorithm.", ["random", "maglev"]);

    public static readonly AgentSetting MaglevTableSize = new(
        "bpf-lb-maglev-table-size", "16381", $"Entries of each Maglev table, a prime: {string.Join(", ", Maglev.Sizes)}. At least 100 times the largest number of backends of a service keeps the spread within 1%.");

    public static readonly AgentSetting MaglevHashSeed = new(
        "bpf-lb-maglev-hash-seed", MaglevSeed.DefaultText, "The Maglev hash seed, 12 bytes in base64; the same on every node, so all nodes build the same tables.");

    public static readonly AgentSetting MapMax = new(
        "bpf-lb-map-max", "65536", "Frontends and backends the service maps hold at most (each family); the slot and socket maps get four times as many entries. Frontends are capped at 65535 (16-bit reverse-NAT indices).");

    public static readonly AgentSetting NodePortAddresses = new(
        "nodeport-addresses", "", "Comma-separated CIDRs: NodePort services are served on the node addresses inside them. Empty: on every address of the node.");

    public static readonly IReadOnlyList<AgentSetting> All = [ServiceDir, KubeProxyReplacement, LbAlgorithm, MaglevTableSize, MaglevHashSeed, MapMax, NodePortAddresses];

    /// <summary>The options, or null when socket-LB is off (no service-dir, no kube-proxy-replacement).</summary>
    public static ServiceLbOptions? Resolve(IReadOnlyDictionary<string, (string Value, string Source)> values, bool kubernetes, List<string> errors)
    {
        string Value(AgentSetting s) => values.TryGetValue(s.Key, out var v) ? v.Value : s.Default;
        string Source(AgentSetting s) => values.TryGetValue(s.Key, out var v) ? v.Source : "default";

        var dir = Value(ServiceDir);
        if (dir.Length > 0 && !Path.IsPathFullyQualified(dir))
        {
            errors.Add($"{ServiceDir.Key}: \"{dir}\" (from {Source(ServiceDir)}) must be an absolute path, such as /etc/palisade/services.");
        }
        var replace = Value(KubeProxyReplacement).Equals("true", StringComparison.OrdinalIgnoreCase);

        var algorithm = Value(LbAlgorithm).ToLowerInvariant() switch
        {
            "random" => Policies.Services.LbAlgorithm.Random,
            "maglev" => Policies.Services.LbAlgorithm.Maglev,
            var other => Bad(LbAlgorithm, other, "random or maglev", Policies.Services.LbAlgorithm.Random),
        };

        var sizeText = Value(MaglevTableSize);
        var size = Maglev.DefaultSize;
        if (!int.TryParse(sizeText, NumberStyles.None, CultureInfo.InvariantCulture, out size) || Maglev.SizeProblem(size) is not null)
        {
            errors.Add($"{MaglevTableSize.Key}: \"{sizeText}\" (from {Source(MaglevTableSize)}) is not an allowed table size. Fix: one of the primes {string.Join(", ", Maglev.Sizes)} (default {Maglev.DefaultSize}).");
            size = Maglev.DefaultSize;
        }

        var seed = MaglevSeed.Default;
        try
        {
            seed = MaglevSeed.Parse(Value(MaglevHashSeed));
        }
        catch (ArgumentException e)
        {
            errors.Add($"{MaglevHashSeed.Key} (from {Source(MaglevHashSeed)}): {e.Message.Split(" (Parameter", 2)[0]}");
        }

        var maxText = Value(MapMax);
        if (!int.TryParse(maxText, NumberStyles.None, CultureInfo.InvariantCulture, out var max) || max is < 1024 or > 1 << 22)
        {
            errors.Add($"{MapMax.Key}: \"{maxText}\" (from {Source(MapMax)}) must be a whole number from 1024 to {1 << 22}. Fix: e.g. the default 65536.");
            max = 65536;
        }

        var nodePort = new List<IPNetwork>();
        foreach (var text in Value(NodePortAddresses).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (IPNetwork.TryParse(text, out var cidr))
            {
                nodePort.Add(cidr);
            }
            else
            {
                errors.Add($"{NodePortAddresses.Key}: \"{text}\" (from {Source(NodePortAddresses)}) is not a CIDR. Fix: e.g. 192.168.0.0/16,fd00::/64.");
            }
        }

        if (dir.Length == 0 && !replace)
        {
            return null;
        }
        return new ServiceLbOptions
        {
            ServiceDir = dir.Length > 0 ? dir : null,
            FromKubernetes = replace && kubernetes,
            Algorithm = algorithm,
            MaglevTableSize = size,
            MaglevSeed = seed,
            MapMax = max,
            NodePortAddresses = nodePort,
        };

        T Bad<T>(AgentSetting s, string value, string expected, T fallback)
        {
            errors.Add($"{s.Key}: \"{value}\" (from {Source(s)}) is not one of {expected}.");
            return fallback;
        }
    }
}
