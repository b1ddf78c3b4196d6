using k8s;
using k8s.Models;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Filters;
using Palisade.Kubernetes;
using Palisade.Tests.Shared;

namespace Palisade.Tests;

/// <summary>Tetragon's maybe_exec_probe and the health_check filter the chart's default deny list uses.</summary>
public sealed class ExecProbeTests
{
    private const string Id = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    private static V1Pod ProbedPod()
    {
        var pod = KubernetesJson.Deserialize<V1Pod>(FakeKubeApiServer.Pod("shop", "cart-1", "n1", null, [("cart", Id, "cart:1")]).ToJsonString());
        var container = pod.Spec.Containers.Single();
        container.LivenessProbe = new V1Probe { Exec = new V1ExecAction { Command = ["cat", "/tmp/healthy"] } };
        container.ReadinessProbe = new V1Probe { Exec = new V1ExecAction { Command = ["/bin/sh", "-c", "test -f /ready"] } };
        container.StartupProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Port = 8080 } };
        return pod;
    }

    private static ProcessRecord Process(string binary, string arguments, PodInfo? pod, ProcessRecord? parent = null) => new()
    {
        ExecId = binary + arguments, Pid = 10, Ktime = 1, StartTime = DateTimeOffset.UnixEpoch, Binary = binary, Arguments = arguments, Pod = pod, Parent = parent,
        ContainerId = pod is null ? null : Id,
    };

    [Fact]
    public void TheContainersExecProbeCommandsComeFromItsSpecAndOnlyExecProbesCount()
    {
        var pod = ProbedPod();
        var probes = PodCache.ProbesOf(pod, "cart");
        Assert.NotNull(probes);
        Assert.Equal([["cat", "/tmp/healthy"], ["/bin/sh", "-c", "test -f /ready"]], probes.Select(p => p.ToArray()));
        Assert.Null(PodCache.ProbesOf(pod, "sidecar"));
        Assert.Equal(probes, PodCache.Describe(pod, pod.Status.ContainerStatuses.Single(), Id).Container!.ExecProbes);
    }

    [Fact]
    public void AProcessIsMaybeAProbeWhenItsBinaryAndArgumentsAreAProbesCommand()
    {
        var pod = ProbedPod();
        var info = PodCache.Describe(pod, pod.Status.ContainerStatuses.Single(), Id);
        // "cat" has no '/': the container found it through PATH.
        Assert.True(ExecProbes.MaybeProbe(Process("/usr/bin/cat", "/tmp/healthy", info)));
        Assert.True(ExecProbes.MaybeProbe(Process("/bin/sh", "-c test -f /ready", info)));
        Assert.False(ExecProbes.MaybeProbe(Process("/usr/bin/cat", "/etc/shadow", info)));
        Assert.False(ExecProbes.MaybeProbe(Process("/usr/local/bin/sh", "-c test -f /ready", info)));
        Assert.False(ExecProbes.MaybeProbe(Process("/usr/bin/cat", "/tmp/healthy", null)));
    }

    [Fact]
    public void HealthCheckFiltersAndTheExportCarryIt()
    {
        var pod = ProbedPod();
        var info = PodCache.Describe(pod, pod.Status.ContainerStatuses.Single(), Id);
        var probe = Process("/usr/bin/cat", "/tmp/healthy", info);
        var child = Process("/usr/bin/true", "", info, parent: probe);
        var other = Process("/usr/bin/curl", "-s http://cart", info);
        var healthCheck = EventFilter.Parse("""{"health_check":true}""", "test");
        var notHealthCheck = EventFilter.Parse("""{"health_check":false}""", "test");
        ProcessExecEvent Exec(ProcessRecord p) => new() { Time = DateTimeOffset.UnixEpoch, Process = p, Parent = p.Parent };

        // The probe itself and what it starts (Tetragon looks at the process and its parent).
        Assert.True(healthCheck.Matches(Exec(probe)));
        Assert.True(healthCheck.Matches(Exec(child)));
        Assert.False(healthCheck.Matches(Exec(other)));
        Assert.False(notHealthCheck.Matches(Exec(probe)));
        Assert.True(notHealthCheck.Matches(Exec(other)));

        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.Write(w, Exec(probe), "node-a");
        }
        var json = System.Text.Json.Nodes.JsonNode.Parse(buffer.WrittenSpan)!;
        Assert.True((bool)json["process_exec"]!["process"]!["pod"]!["container"]!["maybe_exec_probe"]!);
        var message = Palisade.Agent.Api.EventMessages.ToMessage(Exec(probe), "node-a", TetragonJsonOptions.Default, FieldMasks.Empty);
        Assert.True(message.ProcessExec.Process.Pod.Container.MaybeExecProbe);
        Assert.True(Palisade.Agent.Api.Tetragon.TetragonMessages.FromPalisade(message).ProcessExec.Process.Pod.Container.MaybeExecProbe);
        Assert.False(Palisade.Agent.Api.EventMessages.ToMessage(Exec(other), "node-a", TetragonJsonOptions.Default, FieldMasks.Empty).ProcessExec.Process.Pod.Container.MaybeExecProbe);
    }

    [Fact]
    public void PodAnnotationsAreOnTheEventOnlyWhenEnabled()
    {
        // enable-pod-annotations (Tetragon's flag): off by default, annotations can be large.
        var pod = ProbedPod();
        pod.Metadata.Annotations = new Dictionary<string, string> { ["team"] = "payments" };
        pod.Metadata.Uid = "00000000-0000-4000-8000-00000000a001";
        var status = pod.Status.ContainerStatuses.Single();
        Assert.Null(PodCache.Describe(pod, status, Id).Annotations);
        Assert.Equal("payments", PodCache.Describe(pod, status, Id, withAnnotations: true).Annotations!["team"]);
        var withAnnotations = new PodCache { IncludeAnnotations = true };
        var without = new PodCache();
        withAnnotations.OnUpsert(pod, null);
        without.OnUpsert(pod, null);
        var context = new ContainerContext(Id, pod.Metadata.Uid, 0);
        Assert.Equal("payments", withAnnotations.Resolve(context)!.Annotations!["team"]);
        Assert.Null(without.Resolve(context)!.Annotations);
    }
}
