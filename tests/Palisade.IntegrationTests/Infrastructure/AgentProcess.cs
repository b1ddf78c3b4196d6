using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>The real `./artifacts/palisade agent` as a child process, on a free loopback health port, with its stderr kept.</summary>
internal sealed class AgentProcess : IDisposable
{
    private readonly StringBuilder _stderr = new();

    private AgentProcess(Process process, int port, string apiAddress)
    {
        Process = process;
        ApiAddress = apiAddress;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
    }

    public Process Process { get; }

    /// <summary>The agent's gRPC API (a socket of its own, so agents of parallel tests never share one).</summary>
    public string ApiAddress { get; }

    /// <summary>GETs a path of the health/status server as text.</summary>
    public string Get(string path) => Http.GetStringAsync(new Uri(path, UriKind.Relative)).GetAwaiter().GetResult();

    /// <summary>Runs the CLI against this agent's API.</summary>
    public CommandResult Cli(params string[] args) => Command.Run(Launcher(), [.. args, "--server-address", ApiAddress]);

    /// <summary>Talks to the agent's health/status server.</summary>
    public HttpClient Http { get; }

    /// <summary>What the agent wrote to stderr (its logs) so far.</summary>
    public string Log
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>The launcher the build leaves, as the README calls it.</summary>
    public static string Launcher()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "artifacts", "palisade");
            if (File.Exists(Path.Combine(dir.FullName, "Palisade.sln")))
            {
                Assert.True(File.Exists(candidate), $"{candidate} is missing: the build must leave the launcher there");
                return candidate;
            }
        }
        throw new InvalidOperationException("repository root not found");
    }

    /// <summary>Starts `palisade agent` with <paramref name="args"/> plus a free --health-server-address (unless args give one: ":PORT" or "HOST:PORT", reached on 127.0.0.1:PORT).</summary>
    public static AgentProcess Start(params string[] args)
    {
        int port;
        string health;
        var given = Array.IndexOf(args, "--health-server-address");
        if (given >= 0)
        {
            health = args[given + 1];
            port = int.Parse(health[(health.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            args = [.. args[..given], .. args[(given + 2)..]];
        }
        else
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
            health = $"127.0.0.1:{port}";
        }
        var api = args.Contains("--server-address") ? args[Array.IndexOf(args, "--server-address") + 1]
            : $"unix://{Path.Combine(Path.GetTempPath(), $"pal-api-{port}.sock")}";
        if (!args.Contains("--server-address"))
        {
            args = [.. args, "--server-address", api];
        }
        var psi = new ProcessStartInfo(Launcher(), ["agent", "--health-server-address", health, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // The tests' own setting (where the compatibility corpus is), not the agent's: the agent
        // refuses PALISADE_* variables it does not know.
        psi.Environment.Remove("PALISADE_SHARED_DIR");
        var agent = new AgentProcess(Process.Start(psi)!, port, api);
        agent.Process.ErrorDataReceived += (_, e) =>
        {
            lock (agent._stderr)
            {
                agent._stderr.AppendLine(e.Data);
            }
        };
        agent.Process.BeginErrorReadLine();
        agent.Process.BeginOutputReadLine();
        return agent;
    }

    /// <summary>
    /// Waits (bounded) for /readyz to answer 200: the agent sets it only after every start-up
    /// step ran, so its sensors are attached and its policy directory is applied. Fails the
    /// test with the agent's log when that never happens or the agent exits first.
    /// </summary>
    public void WaitReady()
    {
        var ready = Command.WaitUntil(() =>
        {
            if (Process.HasExited)
            {
                return true; // reported below, without waiting out the bound
            }
            try
            {
                return Http.GetAsync(new Uri("/readyz", UriKind.Relative)).Result.StatusCode == HttpStatusCode.OK;
            }
            catch (AggregateException)
            {
                return false;
            }
        }, ReadyBound);
        Assert.False(Process.HasExited, $"the agent exited (code {(Process.HasExited ? Process.ExitCode : 0)}) before it was ready:\n" + Log);
        Assert.True(ready, $"the agent was not ready within {ReadyBound.TotalSeconds} s:\n" + Log);
        // Ready implies the process sensor runs wherever this kernel can run it; a test that
        // acts next relies on its events being seen.
        if (Kernel.Probe.IsAvailable(Palisade.Bpf.Probe.KernelFeature.RawTracepoint) && Kernel.Probe.IsAvailable(Palisade.Bpf.Probe.KernelFeature.Ringbuf))
        {
            using var status = Status();
            Assert.True(status.RootElement.TryGetProperty("process_sensor", out _), "the agent is ready but its process sensor is not running:\n" + Log);
        }
    }

    // Start-up on a loaded 2-core machine (probe, BPF loads, /proc scan) takes seconds; this only bounds a hang.
    private static readonly TimeSpan ReadyBound = TimeSpan.FromSeconds(90);

    /// <summary>GET /v1/status, parsed.</summary>
    public JsonDocument Status() => JsonDocument.Parse(Get("/v1/status"));

    /// <summary>
    /// Waits (bounded) until the agent has consumed every process event the kernel produced up
    /// to now (decoded or counted lost) and every sink has taken off its queue what was
    /// queued by then: what happened before this call has reached the exporters.
    /// </summary>
    public void WaitConsumed()
    {
        static long Sensor(JsonElement s, string field) => s.GetProperty("process_sensor").GetProperty(field).GetInt64();
        static Dictionary<string, long> Taken(JsonElement s) => s.GetProperty("exporters").EnumerateArray()
            .ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("queued").GetInt64() - e.GetProperty("queue_depth").GetInt64());
        long[] produced;
        using (var before = Status())
        {
            var s = before.RootElement;
            produced = [Sensor(s, "kernel_execs"), Sensor(s, "kernel_exits"), Sensor(s, "kernel_forks")];
        }
        long[] Consumed(JsonElement s) =>
        [
            Sensor(s, "decoded_execs") + Sensor(s, "kernel_lost_exec"),
            Sensor(s, "decoded_exits") + Sensor(s, "kernel_lost_exit"),
            Sensor(s, "decoded_forks") + Sensor(s, "kernel_lost_fork"),
        ];
        var decoded = Command.WaitUntil(() =>
        {
            using var now = Status();
            return Consumed(now.RootElement).Zip(produced).All(p => p.First >= p.Second);
        }, DrainBound);
        Assert.True(decoded, $"the agent did not consume the kernel's events (exec, exit, fork: {string.Join(", ", produced)}) within {DrainBound.TotalSeconds} s:\n{Get("/v1/status")}");
        Dictionary<string, long> queued;
        using (var after = Status())
        {
            queued = after.RootElement.GetProperty("exporters").EnumerateArray()
                .ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("queued").GetInt64());
        }
        var drained = Command.WaitUntil(() =>
        {
            using var now = Status();
            var taken = Taken(now.RootElement);
            return queued.All(q => !taken.TryGetValue(q.Key, out var t) || t >= q.Value);
        }, DrainBound);
        Assert.True(drained, $"the agent's sinks did not take their queued events within {DrainBound.TotalSeconds} s:\n{Get("/v1/status")}");
    }

    // A storm of hundreds of thousands of execs drains in seconds; this only bounds a stuck reader.
    private static readonly TimeSpan DrainBound = TimeSpan.FromSeconds(120);

    /// <summary>Sends SIGTERM and waits (bounded) for the exit; returns whether it exited in time.</summary>
    public bool Terminate()
    {
        Native.Kill(Process.Id, Native.SIGTERM);
        if (!Process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            return false;
        }
        Process.WaitForExit(); // flush the redirected streams
        return true;
    }

    public void Dispose()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
        }
        Http.Dispose();
        Process.Dispose();
    }
}
