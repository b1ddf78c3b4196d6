using System.Net;
using System.Net.Sockets;
using Grpc.Net.Client;
using Palisade.IntegrationTests.Infrastructure;
using T = Palisade.Api.Tetragon;

namespace Palisade.IntegrationTests;

/// <summary>
/// A security team swaps Tetragon's DaemonSet for ours and keeps its ConfigMap: a config
/// directory of Tetragon's keys (one file each, as the ConfigMap is mounted) starts the agent,
/// the keys mean what they mean in Tetragon, and a client of Tetragon's API sees the result.
/// </summary>
public sealed class TetragonConfigDirTests : IDisposable
{
    private readonly string _dir;

    public TetragonConfigDirTests()
    {
        Kernel.Require();
        _dir = Directory.CreateTempSubdirectory("pal-tetra-conf-").FullName;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>An address of this machine that is not loopback: the first global IPv4 address of an interface that is up.</summary>
    private static IPAddress NodeAddress() =>
        System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up || n.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Unknown)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses.Select(a => a.Address))
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a) && !a.ToString().StartsWith("169.254.", StringComparison.Ordinal))
        ?? throw new InvalidOperationException("this machine has no non-loopback IPv4 address to test from");

    [Fact]
    public async Task TetragonsHealthServerAddressOnEveryAddressKeepsTheDetailEndpointsLocal()
    {
        // Tetragon's chart writes health-server-address ":6789": every address of a hostNetwork
        // pod. The kubelet's probes and /metrics answer there; status, policies and the probe
        // report only to local clients.
        var port = FreePort();
        using var agent = AgentProcess.Start("--health-server-address", $":{port}");
        agent.WaitReady();
        using var remote = new HttpClient { BaseAddress = new Uri($"http://{NodeAddress()}:{port}") };
        Assert.Equal("ok\n", await remote.GetStringAsync(new Uri("/healthz", UriKind.Relative), Ct).ConfigureAwait(true));
        Assert.Equal("ready\n", await remote.GetStringAsync(new Uri("/readyz", UriKind.Relative), Ct).ConfigureAwait(true));
        Assert.Contains("palisade_", await remote.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct).ConfigureAwait(true), StringComparison.Ordinal);
        foreach (var path in new[] { "/v1/status", "/v1/policies", "/v1/network-policies", "/v1/probe" })
        {
            var refused = await remote.GetAsync(new Uri(path, UriKind.Relative), Ct).ConfigureAwait(true);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Contains("local clients only", await refused.Content.ReadAsStringAsync(Ct).ConfigureAwait(true), StringComparison.Ordinal);
        }
        using var local = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        Assert.Equal(HttpStatusCode.OK, (await local.GetAsync(new Uri("/v1/status", UriKind.Relative), Ct).ConfigureAwait(true)).StatusCode);
        Assert.True(agent.Terminate());
    }

    [Fact]
    public async Task ATetragonConfigDirectoryStartsTheAgentAndItsKeysTakeEffect()
    {
        var conf = Directory.CreateDirectory(Path.Combine(_dir, "tetragon.conf.d")).FullName;
        var address = $"localhost:{FreePort()}";
        var metricsPort = FreePort();
        var policy = Path.Combine(_dir, "policy.yaml");
        File.WriteAllText(policy, TestPolicies.ExecPrefixKill("from-tracing-policy", Path.Combine(_dir, "never") + "/"));
        var export = Path.Combine(_dir, "events.json");
        foreach (var (key, value) in new Dictionary<string, string>
        {
            ["enable-k8s-api"] = "false",
            ["server-address"] = address,
            ["metrics-server"] = $"127.0.0.1:{metricsPort}",
            ["cluster-name"] = "palisade-ci",
            ["enable-ancestors"] = "base,kprobe",
            ["enable-process-cred"] = "true",
            ["tracing-policy"] = policy,
            ["export-filename"] = export,
            ["process-cache-gc-interval"] = "5s",
            // Tetragon keys with no meaning here: warnings, not a failed start.
            ["gops-address"] = "localhost:8118",
            ["release-pinned-bpf"] = "true",
            ["enable-export-aggregation"] = "false",
        })
        {
            File.WriteAllText(Path.Combine(conf, key), value + "\n");
        }

        using var agent = AgentProcess.Start("--config-dir", conf, "--server-address", address);
        agent.WaitReady();
        Assert.Contains("gops-address (from config-dir", agent.Log, StringComparison.Ordinal);
        Assert.Contains("is a Tetragon setting with no effect on Palisade", agent.Log, StringComparison.Ordinal);

        // metrics-server answers /metrics and the kubelet's probes, nothing else.
        using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{metricsPort}") })
        {
            var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct).ConfigureAwait(true);
            Assert.Contains("palisade_", metrics, StringComparison.Ordinal);
            Assert.Equal("ok\n", await http.GetStringAsync(new Uri("/healthz", UriKind.Relative), Ct).ConfigureAwait(true));
            Assert.Equal("ready\n", await http.GetStringAsync(new Uri("/readyz", UriKind.Relative), Ct).ConfigureAwait(true));
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(new Uri("/v1/status", UriKind.Relative), Ct).ConfigureAwait(true)).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(new Uri("/v1/policies", UriKind.Relative), Ct).ConfigureAwait(true)).StatusCode);
        }

        using var channel = GrpcChannel.ForAddress($"http://{address}");
        var client = new T.FineGuidanceSensors.FineGuidanceSensorsClient(channel);
        var listed = client.ListTracingPolicies(new T.ListTracingPoliciesRequest(), cancellationToken: Ct).Policies;
        Assert.Contains(listed, p => p.Name == "from-tracing-policy" && p.State == T.TracingPolicyState.TpStateEnabled);

        // tetra's verbs: `tp list -o text`.
        var tp = agent.Cli("tp", "list", "-o", "text");
        Assert.Equal(0, tp.ExitCode);
        Assert.Contains("from-tracing-policy", tp.Stdout, StringComparison.Ordinal);

        var marker = Path.Combine(_dir, "tetra-conf-marker");
        File.Copy("/usr/bin/true", marker);
        File.SetUnixFileMode(marker, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cancel.CancelAfter(TimeSpan.FromSeconds(60));
        using var call = client.GetEvents(new T.GetEventsRequest
        {
            AllowList = { new T.Filter { BinaryRegex = { "tetra-conf-marker$" }, EventSet = { T.EventType.ProcessExec } } },
        }, cancellationToken: cancel.Token);
        // The stream subscribes when the call reaches the agent: run the marker until its exec arrives.
        var next = call.ResponseStream.MoveNext(cancel.Token);
        while (!next.IsCompleted && !cancel.IsCancellationRequested)
        {
            Assert.Equal(0, Command.Run(marker).ExitCode);
            await Task.WhenAny(next, Task.Delay(250, cancel.Token)).ConfigureAwait(true);
        }
        Assert.True(await next.ConfigureAwait(true), "the stream ended without an event:\n" + agent.Log);
        var e = call.ResponseStream.Current;
        Assert.Equal("palisade-ci", e.ClusterName);
        Assert.Equal(marker, e.ProcessExec.Process.Binary);
        // enable-process-cred: the credentials are on the process.
        Assert.NotNull(e.ProcessExec.Process.ProcessCredentials);
        await cancel.CancelAsync().ConfigureAwait(true);
    }

    [Fact]
    public void GeteventsReadsAnExportedFileOnStdinWithTetrasFlags()
    {
        var file = Path.Combine(_dir, "events.json");
        File.WriteAllLines(file,
        [
            """{"process_exec":{"process":{"exec_id":"a","pid":10,"binary":"/usr/bin/curl","arguments":"-s http://shop"}},"node_name":"node-a","time":"2026-12-02T05:00:00Z"}""",
            "not an event",
            """{"process_exec":{"process":{"exec_id":"b","pid":11,"binary":"/bin/sh","pod":{"namespace":"shop","name":"web-1"}}},"node_name":"node-a","time":"2026-12-02T05:00:01Z"}""",
            """{"process_kprobe":{"process":{"exec_id":"c","pid":12,"binary":"/bin/cat"},"function_name":"fd_install","action":"KPROBE_ACTION_SIGKILL","policy_name":"protect-shadow"},"node_name":"node-a","time":"2026-12-02T05:00:02Z"}""",
        ]);

        var piped = Command.Run("bash", "-c", $"cat {file} | {AgentProcess.Launcher()} getevents -o compact --timestamps -e PROCESS_EXEC --host --color never");
        Assert.Equal(0, piped.ExitCode);
        var line = Assert.Single(piped.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("2026-12-02T05:00:00Z ", line, StringComparison.Ordinal);
        Assert.Contains("/usr/bin/curl", line, StringComparison.Ordinal);
        Assert.Contains("stdin line 2 is not an exported event", piped.Stderr, StringComparison.Ordinal);

        var json = Command.Run(AgentProcess.Launcher(), "getevents", "--input", file, "-n", "shop", "-f", "process.binary");
        Assert.Equal(0, json.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(json.Stdout.Trim());
        var process = doc.RootElement.GetProperty("process_exec").GetProperty("process");
        Assert.Equal("/bin/sh", process.GetProperty("binary").GetString());
        Assert.False(process.TryGetProperty("pid", out _));
    }
}
