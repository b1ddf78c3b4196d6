using System.Net;
using System.Text;
using System.Text.Json;
using Palisade.Agent.Configuration;
using Palisade.Events;
using Palisade.Exporters;

namespace Palisade.Tests;

/// <summary>A Tetragon ConfigMap must start the agent: Tetragon's names mean what they mean there, the keys that do not apply are warnings.</summary>
public sealed class TetragonConfigurationTests
{
    private static SettingsLayer Layer(string source, params (string Key, string Value)[] values) =>
        new(source, values.ToDictionary(v => v.Key, v => v.Value));

    [Fact]
    public void TetragonNamesAreAliasesOfOurSettings()
    {
        var kubeconfig = Path.GetTempFileName();
        try
        {
            var options = AgentConfiguration.Resolve([Layer("/etc/tetragon/tetragon.conf.d", ("enable-k8s-api", "false"), ("k8s-kubeconfig-path", kubeconfig))]);

            Assert.False(options.Kubernetes);
            Assert.Equal(kubeconfig, options.Kubeconfig);
            Assert.Equal("/etc/tetragon/tetragon.conf.d as enable-k8s-api", options.Sources["kubernetes"]);
            Assert.Same(AgentSettings.Kubernetes, AgentSettings.Find("enable-k8s-api"));
        }
        finally
        {
            File.Delete(kubeconfig);
        }
    }

    [Fact]
    public void OurOwnNamesStillWorkAndTheLaterLayerWinsAcrossNames()
    {
        var options = AgentConfiguration.Resolve([Layer("file", ("enable-k8s-api", "true")), Layer("command line", ("kubernetes", "false"))]);

        Assert.False(options.Kubernetes);
        Assert.Equal("command line", options.Sources["kubernetes"]);
    }

    [Fact]
    public void ATetragonKeyWithoutMeaningHereIsAWarningThatNamesIt()
    {
        var options = AgentConfiguration.Resolve([Layer("/etc/tetragon", ("gops-address", "localhost:8118"), ("enable-export-aggregation", "true"))]);

        Assert.Equal(2, options.Warnings.Count);
        Assert.Contains(options.Warnings, w => w.StartsWith("gops-address (from /etc/tetragon) is a Tetragon setting with no effect on Palisade: gops is a Go tool.", StringComparison.Ordinal));
        Assert.Contains(options.Warnings, w => w.StartsWith("enable-export-aggregation (from /etc/tetragon)", StringComparison.Ordinal));
    }

    [Fact]
    public void AKeyNeitherAgentKnowsIsStillAnError()
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("file", ("gops-adress", "x"))]));

        Assert.StartsWith("gops-adress: unknown setting in file.", Assert.Single(e.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void NoTetragonOnlyKeyIsAlsoASettingAndEveryOneIsDocumented()
    {
        var doc = File.ReadAllText(RepoPaths.File("docs", "configuration.md"));
        Assert.All(TetragonSettings.NotApplicable.Keys, key =>
        {
            Assert.Null(AgentSettings.Find(key));
            Assert.Contains($"`{key}`", doc, StringComparison.Ordinal);
        });
    }

    [Theory]
    [InlineData("", new string[0])]
    [InlineData("false", new string[0])]
    [InlineData("true", new[] { "base" })]
    [InlineData("base", new[] { "base" })]
    [InlineData("base,kprobe", new[] { "base", "kprobe" })]
    [InlineData(" base , tracepoint,uprobe,lsm ", new[] { "base", "lsm", "tracepoint", "uprobe" })]
    [InlineData("[base,kprobe]", new[] { "base", "kprobe" })]
    public void EnableAncestorsIsTetragonsList(string value, string[] expected)
    {
        var options = AgentConfiguration.Resolve([Layer("file", ("enable-ancestors", value))]);

        Assert.Equal(expected, options.AncestorEventTypes.Order(StringComparer.Ordinal));
        Assert.Equal(expected.Contains("base"), options.EnableAncestors);
    }

    [Fact]
    public void EnableAncestorsWithoutBaseOrWithAnUnknownTypeStartsAsTetragonWouldWithAWarning()
    {
        // Tetragon ignores unknown types and enables nothing without base: a ConfigMap it starts with, we start with.
        var options = AgentConfiguration.Resolve([Layer("file", ("enable-ancestors", "kprobe,exec"))]);

        Assert.Empty(options.AncestorEventTypes);
        Assert.False(options.EnableAncestors);
        Assert.Contains("enable-ancestors: \"exec\" (from file) is not an event type and is ignored, as Tetragon ignores it. Types: base, kprobe, tracepoint, uprobe, lsm (comma-separated, base first).", options.Warnings);
        Assert.Contains("enable-ancestors: \"kprobe,exec\" (from file) lacks base, which every other type needs, so no ancestors are added (as in Tetragon). Fix: base,kprobe.", options.Warnings);

        var known = AgentConfiguration.Resolve([Layer("file", ("enable-ancestors", "base,kprobe,exec"))]);
        Assert.Equal(["base", "kprobe"], known.AncestorEventTypes.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("0", 8 * 1024 * 1024, false)]
    [InlineData("1G", 1024 * 1024 * 1024, false)]
    [InlineData("65M", 128 * 1024 * 1024, true)]
    [InlineData("5000", 8192, true)]
    [InlineData("512k", 512 * 1024, false)]
    public void RbSizeTakesTetragonsValues(string value, int bytes, bool warned)
    {
        var options = AgentConfiguration.Resolve([Layer("file", ("rb-size", value))]);
        Assert.Equal(bytes, options.RingBufferSize);
        Assert.Equal(warned, options.Warnings.Any(w => w.StartsWith("rb-size:", StringComparison.Ordinal) && w.Contains("is not a power of two", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("2G")]
    [InlineData("1K")]
    [InlineData("eight")]
    public void AnRbSizeOutOfRangeIsAnError(string value)
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("file", ("rb-size", value))]));
        Assert.Contains(e.Errors, x => x.StartsWith($"rb-size: \"{value}\" (from file) must be a size from 4K to 1G", StringComparison.Ordinal));
    }

    [Fact]
    public void UsdtAncestorsAreAWarning()
    {
        var options = AgentConfiguration.Resolve([Layer("file", ("enable-ancestors", "base,usdt"))]);

        Assert.Equal(["base"], options.AncestorEventTypes);
        Assert.Contains(options.Warnings, w => w.Contains("usdt", StringComparison.Ordinal));
    }

    [Fact]
    public void MetricsServerClusterNameAndTheRestResolve()
    {
        var options = AgentConfiguration.Resolve([Layer("file",
            ("metrics-server", ":2112"), ("cluster-name", "prod-eu"), ("enable-pod-annotations", "true"),
            ("process-cache-gc-interval", "30s"), ("log-file", "/var/log/palisade/agent.log"), ("tracing-policy", "/etc/policy.yaml"))]);

        Assert.Equal(new IPEndPoint(IPAddress.IPv6Any, 2112), options.MetricsServerEndpoint);
        Assert.Equal("prod-eu", options.ClusterName);
        Assert.True(options.EnablePodAnnotations);
        Assert.Equal(TimeSpan.FromSeconds(30), options.ProcessCacheGcInterval);
        Assert.Equal("/var/log/palisade/agent.log", options.LogFile);
        Assert.Equal("/etc/policy.yaml", options.TracingPolicyFile);
        Assert.Empty(options.Warnings);
    }

    [Fact]
    public void DebugMeansLogLevelDebugUnlessALevelIsGiven()
    {
        Assert.Equal("debug", AgentConfiguration.Resolve([Layer("file", ("debug", "true"))]).LogLevel);
        Assert.Equal("warn", AgentConfiguration.Resolve([Layer("file", ("debug", "true"), ("log-level", "warn"))]).LogLevel);
    }

    [Theory]
    [InlineData("0s")]
    [InlineData("soon")]
    public void AProcessCacheGcIntervalMustBeAPositiveDuration(string value)
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("file", ("process-cache-gc-interval", value))]));

        Assert.StartsWith("process-cache-gc-interval: ", Assert.Single(e.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void TheMetricsServerNeedsAPort()
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("file", ("metrics-server", "localhost"))]));

        Assert.StartsWith("metrics-server: \"localhost\" (from file) has no valid port.", Assert.Single(e.Errors), StringComparison.Ordinal);
    }

    private static readonly DateTimeOffset T = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);

    private static string Encode(PalisadeEvent e, TetragonJsonOptions options)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            TetragonJson.Write(w, e, "node-a", options);
        }
        var json = Encoding.UTF8.GetString(buffer.WrittenSpan);
        var viaApi = Palisade.Agent.Api.EventMessages.ToJson(Palisade.Agent.Api.EventMessages.ToMessage(e, "node-a", options, []));
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(json), System.Text.Json.Nodes.JsonNode.Parse(viaApi)),
            $"the API message differs from the JSON export:\n{json}\n{viaApi}");
        return json;
    }

    private static ProcessRecord Process(ProcessRecord? parent, uint pid, string binary, PodInfo? pod = null) => new()
    {
        ExecId = $"exec-{pid}", Pid = pid, Ktime = pid * 1000UL, StartTime = T, Binary = binary, Cwd = "/", Auid = uint.MaxValue,
        Parent = parent, ParentExecId = parent?.ExecId, Pod = pod,
    };

    [Fact]
    public void ClusterNameAndPodAnnotationsAreWrittenAsTetragonWritesThem()
    {
        var pod = new PodInfo("shop", "web-1", Annotations: new Dictionary<string, string> { ["team"] = "payments" });
        var json = Encode(new ProcessExecEvent { Time = T, Process = Process(null, 10, "/bin/sh", pod) }, new TetragonJsonOptions { ClusterName = "prod-eu" });

        using var doc = JsonDocument.Parse(json);
        Assert.Equal("prod-eu", doc.RootElement.GetProperty("cluster_name").GetString());
        Assert.Equal("payments", doc.RootElement.GetProperty("process_exec").GetProperty("process").GetProperty("pod").GetProperty("pod_annotations").GetProperty("team").GetString());
    }

    [Fact]
    public void WithoutAClusterNameThereIsNoField()
    {
        var json = Encode(new ProcessExecEvent { Time = T, Process = Process(null, 10, "/bin/sh") }, TetragonJsonOptions.Default);

        Assert.False(JsonDocument.Parse(json).RootElement.TryGetProperty("cluster_name", out _));
    }

    [Fact]
    public void KprobeEventsCarryAncestorsWhenGiven()
    {
        var init = Process(null, 1, "/sbin/init");
        var sh = Process(init, 20, "/bin/sh");
        var cat = Process(sh, 30, "/bin/cat");
        var e = new ProcessPolicyEvent
        {
            Time = T, Process = cat, Parent = sh, HookKind = EventKind.ProcessKprobe, FunctionName = "fd_install", Args = [],
            Action = "KPROBE_ACTION_POST", PolicyName = "p", Ancestors = cat.Ancestors(),
        };

        using var doc = JsonDocument.Parse(Encode(e, TetragonJsonOptions.Default));
        var ancestors = doc.RootElement.GetProperty("process_kprobe").GetProperty("ancestors");
        Assert.Equal("/sbin/init", Assert.Single(ancestors.EnumerateArray()).GetProperty("binary").GetString());
    }
}
