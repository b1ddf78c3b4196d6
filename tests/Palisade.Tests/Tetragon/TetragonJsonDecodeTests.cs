using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Palisade.Events;
using Palisade.Exporters;
using T = Palisade.Api.Tetragon;

namespace Palisade.Tests.Tetragon;

/// <summary>
/// A Tetragon pipeline reads our export with Tetragon's own schema: every exported line of every
/// event kind parses strictly (no unknown field, every value of the right type) as Tetragon's
/// GetEventsResponse, and the fields it reads come out with their values.
/// </summary>
public sealed class TetragonJsonDecodeTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 2, 6, 0, 0, 123, TimeSpan.Zero);
    private static readonly JsonParser Strict = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));
    private static readonly TetragonJsonOptions Everything = new(ProcessCredentials: true, ProcessNamespaces: true) { ClusterName = "prod-eu" };

    private static readonly PodInfo Pod = new("shop", "web-1", "uid-1", new Dictionary<string, string> { ["app"] = "web" }, "web", "Deployment",
        new ContainerInfo("containerd://0123456789abcdef0123456789abcdef", "web", "sha256:abc", "nginx:1.27", T0, 7),
        new Dictionary<string, string> { ["team"] = "payments" });

    private static ProcessRecord Proc(uint pid, string binary, ProcessRecord? parent, uint nsPid) => new()
    {
        ExecId = $"bm9kZTo{pid}", Pid = pid, Tid = pid, Ktime = pid * 10UL, StartTime = T0, Binary = binary, Arguments = "-x y", Cwd = "/app",
        Flags = ProcessFlags.Exec | ProcessFlags.Clone, Auid = 1000, ContainerId = Pod.Container!.Id, Pod = Pod, Parent = parent, ParentExecId = parent?.ExecId,
        NamespacePid = nsPid, Capabilities = new CapabilitySets(1UL << 21, 1UL << 21, 0), Credentials = new Credentials(1, 2, 3, 4, 5, 6, 7, 8),
        RefCount = 1,
    };

    private static readonly ProcessRecord Init = Proc(10, "/pause", null, 1);
    private static readonly ProcessRecord Shell = Proc(20, "/bin/sh", Init, 2);
    private static readonly ProcessRecord Cat = Proc(30, "/bin/cat", Shell, 3);

    private static T.GetEventsResponse Decode(PalisadeEvent e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.Write(w, e, "node-a", Everything);
        }
        var json = Encoding.UTF8.GetString(buffer.WrittenSpan);
        try
        {
            return Strict.Parse<T.GetEventsResponse>(json);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new Xunit.Sdk.XunitException($"Tetragon's schema refuses our line ({ex.Message}):\n{json}");
        }
    }

    private static ProcessPolicyEvent Policy(EventKind kind, params PolicyArgValue[] args) => new()
    {
        Time = T0, Process = Cat, Parent = Shell, HookKind = kind, FunctionName = kind == EventKind.ProcessUprobe ? "readline" : "security_file_open",
        Subsystem = kind == EventKind.ProcessUprobe ? "/bin/bash" : kind == EventKind.ProcessTracepoint ? "syscalls" : null,
        EventName = kind == EventKind.ProcessTracepoint ? "sys_enter_openat" : null,
        Args = args, Action = "KPROBE_ACTION_SIGKILL", PolicyName = "protect", Message = "m", Tags = ["t"], Ancestors = Cat.Ancestors(),
    };

    [Fact]
    public void ProcessExecAndExit()
    {
        var exec = Decode(new ProcessExecEvent { Time = T0, Process = Cat, Parent = Shell, Ancestors = Cat.Ancestors() });
        Assert.Equal("prod-eu", exec.ClusterName);
        Assert.Equal("node-a", exec.NodeName);
        var p = exec.ProcessExec.Process;
        Assert.Equal("/bin/cat", p.Binary);
        Assert.Equal(30u, p.Pid);
        Assert.Equal("payments", p.Pod.PodAnnotations["team"]);
        Assert.Equal("web", p.Pod.PodLabels["app"]);
        Assert.Equal("nginx:1.27", p.Pod.Container.Image.Name);
        Assert.True(p.InInitTree);
        Assert.Contains(T.CapabilitiesType.CapSysAdmin, p.Cap.Effective);
        Assert.Equal(3u, p.ProcessCredentials.Euid);
        Assert.Equal("/bin/sh", exec.ProcessExec.Parent.Binary);
        Assert.Equal("/pause", Assert.Single(exec.ProcessExec.Ancestors).Binary);

        var exit = Decode(new ProcessExitEvent { Time = T0, Process = Cat, Parent = Shell, Signal = "SIGKILL", Status = 0, Ancestors = Cat.Ancestors() });
        Assert.Equal("SIGKILL", exit.ProcessExit.Signal);
        Assert.Equal("/pause", Assert.Single(exit.ProcessExit.Ancestors).Binary);
    }

    [Fact]
    public void KprobeWithEveryArgumentKind()
    {
        var e = Decode(Policy(EventKind.ProcessKprobe,
            new PolicyArgValue("int_arg", "fd") { Int = -3 },
            new PolicyArgValue("uint_arg", null) { Int = 7 },
            new PolicyArgValue("long_arg", null) { Int = -1L << 40 },
            new PolicyArgValue("size_arg", null) { Int = 1L << 40 },
            new PolicyArgValue("string_arg", null) { Text = "hello" },
            new PolicyArgValue("bytes_arg", null) { Bytes = [1, 2, 3] },
            new PolicyArgValue("file_arg", null) { Text = "/etc/shadow", Mode = 0x8000 | 0x1A0 },
            new PolicyArgValue("path_arg", null) { Text = "/etc", Mode = 0x4000 | 0x1ED, Truncated = true },
            new PolicyArgValue("sock_arg", null) { Sock = new SockValue("AF_INET", "SOCK_STREAM", "IPPROTO_TCP", "10.0.0.1", "10.0.0.2", 40000, 443, "TCP_SYN_SENT", 0xffff8881_2345_6789) },
            new PolicyArgValue("sockaddr_arg", null) { Sock = new SockValue("AF_INET", "", "", "", "10.0.0.9", 0, 53, "") },
            new PolicyArgValue("process_credentials_arg", null) { Cred = new CredValue(new Credentials(0, 0, 0, 0, 0, 0, 0, 0), 0, new CapabilitySets(1UL << 21, 0, 0), 4026531837) },
            new PolicyArgValue("kernel_cap_t_arg", null) { Int = (1L << 21) | 1 },
            new PolicyArgValue("cap_effective_arg", null) { Int = 1L << 12 },
            new PolicyArgValue("linux_binprm_arg", null) { Text = "/usr/bin/su", Mode = 0x8000 | 0x800 | 0x1ED }));
        var k = e.ProcessKprobe;
        Assert.Equal("security_file_open", k.FunctionName);
        Assert.Equal(-3, k.Args[0].IntArg);
        Assert.Equal("fd", k.Args[0].Label);
        Assert.Equal(7u, k.Args[1].UintArg);
        Assert.Equal(-1L << 40, k.Args[2].LongArg);
        Assert.Equal(1UL << 40, k.Args[3].SizeArg);
        Assert.Equal("hello", k.Args[4].StringArg);
        Assert.Equal(new byte[] { 1, 2, 3 }, k.Args[5].BytesArg.ToByteArray());
        Assert.Equal("/etc/shadow", k.Args[6].FileArg.Path);
        Assert.Equal(("", "-rw-r-----"), (k.Args[6].FileArg.Flags, k.Args[6].FileArg.Permission));
        Assert.Equal("/etc", k.Args[7].PathArg.Path);
        Assert.Equal(("unresolvedPathComponents", "drwxr-xr-x"), (k.Args[7].PathArg.Flags, k.Args[7].PathArg.Permission));
        Assert.Equal(0xffff8881_2345_6789UL, k.Args[8].SockArg.Cookie);
        Assert.Equal(443u, k.Args[8].SockArg.Dport);
        Assert.Equal("10.0.0.9", k.Args[9].SockaddrArg.Addr);
        Assert.Contains(T.CapabilitiesType.CapSysAdmin, k.Args[10].ProcessCredentialsArg.Caps.Permitted);
        // Tetragon's caps.GetCapabilitiesHex: the mask as 16 hex digits.
        Assert.Equal("0000000000200001", k.Args[11].KernelCapTArg);
        Assert.Equal("0000000000001000", k.Args[12].CapEffectiveArg);
        Assert.Equal("/usr/bin/su", k.Args[13].LinuxBinprmArg.Path);
        Assert.Equal("-rwsr-xr-x", k.Args[13].LinuxBinprmArg.Permission);
        Assert.Equal(T.KprobeAction.Sigkill, k.Action);
        Assert.Equal("/pause", Assert.Single(k.Ancestors).Binary);
    }

    [Fact]
    public void TracepointUprobeAndLsm()
    {
        var tp = Decode(Policy(EventKind.ProcessTracepoint, new PolicyArgValue("int_arg", null) { Int = 1 })).ProcessTracepoint;
        Assert.Equal("syscalls", tp.Subsys);
        Assert.Equal("sys_enter_openat", tp.Event);
        Assert.Single(tp.Ancestors);

        var up = Decode(Policy(EventKind.ProcessUprobe, new PolicyArgValue("string_arg", null) { Text = "ls" })).ProcessUprobe;
        Assert.Equal("/bin/bash", up.Path);
        Assert.Equal("readline", up.Symbol);

        var lsm = Decode(Policy(EventKind.ProcessLsm, new PolicyArgValue("file_arg", null) { Text = "/etc/passwd" })).ProcessLsm;
        Assert.Equal("security_file_open", lsm.FunctionName);
        Assert.Equal("/etc/passwd", lsm.Args[0].FileArg.Path);
    }
}
