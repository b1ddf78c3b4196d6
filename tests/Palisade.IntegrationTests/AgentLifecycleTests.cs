using System.Text.Json;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>Runs the real `./artifacts/palisade agent` as the README does.</summary>
public sealed class AgentLifecycleTests
{
    [Fact]
    public async Task TheAgentProbesBecomesReadyAndOnSigtermExitsZeroLeavingNothingAttached()
    {
        Kernel.RequireRoot();
        var programsBefore = BpfIds.Programs();
        var linksBefore = BpfIds.Links();
        using var agent = AgentProcess.Start("--log-format", "json");
        agent.WaitReady();

        Assert.Equal("ok\n", await agent.Http.GetStringAsync(new Uri("/healthz", UriKind.Relative), TestContext.Current.CancellationToken));
        using var probe = JsonDocument.Parse(await agent.Http.GetStringAsync(new Uri("/v1/probe", UriKind.Relative), TestContext.Current.CancellationToken));
        var features = probe.RootElement.GetProperty("features").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!, f => f.GetProperty("available").GetBoolean());
        Assert.Equal(Kernel.Probe.Features.ToDictionary(f => f.Name, f => f.Available), features);

        Assert.True(agent.Terminate(), "the agent did not stop within 30 s of SIGTERM");
        Assert.Equal(0, agent.Process.ExitCode);

        var log = agent.Log;
        Assert.Contains("Kernel probe:", log, StringComparison.Ordinal);
        Assert.Contains("tracepoint", log, StringComparison.Ordinal);
        Assert.Contains("Palisade agent stopped", log, StringComparison.Ordinal);
        // The kernel frees a dead process's programs and links asynchronously: wait (bounded).
        Assert.True(Command.WaitUntil(() => !BpfIds.Programs().Except(programsBefore).Any() && !BpfIds.Links().Except(linksBefore).Any(), TimeSpan.FromSeconds(10)),
            $"left behind: programs {string.Join(", ", BpfIds.Programs().Except(programsBefore))}, links {string.Join(", ", BpfIds.Links().Except(linksBefore))}");
    }

    [Fact]
    public void ABadSettingStopsTheAgentWithExitCode2AndAPreciseMessage()
    {
        var result = Command.Run(TimeSpan.FromSeconds(60), AgentProcess.Launcher(), "agent", "--log-level", "loud");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("log-level: \"loud\" (from command line) is not one of trace, debug, info, warn, error.", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void PolicyValidateExitsNonZeroWithEveryPreciseError()
    {
        var file = Path.Combine(Path.GetTempPath(), $"palisade-bad-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(file, "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: bad\nspec:\n  kprobes:\n  - call: fd_install\n"
            + "    args:\n    - index: 1\n      type: file\n    selectors:\n    - matchArgs:\n      - index: 1\n        operator: Equals\n        values: [\"/etc/shadow\"]\n"
            + "      matchActions:\n      - action: Sigkil\n");
        try
        {
            var result = Command.Run(TimeSpan.FromSeconds(60), AgentProcess.Launcher(), "policy", "validate", file);

            Assert.Equal(1, result.ExitCode);
            Assert.Contains("spec.kprobes[0].selectors[0].matchArgs[0].operator: unknown operator \"Equals\". Did you mean \"Equal\"? (line 14, column 19)", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("spec.kprobes[0].selectors[0].matchActions[0].action: unknown action \"Sigkil\". Did you mean \"Sigkill\"?", result.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void ProbeJsonListsEveryFeature()
    {
        Kernel.RequireRoot();
        var result = Command.Run(TimeSpan.FromSeconds(60), AgentProcess.Launcher(), "probe", "-o", "json");

        Assert.Equal(0, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Stdout);
        var names = doc.RootElement.GetProperty("features").EnumerateArray().Select(f => f.GetProperty("name").GetString()).ToList();
        Assert.Equal(Kernel.Probe.Features.Select(f => f.Name), names);
    }
}
