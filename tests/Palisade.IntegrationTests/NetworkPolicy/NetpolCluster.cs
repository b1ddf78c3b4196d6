using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using Palisade.Bpf;
using System.Text.Json;
using System.Text.Json.Nodes;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Testing;

namespace Palisade.IntegrationTests.NetworkPolicy;

/// <summary>
/// The agent's network-policy settings as the tests pass them. One place to adapt when the
/// agent's flags settle (docs/configuration.md on main is the authority).
/// </summary>
internal static class NetpolAgentFlags
{
    public const string PolicyDir = "--network-policy-dir";
    public const string Enforcement = "--policy-enforcement";
    public const string AuditNamespaces = "--policy-audit-namespaces";

    /// <summary>Named ports of a standalone pod (Kubernetes gives them from the Pod's container ports): docs/cni.md.</summary>
    public const string NamedPortsArg = "PALISADE_NAMED_PORTS";
}

/// <summary>
/// The netpol e2e suite's cluster on one node: the real agent with pod networking and a policy
/// directory, namespaces x, y, z with pods a, b, c made through palisade-cni (labels pod=NAME,
/// namespace labelled kubernetes.io/metadata.name=NS by the agent), each serving TCP and UDP on
/// ports 80 and 81 and answering with its own name, and a prober that tries every pair in
/// parallel. Dispose removes every pod, server, file and the agent.
/// </summary>
internal sealed class NetpolCluster : IDisposable
{
    private readonly string _dir;
    private readonly List<PodNamespace> _netns = [];
    private readonly Dictionary<string, (PodNamespace Netns, CniOutcome Add)> _pods = [];
    private readonly List<Process> _servers = [];
    private bool _disposed;

    /// <param name="withPolicyDir">Starts the agent with --network-policy-dir (the baseline without policies runs without it too).</param>
    /// <param name="agentArgs">More agent flags.</param>
    public NetpolCluster(bool withPolicyDir = true, string enforcement = "default", IReadOnlyList<string>? auditNamespaces = null, IReadOnlyList<string>? pods = null, IReadOnlyList<string>? agentArgs = null)
    {
        Kernel.RequireRoot();
        _dir = Helpers.RealPath(Directory.CreateTempSubdirectory("pal-netpol-").FullName);
        PolicyDir = Directory.CreateDirectory(Path.Combine(_dir, "policies")).FullName;
        var args = new List<string>(agentArgs ?? []);
        if (withPolicyDir)
        {
            args.AddRange([NetpolAgentFlags.PolicyDir, PolicyDir]);
        }
        if (enforcement != "default")
        {
            args.AddRange([NetpolAgentFlags.Enforcement, enforcement]);
        }
        if (auditNamespaces is { Count: > 0 })
        {
            args.AddRange([NetpolAgentFlags.AuditNamespaces, string.Join(',', auditNamespaces)]);
        }
        try
        {
            Network = new PalisadeNetwork([.. args]);
            AddPods(pods ?? NetpolPods.All);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public PalisadeNetwork Network { get; private set; } = null!;

    public AgentProcess Agent => Network.Agent!;

    public string PolicyDir { get; }

    public IReadOnlyCollection<string> Pods => _pods.Keys;

    public string Address(string pod) => pod == NetpolPods.Host ? Network.Gateway : _pods[pod].Add.FirstAddress();

    public PodNamespace Netns(string pod) => _pods[pod].Netns;

    /// <summary>Pod "NS/NAME" with labels "k=v,..." (default pod=NAME), serving 80 and 81 over TCP and UDP.</summary>
    private void AddPods(IEnumerable<string> pods)
    {
        var list = pods.Select(p => (Pod: p, Labels: $"pod={NetpolPods.NameOf(p)}")).ToList();
        AddPods(list);
    }

    public void AddPods(IReadOnlyList<(string Pod, string Labels)> pods)
    {
        var namedPorts = string.Join(',', NetpolPods.Probes.Select(p => $"{NetpolPods.PortName(p)}={p}"));
        var made = new ConcurrentDictionary<string, (PodNamespace, CniOutcome)>();
        var netns = pods.Select(_ => new PodNamespace("pal-np")).ToList();
        _netns.AddRange(netns);
        Parallel.For(0, pods.Count, i =>
        {
            var (pod, labels) = pods[i];
            var add = new CniInvoker(Network.PluginPath).Add(Network.Conflist, netns[i].Attachment(args:
                $"IgnoreUnknown=1;K8S_POD_NAMESPACE={NetpolPods.NamespaceOf(pod)};K8S_POD_NAME={NetpolPods.NameOf(pod)};PALISADE_LABELS={labels};{NetpolAgentFlags.NamedPortsArg}={namedPorts}"));
            Assert.True(add.Succeeded, $"ADD {pod}: {add}");
            made[pod] = (netns[i], add);
        });
        foreach (var (pod, value) in made)
        {
            _pods[pod] = value;
        }
        var servers = pods.Select(p => StartServer(_pods[p.Pod].Netns.Name, p.Pod)).ToList();
        foreach (var (server, pod) in servers.Zip(pods))
        {
            WaitServing(server, pod.Pod);
        }
    }

    /// <summary>
    /// The pods' server in <paramref name="netns"/> (null: the root namespace), answering
    /// <paramref name="name"/>, bound to <paramref name="bind"/>; stopped on dispose. Not yet
    /// bound when this returns: <see cref="WaitServing"/>.
    /// </summary>
    public Process StartServer(string? netns, string name, string bind = "0.0.0.0")
    {
        string[] command = ["python3", "-c", NetpolScripts.Server, name, bind];
        var server = Process.Start(new ProcessStartInfo(netns is null ? command[0] : "ip", netns is null ? command[1..] : ["netns", "exec", netns, .. command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        _servers.Add(server);
        return server;
    }

    public static void WaitServing(Process server, string name)
    {
        var ready = server.StandardOutput.ReadLineAsync();
        Assert.True(ready.Wait(TimeSpan.FromSeconds(30)) && ready.Result == "ready",
            $"the server of {name} did not start: {(ready.IsCompleted ? ready.Result : "no answer")} {(server.HasExited ? server.StandardError.ReadToEnd() : "")}");
    }

    /// <summary>
    /// Tries every target (key, address, port and protocol, the name its server answers) from
    /// <paramref name="from"/> (a pod, or the host) at once; true per key when the right server
    /// answered, else why not.
    /// </summary>
    public Dictionary<string, string> ProbeTargets(string from, IEnumerable<(string Key, string Address, NetpolProbe Probe, string Expect)> targets)
    {
        var list = targets.ToList();
        // Sockets belong to the network namespace they are made in: make them on a thread
        // inside the source's namespace, then use them from anywhere.
        var sockets = NetworkNamespace.Run(from == NetpolPods.Host ? null : _pods[from].Netns.Path, () =>
            list.Select(t => t.Probe.Protocol == "UDP"
                ? new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)
                : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)).ToArray());
        try
        {
            var answers = Task.WhenAll(list.Select((t, i) => ProbeOne(sockets[i], new IPEndPoint(IPAddress.Parse(t.Address), t.Probe.Port), t.Probe.Protocol, t.Expect))).GetAwaiter().GetResult();
            return list.Select((t, i) => (t.Key, answers[i])).ToDictionary(x => x.Key, x => x.Item2, StringComparer.Ordinal);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    /// <summary>"ok" when the server answered <paramref name="expect"/> (its name) within the timeout, else why not.</summary>
    private static async Task<string> ProbeOne(Socket socket, IPEndPoint to, string protocol, string expect)
    {
        using var timeout = new CancellationTokenSource(ProbeTimeout);
        var buffer = new byte[64];
        try
        {
            await socket.ConnectAsync(to, timeout.Token);
            if (protocol == "UDP")
            {
                await socket.SendAsync("probe"u8.ToArray(), SocketFlags.None, timeout.Token);
            }
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            var got = Encoding.UTF8.GetString(buffer, 0, n).Trim();
            return got == expect ? "ok" : $"answered \"{got}\"";
        }
        catch (OperationCanceledException)
        {
            return $"no answer within {ProbeTimeout.TotalSeconds} s";
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode.ToString();
        }
    }

    /// <summary>Writes <paramref name="yaml"/> as <paramref name="file"/> in the policy directory in one rename, then waits until the agent reports every one of <paramref name="names"/> applied.</summary>
    public void WritePolicy(string file, string yaml, IReadOnlyList<string> names)
    {
        var path = Path.Combine(PolicyDir, file);
        var temp = Path.Combine(_dir, file + ".tmp");
        File.WriteAllText(temp, yaml);
        File.Move(temp, path, overwrite: true);
        WaitForPolicies(names);
    }

    /// <summary>The case's YAML with this cluster's addresses, as case.yaml.</summary>
    public void Apply(NetpolCase c)
    {
        if (c.Yaml.Length > 0)
        {
            WritePolicy("case.yaml", Render(c), c.PolicyNames);
        }
    }

    public string Render(NetpolCase c) => c.Render(Address, Network.PodCidr);

    public void RemovePolicy(string file, IReadOnlyList<string> names)
    {
        File.Delete(Path.Combine(PolicyDir, file));
        Assert.True(Command.WaitUntil(() => !AppliedPolicies().Overlaps(names), PolicyBound),
            $"the agent still reports {string.Join(", ", names)} after {file} was removed: {PolicyStatusText()}\n{Agent.Log}");
    }

    // A safety net for the directory watcher and the compile, not a timing assertion.
    private static readonly TimeSpan PolicyBound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Waits (bounded) until the agent's status lists every policy of <paramref name="names"/>
    /// ("namespace/name", or "name" for a clusterwide policy) as applied.
    /// </summary>
    public void WaitForPolicies(IReadOnlyList<string> names)
    {
        Assert.True(Command.WaitUntil(() => AppliedPolicies().IsSupersetOf(names), PolicyBound),
            $"the agent did not report {string.Join(", ", names)} applied within {PolicyBound.TotalSeconds} s; it reports: {PolicyStatusText()}\n{Agent.Log}");
    }

    /// <summary>The path of the agent's network-policy status: {"network_policy": {"policies": [...]}}.</summary>
    public const string PolicyStatusPath = "/v1/network-policies";

    private string PolicyStatusText()
    {
        try
        {
            return Agent.Get(PolicyStatusPath);
        }
        catch (HttpRequestException e)
        {
            return $"GET {PolicyStatusPath}: {e.Message}";
        }
    }

    /// <summary>
    /// The policies the agent reports compiled into the maps: network_policy.policies entries
    /// ("namespace/name", or "name" for a clusterwide policy) whose state is "validated" or
    /// "partially-enforced" (a policy whose source failed to parse is not listed at all).
    /// </summary>
    public HashSet<string> AppliedPolicies()
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(Agent.Get(PolicyStatusPath));
        }
        catch (HttpRequestException)
        {
            return set;
        }
        var list = root?["network_policy"]?["policies"] as JsonArray ?? [];
        foreach (var p in list.OfType<JsonObject>())
        {
            if ((string?)p["state"] is not ("validated" or "partially-enforced"))
            {
                continue;
            }
            var ns = (string?)p["namespace"];
            set.Add(string.IsNullOrEmpty(ns) ? (string)p["name"]! : $"{ns}/{(string)p["name"]!}");
        }
        return set;
    }

    /// <summary>
    /// Every (source, pod, port, protocol) of <paramref name="probes"/> once, all at once: one
    /// set of sockets per source (inside its network namespace; the host's in the root one),
    /// each trying its targets in parallel with a short timeout, from sockets made in its network
    /// namespace (no process per probe: a full matrix costs one timeout at most).
    /// </summary>
    public Dictionary<NetpolProbe, Reachability> ProbeOnce(IReadOnlyList<NetpolProbe> probes, bool withHost)
    {
        var sources = withHost ? [.. Pods, NetpolPods.Host] : Pods.ToList();
        var results = new ConcurrentDictionary<string, Dictionary<string, string>>();
        Parallel.ForEach(sources, new ParallelOptions { MaxDegreeOfParallelism = sources.Count }, from =>
        {
            results[from] = ProbeTargets(from, Pods.Where(t => Reachability.IsCompared(from, t))
                .SelectMany(to => probes.Select(p => ($"{to}|{p}", Address(to), p, to))));
        });
        var matrices = probes.ToDictionary(p => p, _ => new Reachability(false, withHost));
        foreach (var (from, result) in results)
        {
            foreach (var (key, value) in result)
            {
                var (to, probe) = (key.Split('|')[0], probes.Single(p => p.ToString() == key.Split('|')[1]));
                matrices[probe][from, to] = value == "ok";
            }
        }
        return matrices;
    }

    // A reply between namespaces on one node comes in well under a millisecond; a dropped probe
    // costs the whole timeout, so this bounds a full run.
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    // The e2e suite probes again where the first answer differs (policies take effect a moment
    // after they are reported); three rounds, then the difference is the result.
    private const int Rounds = 3;

    /// <summary>Probes the case's matrix and fails, printing expected and observed grids, where the kernel differs from the case.</summary>
    public void Validate(NetpolCase c, string when = "")
    {
        Dictionary<NetpolProbe, Reachability> observed = [];
        List<string> failures = [];
        for (var round = 0; round < Rounds; round++)
        {
            var watch = Stopwatch.StartNew();
            observed = ProbeOnce(c.Probes, c.WithHost);
            TestContext.Current.TestOutputHelper?.WriteLine($"{c.Name}{when}: round {round + 1} probed {observed.Values.Sum(r => r.Sources.Count * Reachability.Destinations.Count - Reachability.Destinations.Count)} pairs in {watch.Elapsed.TotalSeconds:F1} s");
            failures = [.. c.Probes.Select(p => c.Expect(p).Compare(observed[p], $"{c.Name}{when} {p}")).OfType<string>()];
            if (failures.Count == 0)
            {
                return;
            }
        }
        Assert.Fail(string.Join("\n", failures) + $"\npolicy status: {PolicyStatusText()}\nagent log (tail):\n{Tail(Agent.Log)}");
    }

    private static string Tail(string log) => log.Length > 4000 ? log[^4000..] : log;

    /// <summary>Stops the agent (SIGTERM): pods, servers and the pinned datapath stay.</summary>
    public void StopAgent() => Network.Stop();

    public void StartAgent() => Network.Start();

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (var server in _servers)
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
                server.WaitForExit(5000);
            }
            server.Dispose();
        }
        if (Network?.Agent is not null)
        {
            foreach (var (netns, add) in _pods.Values)
            {
                new CniInvoker(Network.PluginPath).Del(Network.Conflist, netns.Attachment(), add.Json);
            }
        }
        _netns.ForEach(n => n.Dispose());
        Network?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>The pods' server and a client that holds one connection, small python3 programs (python3 is on every test machine: PodNetworkTests use it).</summary>
internal static class NetpolScripts
{
    /// <summary>
    /// argv[1]: the name to answer, argv[2]: the address to bind (0.0.0.0). TCP and UDP on ports 80 and 81. A TCP connection gets the
    /// name and a newline, then every line it sends echoed back until it closes; a datagram gets
    /// the name. Prints "ready" once every socket is bound.
    /// </summary>
    public const string Server = """
        import socket, sys, threading
        name = sys.argv[1].encode()
        bind = sys.argv[2] if len(sys.argv) > 2 else '0.0.0.0'
        def serve_tcp(s):
            while True:
                c, _ = s.accept()
                threading.Thread(target=talk, args=(c,), daemon=True).start()
        def talk(c):
            try:
                c.sendall(name + b'\n')
                f = c.makefile('rb')
                for line in f:
                    c.sendall(line)
            except OSError:
                pass
            finally:
                c.close()
        def serve_udp(s):
            while True:
                _, peer = s.recvfrom(2048)
                s.sendto(name, peer)
        threads = []
        for port in (80, 81):
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind((bind, port))
            t.listen(256)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind((bind, port))
            threads += [threading.Thread(target=serve_tcp, args=(t,), daemon=True), threading.Thread(target=serve_udp, args=(u,), daemon=True)]
        for t in threads:
            t.start()
        print('ready', flush=True)
        threading.Event().wait()
        """;

    /// <summary>
    /// argv[1] address, argv[2] port: one TCP connection held open. Prints the server's greeting,
    /// then for every line read from stdin sends it and prints the echo ("closed: why" when the
    /// connection fails).
    /// </summary>
    public const string HeldClient = """
        import socket, sys
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        f = s.makefile('rb')
        print(f.readline().decode().strip(), flush=True)
        for line in sys.stdin:
            try:
                s.sendall(line.encode())
                print(f.readline().decode().strip() or 'closed: eof', flush=True)
            except OSError as e:
                print('closed: ' + str(e), flush=True)
        """;
}
