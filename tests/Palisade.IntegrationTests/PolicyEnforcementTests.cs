using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Palisade.Events;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

/// <summary>TracingPolicies enforced in the kernel on this machine: real processes, real files, real sockets.</summary>
public sealed class PolicyEnforcementTests : IDisposable
{
    private const int KilledBySigkill = 128 + 9;
    private readonly string _dir;

    public PolicyEnforcementTests()
    {
        Kernel.Require();
        _dir = Helpers.RealPath(Directory.CreateTempSubdirectory("pal-pol-").FullName);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Opener => Helpers.Path("opener");

    private static CommandResult RunIn(string cwd, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = cwd };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(30)), $"{file} did not finish");
        return new CommandResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    private string Secret()
    {
        var path = Path.Combine(_dir, "secret");
        File.WriteAllText(path, "TOP-SECRET-CONTENT\n");
        return path;
    }

    [Fact]
    public void FdInstallKillsEveryWayOfOpeningTheFileAndAllowlistedBinariesReadIt()
    {
        using var h = new PolicyHarness();
        var secret = Secret();
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var cat = Helpers.RealPath("/bin/cat");
        h.ApplyRunning(TestPolicies.FdInstallKill("protect-secret", secret, $"""
                  matchBinaries:
                  - operator: NotIn
                    values:
                    - "{cat}"
            """));
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        File.CreateSymbolicLink(Path.Combine(_dir, "link"), secret);

        var ways = new (string Name, string Cwd, string[] Args)[]
        {
            ("absolute", "/", ["open", secret]),
            ("relative to cwd", _dir, ["open", "secret"]),
            ("relative to a dirfd", "/", ["openat", _dir, "secret"]),
            ("through a symlink", "/", ["open", Path.Combine(_dir, "link")]),
            ("through ..", Path.Combine(_dir, "sub"), ["open", "../secret"]),
        };
        foreach (var (name, cwd, args) in ways)
        {
            var r = RunIn(cwd, Opener, args);
            Assert.True(r.ExitCode == KilledBySigkill, $"{name}: exit {r.ExitCode}, stdout {r.Stdout}, stderr {r.Stderr}");
            Assert.DoesNotContain("TOP-SECRET", r.Stdout, StringComparison.Ordinal);
        }
        var allowed = RunIn("/", cat, secret);
        Assert.Equal(0, allowed.ExitCode);
        Assert.Contains("TOP-SECRET", allowed.Stdout, StringComparison.Ordinal);

        var ev = h.WaitForPolicyEvent(e => e.PolicyName == "protect-secret" && e.Action == "KPROBE_ACTION_SIGKILL", "fd_install kill event");
        Assert.Equal("fd_install", ev.FunctionName);
        Assert.Equal(EventKind.ProcessKprobe, ev.Kind);
        // Tetragon's permission: the mode of the inode the kernel walked to, as ls -l writes it.
        Assert.Contains(ev.Args, a => a.Type == "file_arg" && a.Text == secret && FileArgText.Permission(a.Mode) == "-rw-r-----" && !a.Truncated);
        Assert.Contains(ev.Args, a => a.Type == "int_arg");
        Assert.Equal(Opener, ev.Process.Binary);
        var status = h.Engine.Get("protect-secret")!;
        Assert.Equal(5UL, status.Counters.Killed);
        Assert.Equal("emulated", Assert.Single(status.Hooks).Mode);
        // A kill is followed by the process's exit with SIGKILL.
        h.Sensor.WaitFor<ProcessExitEvent>(e => e.Process.Pid == ev.Process.Pid && e.Signal == "SIGKILL", "exit after kill");
    }

    [Fact]
    public void PathsAcrossMountsResolveToWhatTheProcessSees()
    {
        // The in-kernel walk climbs from the file to the task's root and steps from each mount's
        // root to its mountpoint: a tmpfs, a tmpfs inside it, a bind mount of a subdirectory
        // (its root is not its file system's root) and /dev/shm (tmpfs on devtmpfs).
        var outer = Path.Combine(_dir, "outer");
        var inner = Path.Combine(outer, "inner");
        var source = Path.Combine(_dir, "source");
        var bind = Path.Combine(_dir, "bind");
        var shm = $"/dev/shm/pal-{Guid.NewGuid():N}";
        Directory.CreateDirectory(outer);
        Directory.CreateDirectory(Path.Combine(source, "deep"));
        Directory.CreateDirectory(bind);
        var mounted = new List<string>();
        try
        {
            Mount(["-t", "tmpfs", "palisade-test", outer], outer, mounted);
            Directory.CreateDirectory(inner);
            Mount(["-t", "tmpfs", "palisade-test", inner], inner, mounted);
            Mount(["--bind", Path.Combine(source, "deep"), bind], bind, mounted);
            var files = new[] { Path.Combine(outer, "a"), Path.Combine(inner, "b"), Path.Combine(bind, "c"), shm };
            foreach (var f in files)
            {
                File.WriteAllText(f, "TOP-SECRET-CONTENT\n");
            }

            using var h = new PolicyHarness();
            for (var i = 0; i < files.Length; i++)
            {
                h.ApplyRunning(TestPolicies.FdInstallKill($"mounts-{i}", files[i], $"""
                          matchBinaries:
                          - operator: In
                            values:
                            - "{Opener}"
                    """));
            }
            for (var i = 0; i < files.Length; i++)
            {
                var r = RunIn("/", Opener, "open", files[i]);
                Assert.True(r.ExitCode == KilledBySigkill, $"{files[i]}: exit {r.ExitCode}, stdout {r.Stdout}, stderr {r.Stderr}");
                var ev = h.WaitForPolicyEvent(e => e.PolicyName == $"mounts-{i}", $"kill event for {files[i]}");
                Assert.Contains(ev.Args, a => a.Type == "file_arg" && a.Text == files[i]);
            }
            // The bind mount's source path is another name for the same file: the policy names
            // the path the process used, as Tetragon's d_path does.
            Assert.Equal(0, RunIn("/", Opener, "open", Path.Combine(source, "deep", "c")).ExitCode);
        }
        finally
        {
            foreach (var m in Enumerable.Reverse(mounted))
            {
                Command.Run("umount", "-l", m);
            }
            File.Delete(shm);
        }
    }

    private static void Mount(string[] args, string target, List<string> mounted)
    {
        var r = Command.Run("mount", args);
        Assert.True(r.ExitCode == 0, $"mount {string.Join(' ', args)}: {r.Stderr}");
        mounted.Add(target);
    }

    [Fact]
    public void SyscallTracepointPolicyKillsOnOpenat()
    {
        using var h = new PolicyHarness();
        var secret = Secret();
        h.ApplyRunning($"""
            apiVersion: cilium.io/v1alpha1
            kind: TracingPolicy
            metadata:
              name: openat-kill
            spec:
              kprobes:
              - call: "sys_openat"
                syscall: true
                args:
                - index: 0
                  type: int
                - index: 1
                  type: "string"
                selectors:
                - matchArgs:
                  - index: 1
                    operator: "Postfix"
                    values:
                    - "/secret"
                  matchBinaries:
                  - operator: In
                    values:
                    - "{Opener}"
                  matchActions:
                  - action: Sigkill
            """);
        var r = RunIn("/", Opener, "open", secret);
        Assert.Equal(KilledBySigkill, r.ExitCode);
        Assert.DoesNotContain("TOP-SECRET", r.Stdout, StringComparison.Ordinal);
        var ev = h.WaitForPolicyEvent(e => e.PolicyName == "openat-kill", "sys_openat event");
        Assert.Contains(ev.Args, a => a.Type == "string_arg" && a.Text == secret);
    }

    [Fact]
    public void ExecUnderAForbiddenPrefixNeverRunsAnInstruction()
    {
        using var h = new PolicyHarness();
        var forbidden = Path.Combine(_dir, "forbidden");
        Directory.CreateDirectory(forbidden);
        var copy = Path.Combine(forbidden, "opener");
        File.Copy(Opener, copy);
        File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        h.ApplyRunning(TestPolicies.ExecPrefixKill("no-exec-from-forbidden", forbidden + "/"));
        var marker = Path.Combine(_dir, "marker");
        var r = RunIn("/", copy, "marker", marker);
        Assert.Equal(KilledBySigkill, r.ExitCode);
        Assert.False(File.Exists(marker), "the killed program ran and created its marker");
        // The same program elsewhere runs.
        Assert.Equal(0, RunIn("/", Opener, "marker", marker).ExitCode);
        Assert.True(File.Exists(marker));
        var ev = h.WaitForPolicyEvent(e => e.PolicyName == "no-exec-from-forbidden", "exec kill event");
        Assert.Contains(ev.Args, a => a.Type == "linux_binprm_arg" && a.Text == copy && FileArgText.Permission(a.Mode) == "-rwx------");
    }

    [Fact]
    public void UprobeOnAUserFunctionMatchesItsArgumentsAndKills()
    {
        using var h = new PolicyHarness();
        h.ApplyRunning($"""
            apiVersion: cilium.io/v1alpha1
            kind: TracingPolicy
            metadata:
              name: uprobe-word
            spec:
              uprobes:
              - path: "{Opener}"
                symbols:
                - "pal_uprobe_target"
                args:
                - index: 0
                  type: "int"
                - index: 1
                  type: "string"
                selectors:
                - matchArgs:
                  - index: 1
                    operator: "Equal"
                    values:
                    - "boom"
                  matchActions:
                  - action: Sigkill
            """);
        var fine = RunIn("/", Opener, "call", "fine");
        Assert.Equal(0, fine.ExitCode);
        Assert.Contains("called 11", fine.Stdout, StringComparison.Ordinal);
        var boom = RunIn("/", Opener, "call", "boom");
        Assert.Equal(KilledBySigkill, boom.ExitCode);
        Assert.DoesNotContain("called", boom.Stdout, StringComparison.Ordinal);
        var ev = h.WaitForPolicyEvent(e => e.PolicyName == "uprobe-word", "uprobe event");
        Assert.Equal(EventKind.ProcessUprobe, ev.Kind);
        Assert.Equal("pal_uprobe_target", ev.FunctionName);
        Assert.Equal(Opener, ev.Subsystem);
        Assert.Equal(7, ev.Args[0].Int);
        Assert.Equal("boom", ev.Args[1].Text);
        Assert.True(h.Engine.Delete("uprobe-word"));
        Assert.Equal(0, RunIn("/", Opener, "call", "boom").ExitCode);
    }

    [Fact]
    public void BpfProgramLoadsAndMapCreationsAreReported()
    {
        using var h = new PolicyHarness();
        h.ApplyRunning("""
            apiVersion: cilium.io/v1alpha1
            kind: TracingPolicy
            metadata:
              name: bpf-watch
            spec:
              kprobes:
              - call: "bpf_check"
                syscall: false
                args:
                - index: 1
                  type: "bpf_attr"
              - call: "security_bpf_map_create"
                syscall: false
                args:
                - index: 0
                  type: "bpf_map"
            """);
        using (var obj = Palisade.Bpf.BpfObject.OpenEmbedded(Kernel.TestObjects, "maps_test.bpf.o"))
        {
            obj.Load();
        }
        var prog = h.WaitForPolicyEvent(e => e.PolicyName == "bpf-watch" && e.FunctionName == "bpf_check", "bpf_check event");
        var attr = Assert.Single(prog.Args);
        Assert.Equal("bpf_attr_arg", attr.Type);
        Assert.Contains(attr.Object!, f => f.Key == "ProgType" && ((string)f.Value).StartsWith("BPF_PROG_TYPE_", StringComparison.Ordinal));
        Assert.Contains(attr.Object!, f => f.Key == "InsnCnt" && (uint)f.Value > 0);
        var map = h.WaitForPolicyEvent(e => e.PolicyName == "bpf-watch" && e.FunctionName == "security_bpf_map_create", "map create event");
        Assert.Contains(Assert.Single(map.Args).Object!, f => f.Key == "MapType" && ((string)f.Value).StartsWith("BPF_MAP_TYPE_", StringComparison.Ordinal));
    }

    [Fact]
    public void ConnectToAForbiddenPortIsRefusedAndKilled()
    {
        using var h = new PolicyHarness();
        using var forbidden = new TcpListener(IPAddress.Loopback, 0);
        using var allowed = new TcpListener(IPAddress.Loopback, 0);
        forbidden.Start();
        allowed.Start();
        var forbiddenPort = ((IPEndPoint)forbidden.LocalEndpoint).Port;
        var allowedPort = ((IPEndPoint)allowed.LocalEndpoint).Port;
        h.ApplyRunning($"""
            apiVersion: cilium.io/v1alpha1
            kind: TracingPolicy
            metadata:
              name: no-forbidden-port
            spec:
              kprobes:
              - call: "tcp_connect"
                syscall: false
                args:
                - index: 0
                  type: "sock"
                selectors:
                - matchArgs:
                  - index: 0
                    operator: "DPort"
                    values:
                    - "{forbiddenPort}"
                  matchActions:
                  - action: Sigkill
            """);
        var r = RunIn("/", Opener, "connect", "127.0.0.1", forbiddenPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(KilledBySigkill, r.ExitCode);
        Assert.DoesNotContain("connected", r.Stdout, StringComparison.Ordinal);
        Assert.False(forbidden.Pending(), "the forbidden port got a connection");
        var ok = RunIn("/", Opener, "connect", "127.0.0.1", allowedPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("connected", ok.Stdout, StringComparison.Ordinal);
        var ev = h.WaitForPolicyEvent(e => e.PolicyName == "no-forbidden-port", "connect kill event");
        var sock = Assert.Single(ev.Args).Sock!;
        Assert.Equal((uint)forbiddenPort, sock.DPort);
        Assert.Equal("127.0.0.1", sock.DAddr);
        Assert.Equal("IPPROTO_TCP", sock.Protocol);
    }
}
