using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Palisade.Bpf.Probe;
using Palisade.Events;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Runtime.Abi;

namespace Palisade.IntegrationTests;

/// <summary>
/// The one process table and the one reader of each task field: what the exec event reports
/// and what the kernel table holds for the policy selectors agree with /proc, for a process
/// whose credentials, capabilities, namespaces and namespace pid all differ from the agent's.
/// </summary>
public sealed class ProcessTableTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("palisade-table-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void ExecEventAndProcessTableMatchProcForAProcessInItsOwnNamespacesAndCredentials()
    {
        Kernel.Require(KernelFeature.RawTracepoint, KernelFeature.Ringbuf);
        using var h = new SensorHarness();
        var binary = Path.Combine(_dir.FullName, "differ-sleep");
        File.Copy("/bin/sleep", binary);
        File.SetUnixFileMode(_dir.FullName, (UnixFileMode)0755);

        // Another uid and gid, no capabilities, and a user, pid, uts, ipc, net and mount
        // namespace of its own (so its pid inside is 1).
        using var launcher = Process.Start(new ProcessStartInfo("setpriv",
            ["--reuid=4242", "--regid=4243", "--clear-groups", "--", "unshare", "--user", "--pid", "--fork", "--uts", "--ipc", "--net", "--mount", "--", binary, "30"])
            { UseShellExecute = false })!;
        try
        {
            var exec = h.WaitForExec(e => e.Process.Binary == binary, "exec of differ-sleep");
            var pid = exec.Process.Pid;
            var status = ProcStatus(pid);
            var ns = NamespaceKinds.Names.Select(kind => ProcNamespace(pid, kind)).ToArray();

            // The exec event, field by field against /proc.
            var p = exec.Process;
            Assert.Equal(status["Uid"], new[] { p.Credentials.Uid, p.Credentials.Euid, p.Credentials.Suid, p.Credentials.Fsuid });
            Assert.Equal(status["Gid"], new[] { p.Credentials.Gid, p.Credentials.Egid, p.Credentials.Sgid, p.Credentials.Fsgid });
            Assert.Equal(4242u, p.Credentials.Uid);
            Assert.Equal(StatusHex(pid, "CapEff"), p.Capabilities.Effective);
            Assert.Equal(StatusHex(pid, "CapPrm"), p.Capabilities.Permitted);
            Assert.Equal(StatusHex(pid, "CapInh"), p.Capabilities.Inheritable);
            var nspids = status["NSpid"];
            Assert.Equal(1u, nspids[^1]);
            Assert.Equal(nspids[^1], p.NamespacePid);
            Assert.Equal(ns, p.Namespaces!.Ids.Select(n => n.Inum).ToArray());
            Assert.NotEqual(ProcNamespace((uint)Environment.ProcessId, "user"), p.Namespaces[(int)NamespaceSlot.User].Inum);
            Assert.NotEqual(ProcNamespace((uint)Environment.ProcessId, "pid"), p.Namespaces[(int)NamespaceSlot.Pid].Inum);

            // The kernel's process table: what matchBinaries, matchNamespaces, matchPIDs and
            // the *Changes selectors read.
            var entry = h.Sensor.ProcessMap.Typed<uint, PalProc>().Lookup(pid);
            Assert.Equal(p.Ktime, entry.Ktime);
            Assert.Equal(binary, Bin(entry));
            Assert.Equal(p.Capabilities.Effective, entry.CapEff);
            Assert.Equal(1u, entry.Nspid);
            Assert.Equal(ns, Ns(entry));
            Assert.Equal(ProcParent(pid), entry.Ppid);
        }
        finally
        {
            Command.Run("pkill", "-KILL", "-f", binary);
            launcher.WaitForExit(10_000);
        }
    }

    [Fact]
    public void AForkedChildInheritsItsParentsImageAndHasItsOwnNamespacePid()
    {
        Kernel.Require(KernelFeature.RawTracepoint, KernelFeature.Ringbuf);
        using var h = new SensorHarness();
        var shell = Path.Combine(_dir.FullName, "fork-sh");
        File.Copy("/bin/dash", shell);
        // The shell forks a subshell that only sleeps (no exec): its entry comes from the fork.
        using var launcher = Process.Start(new ProcessStartInfo("unshare", ["--pid", "--fork", "--", shell, "-c", "(while :; do sleep 1; done) & wait"])
            { UseShellExecute = false })!;
        try
        {
            var exec = h.WaitForExec(e => e.Process.Binary == shell, "exec of fork-sh");
            uint child = 0;
            Assert.True(Command.WaitUntil(() => (child = Children(exec.Process.Pid).FirstOrDefault(c => Exe(c) == shell)) != 0, TimeSpan.FromSeconds(30)),
                "the subshell did not start");
            var entry = h.Sensor.ProcessMap.Typed<uint, PalProc>().Lookup(child);
            Assert.Equal(shell, Bin(entry));
            Assert.Equal(exec.Process.Pid, entry.Ppid);
            Assert.Equal(ProcStatus(child)["NSpid"][^1], entry.Nspid);
            Assert.Equal(NamespaceKinds.Names.Select(kind => ProcNamespace(exec.Process.Pid, kind)).ToArray(), Ns(entry));
        }
        finally
        {
            Command.Run("pkill", "-KILL", "-f", shell);
            launcher.WaitForExit(10_000);
        }
    }

    [Fact]
    public void WithPoliciesLoadedThereIsOneProgramPerLifecycleTracepointAndOneProcessTable()
    {
        Kernel.Require(KernelFeature.TpBtf, KernelFeature.RdonlyCast);
        using var h = new PolicyHarness();
        h.ApplyRunning(TestPolicies.ExecPrefixKill("table-exec-kill", _dir.FullName + "/"));

        using var progs = JsonDocument.Parse(Command.Check("bpftool", "-j", "prog", "show"));
        using var links = JsonDocument.Parse(Command.Check("bpftool", "-j", "link", "show"));
        using var maps = JsonDocument.Parse(Command.Check("bpftool", "-j", "map", "show"));
        var byId = progs.RootElement.EnumerateArray().ToDictionary(p => p.GetProperty("id").GetInt32());
        var lifecycle = links.RootElement.EnumerateArray()
            .Where(l => l.TryGetProperty("tp_name", out var tp) && tp.GetString() is "sched_process_exec" or "sched_process_fork" or "sched_process_exit")
            .Select(l => (Tp: l.GetProperty("tp_name").GetString()!, Prog: byId.TryGetValue(l.GetProperty("prog_id").GetInt32(), out var p) ? p.GetProperty("name").GetString()! : ""))
            .Where(x => x.Prog.StartsWith("pal_", StringComparison.Ordinal))
            .ToList();
        // Each Palisade on the node has exactly its process sensor's three programs there.
        Assert.Contains(("sched_process_exec", "pal_exec"), lifecycle);
        Assert.All(lifecycle, x => Assert.Contains(x.Prog, new[] { "pal_exec", "pal_fork", "pal_exit" }));
        Assert.DoesNotContain(maps.RootElement.EnumerateArray(), m => m.TryGetProperty("name", out var n) && n.GetString() == "pal_pol_procs");

        // The engine's programs read the sensor's table, not one of their own.
        var tableIds = maps.RootElement.EnumerateArray().Where(m => m.TryGetProperty("name", out var n) && n.GetString() == "pal_procs")
            .Select(m => m.GetProperty("id").GetInt32()).ToHashSet();
        var sensorTable = MapIdsOf(byId.Values, "pal_exec").Intersect(tableIds).ToList();
        var engineTable = MapIdsOf(byId.Values, "pal_pol_exec").Intersect(tableIds).ToList();
        Assert.NotEmpty(engineTable);
        Assert.Subset(sensorTable.ToHashSet(), engineTable.ToHashSet());
    }

    private static IEnumerable<int> MapIdsOf(IEnumerable<JsonElement> progs, string name) =>
        progs.Where(p => p.TryGetProperty("name", out var n) && n.GetString() == name && p.TryGetProperty("map_ids", out _))
            .SelectMany(p => p.GetProperty("map_ids").EnumerateArray().Select(i => i.GetInt32()));

    private static unsafe string Bin(PalProc entry) => Encoding.UTF8.GetString(entry.Bin, entry.BinLen);

    private static unsafe uint[] Ns(PalProc entry)
    {
        var ns = new uint[(int)NamespaceSlot.Count];
        for (var i = 0; i < ns.Length; i++)
        {
            ns[i] = entry.Ns[i];
        }
        return ns;
    }

    private static Dictionary<string, uint[]> ProcStatus(uint pid) =>
        File.ReadAllLines($"/proc/{pid}/status")
            .Select(l => l.Split(':', 2))
            .Where(kv => kv.Length == 2 && kv[0] is "Uid" or "Gid" or "NSpid")
            .ToDictionary(kv => kv[0], kv => kv[1].Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries).Select(v => uint.Parse(v, CultureInfo.InvariantCulture)).ToArray());

    private static ulong StatusHex(uint pid, string key) => ulong.Parse(
        File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith(key + ":", StringComparison.Ordinal)).Split(':')[1].Trim(),
        NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static uint ProcNamespace(uint pid, string kind)
    {
        var target = File.ResolveLinkTarget($"/proc/{pid}/ns/{kind}", false)?.ToString() ?? "";
        var open = target.IndexOf('[', StringComparison.Ordinal);
        return uint.Parse(target.AsSpan(open + 1, target.Length - open - 2), CultureInfo.InvariantCulture);
    }

    private static uint ProcParent(uint pid) =>
        uint.Parse(File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("PPid:", StringComparison.Ordinal)).Split(':')[1].Trim(), CultureInfo.InvariantCulture);

    private static IEnumerable<uint> Children(uint pid) =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => uint.TryParse(n, out _)).Select(n => uint.Parse(n!, CultureInfo.InvariantCulture))
            .Where(c => { try { return ProcParent(c) == pid; } catch (IOException) { return false; } });

    private static string Exe(uint pid)
    {
        try
        {
            return File.ResolveLinkTarget($"/proc/{pid}/exe", false)?.ToString() ?? "";
        }
        catch (IOException)
        {
            return "";
        }
    }
}
