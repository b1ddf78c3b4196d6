using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Palisade.Bpf;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Tests.Shared;

namespace Palisade.IntegrationTests;

/// <summary>
/// The real agent against the loopback API server (real list/watch protocol): TracingPolicy
/// objects are enforced in the kernel as they are created, changed and deleted, across a
/// dropped watch and a 410; a TracingPolicyNamespaced kills only in the cgroups of the pods
/// it selects; events carry their pod; status and Events reach the server. Pods are
/// processes placed in cgroups laid out the way kubelet's cgroupfs driver lays them out.
/// </summary>
public sealed class KubernetesTests : IDisposable
{
    private const string Node = "test-node";
    private const string ClusterPolicies = "cilium.io/v1alpha1/tracingpolicies";
    private const string NamespacedPolicies = "cilium.io/v1alpha1/tracingpoliciesnamespaced";
    private const string Pods = "v1/pods";
    private readonly FakeKubeApiServer _api = new();
    private readonly string _dir;
    private readonly string _secret;
    private readonly string _cgroups;

    public KubernetesTests()
    {
        Kernel.Require();
        _dir = Helpers.RealPath(Directory.CreateTempSubdirectory("pal-k8s-").FullName);
        _secret = Path.Combine(_dir, "secret");
        File.WriteAllText(_secret, "TOP-SECRET\n");
        var root = KernelEnvironment.Cgroup2Root() ?? throw new InvalidOperationException("cgroup2 is not mounted");
        _cgroups = Path.Combine(root, $"palisade-k8s-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40], "kubepods");
        Directory.CreateDirectory(_cgroups);
        _api.Create(Pods.Replace("pods", "nodes", StringComparison.Ordinal), new JsonObject
        {
            ["apiVersion"] = "v1", ["kind"] = "Node", ["metadata"] = new JsonObject { ["name"] = Node, ["labels"] = new JsonObject { ["zone"] = "a" } },
        });
    }

    public void Dispose()
    {
        _api.Dispose();
        // Leaves first; the processes placed there have exited.
        foreach (var dir in Directory.EnumerateDirectories(_cgroups, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(_cgroups).Append(Path.GetDirectoryName(_cgroups)!))
        {
            TestCgroup.Remove(dir);
        }
        Directory.Delete(_dir, recursive: true);
    }

    private AgentProcess StartAgent(string exportFile) =>
        AgentProcess.Start("--kubeconfig", _api.WriteKubeconfig(_dir), "--node-name", Node, "--export-filename", exportFile, "--kubernetes-pod-wait", "10s");

    private void WaitWatching(AgentProcess agent)
    {
        agent.WaitReady();
        Assert.True(Command.WaitUntil(() => _api.Requests.ToList().Any(r => r.Contains("tracingpoliciesnamespaced?", StringComparison.Ordinal) && r.Contains("watch=true", StringComparison.Ordinal))
            && _api.Requests.ToList().Any(r => r.Contains("/tracingpolicies?", StringComparison.Ordinal) && r.Contains("watch=true", StringComparison.Ordinal)), TimeSpan.FromSeconds(30)),
            "the agent never watched the policies:\n" + agent.Log);
    }

    /// <summary>Opens the secret with the opener helper, in <paramref name="cgroup"/> when given; returns the exit code (137: killed).</summary>
    private int Open(string? cgroup = null) => cgroup is null
        ? Command.Run(Helpers.Path("opener"), "open", _secret).ExitCode
        : Command.Run("/bin/sh", "-c", $"echo $$ > {cgroup}/cgroup.procs && exec {Helpers.Path("opener")} open {_secret}").ExitCode;

    private static JsonObject Policy(string yaml) => FakeKubeApiServer.FromYaml(yaml);

    private JsonObject? NodeStatus(string collection, string name, string? ns = null) =>
        _api.Get(collection, name, ns)?["status"]?["nodes"]?[Node]?.AsObject();

    [Fact]
    public void ATracingPolicyIsEnforcedUpdatedAndDeletedThroughTheApiServerAcrossDropsAnd410()
    {
        using var agent = StartAgent(Path.Combine(_dir, "events.json"));
        WaitWatching(agent);
        Assert.Equal(0, Open());

        var clock = Stopwatch.StartNew();
        _api.Create(ClusterPolicies, Policy(TestPolicies.FdInstallKill("k8s-secret", _secret)));
        // The bound is a safety net on a loaded machine; how long it took is reported, not asserted.
        Assert.True(Command.WaitUntil(() => Open() == 137, TimeSpan.FromSeconds(30)), $"not enforced within 30 s of the create:\n{agent.Log}");
        TestContext.Current.TestOutputHelper?.WriteLine($"create → enforced in the kernel: {clock.ElapsedMilliseconds} ms");

        // The node's status and an Event reach the API server.
        Assert.True(Command.WaitUntil(() => NodeStatus(ClusterPolicies, "k8s-secret")?["state"]?.GetValue<string>() == "enabled", TimeSpan.FromSeconds(30)), agent.Log);
        var status = NodeStatus(ClusterPolicies, "k8s-secret")!;
        Assert.Equal("enforce", status["mode"]!.GetValue<string>());
        Assert.Equal("kprobe fd_install", status["hooks"]![0]!["hook"]!.GetValue<string>());
        Assert.Equal("emulated", status["hooks"]![0]!["status"]!.GetValue<string>());
        Assert.Equal(1, status["observedGeneration"]!.GetValue<long>());
        Assert.Contains(_api.Patches.ToList(), p => p.Path == "/apis/cilium.io/v1alpha1/tracingpolicies/k8s-secret/status");
        Assert.True(Command.WaitUntil(() => _api.Events.ToList().Any(e => e["reason"]?.GetValue<string>() == "PolicyEnabled"
            && e["involvedObject"]?["name"]?.GetValue<string>() == "k8s-secret" && e["involvedObject"]?["kind"]?.GetValue<string>() == "TracingPolicy"), TimeSpan.FromSeconds(30)), agent.Log);

        // Update: monitor mode counts, does not kill.
        _api.Update(ClusterPolicies, Policy(TestPolicies.FdInstallKill("k8s-secret", _secret, mode: "monitor")));
        Assert.True(Command.WaitUntil(() => Open() == 0, TimeSpan.FromSeconds(30)), agent.Log);

        // The watch drops and the policy changes before the agent is back: the change arrives.
        _api.DropWatches();
        _api.Update(ClusterPolicies, Policy(TestPolicies.FdInstallKill("k8s-secret", _secret, mode: "enforce")));
        Assert.True(Command.WaitUntil(() => Open() == 137, TimeSpan.FromSeconds(30)), "the update made during a dropped watch was lost:\n" + agent.Log);

        // Deleted while the agent's resourceVersion is compacted away: 410, relist, enforcement stops.
        _api.ChangeUnseen(() => _api.Delete(ClusterPolicies, "k8s-secret"));
        Assert.True(Command.WaitUntil(() => Open() == 0, TimeSpan.FromSeconds(30)), "the delete made before a 410 was lost:\n" + agent.Log);
        Assert.Contains("410 Gone", agent.Log, StringComparison.Ordinal);
        Assert.True(agent.Terminate());
    }

    [Fact]
    public void ANamespacedPolicyKillsOnlyInTheSelectedPodsCgroupsAndEventsCarryThePod()
    {
        var events = Path.Combine(_dir, "events.json");
        using var agent = StartAgent(events);
        WaitWatching(agent);

        // Pod A (team-a, app=web) is selected; pod B (team-a, app=db) fails the podSelector;
        // pod C (team-b, app=web) is in another namespace.
        var a = AddPod("team-a", "web-7d9f8-abcde", "web", "main", "docker.io/library/nginx:1.27", owner: ("ReplicaSet", "web-7d9f8"), hash: "7d9f8");
        var b = AddPod("team-a", "db-0", "db", "postgres", "docker.io/library/postgres:17", owner: ("StatefulSet", "db"));
        var c = AddPod("team-b", "web-1", "web", "main", "docker.io/library/nginx:1.27");

        _api.Create(NamespacedPolicies, Policy(TestPolicies.FdInstallKill("web-secret", _secret, ns: "team-a", podLabel: "app: web")));
        Assert.True(Command.WaitUntil(() => Open(a.Cgroup) == 137, TimeSpan.FromSeconds(30)), "pod A's process was not killed:\n" + agent.Log);
        Assert.Equal(0, Open(b.Cgroup));
        Assert.Equal(0, Open(c.Cgroup));
        Assert.Equal(0, Open()); // a host process
        Assert.True(Command.WaitUntil(() => NodeStatus(NamespacedPolicies, "web-secret", "team-a")?["state"]?.GetValue<string>() == "enabled", TimeSpan.FromSeconds(30)), agent.Log);
        Assert.Contains(_api.Patches.ToList(), p => p.Path == "/apis/cilium.io/v1alpha1/namespaces/team-a/tracingpoliciesnamespaced/web-secret/status");

        // A pod whose process runs before its Pod object reaches the agent: the events wait for it.
        var lateUid = "00000000-0000-4000-8000-00000000beef";
        var lateContainer = new string('d', 64);
        var lateCgroup = Path.Combine(_cgroups, $"pod{lateUid}", lateContainer);
        Directory.CreateDirectory(lateCgroup);
        long Held()
        {
            using var s = agent.Status();
            return s.RootElement.GetProperty("kubernetes").GetProperty("pod_context").GetProperty("held_events").GetInt64();
        }
        var heldBefore = Held();
        Assert.Equal(0, Command.Run("/bin/sh", "-c", $"echo $$ > {lateCgroup}/cgroup.procs && exec /bin/true late-pod-marker").ExitCode);
        // The Pod object goes out only once the agent holds the process's events, else this is not the late case.
        Assert.True(Command.WaitUntil(() => Held() > heldBefore, TimeSpan.FromSeconds(30)), "the late pod's events were never held:\n" + agent.Get("/v1/status"));
        var latePod = FakeKubeApiServer.Pod("team-b", "late", Node, new Dictionary<string, string> { ["app"] = "late" }, [("main", lateContainer, "busybox:1")]);
        latePod["metadata"]!["uid"] = lateUid;
        _api.Create(Pods, latePod);

        // The kill's event names pod A with its workload and container; B's exec names pod B.
        JsonElement[] lines = [];
        Assert.True(Command.WaitUntil(() =>
        {
            lines = ReadEvents(events);
            return lines.Any(e => e.TryGetProperty("process_kprobe", out var k) && k.GetProperty("action").GetString() == "KPROBE_ACTION_SIGKILL")
                && lines.Any(e => Exec(e) is { } x && Args(x) == "late-pod-marker")
                // Events carry this node's Node labels (Tetragon's node_labels) once the Node is read.
                && lines.Any(e => e.TryGetProperty("node_labels", out var nl) && nl.TryGetProperty("zone", out var zone) && zone.GetString() == "a");
        }, TimeSpan.FromSeconds(20)), agent.Log);
        var kill = lines.First(e => e.TryGetProperty("process_kprobe", out var k) && k.GetProperty("action").GetString() == "KPROBE_ACTION_SIGKILL").GetProperty("process_kprobe");
        Assert.Equal("web-secret", kill.GetProperty("policy_name").GetString());
        var pod = kill.GetProperty("process").GetProperty("pod");
        Assert.Equal("team-a", pod.GetProperty("namespace").GetString());
        Assert.Equal("web-7d9f8-abcde", pod.GetProperty("name").GetString());
        Assert.Equal(a.Uid, pod.GetProperty("uid").GetString());
        Assert.Equal("web", pod.GetProperty("pod_labels").GetProperty("app").GetString());
        Assert.Equal("web", pod.GetProperty("workload").GetString());
        Assert.Equal("Deployment", pod.GetProperty("workload_kind").GetString());
        var container = pod.GetProperty("container");
        Assert.Equal($"containerd://{a.ContainerId}", container.GetProperty("id").GetString());
        Assert.Equal("main", container.GetProperty("name").GetString());
        Assert.Equal("docker.io/library/nginx:1.27", container.GetProperty("image").GetProperty("name").GetString());
        Assert.True(container.TryGetProperty("start_time", out _));

        var bExec = lines.Select(Exec).First(x => x is { } e && e.TryGetProperty("pod", out var p) && p.GetProperty("name").GetString() == "db-0")!.Value;
        Assert.Equal("StatefulSet", bExec.GetProperty("pod").GetProperty("workload_kind").GetString());

        var lateExec = lines.Select(Exec).First(x => x is { } e && Args(e) == "late-pod-marker")!.Value;
        Assert.Equal("late", lateExec.GetProperty("pod").GetProperty("name").GetString());

        // Deleting the pod's policy ends enforcement there too.
        _api.Delete(NamespacedPolicies, "web-secret", "team-a");
        Assert.True(Command.WaitUntil(() => Open(a.Cgroup) == 0, TimeSpan.FromSeconds(30)), agent.Log);
        Assert.True(agent.Terminate());
    }

    private static string? Args(JsonElement process) => process.TryGetProperty("arguments", out var a) ? a.GetString() : null;

    /// <summary>The process object of a process_exec event.</summary>
    private static JsonElement? Exec(JsonElement e) => e.TryGetProperty("process_exec", out var x) ? x.GetProperty("process") : null;

    private static JsonElement[] ReadEvents(string file)
    {
        if (!File.Exists(file))
        {
            return [];
        }
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return [.. reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    private (string Uid, string ContainerId, string Cgroup) AddPod(string ns, string name, string app, string container, string image,
        (string Kind, string Name)? owner = null, string? hash = null)
    {
        var labels = new Dictionary<string, string> { ["app"] = app };
        if (hash is not null)
        {
            labels["pod-template-hash"] = hash;
        }
        var containerId = Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant() + Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant();
        var owners = owner is { } o
            ? new JsonArray(new JsonObject { ["apiVersion"] = "apps/v1", ["kind"] = o.Kind, ["name"] = o.Name, ["uid"] = Guid.NewGuid().ToString(), ["controller"] = true })
            : null;
        var created = _api.Create(Pods, FakeKubeApiServer.Pod(ns, name, Node, labels, [(container, containerId, image)], owners));
        var uid = created["metadata"]!["uid"]!.GetValue<string>();
        var cgroup = Path.Combine(_cgroups, $"pod{uid}", containerId);
        Directory.CreateDirectory(cgroup);
        return (uid, containerId, cgroup);
    }
}
