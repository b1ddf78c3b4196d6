using System.Diagnostics;
using System.Net;
using Palisade.Datapath;
using Palisade.Datapath.Identity;
using Palisade.Policies;
using Palisade.Policies.Network;
using Palisade.Policies.Network.Compilation;

namespace Palisade.Agent.NetworkPolicy;

/// <summary>How the node enforces network policy: the mode and who is in audit mode.</summary>
public sealed record NetworkPolicySettings(EnforcementMode Mode, bool AuditAll, IReadOnlySet<string> AuditNamespaces)
{
    public static readonly NetworkPolicySettings Default = new(EnforcementMode.Default, false, new HashSet<string>(StringComparer.Ordinal));
}

/// <summary>What one source (a file of the policy directory, or one Kubernetes object) holds now.</summary>
public sealed record PolicySourceStatus(
    string Source,
    string Origin,
    IReadOnlyList<PolicyError> Errors,
    IReadOnlyList<PolicyError> Warnings,
    IReadOnlyList<string> Skipped,
    IReadOnlyList<PolicyRef> Policies,
    DateTimeOffset? KeptFrom);

/// <summary>The status of one policy on this node: what it compiled to and where it applies.</summary>
public sealed record NetworkPolicyStatus(
    PolicyRef Policy,
    string Source,
    string State,
    bool Audit,
    int Entries,
    IReadOnlyList<string> Endpoints,
    IReadOnlyList<UnsupportedPart> Unsupported,
    IReadOnlyList<string> Notes);

/// <summary>
/// One change's cost, for the status: what caused it, the milliseconds spent parsing the
/// changed source (0 for other causes), compiling (and building the status) and writing the
/// datapath, and how many endpoints were compiled and written.
/// </summary>
public sealed record ChangeTiming(string Cause, DateTimeOffset At, double ParseMs, double CompileMs, double ApplyMs, int EndpointsCompiled, int EndpointsWritten);

/// <summary>One side of a connection to explain: a local pod, a set of labels, or an address.</summary>
public abstract record ExplainPeer
{
    public sealed record Pod(string Namespace, string Name) : ExplainPeer
    {
        public override string ToString() => $"{Namespace}/{Name}";
    }

    public sealed record Labels(IReadOnlyDictionary<string, string> Values, string? Namespace) : ExplainPeer
    {
        public override string ToString() => string.Join(",", Values.Select(kv => $"{kv.Key}={kv.Value}")) + (Namespace is null ? "" : $" in {Namespace}");
    }

    public sealed record Address(IPAddress Ip) : ExplainPeer
    {
        public override string ToString() => Ip.ToString();
    }
}

/// <summary>An explanation with what each side resolved to.</summary>
public sealed record NetworkExplanation(Explanation Result, string From, uint FromIdentity, string To, uint ToIdentity, byte Protocol, ushort Port);

/// <summary>
/// The agent's network-policy state: every policy (directory files and Kubernetes objects), the
/// local endpoints, the nodes, the enforcement settings. A change recompiles the local
/// endpoints it can affect (a policy change: the endpoints its old or new version selects,
/// or all of them when the CIDR identities change; any other change: all of them) with one
/// node-wide <see cref="RuleTable"/> and <see cref="CidrIdentityAllocator"/>
/// (rule numbers and CIDR identities stay stable for the agent's life, so a flow reported after
/// a change still names its rule), then writes what changed to the datapath: all endpoints are
/// compiled before anything is written, so a compilation that fails changes nothing. Without a
/// datapath (pod networking off) it validates and reports status only.
/// </summary>
public sealed class NetworkPolicyEngine
{
    /// <summary>A policy with this label (value "true") runs in audit mode: its verdicts are reported as AUDIT, nothing it would drop is dropped.</summary>
    public const string AuditLabel = "palisade.io/policy-audit-mode";

    // An identity no endpoint has, for explaining traffic of labels no local endpoint carries.
    private const uint HypotheticalIdentity = 0x00FF_FFF0;

    private readonly Lock _sync = new();
    private readonly Dictionary<string, SourceState> _sources = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, Endpoint> _endpoints = [];
    private readonly Dictionary<uint, EndpointPolicyMap> _applied = [];
    private readonly RuleTable _rules = new();
    private readonly CidrIdentityAllocator _cidrs = new();
    private readonly TimeProvider _time;
    private IReadOnlyList<KnownNode> _nodes;
    private NetworkPolicySettings _settings;
    private IPolicyDatapath? _datapath;
    private Dictionary<uint, EndpointPolicy> _compiled = [];
    private IReadOnlyList<NetworkPolicyStatus> _status = [];
    private IReadOnlyCollection<KeyValuePair<IPNetwork, uint>>? _appliedCidrs;
    private HashSet<CidrPrefix>? _compiledPrefixes;
    private bool _stale;

    public NetworkPolicyEngine(NetworkPolicySettings settings, string nodeName, TimeProvider? time = null)
    {
        _settings = settings;
        _time = time ?? TimeProvider.System;
        _nodes = [new KnownNode(nodeName, new Dictionary<string, string>(), IsLocal: true)];
    }

    private sealed record SourceState(string Origin, NetworkPolicyParseResult Parsed, IReadOnlyList<NetworkPolicyResource> InForce, IReadOnlyList<NormalizedPolicy> Normalized, DateTimeOffset? KeptFrom, DateTimeOffset LoadedAt);

    private static readonly IReadOnlyList<NormalizedPolicy> NoPolicies = [];

    /// <summary>Recompilations done (tests and status).</summary>
    public long Generation { get; private set; }

    /// <summary>What the last change cost: null before the first.</summary>
    public ChangeTiming? LastChange { get; private set; }

    /// <summary>The last error of compiling or applying; null when the last change went through.</summary>
    public string? LastError { get; private set; }

    public NetworkPolicySettings Settings
    {
        get
        {
            lock (_sync)
            {
                return _settings;
            }
        }
    }

    /// <summary>The datapath policies are written to; null: validate and report only (pod networking off).</summary>
    public void UseDatapath(IPolicyDatapath? datapath)
    {
        lock (_sync)
        {
            _datapath = datapath;
            _applied.Clear();
            _appliedCidrs = null;
            RecompileLocked("datapath");
        }
    }

    /// <summary>
    /// Sets the policies of one source from its text (YAML or JSON, several documents). A source
    /// with errors keeps the policies of its last good version, so a typo in an edit neither
    /// opens nor cuts traffic; its status names every error.
    /// </summary>
    public void SetSource(string source, string origin, string text)
    {
        var started = Stopwatch.GetTimestamp();
        var parsed = NetworkPolicyParser.Parse(text, source);
        var normalized = parsed.Ok ? [.. parsed.Policies.Select(NetworkPolicyNormalizer.Normalize)] : NoPolicies;
        var parseMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        lock (_sync)
        {
            var now = _time.GetUtcNow();
            var previous = _sources.GetValueOrDefault(source);
            if (parsed.Ok)
            {
                _sources[source] = new SourceState(origin, parsed, parsed.Policies, normalized, null, now);
            }
            else
            {
                var kept = previous?.InForce ?? [];
                _sources[source] = new SourceState(origin, parsed, kept, previous?.Normalized ?? NoPolicies, kept.Count > 0 ? previous!.KeptFrom ?? previous.LoadedAt : null, now);
            }
            RecompileLocked($"source {source}", parsed.Ok ? [.. previous?.Normalized ?? NoPolicies, .. normalized] : NoPolicies, parseMs);
        }
    }

    /// <summary>A source that cannot be read at all (I/O error): its status says why, its policies stay as they were.</summary>
    public void SetSourceUnreadable(string source, string origin, string why)
    {
        lock (_sync)
        {
            var previous = _sources.GetValueOrDefault(source);
            var kept = previous?.InForce ?? [];
            var parsed = new NetworkPolicyParseResult([], [new PolicyError("", why)], [], []);
            _sources[source] = new SourceState(origin, parsed, kept, previous?.Normalized ?? NoPolicies, kept.Count > 0 ? previous!.KeptFrom ?? previous.LoadedAt : null, _time.GetUtcNow());
            RecompileLocked($"source {source} unreadable", NoPolicies);
        }
    }

    public bool RemoveSource(string source)
    {
        lock (_sync)
        {
            if (!_sources.Remove(source, out var removed))
            {
                return false;
            }
            RecompileLocked($"source {source} removed", removed.Normalized);
            return true;
        }
    }

    /// <summary>The sources whose key starts with <paramref name="prefix"/> (a directory's files, Kubernetes objects).</summary>
    public IReadOnlyList<string> Sources(string prefix)
    {
        lock (_sync)
        {
            return [.. _sources.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal))];
        }
    }

    /// <summary>Replaces the set of local endpoints; only a real change recompiles.</summary>
    public void SetEndpoints(IReadOnlyCollection<Endpoint> endpoints)
    {
        lock (_sync)
        {
            var same = endpoints.Count == _endpoints.Count && endpoints.All(e => _endpoints.TryGetValue(e.Id, out var known) && SameEndpoint(known, e));
            if (same)
            {
                return;
            }
            _endpoints.Clear();
            foreach (var e in endpoints)
            {
                _endpoints[e.Id] = e;
            }
            foreach (var gone in _applied.Keys.Where(id => !_endpoints.ContainsKey(id)).ToList())
            {
                _applied.Remove(gone); // the datapath dropped its policy with the endpoint
            }
            RecompileLocked("endpoints");
        }
    }

    /// <summary>The nodes of the cluster with their labels (fromNodes/toNodes, host policies).</summary>
    public void SetNodes(IReadOnlyList<KnownNode> nodes)
    {
        lock (_sync)
        {
            _nodes = nodes;
            RecompileLocked("nodes");
        }
    }

    public void SetSettings(NetworkPolicySettings settings)
    {
        lock (_sync)
        {
            _settings = settings;
            RecompileLocked("settings");
        }
    }

    /// <summary>The policy, file and rule a map entry's rule number (pal_netpol_value.rule, a flow's PolicyRule) stands for; null for 0 and unknown numbers.</summary>
    public RuleOrigin? RuleOf(uint rule)
    {
        lock (_sync)
        {
            return _rules[rule];
        }
    }

    /// <summary>Every source with its errors, warnings and the policies it holds.</summary>
    public IReadOnlyList<PolicySourceStatus> SourceStatus()
    {
        lock (_sync)
        {
            return [.. _sources.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new PolicySourceStatus(kv.Key, kv.Value.Origin,
                kv.Value.Parsed.Errors, kv.Value.Parsed.Warnings, kv.Value.Parsed.Skipped, [.. kv.Value.InForce.Select(p => p.Ref)], kv.Value.KeptFrom))];
        }
    }

    /// <summary>Per policy in force: state, audit, entries, endpoints, unsupported parts.</summary>
    public IReadOnlyList<NetworkPolicyStatus> PolicyStatus()
    {
        lock (_sync)
        {
            return _status;
        }
    }

    /// <summary>The compiled policy of a local endpoint; null when it is not known.</summary>
    public EndpointPolicy? CompiledFor(uint endpointId)
    {
        lock (_sync)
        {
            return _compiled.GetValueOrDefault(endpointId);
        }
    }

    public IReadOnlyCollection<Endpoint> Endpoints
    {
        get
        {
            lock (_sync)
            {
                return [.. _endpoints.Values];
            }
        }
    }

    /// <summary>
    /// The verdict the datapath gives to <paramref name="from"/> -> <paramref name="to"/> on
    /// <paramref name="protocol"/>/<paramref name="port"/>, with the live compiled policies of the
    /// local endpoints; throws <see cref="ArgumentException"/> naming a side that cannot be resolved.
    /// </summary>
    public NetworkExplanation Explain(ExplainPeer from, ExplainPeer to, byte protocol, ushort port)
    {
        lock (_sync)
        {
            var hypothetical = new[] { from, to }.OfType<ExplainPeer.Labels>().FirstOrDefault();
            if (new[] { from, to }.OfType<ExplainPeer.Labels>().Count() > 1)
            {
                throw new ArgumentException("--from-labels and --to-labels together: at most one side can be given by labels; give the other as NS/POD or an address.");
            }
            var compiled = _compiled;
            var input = Input();
            if (hypothetical is not null)
            {
                // Labels no endpoint may carry: every local endpoint is compiled again knowing an
                // identity with them, so rules naming them get their entries.
                var labels = IdentityOf(hypothetical);
                input = input with { Identities = [.. input.Identities, new KnownIdentity(HypotheticalIdentity, labels, [])] };
                compiled = _endpoints.Values.ToDictionary(e => e.Id, e => EndpointPolicyCompiler.Compile(input, Subject(e), _rules, _cidrs));
                compiled[0] = EndpointPolicyCompiler.Compile(input, new PolicySubjectEndpoint(hypothetical.ToString(), hypothetical.Namespace, labels, []), _rules, _cidrs);
            }
            var (fromPolicy, fromId, fromName) = Resolve(from, compiled, input);
            var (toPolicy, toId, toName) = Resolve(to, compiled, input);
            var result = PolicyExplainer.Explain(fromPolicy, fromId, toPolicy, toId, protocol, port);
            return new NetworkExplanation(result, fromName, fromId, toName, toId, protocol, port);
        }
    }

    private (EndpointPolicy? Policy, uint Identity, string Name) Resolve(ExplainPeer peer, Dictionary<uint, EndpointPolicy> compiled, CompilationInput input)
    {
        switch (peer)
        {
            case ExplainPeer.Pod pod:
                var endpoint = _endpoints.Values.FirstOrDefault(e => e.PodNamespace == pod.Namespace && e.PodName == pod.Name)
                    ?? throw new ArgumentException($"pod {pod} has no endpoint on this node. Fix: name a pod of this node (palisade status lists its endpoints), or give its labels (--from-labels/--to-labels) or its address (--from-ip/--to-ip).");
                return (compiled.GetValueOrDefault(endpoint.Id), endpoint.Identity, $"{pod} (endpoint {endpoint.Id}, identity {endpoint.Identity})");
            case ExplainPeer.Labels labels:
                return (compiled.GetValueOrDefault(0u), HypotheticalIdentity, $"labels {labels}");
            case ExplainPeer.Address address:
                if (_endpoints.Values.FirstOrDefault(e => address.Ip.Equals(e.IPv4) || address.Ip.Equals(e.IPv6)) is { } local)
                {
                    return (compiled.GetValueOrDefault(local.Id), local.Identity, $"{address} ({local.PodNamespace}/{local.PodName}, endpoint {local.Id}, identity {local.Identity})");
                }
                // Not a local endpoint: the ipcache's answer, the longest CIDR identity holding it, else world.
                var best = _cidrs.Allocated
                    .Where(kv => kv.Key.Family == address.Ip.AddressFamily && new IPNetwork(kv.Key.Address, kv.Key.Length).Contains(address.Ip))
                    .OrderByDescending(kv => kv.Key.Length)
                    .Select(kv => (KeyValuePair<CidrPrefix, uint>?)kv)
                    .FirstOrDefault();
                return best is { } b
                    ? (null, b.Value, $"{address} (CIDR identity {b.Value} of {b.Key})")
                    : (null, ReservedIdentities.World, $"{address} (world, identity {ReservedIdentities.World})");
            default:
                throw new ArgumentException($"unknown peer {peer}");
        }
    }

    private static Dictionary<string, string> IdentityOf(ExplainPeer.Labels labels)
    {
        var ns = labels.Namespace ?? NetworkVocabulary.DefaultNamespace;
        var strings = IdentityLabels.For(ns, labels.Values, IdentityLabels.DefaultNamespaceLabels(ns));
        return ToCompilerLabels(strings);
    }

    /// <summary>Identity labels "k8s:key=value" as the compiler reads them: "k8s:key" -> "value".</summary>
    public static Dictionary<string, string> ToCompilerLabels(IEnumerable<string> labels)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var label in labels)
        {
            var colon = label.IndexOf(':', StringComparison.Ordinal);
            var eq = label.IndexOf('=', colon + 1);
            if (eq < 0)
            {
                result[label] = "";
            }
            else
            {
                result[label[..eq]] = label[(eq + 1)..];
            }
        }
        return result;
    }

    private static PolicySubjectEndpoint Subject(Endpoint e) =>
        new(e.PodName is null ? $"endpoint {e.Id}" : $"{e.PodNamespace}/{e.PodName}", e.PodNamespace, LabelsOf(e), NamedPortsOf(e));

    /// <summary>The endpoint's named ports as the compiler takes them (a protocol a container port cannot have is left out: the CNI and the Pod API only give TCP, UDP and SCTP).</summary>
    private static List<NamedPort> NamedPortsOf(Endpoint e) =>
        [.. e.NamedPorts.Select(p => (p, Name: p.Protocol.ToUpperInvariant()))
            .Where(x => NetworkVocabulary.KubernetesProtocols.Contains(x.Name))
            .Select(x => new NamedPort(x.p.Name, NetworkVocabulary.Protocol(x.Name)!.Value, x.p.Port))];

    private static Dictionary<string, string> LabelsOf(Endpoint e) => ToCompilerLabels(IdentityLabels.For(e.PodNamespace, e.Labels, e.NamespaceLabels));

    private static bool SameEndpoint(Endpoint a, Endpoint b) =>
        a.Identity == b.Identity && a.PodNamespace == b.PodNamespace && a.PodName == b.PodName && Equals(a.IPv4, b.IPv4) && Equals(a.IPv6, b.IPv6)
        && SameLabels(a.Labels, b.Labels) && SameLabels(a.NamespaceLabels, b.NamespaceLabels) && a.HostIfIndex == b.HostIfIndex
        && a.NamedPorts.SequenceEqual(b.NamedPorts);

    private static bool SameLabels(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private CompilationInput Input()
    {
        var sources = _sources.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value).ToList();
        var policies = sources.SelectMany(s => s.InForce);
        var audited = policies.Where(p => _settings.AuditAll || (p.Labels.TryGetValue(AuditLabel, out var v) && string.Equals(v, "true", StringComparison.OrdinalIgnoreCase)))
            .Select(p => p.Ref).ToHashSet();
        var namespaces = new HashSet<string>(_settings.AuditNamespaces, StringComparer.Ordinal);
        if (_settings.AuditAll)
        {
            namespaces.UnionWith(_endpoints.Values.Select(e => e.PodNamespace).OfType<string>());
        }
        var identities = _endpoints.Values
            .GroupBy(e => e.Identity)
            .Select(g => new KnownIdentity(g.Key, LabelsOf(g.First()), [.. g.SelectMany(NamedPortsOf).Distinct()], [.. g.SelectMany(e => new[] { e.IPv4, e.IPv6 }).OfType<IPAddress>()]))
            .ToList();
        return new CompilationInput([.. sources.SelectMany(s => s.Normalized)], identities, _nodes, _settings.Mode, new AuditSettings(namespaces, audited));
    }

    /// <summary>
    /// Compiles the local endpoints again. <paramref name="changed"/>: only policies changed
    /// (their old and new versions), so an endpoint none of them selects keeps its compilation,
    /// unless the CIDR identities changed or the last compilation failed; null: everything.
    /// </summary>
    private void RecompileLocked(string cause, IReadOnlyList<NormalizedPolicy>? changed = null, double parseMs = 0)
    {
        Generation++;
        var started = Stopwatch.GetTimestamp();
        CompilationInput input;
        Dictionary<uint, EndpointPolicy> compiled;
        var recompiled = 0;
        try
        {
            input = Input();
            var prefixes = EndpointPolicyCompiler.CidrPrefixes(input.Policies);
            var partial = changed is not null && !_stale && _compiledPrefixes is not null && _compiledPrefixes.SetEquals(prefixes);
            compiled = new Dictionary<uint, EndpointPolicy>(_endpoints.Count);
            foreach (var e in _endpoints.Values)
            {
                var subject = Subject(e);
                if (partial && _compiled.TryGetValue(e.Id, out var kept) && !changed!.Any(p => EndpointPolicyCompiler.Selects(p, subject)))
                {
                    compiled[e.Id] = kept;
                    continue;
                }
                compiled[e.Id] = EndpointPolicyCompiler.Compile(input, subject, _rules, _cidrs);
                recompiled++;
            }
            _compiledPrefixes = prefixes;
            _stale = false;
        }
#pragma warning disable CA1031 // a compiler bug must leave the datapath as it was and say so, never take the agent down
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            LastError = $"compiling the network policies failed, the datapath keeps the policies it had ({e.GetType().Name}: {e.Message}). This is a bug in Palisade: please report it with the policy files.";
            _stale = true;
            return;
        }
        _compiled = compiled;
        _status = BuildStatus(input, compiled);
        var compiledAt = Stopwatch.GetTimestamp();
        (LastError, var written) = Apply(compiled);
        LastChange = new ChangeTiming(cause, _time.GetUtcNow(), parseMs, Stopwatch.GetElapsedTime(started, compiledAt).TotalMilliseconds,
            Stopwatch.GetElapsedTime(compiledAt).TotalMilliseconds, recompiled, written);
    }

    private (string? Error, int Written) Apply(Dictionary<uint, EndpointPolicy> compiled)
    {
        if (_datapath is not { } datapath)
        {
            return (null, 0);
        }
        var written = 0;
        var problems = new List<string>();
        // CIDR identities first: the entries about to be written may name them.
        var cidrs = _cidrs.Allocated.Select(kv => KeyValuePair.Create(new IPNetwork(kv.Key.Address, kv.Key.Length), kv.Value)).OrderBy(kv => kv.Value).ToList();
        if (_appliedCidrs is null || !_appliedCidrs.SequenceEqual(cidrs))
        {
            try
            {
                datapath.SetCidrIdentities(cidrs);
                _appliedCidrs = cidrs;
            }
#pragma warning disable CA1031 // the kernel refusing a write is a status, not a crash
            catch (Exception e)
#pragma warning restore CA1031
            {
                problems.Add($"CIDR identities not written: {e.Message}");
            }
        }
        foreach (var (id, policy) in compiled.OrderBy(kv => kv.Key))
        {
            var map = PolicyMaps.From(policy);
            if (_applied.TryGetValue(id, out var before) && PolicyMaps.Same(before, map))
            {
                continue;
            }
            try
            {
                datapath.SetPolicy(_endpoints[id], map);
                _applied[id] = map;
                written++;
            }
#pragma warning disable CA1031 // one endpoint the kernel refuses must not keep the others from their policy
            catch (Exception e)
#pragma warning restore CA1031
            {
                _applied.Remove(id);
                problems.Add($"endpoint {id} ({_endpoints[id].PodNamespace}/{_endpoints[id].PodName}): policy not written: {e.Message}");
            }
        }
        return (problems.Count == 0 ? null : string.Join("; ", problems), written);
    }

    private List<NetworkPolicyStatus> BuildStatus(CompilationInput input, Dictionary<uint, EndpointPolicy> compiled)
    {
        var result = new List<NetworkPolicyStatus>();
        var audited = input.Audit.Policies;
        foreach (var policy in input.Policies)
        {
            var entries = 0;
            var endpoints = new List<string>();
            var notes = new List<string>();
            foreach (var (id, ep) in compiled.OrderBy(kv => kv.Key))
            {
                var mine = ep.Statuses.Where(s => s.Origin.Policy == policy.Policy && s.Origin.Source == policy.Source).ToList();
                var enables = ep.Ingress.EnabledBy.Concat(ep.Egress.EnabledBy).Any(o => o.Policy == policy.Policy && o.Source == policy.Source);
                if (mine.Count == 0 && !enables)
                {
                    continue;
                }
                var e = _endpoints[id];
                endpoints.Add(e.PodName is null ? $"endpoint {id}" : $"{e.PodNamespace}/{e.PodName}");
                entries += ep.Entries.Count(x => x.RuleRefs.Any(r => _rules[r] is { } o && o.Policy == policy.Policy && o.Source == policy.Source));
                notes.AddRange(mine.Where(s => s.Note is not null).Select(s => $"{s.Origin.Rule}: {s.Note}"));
            }
            var state = policy.Unsupported.Count == 0 ? "validated" : "partially-enforced";
            result.Add(new NetworkPolicyStatus(policy.Policy, policy.Source, state, audited.Contains(policy.Policy), entries, endpoints, policy.Unsupported, [.. notes.Distinct()]));
        }
        return result;
    }
}
