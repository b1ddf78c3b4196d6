using System.Text.Json;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Palisade.Events;
using Palisade.Kubernetes;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Runtime.Policies;
using Palisade.Tests.Shared;
using Xunit;

namespace Palisade.Tests;

/// <summary>Pod context, workloads, pod scoping, the hold-back gate, status reports and the policy controller: no API server, no kernel.</summary>
public sealed class KubernetesPodTests
{
    private const string IdA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string IdB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    private static V1Pod Pod(string ns, string name, string uid, IDictionary<string, string>? labels = null, string containerId = IdA,
        string container = "main", string image = "docker.io/library/nginx:1.27", params V1OwnerReference[] owners)
    {
        var json = FakeKubeApiServer.Pod(ns, name, "n1", labels?.ToDictionary(), [(container, containerId, image)]);
        var pod = KubernetesJson.Deserialize<V1Pod>(json.ToJsonString());
        pod.Metadata.Uid = uid;
        pod.Metadata.OwnerReferences = owners.Length > 0 ? owners : null;
        return pod;
    }

    private static V1OwnerReference Owner(string kind, string name) =>
        new() { ApiVersion = "apps/v1", Kind = kind, Name = name, Uid = Guid.NewGuid().ToString(), Controller = true };

    /// <summary>A clock the test moves; its timers never fire (the test sweeps by hand).</summary>
    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new Idle();

        private sealed class Idle : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    [Fact]
    public void WorkloadsAreTheControllersPeopleName()
    {
        var labels = new Dictionary<string, string> { ["pod-template-hash"] = "5d8f7c" };
        Assert.Equal(("web", "Deployment"), PodCache.Workload(Pod("d", "web-5d8f7c-x1", "u", labels, owners: Owner("ReplicaSet", "web-5d8f7c"))));
        Assert.Equal(("rs-only", "ReplicaSet"), PodCache.Workload(Pod("d", "rs-only-x1", "u", owners: Owner("ReplicaSet", "rs-only"))));
        Assert.Equal(("backup", "CronJob"), PodCache.Workload(Pod("d", "backup-29012345-abc", "u", owners: Owner("Job", "backup-29012345"))));
        Assert.Equal(("migrate", "Job"), PodCache.Workload(Pod("d", "migrate-abc", "u", owners: Owner("Job", "migrate"))));
        Assert.Equal(("db", "StatefulSet"), PodCache.Workload(Pod("d", "db-0", "u", owners: Owner("StatefulSet", "db"))));
        Assert.Equal(("bare", "Pod"), PodCache.Workload(Pod("d", "bare", "u")));
    }

    [Fact]
    public void ProcessesFindTheirPodByContainerIdOrByPodUidWhileTheContainerIsNew()
    {
        var cache = new PodCache();
        Assert.Null(cache.Resolve(new ContainerContext(IdA, "uid-1", 7)));
        cache.OnUpsert(Pod("team-a", "web-1", "uid-1", new Dictionary<string, string> { ["app"] = "web" }), null);

        var pod = cache.Resolve(new ContainerContext(IdA, "uid-1", 7))!;
        Assert.Equal(("team-a", "web-1", "uid-1"), (pod.Namespace, pod.Name, pod.Uid));
        Assert.Equal("web", pod.Labels!["app"]);
        Assert.Equal($"containerd://{IdA}", pod.Container!.Id);
        Assert.Equal("main", pod.Container.Name);
        Assert.Equal("docker.io/library/nginx:1.27", pod.Container.ImageName);
        Assert.NotNull(pod.Container.StartTime);

        // A container not in the status yet: the pod is known by the uid in the cgroup path.
        var fresh = cache.Resolve(new ContainerContext(IdB, "uid-1", 8))!;
        Assert.Equal("web-1", fresh.Name);
        Assert.Equal(IdB, fresh.Container!.Id);

        cache.OnDelete(Pod("team-a", "web-1", "uid-1"));
        Assert.Null(cache.Resolve(new ContainerContext(IdA, "uid-1", 7)));
        Assert.Equal(0, cache.Count);
    }

    private static ProcessRecord Record(string? podUid, string? containerId = IdA) => new()
    {
        ExecId = Guid.NewGuid().ToString(),
        Pid = 42,
        Ktime = 1,
        StartTime = DateTimeOffset.UnixEpoch,
        Binary = "/bin/true",
        PodUid = podUid,
        ContainerId = podUid is null ? null : containerId,
    };

    private static ProcessExecEvent Exec(ProcessRecord p) => new() { Time = DateTimeOffset.UnixEpoch, Process = p };

    private static ProcessExitEvent Exit(ProcessRecord p) => new() { Time = DateTimeOffset.UnixEpoch, Process = p };

    [Fact]
    public void EventsOfAPodNotSeenYetWaitForItInOrderAndOthersDoNot()
    {
        var hub = new EventHub();
        using var sub = hub.Subscribe("test", 100);
        var cache = new PodCache();
        var time = new ManualTime();
        using var gate = new PodContextGate(hub, cache, TimeSpan.FromSeconds(3), time);
        hub.SetGate(gate);

        var host = Record(null);
        var inPod = Record("uid-1");
        hub.Publish(Exec(host));
        hub.Publish(Exec(inPod));
        hub.Publish(Exit(inPod));
        Assert.True(sub.Reader.TryRead(out var first));
        Assert.Same(host, first!.Process);
        Assert.False(sub.Reader.TryRead(out _)); // held
        Assert.Equal(1, gate.Pending);

        cache.OnUpsert(Pod("team-a", "web-1", "uid-1"), null); // the pod arrives: released with context, in order
        Assert.True(sub.Reader.TryRead(out var exec));
        Assert.True(sub.Reader.TryRead(out var exit));
        Assert.IsType<ProcessExecEvent>(exec);
        Assert.IsType<ProcessExitEvent>(exit);
        Assert.Equal("web-1", exec!.Process!.Pod!.Name);
        Assert.Equal(1, gate.ResolvedLate);

        // Known now: later processes of the pod pass straight through with their pod.
        var next = Record("uid-1");
        hub.Publish(Exec(next));
        Assert.True(sub.Reader.TryRead(out var direct));
        Assert.Equal("web-1", direct!.Process!.Pod!.Name);
    }

    [Fact]
    public void APodThatNeverArrivesReleasesItsEventsAfterTheWindowAndIsCounted()
    {
        var hub = new EventHub();
        using var sub = hub.Subscribe("test", 100);
        var time = new ManualTime();
        using var gate = new PodContextGate(hub, new PodCache(), TimeSpan.FromSeconds(3), time);
        hub.SetGate(gate);
        hub.Publish(Exec(Record("uid-gone")));
        time.Advance(TimeSpan.FromSeconds(2));
        gate.Sweep();
        Assert.False(sub.Reader.TryRead(out _));
        time.Advance(TimeSpan.FromSeconds(2));
        gate.Sweep();
        Assert.True(sub.Reader.TryRead(out var late));
        Assert.Null(late!.Process!.Pod);
        Assert.Equal(1, gate.Expired);
    }

    private static TracingPolicy Parse(string yaml)
    {
        var parsed = TracingPolicyParser.Parse(yaml, "test");
        Assert.Empty(parsed.Errors);
        return Assert.Single(parsed.Policies);
    }

    private const string Hook = """
          kprobes:
          - call: "sys_openat"
            syscall: true
        """;

    [Fact]
    public void ScopesSelectByNamespacePodLabelsAndContainer()
    {
        var web = Pod("team-a", "web", "uid-web", new Dictionary<string, string> { ["app"] = "web" }, IdA, "main", "docker.io/library/nginx:1.27");
        var db = Pod("team-a", "db", "uid-db", new Dictionary<string, string> { ["app"] = "db" }, IdB, "postgres", "postgres:17");
        var other = Pod("team-b", "web", "uid-other", new Dictionary<string, string> { ["app"] = "web" }, new string('c', 64));
        var cgroups = new Dictionary<string, List<PodCgroup>>
        {
            ["uid-web"] = [new(10, null, "/pod-web"), new(11, IdA, "/pod-web/a"), new(12, new string('e', 64), "/pod-web/sidecar")],
            ["uid-db"] = [new(20, null, "/pod-db"), new(21, IdB, "/pod-db/b")],
            ["uid-other"] = [new(30, null, "/pod-other"), new(31, new string('c', 64), "/pod-other/c")],
        };
        var pods = new[] { web, db, other };

        var ns = Parse($"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicyNamespaced\nmetadata:\n  name: p\n  namespace: team-a\nspec:\n{Hook}");
        Assert.Equal([10UL, 11, 12, 20, 21], PodScopes.For(ns, pods, cgroups).Order().ToArray());

        var selected = Parse($"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicyNamespaced\nmetadata:\n  name: p\n  namespace: team-a\nspec:\n  podSelector:\n    matchExpressions:\n    - key: app\n      operator: In\n      values: [web]\n{Hook}");
        Assert.Equal([10UL, 11, 12], PodScopes.For(selected, pods, cgroups).Order().ToArray());

        // A cluster-wide policy with a podSelector spans namespaces.
        var cluster = Parse($"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: p\nspec:\n  podSelector:\n    matchLabels:\n      app: web\n{Hook}");
        Assert.Equal([10UL, 11, 12, 30, 31], PodScopes.For(cluster, pods, cgroups).Order().ToArray());

        // containerSelector keeps only the containers it names (and not the pod's own cgroup).
        var containers = Parse($"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: p\nspec:\n  containerSelector:\n    matchExpressions:\n    - key: name\n      operator: In\n      values: [main]\n{Hook}");
        Assert.Equal([11UL, 31], PodScopes.For(containers, pods, cgroups).Order().ToArray());
        var repo = Parse($"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: p\nspec:\n  containerSelector:\n    matchLabels:\n      repo: postgres\n{Hook}");
        Assert.Equal([21UL], PodScopes.For(repo, pods, cgroups).Order().ToArray());
    }

    [Theory]
    [InlineData("nginx", "nginx")]
    [InlineData("nginx:1.27", "nginx")]
    [InlineData("docker.io/library/nginx:1.27@sha256:abc", "docker.io/library/nginx")]
    [InlineData("registry:5000/team/app", "registry:5000/team/app")]
    [InlineData("registry:5000/team/app:v2", "registry:5000/team/app")]
    public void ImageRepositoriesDropTagAndDigest(string image, string repo) => Assert.Equal(repo, PodScopes.Repo(image));

    [Fact]
    public void PodCgroupsAreFoundInTheKubeletLayoutsWithTheirContainerIds()
    {
        var root = Directory.CreateTempSubdirectory("pal-cg-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "kubepods", "besteffort", "pod11111111-2222-3333-4444-555555555555", IdA));
            Directory.CreateDirectory(Path.Combine(root, "kubepods.slice", "kubepods-burstable.slice",
                "kubepods-burstable-pod66666666_7777_8888_9999_000000000000.slice", $"cri-containerd-{IdB}.scope"));
            Directory.CreateDirectory(Path.Combine(root, "system.slice", "sshd.service"));
            var found = PodCgroups.Scan(root);
            Assert.Equal(["11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"], found.Keys.Order());
            Assert.Equal([null, IdA], found["11111111-2222-3333-4444-555555555555"].Select(c => c.ContainerId));
            Assert.Equal([null, IdB], found["66666666-7777-8888-9999-000000000000"].Select(c => c.ContainerId));
            Assert.All(found.Values.SelectMany(v => v), c => Assert.NotEqual(0UL, c.Id));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Fact]
    public void TheStatusPatchWritesOnlyThisNodesEntry()
    {
        var report = new NodePolicyReport("TracingPolicy", "p", null, "uid", 3, "partially_enabled", "enforce", "lsm file_open: no BPF LSM",
            [new HookReport("kprobe", "fd_install", "emulated", "openat exit", []), new HookReport("lsm", "file_open", "unsupported", "no BPF LSM", [])], 4096);
        using var doc = JsonDocument.Parse(StatusReporter.StatusPatch("node-1", report, DateTimeOffset.Parse("2026-11-23T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture)));
        var status = doc.RootElement.GetProperty("status");
        Assert.Equal(["nodes"], status.EnumerateObject().Select(p => p.Name));
        var node = status.GetProperty("nodes").GetProperty("node-1");
        Assert.Equal("partially_enabled", node.GetProperty("state").GetString());
        Assert.Equal(3, node.GetProperty("observedGeneration").GetInt64());
        Assert.Equal("lsm file_open", node.GetProperty("hooks")[1].GetProperty("hook").GetString());
        Assert.Equal("unsupported", node.GetProperty("hooks")[1].GetProperty("status").GetString());
        Assert.Equal("2026-11-23T10:00:00Z", node.GetProperty("lastUpdateTime").GetString());
        // Every field we write is one the CRD's status schema declares.
        Assert.All(node.EnumerateObject(), p => Assert.Contains(p.Name, Palisade.Policies.Tracing.TracingPolicySchema.NodeStatus.Names));
    }

    private sealed class FakeSink : IPolicySink
    {
        public List<string> Calls { get; } = [];

        public PolicyStatus Apply(TracingPolicy policy, string source, IReadOnlyCollection<ulong> scope)
        {
            Calls.Add($"apply {policy.Key} mode={policy.Spec.Mode ?? "enforce"} scope={string.Join(",", scope.Order())}");
            return new PolicyStatus(policy.Key, "enabled", policy.Spec.Mode ?? "enforce", true, [], [], 0, PolicyCounters.Zero, source);
        }

        public bool Delete(string key)
        {
            Calls.Add($"delete {key}");
            return true;
        }

        public bool SetScope(string key, IReadOnlyCollection<ulong> scope)
        {
            Calls.Add($"scope {key} {string.Join(",", scope.Order())}");
            return true;
        }
    }

    private static CustomObject Object(string yaml, long generation, string? uid = "u1")
    {
        var obj = KubernetesJson.Deserialize<CustomObject>(FakeKubeApiServer.FromYaml(yaml).ToJsonString());
        obj.Metadata.Generation = generation;
        obj.Metadata.Uid = uid;
        return obj;
    }

    [Fact]
    public void TheControllerAppliesChangesOnceIgnoresStatusOnlyUpdatesAndHonoursNodeSelector()
    {
        var sink = new FakeSink();
        var reports = new List<NodePolicyReport>();
        using var controller = new PolicyController(sink, new PodCache(), null, reports.Add, NullLogger.Instance, TimeSpan.FromHours(1));
        var handler = controller.HandlerFor("TracingPolicy");
        var yaml = $"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: p\nspec:\n{Hook}";
        handler.OnUpsert(Object(yaml, 1), null);
        handler.OnUpsert(Object(yaml, 1), null); // our own status patch coming back: no re-apply
        handler.OnUpsert(Object(yaml.Replace("spec:\n", "spec:\n  options:\n  - name: policy-mode\n    value: monitor\n", StringComparison.Ordinal), 2), null);
        Assert.Equal(["apply p mode=enforce scope=", "apply p mode=monitor scope="], sink.Calls);
        Assert.Equal(["enabled", "enabled"], reports.Select(r => r.State));

        // A bad update keeps the last good version and reports the error with its field path.
        handler.OnUpsert(Object(yaml.Replace("syscall: true", "syscall: maybe", StringComparison.Ordinal), 3), null);
        Assert.Equal(2, sink.Calls.Count);
        Assert.Equal("error", reports[^1].State);
        Assert.Contains("spec.kprobes[0].syscall", reports[^1].Message, StringComparison.Ordinal);
        Assert.Contains("previous version keeps running", reports[^1].Message, StringComparison.Ordinal);

        // nodeSelector: unloaded on a node it does not select, loaded again when the labels change.
        var selective = $"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: zoned\nspec:\n  nodeSelector:\n    matchLabels:\n      zone: b\n{Hook}";
        controller.NodeHandler.OnUpsert(new V1Node { Metadata = new V1ObjectMeta { Name = "n1", Labels = new Dictionary<string, string> { ["zone"] = "a" } } }, null);
        handler.OnUpsert(Object(selective, 1, "u2"), null);
        Assert.Equal("disabled", reports[^1].State);
        Assert.DoesNotContain(sink.Calls, c => c.StartsWith("apply zoned", StringComparison.Ordinal));
        controller.NodeHandler.OnUpsert(new V1Node { Metadata = new V1ObjectMeta { Name = "n1", Labels = new Dictionary<string, string> { ["zone"] = "b" } } }, null);
        Assert.Contains("apply zoned mode=enforce scope=", sink.Calls);

        handler.OnDelete(Object(yaml, 3));
        Assert.Equal("delete p", sink.Calls[^1]);
    }

    [Fact]
    public void NamespacedPoliciesOfOneNameInTwoNamespacesAreTwoPolicies()
    {
        var sink = new FakeSink();
        using var controller = new PolicyController(sink, new PodCache(), null, _ => { }, NullLogger.Instance, TimeSpan.FromHours(1));
        var handler = controller.HandlerFor("TracingPolicyNamespaced");
        foreach (var ns in new[] { "a", "b" })
        {
            handler.OnUpsert(Object($"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicyNamespaced\nmetadata:\n  name: p\n  namespace: {ns}\nspec:\n{Hook}", 1, ns), null);
        }
        Assert.Equal(["apply a/p mode=enforce scope=", "apply b/p mode=enforce scope="], sink.Calls);
    }

    [Fact]
    public void PoliciesSyncedIsRaisedOnceWhenBothPolicyKindsAreListed()
    {
        using var controller = new PolicyController(new FakeSink(), new PodCache(), null, _ => { }, NullLogger.Instance, TimeSpan.FromHours(1));
        var raised = 0;
        controller.PoliciesSynced += () => raised++;
        controller.HandlerFor("TracingPolicy").OnSynced();
        controller.HandlerFor("TracingPolicy").OnSynced(); // a relist of one kind is not both
        Assert.Equal(0, raised);
        controller.HandlerFor("TracingPolicyNamespaced").OnSynced();
        Assert.Equal(1, raised);
        controller.HandlerFor("TracingPolicyNamespaced").OnSynced(); // later relists: already restored
        Assert.Equal(1, raised);
    }

    [Fact]
    public void LabelSelectorsFollowKubernetesSemantics()
    {
        var labels = new Dictionary<string, string> { ["app"] = "web", ["tier"] = "front" };
        static LabelSelector S(Dictionary<string, string>? m = null, params LabelRequirement[] e) => new(m ?? [], e);
        Assert.True(S().Matches(labels));
        Assert.True(S(new() { ["app"] = "web" }).Matches(labels));
        Assert.False(S(new() { ["app"] = "db" }).Matches(labels));
        Assert.True(S(null, new LabelRequirement("tier", "In", ["front", "back"])).Matches(labels));
        Assert.False(S(null, new LabelRequirement("tier", "NotIn", ["front"])).Matches(labels));
        Assert.True(S(null, new LabelRequirement("env", "NotIn", ["prod"])).Matches(labels));
        Assert.True(S(null, new LabelRequirement("app", "Exists", [])).Matches(labels));
        Assert.True(S(null, new LabelRequirement("env", "DoesNotExist", [])).Matches(labels));
        Assert.False(S(null, new LabelRequirement("env", "Exists", [])).Matches(null));
    }
}
