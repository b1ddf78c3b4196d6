using System.Globalization;
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
        using var agent = AgentProcess.Start("--export-filename", "/dev/null", "--log-level", "warn");
        try
        {
            agent.WaitReady();

            Storm(20_000);
            agent.WaitConsumed(); // RSS is read once the agent has taken in the whole storm, however long that takes here
            var after20k = RssKiB(agent.Process.Id);
            Storm(180_000);
            agent.WaitConsumed();
            var after200k = RssKiB(agent.Process.Id);

            TestContext.Current.SendDiagnosticMessage($"agent RSS after 20k execs: {after20k / 1024} MiB; after 200k: {after200k / 1024} MiB");
            Assert.True(after200k - after20k <= 20 * 1024,
                $"RSS grew from {after20k / 1024} MiB after 20 000 processes to {after200k / 1024} MiB after 200 000");
        }
        finally
        {
            agent.Terminate();
        }
    }
}
