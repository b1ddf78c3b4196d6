using System.Diagnostics;
using System.Text.Json;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>The gRPC API through the real CLI against the real agent: live kill in getevents, policy verbs, a stalled subscriber.</summary>
public sealed class ApiTests : IDisposable
{
    private readonly string _dir;

    public ApiTests()
    {
        Kernel.Require();
        _dir = Directory.CreateTempSubdirectory("pal-api-").FullName;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string KillPolicy(string name, string prefix)
    {
        var file = Path.Combine(_dir, name + ".yaml");
        File.WriteAllText(file, TestPolicies.ExecPrefixKill(name, prefix));
        return file;
    }

    private static Process Stream(AgentProcess agent, params string[] args)
    {
        var psi = new ProcessStartInfo(AgentProcess.Launcher(), ["getevents", .. args, "--server-address", agent.ApiAddress])
        {
            RedirectStandardOutput = true,
        };
        return Process.Start(psi)!;
    }

    [Fact]
    public void TheDefaultApiSocketIsRootOnlyLogFileGetsTheLogsAndTetrasSpellingsWork()
    {
        var log = Path.Combine(_dir, "agent.log");
        using var agent = AgentProcess.Start("--log-file", log);
        agent.WaitReady();
        // The gRPC API's unix socket: mode 0600, so only root reaches the agent.
        var socket = agent.ApiAddress["unix://".Length..];
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
        // log-file (Tetragon's key): the agent's own log lines go to the file too.
        Assert.True(Command.WaitUntil(() => File.Exists(log) && File.ReadAllText(log).Contains("Palisade agent", StringComparison.Ordinal), TimeSpan.FromSeconds(30)),
            "log-file got no log lines:\n" + agent.Log);
        // tetra's verb and noun: tracingpolicy list.
        var list = agent.Cli("tracingpolicy", "list");
        Assert.True(list.ExitCode == 0, list.Stderr + list.Stdout);
        Assert.True(agent.Terminate());
    }

    [Fact]
    public void GetEventsShowsALiveKillAndThePolicyVerbsWork()
    {
        using var agent = AgentProcess.Start();
        agent.WaitReady();
        var forbidden = Path.Combine(_dir, "forbidden") + "/";
        Directory.CreateDirectory(forbidden);
        var victim = Path.Combine(forbidden, "victim");
        File.Copy("/usr/bin/true", victim);
        File.SetUnixFileMode(victim, UnixFileMode.UserRead | UnixFileMode.UserExecute);

        var add = agent.Cli("policy", "add", KillPolicy("api-kill", forbidden));
        Assert.True(add.ExitCode == 0, add.Stderr + add.Stdout + agent.Log);
        Assert.Contains("api-kill enabled (enforce)", add.Stdout, StringComparison.Ordinal);

        var list = agent.Cli("policy", "list");
        Assert.Equal(0, list.ExitCode);
        Assert.Matches(@"api-kill\s+enabled\s+enforce", list.Stdout);
        Assert.Contains("kprobe security_bprm_check: emulated", list.Stdout, StringComparison.Ordinal);
        var json = agent.Cli("policy", "list", "-o", "json");
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            var policy = doc.RootElement.GetProperty("policies").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "api-kill");
            Assert.Equal("TP_STATE_ENABLED", policy.GetProperty("state").GetString());
            Assert.Equal("emulated", policy.GetProperty("hooks")[0].GetProperty("mode").GetString());
        }

        using var stream = Stream(agent, "-o", "compact", "--color", "never");
        var lines = new List<string>();
        stream.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (lines)
                {
                    lines.Add(e.Data);
                }
            }
        };
        stream.BeginOutputReadLine();
        bool Seen(Func<string, bool> what)
        {
            lock (lines)
            {
                return lines.Any(what);
            }
        }
        // The stream is up once it shows an event of ours.
        Assert.True(Command.WaitUntil(() => { Command.Run("/usr/bin/true", "api-stream-ready"); return Seen(l => l.Contains("api-stream-ready", StringComparison.Ordinal)); },
            TimeSpan.FromSeconds(20)), "getevents never showed an event:\n" + agent.Log);

        var run = Command.Run(victim);
        Assert.Equal(137, run.ExitCode);
        Assert.True(Command.WaitUntil(() => Seen(l => l.StartsWith("💀 kill", StringComparison.Ordinal) && l.Contains(victim, StringComparison.Ordinal) && l.Contains("[api-kill]", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10)), "no kill line:\n" + string.Join('\n', lines));
        Assert.True(Command.WaitUntil(() => Seen(l => l.StartsWith("💥 exit", StringComparison.Ordinal) && l.Contains(victim, StringComparison.Ordinal) && l.EndsWith("SIGKILL", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10)), "no exit line with SIGKILL:\n" + string.Join('\n', lines));

        // Monitor mode: reported, not killed; then delete: nothing at all.
        Assert.Equal(0, agent.Cli("policy", "set-mode", "api-kill", "monitor").ExitCode);
        Assert.Equal(0, Command.Run(victim).ExitCode);
        Assert.Equal(0, agent.Cli("policy", "disable", "api-kill").ExitCode);
        Assert.Contains("disabled", agent.Cli("policy", "list").Stdout, StringComparison.Ordinal);
        Assert.Equal(0, agent.Cli("policy", "enable", "api-kill").ExitCode);
        Assert.Equal(0, agent.Cli("policy", "delete", "api-kill").ExitCode);
        Assert.DoesNotContain("api-kill", agent.Cli("policy", "list").Stdout, StringComparison.Ordinal);
        var missing = agent.Cli("policy", "delete", "api-kill");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("no policy named \"api-kill\"", missing.Stderr, StringComparison.Ordinal);

        // validate is offline and precise; add refuses the same file with the same errors.
        var bad = Path.Combine(_dir, "bad.yaml");
        File.WriteAllText(bad, TestPolicies.ExecPrefixKill("bad", "/x/").Replace("operator: \"Prefix\"", "operator: \"Prefixx\"", StringComparison.Ordinal));
        var validate = Command.Run(AgentProcess.Launcher(), "policy", "validate", bad);
        Assert.Equal(1, validate.ExitCode);
        Assert.Contains("spec.kprobes[0].selectors[0].matchArgs[0].operator: unknown operator \"Prefixx\"", validate.Stdout, StringComparison.Ordinal);
        var addBad = agent.Cli("policy", "add", bad);
        Assert.Equal(1, addBad.ExitCode);
        Assert.Contains("unknown operator \"Prefixx\"", addBad.Stderr, StringComparison.Ordinal);

        var status = agent.Cli("status");
        Assert.Equal(0, status.ExitCode);
        Assert.Contains("running", status.Stdout, StringComparison.Ordinal);
        stream.Kill();
    }

    [Fact]
    public void AStalledSubscriberLosesOnlyItsOwnEvents()
    {
        var file = Path.Combine(_dir, "events.json");
        using var agent = AgentProcess.Start("--export-filename", file, "--event-queue-size", "2000");
        agent.WaitReady();
        // A client that never reads: its stdout pipe fills, it stops reading the stream, the
        // server's writes block, and its queue in the agent fills.
        using var stalled = Stream(agent, "-o", "json");
        Assert.True(Command.WaitUntil(() => agent.Get("/v1/status").Contains("grpc-", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20)), "the stream never subscribed");
        var storm = Command.Run(TimeSpan.FromMinutes(5), Helpers.Path("execstorm"), "6000", "2", "/bin/true");
        Assert.Equal(0, storm.ExitCode);

        long Exporter(JsonElement status, string prefix, string field) =>
            status.GetProperty("exporters").EnumerateArray().Where(e => e.GetProperty("name").GetString()!.StartsWith(prefix, StringComparison.Ordinal))
                .Sum(e => e.GetProperty(field).GetInt64());
        Assert.True(Command.WaitUntil(() =>
        {
            using var s = JsonDocument.Parse(agent.Get("/v1/status"));
            return Exporter(s.RootElement, "file", "queue_depth") == 0 && Exporter(s.RootElement, "grpc-", "dropped_queue_full") > 0;
        }, TimeSpan.FromSeconds(30)), "the stalled stream never dropped");
        using var status = JsonDocument.Parse(agent.Get("/v1/status"));
        Assert.Equal(0, Exporter(status.RootElement, "file", "dropped_queue_full"));
        Assert.Equal(0, status.RootElement.GetProperty("process_sensor").GetProperty("kernel_lost_exec").GetInt64());
        var metrics = agent.Get("/metrics");
        Assert.Matches(@"palisade_export_dropped_total\{sink=""grpc-\d+"",reason=""queue_full""\} [1-9]", metrics);
        stalled.Kill();
        Assert.True(agent.Terminate(), agent.Log);
        var execs = File.ReadLines(file).Count(l => l.Contains("\"process_exec\"", StringComparison.Ordinal) && l.Contains("\"binary\":\"/usr/bin/true\"", StringComparison.Ordinal));
        Assert.True(execs >= 6000, $"the file sink saw {execs} of 6000 execs while another subscriber stalled");
    }
}
