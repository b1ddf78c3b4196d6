using System.Text.Json;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>The real agent with --tracing-policy-dir: files added, edited and removed apply live.</summary>
public sealed class PolicyDirectoryTests : IDisposable
{
    private readonly string _dir;
    private readonly string _policies;

    public PolicyDirectoryTests()
    {
        Kernel.Require();
        _dir = Helpers.RealPath(Directory.CreateTempSubdirectory("pal-dir-").FullName);
        _policies = Path.Combine(_dir, "policies");
        Directory.CreateDirectory(_policies);
        File.WriteAllText(Path.Combine(_dir, "secret"), "TOP-SECRET\n");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PolicyYaml(string mode) =>
        TestPolicies.FdInstallKill("dir-policy", Path.Combine(_dir, "secret"), label: "team: sec", mode: mode);

    private int Open() => Command.Run(Helpers.Path("opener"), "open", Path.Combine(_dir, "secret")).ExitCode;

    private JsonElement[] Policies(AgentProcess agent) =>
        JsonDocument.Parse(agent.Http.GetStringAsync(new Uri("/v1/policies", UriKind.Relative)).Result).RootElement.EnumerateArray().ToArray();

    [Fact]
    public void AddingEditingAndRemovingFilesAppliesLive()
    {
        File.WriteAllText(Path.Combine(_policies, "bad.yaml"), "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: bad\nspec:\n  kprobes:\n  - call: fd_install\n    selectors:\n    - matchActions:\n      - action: Sigkil\n");
        using var agent = AgentProcess.Start("--tracing-policy-dir", _policies, "--tracing-policy-selector", "team=sec");
        agent.WaitReady();
        Assert.Equal(0, Open());

        var file = Path.Combine(_policies, "p.yaml");
        File.WriteAllText(file, PolicyYaml("enforce"));
        Assert.True(Command.WaitUntil(() => Policies(agent).Any(p => p.GetProperty("name").GetString() == "dir-policy"), TimeSpan.FromSeconds(15)), agent.Log);
        var status = Policies(agent).Single(p => p.GetProperty("name").GetString() == "dir-policy");
        Assert.Equal("enabled", status.GetProperty("state").GetString());
        Assert.Equal("emulated", status.GetProperty("hooks")[0].GetProperty("mode").GetString());
        Assert.Equal(137, Open());

        File.WriteAllText(file, PolicyYaml("monitor"));
        Assert.True(Command.WaitUntil(() => Policies(agent) is [var only] && only.GetProperty("mode").GetString() == "monitor", TimeSpan.FromSeconds(15)), agent.Log);
        Assert.Equal(0, Open());

        // A typo in the file keeps the last good version running (monitor), reported in the log.
        File.WriteAllText(file, PolicyYaml("monitor").Replace("Sigkill", "Sigkil", StringComparison.Ordinal));
        Assert.True(Command.WaitUntil(() => agent.Log.Contains("keeps running its last good version", StringComparison.Ordinal), TimeSpan.FromSeconds(15)), agent.Log);
        Assert.True(Policies(agent) is [var kept] && kept.GetProperty("mode").GetString() == "monitor");
        File.WriteAllText(file, PolicyYaml("enforce"));
        Assert.True(Command.WaitUntil(() => Policies(agent) is [var fixedUp] && fixedUp.GetProperty("mode").GetString() == "enforce", TimeSpan.FromSeconds(15)), agent.Log);
        Assert.Equal(137, Open());

        File.Delete(file);
        Assert.True(Command.WaitUntil(() => Policies(agent).Length == 0, TimeSpan.FromSeconds(15)), agent.Log);
        Assert.Equal(0, Open());
        // The bad file was reported with its precise error and did not stop anything.
        Assert.Contains("unknown action \"Sigkil\"", agent.Log, StringComparison.Ordinal);
        Assert.True(agent.Terminate());
        Assert.Equal(0, agent.Process.ExitCode);
    }
}
