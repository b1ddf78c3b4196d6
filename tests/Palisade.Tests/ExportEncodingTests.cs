using System.Text;
using System.Text.Json;
using Palisade.Events;
using Palisade.Exporters;

namespace Palisade.Tests;

public sealed class TetragonJsonTests
{
    private static readonly DateTimeOffset T = new(2022, 5, 11, 12, 54, 45, 615, TimeSpan.Zero);

    private static ProcessRecord Bash() => new()
    {
        ExecId = "a2luZC1jb250cm9sLXBsYW5lOjkwNzkyMjU2MjMyNjk6NDM4NzI=",
        Pid = 43872,
        Ktime = 9079225623269,
        StartTime = new DateTimeOffset(2022, 5, 11, 12, 15, 36, 225, TimeSpan.Zero),
        Binary = "/bin/bash",
        Cwd = "/",
        Flags = ProcessFlags.Exec | ProcessFlags.Clone,
        Auid = uint.MaxValue,
        ContainerId = "1fb931d2f6e5e4cfdbaf30fdb8e2fdd81320bdb3047ded50120a4f82838209ce",
        ParentExecId = "a2luZC1jb250cm9sLXBsYW5lOjkwNzkxODU5NTMzOTk6NDM4NjE=",
        Pod = new PodInfo("default", "xwing", Container: new ContainerInfo("containerd://1fb931d2f6e5e4cfdbaf30fdb8e2fdd81320bdb3047ded50120a4f82838209ce", "spaceship")),
    };

    private static ProcessRecord Whoami(ProcessRecord parent) => new()
    {
        ExecId = "a2luZC1jb250cm9sLXBsYW5lOjExNDI4NjE1NjM2OTAxOjUxNTgz",
        Pid = 51583,
        Tid = 51583,
        Ktime = 11428615636901,
        StartTime = T,
        Binary = "/usr/bin/whoami",
        Arguments = "--version",
        Cwd = "/",
        Flags = ProcessFlags.Exec | ProcessFlags.Clone,
        Auid = uint.MaxValue,
        ContainerId = parent.ContainerId,
        Pod = parent.Pod,
        ParentExecId = parent.ExecId,
        Parent = parent,
        RefCount = 1,
    };

    private static string Encode(PalisadeEvent e, TetragonJsonOptions? options = null)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            TetragonJson.Write(w, e, "kind-control-plane", options);
        }
        var json = Encoding.UTF8.GetString(buffer.WrittenSpan);
        // The gRPC message carries exactly what the JSON export says: same fields, same values.
        var message = Palisade.Agent.Api.EventMessages.ToMessage(e, "kind-control-plane", options ?? TetragonJsonOptions.Default, []);
        var viaApi = Palisade.Agent.Api.EventMessages.ToJson(message);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(json), System.Text.Json.Nodes.JsonNode.Parse(viaApi)),
            $"the API message differs from the JSON export:\n{json}\n{viaApi}");
        return json;
    }

    [Fact]
    public void APolicyKillHasTetragonsProcessKprobeShape()
    {
        var bash = Bash();
        var json = Encode(new ProcessPolicyEvent
        {
            Time = T,
            Process = Whoami(bash),
            Parent = bash,
            HookKind = EventKind.ProcessKprobe,
            FunctionName = "fd_install",
            Args =
            [
                new PolicyArgValue("int_arg", null) { Int = 3 },
                new PolicyArgValue("file_arg", "target") { Text = "/etc/shadow" },
            ],
            Action = "KPROBE_ACTION_SIGKILL",
            PolicyName = "protect-shadow",
            Message = "shadow read",
            Tags = ["credentials"],
        });
        using var doc = JsonDocument.Parse(json);
        var k = doc.RootElement.GetProperty("process_kprobe");
        Assert.Equal("/usr/bin/whoami", k.GetProperty("process").GetProperty("binary").GetString());
        Assert.Equal("/bin/bash", k.GetProperty("parent").GetProperty("binary").GetString());
        Assert.Equal("fd_install", k.GetProperty("function_name").GetString());
        Assert.Equal(3, k.GetProperty("args")[0].GetProperty("int_arg").GetInt32());
        Assert.Equal("/etc/shadow", k.GetProperty("args")[1].GetProperty("file_arg").GetProperty("path").GetString());
        Assert.Equal("target", k.GetProperty("args")[1].GetProperty("label").GetString());
        Assert.Equal("KPROBE_ACTION_SIGKILL", k.GetProperty("action").GetString());
        Assert.Equal("protect-shadow", k.GetProperty("policy_name").GetString());
        Assert.Equal("shadow read", k.GetProperty("message").GetString());
        Assert.Equal("credentials", k.GetProperty("tags")[0].GetString());
        Assert.Equal("kind-control-plane", doc.RootElement.GetProperty("node_name").GetString());
    }

    [Fact]
    public void SocketArgumentsAndTracepointsUseTetragonsNames()
    {
        var json = Encode(new ProcessPolicyEvent
        {
            Time = T,
            Process = Bash(),
            HookKind = EventKind.ProcessTracepoint,
            FunctionName = "syscalls/sys_enter_lseek",
            Subsystem = "syscalls",
            EventName = "sys_enter_lseek",
            Args = [new PolicyArgValue("sock_arg", null) { Sock = new SockValue("AF_INET", "SOCK_STREAM", "IPPROTO_TCP", "", "10.0.0.1", 0, 443, "TCP_SYN_SENT") },
                    new PolicyArgValue("size_arg", null) { Int = 4096 }],
            Action = "KPROBE_ACTION_POST",
            PolicyName = "p",
        });
        using var doc = JsonDocument.Parse(json);
        var t = doc.RootElement.GetProperty("process_tracepoint");
        Assert.Equal("syscalls", t.GetProperty("subsys").GetString());
        Assert.Equal("sys_enter_lseek", t.GetProperty("event").GetString());
        Assert.False(t.TryGetProperty("function_name", out _));
        var sock = t.GetProperty("args")[0].GetProperty("sock_arg");
        Assert.Equal("AF_INET", sock.GetProperty("family").GetString());
        Assert.Equal("10.0.0.1", sock.GetProperty("daddr").GetString());
        Assert.Equal(443, sock.GetProperty("dport").GetInt32());
        Assert.Equal("TCP_SYN_SENT", sock.GetProperty("state").GetString());
        Assert.Equal("4096", t.GetProperty("args")[1].GetProperty("size_arg").GetString());
    }

    [Fact]
    public void AnExecEventHasTetragonsShape()
    {
        var bash = Bash();
        var json = Encode(new ProcessExecEvent { Time = T, Process = Whoami(bash), Parent = bash });

        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(["process_exec", "node_name", "time"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal("2022-05-11T12:54:45.615Z", root.GetProperty("time").GetString());
        var p = root.GetProperty("process_exec").GetProperty("process");
        Assert.Equal(
            ["exec_id", "pid", "uid", "cwd", "binary", "arguments", "flags", "start_time", "auid", "pod", "docker", "parent_exec_id", "refcnt", "tid", "in_init_tree"],
            p.EnumerateObject().Select(x => x.Name));
        Assert.Equal("execve rootcwd clone", p.GetProperty("flags").GetString());
        Assert.Equal(4294967295, p.GetProperty("auid").GetInt64());
        Assert.Equal("1fb931d2f6e5e4cfdbaf30fdb8e2fdd", p.GetProperty("docker").GetString());
        Assert.Equal("default", p.GetProperty("pod").GetProperty("namespace").GetString());
        Assert.Equal(p.GetProperty("parent_exec_id").GetString(), root.GetProperty("process_exec").GetProperty("parent").GetProperty("exec_id").GetString());
    }

    [Fact]
    public void AnExitEventOmitsAZeroStatusAndNamesTheSignal()
    {
        var bash = Bash();
        var clean = JsonDocument.Parse(Encode(new ProcessExitEvent { Time = T, Process = Whoami(bash), Parent = bash })).RootElement.GetProperty("process_exit");
        var killed = JsonDocument.Parse(Encode(new ProcessExitEvent { Time = T, Process = Whoami(bash), Parent = bash, Signal = "SIGKILL" })).RootElement.GetProperty("process_exit");
        var failed = JsonDocument.Parse(Encode(new ProcessExitEvent { Time = T, Process = Whoami(bash), Parent = bash, Status = 3 })).RootElement.GetProperty("process_exit");

        Assert.False(clean.TryGetProperty("status", out _));
        Assert.False(clean.TryGetProperty("signal", out _));
        Assert.Equal("SIGKILL", killed.GetProperty("signal").GetString());
        Assert.Equal(3, failed.GetProperty("status").GetInt32());
        Assert.Equal("2022-05-11T12:54:45.615Z", clean.GetProperty("time").GetString());
    }

    [Fact]
    public void CredentialsAndNamespacesAppearOnlyWhenEnabled()
    {
        var r = new ProcessRecord
        {
            ExecId = "x", Pid = 1, Ktime = 1, StartTime = T, Binary = "/b",
            Capabilities = new CapabilitySets(0b111, 0b10, 0),
            Credentials = new Credentials(1, 2, 3, 4, 5, 6, 7, 8),
            Namespaces = new Namespaces([.. Enumerable.Range(0, 10).Select(i => new NamespaceId((uint)(4026531835 + i), i != 5))]),
        };
        var e = new ProcessExecEvent { Time = T, Process = r };

        var plain = JsonDocument.Parse(Encode(e)).RootElement.GetProperty("process_exec").GetProperty("process");
        var full = JsonDocument.Parse(Encode(e, new TetragonJsonOptions(true, true))).RootElement.GetProperty("process_exec").GetProperty("process");

        Assert.False(plain.TryGetProperty("cap", out _));
        Assert.False(plain.TryGetProperty("ns", out _));
        Assert.Equal(["CAP_CHOWN", "DAC_OVERRIDE", "CAP_DAC_READ_SEARCH"], full.GetProperty("cap").GetProperty("permitted").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(["DAC_OVERRIDE"], full.GetProperty("cap").GetProperty("effective").EnumerateArray().Select(x => x.GetString()));
        Assert.False(full.GetProperty("cap").TryGetProperty("inheritable", out _));
        Assert.Equal(8, full.GetProperty("process_credentials").GetProperty("fsgid").GetInt32());
        Assert.True(full.GetProperty("ns").GetProperty("uts").GetProperty("is_host").GetBoolean());
        Assert.False(full.GetProperty("ns").GetProperty("net").TryGetProperty("is_host", out _));
        Assert.Equal(4026531840, full.GetProperty("ns").GetProperty("net").GetProperty("inum").GetInt64());
    }

    [Fact]
    public void ADeletedBinaryIsReportedAsAFileWithNoLinks()
    {
        var r = new ProcessRecord { ExecId = "x", Pid = 1, Ktime = 1, StartTime = T, Binary = "/tmp/gone", ExeInode = 12345678901, DeletedAtExit = true };

        var p = JsonDocument.Parse(Encode(new ProcessExitEvent { Time = T, Process = r })).RootElement.GetProperty("process_exit").GetProperty("process");

        var file = p.GetProperty("binary_properties").GetProperty("file");
        Assert.Equal("12345678901", file.GetProperty("inode").GetProperty("number").GetString());
        Assert.Equal(0, file.GetProperty("inode").GetProperty("links").GetInt32());
        Assert.Equal("/tmp/gone", file.GetProperty("path").GetString());
        Assert.Contains("deleted", p.GetProperty("flags").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, "2022-05-11T12:54:45Z")]
    [InlineData(6150000, "2022-05-11T12:54:45.615Z")]
    [InlineData(6151230, "2022-05-11T12:54:45.615123Z")]
    [InlineData(6151231, "2022-05-11T12:54:45.615123100Z")]
    public void TimestampsUse0369FractionalDigitsLikeProtojson(long ticks, string expected)
    {
        var t = new DateTimeOffset(2022, 5, 11, 12, 54, 45, TimeSpan.Zero).AddTicks(ticks);
        Span<byte> buffer = stackalloc byte[40];

        Assert.Equal(expected, Encoding.ASCII.GetString(buffer[..TetragonJson.FormatTime(t, buffer)]));
    }
}

public sealed class CompactFormatTests
{
    private static ProcessRecord Curl(PodInfo? pod) => new()
    {
        ExecId = "x", Pid = 1, Ktime = 1, StartTime = DateTimeOffset.UnixEpoch, Binary = "/usr/bin/curl", Arguments = "cilium.io", Pod = pod,
    };

    [Fact]
    public void MatchesTetrasCompactLines()
    {
        var pod = new PodInfo("kube-system", "tetragon");
        Assert.Equal("🚀 process my-node /usr/bin/curl cilium.io",
            CompactFormat.Format(new ProcessExecEvent { Time = default, Process = Curl(null) }, "my-node", color: false));
        Assert.Equal("🚀 process kube-system/tetragon /usr/bin/curl cilium.io",
            CompactFormat.Format(new ProcessExecEvent { Time = default, Process = Curl(pod) }, "my-node", color: false));
        Assert.Equal("💥 exit    kube-system/tetragon /usr/bin/curl cilium.io 1",
            CompactFormat.Format(new ProcessExitEvent { Time = default, Process = Curl(pod), Status = 1 }, "my-node", color: false));
        Assert.Equal("💥 exit    kube-system/tetragon /usr/bin/curl cilium.io SIGKILL",
            CompactFormat.Format(new ProcessExitEvent { Time = default, Process = Curl(pod), Signal = "SIGKILL" }, "my-node", color: false));
    }
}
