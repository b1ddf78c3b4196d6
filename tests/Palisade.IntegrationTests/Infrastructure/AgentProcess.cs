using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;

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

    /// <summary>Starts `palisade agent` with <paramref name="args"/> plus a free --health-server-address.</summary>
    public static AgentProcess Start(params string[] args)
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        var api = args.Contains("--server-address") ? args[Array.IndexOf(args, "--server-address") + 1]
            : $"unix://{Path.Combine(Path.GetTempPath(), $"pal-api-{port}.sock")}";
        if (!args.Contains("--server-address"))
        {
            args = [.. args, "--server-address", api];
        }
        var psi = new ProcessStartInfo(Launcher(), ["agent", "--health-server-address", $"127.0.0.1:{port}", .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
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

    /// <summary>Waits (bounded) for /readyz to answer 200; fails the test with the agent's log otherwise.</summary>
    public void WaitReady()
    {
        var ready = Command.WaitUntil(() =>
        {
            try
            {
                return Http.GetAsync(new Uri("/readyz", UriKind.Relative)).Result.StatusCode == HttpStatusCode.OK;
            }
            catch (AggregateException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60));
        Assert.True(ready, "the agent never became ready:\n" + Log);
    }

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
