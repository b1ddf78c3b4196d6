using System.Text.Json;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>
/// --keep-sensors-on-exit with the real agent: policies keep killing while no agent runs, the
/// next agent takes the pinned programs over without attaching them twice, and an agent
/// without the flag removes them. The kill policies only match a binary and a file in this
/// test's temp dir, and the pins live in a bpffs directory of this test, removed in finally.
/// </summary>
public sealed class KeepSensorsTests : IDisposable
{
    private readonly string _dir;
    private readonly string _policies;
    private readonly string _victim;
    private readonly string _secret;
    private readonly string _pins = $"/sys/fs/bpf/palisade-test-{Guid.NewGuid():N}";

    public KeepSensorsTests()
    {
        Kernel.Require();
        _dir = Helpers.RealPath(Directory.CreateTempSubdirectory("pal-keep-").FullName);
        _policies = Path.Combine(_dir, "policies");
        Directory.CreateDirectory(_policies);
        var forbidden = Path.Combine(_dir, "forbidden") + "/";
        Directory.CreateDirectory(forbidden);
        _victim = Path.Combine(forbidden, "victim");
        File.Copy("/usr/bin/true", _victim);
        File.SetUnixFileMode(_victim, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        _secret = Path.Combine(_dir, "secret");
        File.WriteAllText(_secret, "TOP-SECRET\n");
        File.WriteAllText(Path.Combine(_policies, "exec.yaml"), TestPolicies.ExecPrefixKill("keep-exec", forbidden));
        // A syscall-exit policy too, so a lazily attached group (sys_exit) is pinned and adopted.
        File.WriteAllText(Path.Combine(_policies, "fd.yaml"), TestPolicies.FdInstallKill("keep-fd", _secret));
    }

    public void Dispose()
    {
        RemovePins(_pins);
        Directory.Delete(_dir, recursive: true);
    }

    private static void RemovePins(string path)
    {
        if (!Directory.Exists(path))
        {
            return;
        }
        foreach (var links in Directory.EnumerateDirectories(path, "links", SearchOption.AllDirectories).ToList())
        {
            Directory.Delete(links, recursive: true);
        }
        Directory.Delete(path, recursive: true);
    }

    private int Exec() => Command.Run(_victim).ExitCode;

    private int Open() => Command.Run(Helpers.Path("opener"), "open", _secret).ExitCode;

    private AgentProcess StartAgent(bool keep, int policies = 2)
    {
        string[] args = ["--tracing-policy-dir", _policies, "--bpf-dir", _pins];
        var agent = AgentProcess.Start(keep ? [.. args, "--keep-sensors-on-exit"] : args);
        agent.WaitReady();
        Assert.True(Command.WaitUntil(() => Policies(agent) is var all && all.Length == policies && all.All(p => p.GetProperty("state").GetString() == "enabled"),
            TimeSpan.FromSeconds(15)), agent.Log);
        return agent;
    }

    private static JsonElement[] Policies(AgentProcess agent) =>
        JsonDocument.Parse(agent.Get("/v1/policies")).RootElement.EnumerateArray().ToArray();

    /// <summary>Link ids whose fds <paramref name="pid"/> holds (from /proc/PID/fdinfo).</summary>
    private static HashSet<int> LinksHeldBy(int pid)
    {
        var ids = new HashSet<int>();
        foreach (var fdinfo in Directory.EnumerateFiles($"/proc/{pid}/fdinfo"))
        {
            try
            {
                foreach (var line in File.ReadLines(fdinfo))
                {
                    if (line.StartsWith("link_id:", StringComparison.Ordinal))
                    {
                        ids.Add(int.Parse(line["link_id:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture));
                    }
                }
            }
            catch (IOException)
            {
                // the fd was closed meanwhile
            }
        }
        return ids;
    }

    /// <summary>Ids of the links pinned under the test's pin directory.</summary>
    private HashSet<int> PinnedLinks() =>
        Directory.Exists(_pins)
            ? Directory.EnumerateFiles(_pins, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(Path.GetDirectoryName(f)) == "links")
                .Select(f => JsonDocument.Parse(Command.Check("bpftool", "-j", "link", "show", "pinned", f)).RootElement.GetProperty("id").GetInt32()).ToHashSet()
            : [];

    /// <summary>(link id, program name, raw tracepoint name) of each of <paramref name="ids"/> that exists.</summary>
    private static List<(int Id, string Program, string? Tracepoint)> Describe(IEnumerable<int> ids)
    {
        using var links = JsonDocument.Parse(Command.Check("bpftool", "-j", "link", "show"));
        var wanted = ids.ToHashSet();
        var result = new List<(int, string, string?)>();
        foreach (var link in links.RootElement.EnumerateArray().Where(l => wanted.Contains(l.GetProperty("id").GetInt32())))
        {
            var progId = link.GetProperty("prog_id").GetInt32();
            using var prog = JsonDocument.Parse(Command.Check("bpftool", "-j", "prog", "show", "id", progId.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            result.Add((link.GetProperty("id").GetInt32(), prog.RootElement.GetProperty("name").GetString()!,
                link.TryGetProperty("tp_name", out var tp) ? tp.GetString() : null));
        }
        return result;
    }

    [Fact]
    public void PinnedSensorsKeepKillingWhileTheAgentIsDownAreAdoptedOnceAndRemovedWithoutTheFlag()
    {
        try
        {
            Assert.Equal(0, Exec());

            // (1) With the flag: after SIGTERM nothing of ours runs in user space, the kernel still kills.
            HashSet<int> firstRun;
            using (var agent = StartAgent(keep: true))
            {
                Assert.Equal(137, Exec());
                Assert.True(agent.Terminate(), "the agent did not stop within 30 s of SIGTERM");
                Assert.Equal(0, agent.Process.ExitCode);
                Assert.True(agent.Process.HasExited);
            }
            firstRun = PinnedLinks();
            Assert.NotEmpty(firstRun);
            Assert.Equal(137, Exec()); // SIGKILL, with no agent running
            Assert.Equal(137, Open()); // the lazily attached sys_exit program is kept too

            // (2) Again with the flag and the same pins: ready, kills, and every program is attached once.
            HashSet<int> secondRun;
            using (var agent = StartAgent(keep: true))
            {
                Assert.Equal(137, Exec());
                Assert.Equal(137, Open());
                var held = LinksHeldBy(agent.Process.Id);
                secondRun = [.. held, .. PinnedLinks()];
                var links = Describe(secondRun);
                var exec = links.Where(l => l.Program == "pal_exec").ToList();
                Assert.True(exec.Count == 1, $"pal_exec links of this run: {string.Join(", ", exec)}\n{agent.Log}");
                Assert.Equal("sched_process_exec", exec[0].Tracepoint);
                Assert.True(firstRun.Contains(exec[0].Id), "the agent attached a new pal_exec instead of taking over the pinned one");
                Assert.Contains(exec[0].Id, held);
                // Kernel program names are cut at 15 characters.
                var sysExit = links.Where(l => l.Program.StartsWith("pal_pol_sys_exi", StringComparison.Ordinal)).ToList();
                Assert.True(sysExit.Count == 1, $"sys-exit links of this run: {string.Join(", ", sysExit)}\n{agent.Log}");
                Assert.Contains(sysExit[0].Id, firstRun);
                Assert.Single(links, l => l.Program == "pal_fork");
                Assert.Single(links, l => l.Program == "pal_exit");
                Assert.Contains("taken over", agent.Log, StringComparison.Ordinal);
                Assert.True(agent.Terminate());
                Assert.Equal(0, agent.Process.ExitCode);
            }
            Assert.Equal(137, Exec());

            // A policy deleted while no agent runs keeps acting until the next agent has
            // re-applied the others; then its entries are gone and only the other one kills.
            var execFile = Path.Combine(_policies, "exec.yaml");
            var execYaml = File.ReadAllText(execFile);
            File.Delete(execFile);
            using (var agent = StartAgent(keep: true, policies: 1))
            {
                Assert.Equal(0, Exec());
                Assert.Equal(137, Open());
                Assert.True(agent.Terminate());
            }
            Assert.Equal(0, Exec());
            Assert.Equal(137, Open());
            File.WriteAllText(execFile, execYaml);

            // (3) Without the flag: the pins are removed at start and nothing of the earlier runs stays attached.
            using (var agent = StartAgent(keep: false))
            {
                Assert.False(Directory.Exists(_pins), "the pins of the earlier run are still there");
                Assert.Contains("Removed", agent.Log, StringComparison.Ordinal);
                Assert.True(Command.WaitUntil(() => Describe(secondRun).Count == 0, TimeSpan.FromSeconds(10)),
                    $"still attached: {string.Join(", ", Describe(secondRun))}");
                Assert.Equal(137, Exec()); // this run's own programs
                Assert.True(agent.Terminate());
                Assert.Equal(0, agent.Process.ExitCode);
            }
            Assert.False(Directory.Exists(_pins));
            Assert.Equal(0, Exec()); // nothing left that kills
        }
        finally
        {
            RemovePins(_pins);
        }
    }
}
