using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Palisade.Bpf.Probe;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>The agent's memory follows the number of live processes, not the number ever seen.</summary>
public sealed class AgentMemoryTests
{
    private static long RssKiB(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    private static void Storm(int execs) =>
        Assert.Equal(0, Command.Run(TimeSpan.FromMinutes(10), Helpers.Path("execstorm"), execs.ToString(CultureInfo.InvariantCulture), "2", "/bin/true").ExitCode);

    [Fact]
    public void RssAfter200000ProcessesIsWithin20MbOfRssAfter20000()
    {
        Kernel.Require(KernelFeature.RawTracepoint, KernelFeature.Ringbuf);
        int port;
        using (var l = new TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
        }
        var psi = new ProcessStartInfo(AgentLifecycleTests.Launcher(),
            ["agent", "--health-server-address", $"127.0.0.1:{port}", "--export-filename", "/dev/null", "--log-level", "warn"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var agent = Process.Start(psi)!;
        agent.BeginErrorReadLine();
        agent.BeginOutputReadLine();
        try
        {
            using var http = new System.Net.Http.HttpClient();
            Assert.True(Command.WaitUntil(() =>
            {
                try
                {
                    return http.GetAsync(new Uri($"http://127.0.0.1:{port}/readyz")).Result.IsSuccessStatusCode;
                }
                catch (AggregateException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(60)), "agent not ready");

            Storm(20_000);
            Thread.Sleep(TimeSpan.FromSeconds(2)); // let the reader drain; not a timing assertion
            var after20k = RssKiB(agent.Id);
            Storm(180_000);
            Thread.Sleep(TimeSpan.FromSeconds(2));
            var after200k = RssKiB(agent.Id);

            TestContext.Current.SendDiagnosticMessage($"agent RSS after 20k execs: {after20k / 1024} MiB; after 200k: {after200k / 1024} MiB");
            Assert.True(after200k - after20k <= 20 * 1024,
                $"RSS grew from {after20k / 1024} MiB after 20 000 processes to {after200k / 1024} MiB after 200 000");
        }
        finally
        {
            Native.Kill(agent.Id, Native.SIGTERM);
            if (!agent.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                agent.Kill();
            }
        }
    }
}
