using System.Diagnostics;
using Palisade.Bpf.Probe;
using Palisade.Events;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Runtime;

namespace Palisade.IntegrationTests;

/// <summary>The process lifecycle sensor on this kernel, with real processes.</summary>
public sealed class ProcessSensorTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("palisade-proc-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static void RequireSensor() => Kernel.Require(KernelFeature.RawTracepoint, KernelFeature.Ringbuf);

    private static Process Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        return Process.Start(psi)!;
    }

    [Fact]
    public void AShellRunningEchoYieldsExecAndExitWithParentCwdAndArguments()
    {
        RequireSensor();
        using var h = new SensorHarness();

        using var sh = Start("/bin/sh", "-c", "cd /tmp && /bin/echo hello world");
        sh.WaitForExit();

        var shExec = h.WaitForExec(e => e.Process.Pid == (uint)sh.Id && e.Process.Binary == Helpers.RealPath("/bin/sh"), "exec of sh");
        var echo = h.WaitForExec(e => e.Process.Binary == Helpers.RealPath("/bin/echo") && e.Process.Arguments == "hello world"
            && (e.Process.Pid == (uint)sh.Id || e.Process.ParentExecId == shExec.Process.ExecId), "exec of echo");
        Assert.Equal("/tmp", echo.Process.Cwd);
        Assert.Equal(shExec.Process.ExecId, echo.Process.ParentExecId);
        Assert.Same(shExec.Process, echo.Parent);
        Assert.Equal(Helpers.RealPath("/bin/sh"), echo.Parent!.Binary);
        Assert.Contains("execve", echo.Process.FlagsText, StringComparison.Ordinal);
        var exit = h.WaitFor<ProcessExitEvent>(e => e.Process == echo.Process, "exit of echo");
        Assert.Equal(0u, exit.Status);
        Assert.Null(exit.Signal);
    }

    [Fact]
    public void AProcessKilledBySigkillExitsWithSignalSigkill()
    {
        RequireSensor();
        using var h = new SensorHarness();
        using var sleeper = Start("/bin/sleep", "30");
        h.WaitForExec(e => e.Process.Pid == (uint)sleeper.Id, "exec of sleep");

        sleeper.Kill();
        sleeper.WaitForExit();

        var exit = h.WaitForExit(sleeper.Id);
        Assert.Equal("SIGKILL", exit.Signal);
        Assert.Equal(Helpers.RealPath("/bin/sleep"), exit.Process.Binary);
    }

    [Fact]
    public void ScriptsSymlinksRelativePathsAndDeletedBinariesGetAbsolutePaths()
    {
        RequireSensor();
        var dir = Helpers.RealPath(_dir.FullName);
        var script = Path.Combine(dir, "script.sh");
        File.WriteAllText(script, "#!/bin/sh\nexit 0\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var link = Path.Combine(dir, "link-to-true");
        File.CreateSymbolicLink(link, "/bin/true");
        var copy = Path.Combine(dir, "x");
        File.Copy(Helpers.RealPath("/bin/true"), copy);
        File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var doomed = Path.Combine(dir, "doomed-sleep");
        File.Copy(Helpers.RealPath("/bin/sleep"), doomed);
        File.SetUnixFileMode(doomed, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        using var h = new SensorHarness();

        using (var p = Start(script, "arg")) { p.WaitForExit(); }
        using (var p = Start(link)) { p.WaitForExit(); }
        using (var p = Start("/bin/sh", "-c", $"cd {dir} && ./x")) { p.WaitForExit(); }
        using var running = Start(doomed, "30");
        h.WaitForExec(e => e.Process.Pid == (uint)running.Id, "exec of doomed-sleep");
        File.Delete(doomed);
        running.Kill();
        running.WaitForExit();

        var scriptExec = h.WaitForExec(e => e.Process.Binary == script, "exec of the script");
        Assert.Equal(Helpers.RealPath("/bin/sh"), scriptExec.Process.Interpreter);
        Assert.True((scriptExec.Process.Flags & ProcessFlags.Script) != 0);
        h.WaitForExec(e => e.Process.Binary == Helpers.RealPath("/bin/true") && e.Process.Cwd != dir, "exec through the symlink, reported as its target");
        var relative = h.WaitForExec(e => e.Process.Binary == copy, "exec of ./x by relative path");
        Assert.Equal(dir, relative.Process.Cwd);
        var exit = h.WaitForExit(running.Id);
        Assert.Equal(doomed, exit.Process.Binary);
        Assert.True(exit.Process.DeletedAtExit, "the binary deleted while running is flagged at exit");
        Assert.Contains("deleted", exit.Process.FlagsText, StringComparison.Ordinal);
    }

    [Fact]
    public void AProcessStartedBeforeTheSensorHasProcFsContextAndFullAncestry()
    {
        RequireSensor();
        using var sh = Start("/bin/sh", "-c", "sleep 30; true");
        var sleepPid = 0;
        Assert.True(Command.WaitUntil(() =>
        {
            var children = File.ReadAllText($"/proc/{sh.Id}/task/{sh.Id}/children").Trim();
            return int.TryParse(children.Split(' ')[0], out sleepPid);
        }, TimeSpan.FromSeconds(10)));

        using var h = new SensorHarness();
        Process.GetProcessById(sleepPid).Kill();
        sh.WaitForExit();

        var exit = h.WaitForExit(sleepPid);
        Assert.Contains("procFS", exit.Process.FlagsText, StringComparison.Ordinal);
        Assert.Equal(Helpers.RealPath("/bin/sleep"), exit.Process.Binary);
        Assert.Equal("30", exit.Process.Arguments);
        Assert.NotNull(exit.Parent);
        Assert.Equal((uint)sh.Id, exit.Parent.Pid);
        Assert.Equal(exit.Parent.ExecId, exit.Process.ParentExecId);
        // sh <- this test process <- ... <- init: the whole chain is known.
        var ancestors = exit.Ancestors!;
        Assert.Contains(ancestors, a => a.Pid == (uint)Environment.ProcessId);
        Assert.Equal(1u, ancestors[^1].Pid);
    }

    [Fact]
    public void AnExecFromANonLeaderThreadCarriesTheProcessExecIdAndTheThreadTid()
    {
        RequireSensor();
        using var h = new SensorHarness();

        using var p = Start(Helpers.Path("thread_exec"), "/bin/true");
        var ids = p.StandardOutput.ReadLine()!.Split(' ');
        p.WaitForExit();

        var pid = uint.Parse(ids[0], System.Globalization.CultureInfo.InvariantCulture);
        var tid = uint.Parse(ids[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.NotEqual(pid, tid);
        var exec = h.WaitForExec(e => e.Process.Pid == pid && e.Process.Binary == Helpers.RealPath("/bin/true"), "exec of true from the thread");
        Assert.Equal(tid, exec.Process.Tid);
        Assert.Equal(pid, Palisade.Runtime.Processes.ExecId.Parse(exec.Process.ExecId)!.Value.Pid);
    }

    [Fact]
    public void WithUsernameMetadataHostProcessesAreNamedAndOnesInTheirOwnMountNamespaceAreNot()
    {
        RequireSensor();
        using var h = new SensorHarness(new ProcessSensorOptions { NodeName = "test-node", UserNames = true });
        var truePath = Helpers.RealPath("/bin/true");
        using (var p = Start(truePath))
        {
            p.WaitForExit();
            var exec = h.WaitForExec(e => e.Process.Pid == (uint)p.Id && e.Process.Binary == truePath, "exec of true on the host");
            Assert.Equal(0u, exec.Process.Credentials.Uid);
            Assert.Equal("root", exec.Process.UserName);
        }
        // unshare --mount execs true in a new mount namespace: its uid is not the host's to name.
        using (var p = Start(Helpers.RealPath("/usr/bin/unshare"), "--mount", truePath))
        {
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
            var exec = h.WaitForExec(e => e.Process.Pid == (uint)p.Id && e.Process.Binary == truePath, "exec of true in its own mount namespace");
            Assert.False(exec.Process.Namespaces![Array.IndexOf(NamespaceKinds.Names, "mnt")].IsHost);
            Assert.Null(exec.Process.UserName);
        }
    }

    [Fact]
    public void AnExecStormLosesNoEvent()
    {
        RequireSensor();
        const int Execs = 20_000;
        using var h = new SensorHarness(new ProcessSensorOptions { NodeName = "test-node", RingBufferBytes = 16 * 1024 * 1024 });
        var before = h.Sensor.Stats();

        var storm = Command.Run(TimeSpan.FromMinutes(5), Helpers.Path("execstorm"), Execs.ToString(System.Globalization.CultureInfo.InvariantCulture), "2", "/bin/true");
        Assert.Equal(0, storm.ExitCode);
        // pids wrap around during a storm this size, so compare counts per pid, not sets.
        var expected = storm.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(uint.Parse)
            .GroupBy(p => p).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(Execs, expected.Values.Sum());

        var truePath = Helpers.RealPath("/bin/true");
        Dictionary<uint, int> seen = [];
        Assert.True(Command.WaitUntil(() =>
        {
            seen = h.Execs.Where(e => e.Process.Binary == truePath).GroupBy(e => e.Process.Pid).ToDictionary(g => g.Key, g => g.Count());
            return expected.All(kv => seen.GetValueOrDefault(kv.Key) >= kv.Value);
        }, TimeSpan.FromSeconds(120)), $"{expected.Sum(kv => Math.Max(0, kv.Value - seen.GetValueOrDefault(kv.Key)))} of {Execs} execs were not reported");
        var after = h.Sensor.Stats();
        Assert.Equal(0UL, after.KernelLost - before.KernelLost);
        Assert.Equal(0, h.Dropped);
        Assert.Equal(0, after.Decoder.Malformed);
    }

    [Fact]
    public void WithARingBufferTooSmallEveryLossIsCounted()
    {
        RequireSensor();
        using var h = new SensorHarness(new ProcessSensorOptions { NodeName = "test-node", RingBufferBytes = 4096 }, startReader: false);

        var storm = Command.Run(TimeSpan.FromMinutes(2), Helpers.Path("execstorm"), "500", "1", "/bin/true");
        Assert.Equal(0, storm.ExitCode);
        // Nobody reads yet: the fill level shows the ring (nearly) full.
        var (map, pending, capacity) = Assert.Single(h.Sensor.RingBufferUsage());
        Assert.Equal("pal_process_events", map);
        Assert.Equal(4096, capacity);
        Assert.InRange(pending, 2048, 4096);
        h.Sensor.StartReader();

        Assert.True(Command.WaitUntil(() =>
        {
            var s = h.Sensor.Stats();
            return (ulong)s.Decoder.Exec + s.LostExec == s.KernelExecs && (ulong)s.Decoder.Exit + s.LostExit == s.KernelExits;
        }, TimeSpan.FromSeconds(30)), $"counters do not add up: {h.Sensor.Stats()}");
        var stats = h.Sensor.Stats();
        Assert.True(stats.LostExec > 0, "a 4 KiB ring buffer not being read must overflow during 500 execs");
        Assert.True(stats.KernelExecs >= 500);
        Assert.True(Command.WaitUntil(() => h.Sensor.RingBufferUsage()[0].Pending == 0, TimeSpan.FromSeconds(10)), "a drained ring shows 0 pending");
    }
}
