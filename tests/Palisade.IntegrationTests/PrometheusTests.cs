using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>A real Prometheus (Debian's) scrapes the real agent after a known workload.</summary>
public sealed class PrometheusTests : IDisposable
{
    private readonly string _dir;

    public PrometheusTests()
    {
        Kernel.Require();
        _dir = Directory.CreateTempSubdirectory("pal-prom-").FullName;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [Fact]
    public void ScrapedSeriesCountTheWorkload()
    {
        Assert.True(File.Exists("/usr/bin/prometheus"), "the prometheus Debian package is missing: ./build.sh test installs it");
        const int Execs = 12, Kills = 3;
        var ok = Path.Combine(_dir, "ok");
        var bad = Path.Combine(_dir, "bad");
        var policies = Path.Combine(_dir, "policies");
        foreach (var d in new[] { ok, bad, policies })
        {
            Directory.CreateDirectory(d);
        }
        File.Copy("/usr/bin/true", Path.Combine(ok, "promwork"));
        File.Copy("/usr/bin/true", Path.Combine(bad, "promwork"));
        File.WriteAllText(Path.Combine(policies, "kill.yaml"), TestPolicies.ExecPrefixKill("prom-kill", bad + "/"));
        using var agent = AgentProcess.Start("--tracing-policy-dir", policies, "--metrics-label-filter", "namespace,binary");
        agent.WaitReady();
        Assert.True(Command.WaitUntil(() => agent.Get("/v1/policies").Contains("prom-kill", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20)), agent.Log);
        for (var i = 0; i < Execs; i++)
        {
            Assert.Equal(0, Command.Run(Path.Combine(ok, "promwork")).ExitCode);
        }
        for (var i = 0; i < Kills; i++)
        {
            Assert.Equal(137, Command.Run(Path.Combine(bad, "promwork")).ExitCode);
        }

        var webPort = FreePort();
        var config = Path.Combine(_dir, "prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: 1s
            scrape_configs:
            - job_name: palisade
              static_configs:
              - targets: ["{agent.Http.BaseAddress!.Authority}"]
            """);
        using var prometheus = Process.Start(new ProcessStartInfo("/usr/bin/prometheus",
            [$"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_dir, "tsdb")}", $"--web.listen-address=127.0.0.1:{webPort}"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        prometheus.BeginErrorReadLine();
        prometheus.BeginOutputReadLine();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{webPort}") };
        double? Query(string promql)
        {
            try
            {
                var json = http.GetStringAsync(new Uri($"/api/v1/query?query={Uri.EscapeDataString(promql)}", UriKind.Relative)).Result;
                using var doc = JsonDocument.Parse(json);
                var result = doc.RootElement.GetProperty("data").GetProperty("result");
                return result.GetArrayLength() == 0 ? null
                    : double.Parse(result[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
            }
            catch (AggregateException)
            {
                return null;
            }
        }
        try
        {
            var execs = $"sum(palisade_events_total{{type=\"process_exec\",binary=\"{ok}/promwork\"}})";
            var killed = "palisade_policy_actions_total{policy=\"prom-kill\",action=\"killed\"}";
            Assert.True(Command.WaitUntil(() => Query(execs) == Execs && Query(killed) == Kills, TimeSpan.FromSeconds(60)),
                $"prometheus saw execs={Query(execs)} kills={Query(killed)}");
            Assert.Equal(Kills, Query($"sum(palisade_events_total{{type=\"process_exec\",binary=\"{bad}/promwork\"}})"));
            Assert.Equal(Kills, Query($"sum(palisade_events_total{{type=\"process_exit\",binary=\"{bad}/promwork\"}})"));
            Assert.Equal(Kills, Query("sum(palisade_policy_events_total{policy=\"prom-kill\",action=\"KPROBE_ACTION_SIGKILL\"})"));
            Assert.Equal(1, Query("palisade_policies{state=\"enabled\"}"));
            Assert.Equal(0, Query("sum(palisade_bpf_lost_events_total)"));
            Assert.Equal(1, Query("count(palisade_build_info)"));
            Assert.True(Query("palisade_process_cache_size") > 0);
            Assert.True(Query("palisade_policy_kernel_memory_bytes{policy=\"prom-kill\"}") > 0);
            Assert.Equal(1, Query("palisade_kernel_feature{feature=\"ringbuf\"}") ?? Query("max(palisade_kernel_feature)"));
            Assert.Null(Query("palisade_events_total{pod!=\"\"}")); // pod is not among the chosen labels
            Assert.Equal(8 << 20, Query("palisade_bpf_ringbuf_capacity_bytes{map=\"pal_process_events\"}")); // --rb-size default
            Assert.True(Query("palisade_bpf_ringbuf_pending_bytes{map=\"pal_process_events\"}") is >= 0 and < 8 << 20);
            Assert.True(Query("palisade_bpf_map_entries{map=\"pal_procs\"}") > 0, "live processes are in the kernel's process map");
            Assert.True(Query("palisade_bpf_map_capacity{map=\"pal_procs\"}") >= Query("palisade_bpf_map_entries{map=\"pal_procs\"}"));
        }
        finally
        {
            prometheus.Kill();
            prometheus.WaitForExit();
        }
    }
}
