using System.Text.Json;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>
/// The real agent with a --tracing-policy-dir full of broken files: each is reported with its
/// error, none stops the agent, and the valid policy beside them keeps enforcing. The valid
/// policy kills only programs run from this test's own temp directory.
/// </summary>
public sealed class BrokenPolicyDirectoryTests : IDisposable
{
    private readonly string _dir;
    private readonly string _policies;
    private readonly string _victim;

    public BrokenPolicyDirectoryTests()
    {
        Kernel.Require();
        _dir = Helpers.RealPath(Directory.CreateTempSubdirectory("pal-broken-").FullName);
        _policies = Path.Combine(_dir, "policies");
        Directory.CreateDirectory(_policies);
        Directory.CreateDirectory(Path.Combine(_dir, "bin"));
        _victim = Path.Combine(_dir, "bin", "true");
        File.Copy("/bin/true", _victim);
        File.SetUnixFileMode(_victim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string KillPolicy(string name) => TestPolicies.ExecPrefixKill(name, Path.Combine(_dir, "bin") + "/");

    /// <summary>Broken the ways users break files: the {{ typo first, since it used to kill the agent.</summary>
    private Dictionary<string, string> BrokenFiles() => new(StringComparer.Ordinal)
    {
        ["double-brace-name.yaml"] = KillPolicy("typo").Replace("name: typo", "name: {{", StringComparison.Ordinal),
        ["double-brace-value.yaml"] = KillPolicy("typo2").Replace("operator: \"Prefix\"", "operator: {{\"Prefix\"", StringComparison.Ordinal),
        ["template.yaml"] = KillPolicy("{{ .Values.name }}"),
        ["truncated.yaml"] = KillPolicy("cut")[..120],
        ["tabs.yaml"] = KillPolicy("tabs").Replace("  kprobes:", "\tkprobes:", StringComparison.Ordinal),
        ["nul.yaml"] = KillPolicy("nul").Replace("spec:", "sp\0ec:", StringComparison.Ordinal),
        ["deep.yaml"] = new string('[', 10_000),
        ["aliases.yaml"] = "a: &a [x, x, x, x, x, x, x, x]\n" + string.Join('\n', Enumerable.Range(1, 8).Select(i => $"a{i}: &a{i} [{string.Join(", ", Enumerable.Repeat(i == 1 ? "*a" : $"*a{i - 1}", 8))}]")) + "\nspec: *a8\n",
        ["unknown-action.yaml"] = KillPolicy("sigkil").Replace("Sigkill", "Sigkil", StringComparison.Ordinal),
    };

    private JsonElement Status(AgentProcess agent) => JsonDocument.Parse(agent.Get("/v1/status")).RootElement;

    private string[] InvalidFiles(AgentProcess agent) =>
        [.. Status(agent).GetProperty("invalid_policy_files").EnumerateObject().Select(p => Path.GetFileName(p.Name))];

    private bool Enabled(AgentProcess agent, string name) =>
        JsonDocument.Parse(agent.Get("/v1/policies")).RootElement.EnumerateArray()
            .Any(p => p.GetProperty("name").GetString() == name && p.GetProperty("state").GetString() == "enabled");

    private int RunVictim() => Command.Run(_victim).ExitCode;

    [Fact]
    public void BrokenPolicyFilesAreReportedWhileTheValidOneKeepsKilling()
    {
        var broken = BrokenFiles();
        foreach (var (name, text) in broken)
        {
            File.WriteAllText(Path.Combine(_policies, name), text);
        }
        File.WriteAllText(Path.Combine(_policies, "valid.yaml"), KillPolicy("exec-from-test-dir"));
        Assert.Equal(0, RunVictim());

        using var agent = AgentProcess.Start("--tracing-policy-dir", _policies);
        agent.WaitReady();
        Assert.True(Command.WaitUntil(() => Enabled(agent, "exec-from-test-dir"), TimeSpan.FromSeconds(30)), agent.Log);

        Assert.Equal(137, RunVictim());
        Assert.Equal(broken.Keys.Order(StringComparer.Ordinal), InvalidFiles(agent).Order(StringComparer.Ordinal));
        Assert.Contains("double-brace-name.yaml is invalid: not valid YAML: line 4 (\"name: {{\") has \"{{\" where a value belongs", agent.Log, StringComparison.Ordinal);

        // The case that used to end the agent: a {{ file landing while it runs.
        File.WriteAllText(Path.Combine(_policies, "late.yaml"), broken["double-brace-name.yaml"]);
        Assert.True(Command.WaitUntil(() => InvalidFiles(agent).Contains("late.yaml"), TimeSpan.FromSeconds(15)), agent.Log);

        Assert.False(agent.Process.HasExited, agent.Log);
        Assert.Equal(137, RunVictim());
        Assert.DoesNotContain("Unhandled exception", agent.Log, StringComparison.Ordinal);
        Assert.True(agent.Terminate());
        Assert.Equal(0, agent.Process.ExitCode);
    }
}
