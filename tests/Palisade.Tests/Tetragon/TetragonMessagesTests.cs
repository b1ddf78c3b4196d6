using System.Text.Json.Nodes;
using Google.Protobuf;
using Palisade.Agent.Api;
using Palisade.Agent.Api.Tetragon;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Filters;
using T = Palisade.Api.Tetragon;

namespace Palisade.Tests.Tetragon;

/// <summary>Events in Tetragon's messages, and Tetragon's request filters and field masks applied to them.</summary>
public sealed class TetragonMessagesTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 2, 5, 0, 0, TimeSpan.Zero);
    private static readonly JsonFormatter ProtoNames = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));

    private static ProcessRecord Init() => new()
    {
        ExecId = "aW5pdA==", Pid = 4100, NamespacePid = 1, Ktime = 1, StartTime = At, Binary = "/pause", ContainerId = "c0ffee0123456789abcdef",
        Pod = new PodInfo("shop", "cart-1", Container: new ContainerInfo("containerd://c0ffee0123456789abcdef", "cart")),
    };

    private static ProcessRecord Child(ProcessRecord parent, string binary = "/usr/bin/curl", string? container = null) => new()
    {
        ExecId = "Y2hpbGQ=", Pid = 4200, NamespacePid = 7, Ktime = 2, StartTime = At, Binary = binary, Arguments = "-s http://cart",
        Cwd = "/", Flags = ProcessFlags.Exec | ProcessFlags.Clone, ContainerId = container ?? parent.ContainerId, Pod = parent.Pod,
        Parent = parent, ParentExecId = parent.ExecId,
        Capabilities = new CapabilitySets(0b11, 0b10, 0), Credentials = new Credentials(0, 0, 0, 0, 0, 0, 0, 0),
    };

    private static T.GetEventsResponse Message(PalisadeEvent e, TetragonJsonOptions? options = null, T.GetEventsRequest? request = null) =>
        TetragonMessages.ToMessage(e, "node-a", options ?? TetragonJsonOptions.Default,
            request is null ? FieldMasks.Empty : new FieldMasks(TetragonFilters.FieldFilters(request)));

    [Fact]
    public void AnExecIsTetragonsMessageWithTheSameJsonAsOurs()
    {
        var init = Init();
        var e = new ProcessExecEvent { Time = At, Process = Child(init), Parent = init };
        var options = new TetragonJsonOptions(true, false);

        var message = Message(e, options);

        Assert.Equal(T.GetEventsResponse.EventOneofCase.ProcessExec, message.EventCase);
        Assert.Equal("node-a", message.NodeName);
        Assert.Equal(4200u, message.ProcessExec.Process.Pid);
        Assert.Equal("shop", message.ProcessExec.Process.Pod.Namespace);
        Assert.Equal("cart", message.ProcessExec.Process.Pod.Container.Name);
        Assert.Equal("/pause", message.ProcessExec.Parent.Binary);
        Assert.Equal([T.CapabilitiesType.CapChown, T.CapabilitiesType.DacOverride], message.ProcessExec.Process.Cap.Permitted);
        // The same event through palisade.v1 writes the same JSON: one mapping, two wire formats.
        var ours = EventMessages.ToJson(EventMessages.ToMessage(e, "node-a", options, FieldMasks.Empty));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(ours), JsonNode.Parse(ProtoNames.Format(message))), $"{ours}\n{ProtoNames.Format(message)}");
        // And it survives Tetragon's wire format.
        Assert.Equal(message, T.GetEventsResponse.Parser.ParseFrom(message.ToByteArray()));
    }

    [Fact]
    public void AHostProcessesUserNameIsTetragonsUserRecordInBothApisAndTheJsonFile()
    {
        var host = new ProcessRecord
        {
            ExecId = "aG9zdA==", Pid = 900, Ktime = 3, StartTime = At, Binary = "/usr/bin/sudo", UserName = "alice",
            Credentials = new Credentials(1000, 1000, 0, 0, 0, 0, 0, 0),
        };
        var e = new ProcessExecEvent { Time = At, Process = host };
        var message = Message(e);
        Assert.Equal("alice", message.ProcessExec.Process.User.Name);
        var ours = EventMessages.ToJson(EventMessages.ToMessage(e, "node-a", TetragonJsonOptions.Default, FieldMasks.Empty));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(ours), JsonNode.Parse(ProtoNames.Format(message))), $"{ours}\n{ProtoNames.Format(message)}");
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.Write(w, e, "node-a");
        }
        var file = JsonNode.Parse(buffer.WrittenSpan)!;
        Assert.Equal("alice", (string?)file["process_exec"]!["process"]!["user"]!["name"]);
        // This node's labels go on every event, sorted as protojson writes a map, in every format.
        var labels = new NodeLabels { Current = new Dictionary<string, string> { ["zone"] = "b", ["kubernetes.io/arch"] = "amd64" } };
        var withLabels = TetragonJsonOptions.Default with { NodeLabels = labels };
        Assert.Equal(new Dictionary<string, string> { ["kubernetes.io/arch"] = "amd64", ["zone"] = "b" }, Message(e, withLabels).NodeLabels);
        var labelled = EventMessages.ToJson(EventMessages.ToMessage(e, "node-a", withLabels, FieldMasks.Empty));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(labelled), JsonNode.Parse(ProtoNames.Format(Message(e, withLabels)))), labelled);
        buffer.Clear();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.Write(w, e, "node-a", withLabels);
        }
        Assert.EndsWith("\"node_labels\":{\"kubernetes.io/arch\":\"amd64\",\"zone\":\"b\"}}", System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan), StringComparison.Ordinal);
        Assert.Null(file["node_labels"]);
        // Without a name (a container process, or username-metadata disabled) there is no user object.
        Assert.Null(Message(new ProcessExecEvent { Time = At, Process = Child(Init()) }).ProcessExec.Process.User);
    }

    [Fact]
    public void AKprobeCarriesItsActionAsTetragonsEnumAndItsTypedArguments()
    {
        var init = Init();
        var e = new ProcessPolicyEvent
        {
            Time = At, Process = Child(init), Parent = init, HookKind = EventKind.ProcessKprobe, FunctionName = "tcp_connect",
            Action = "KPROBE_ACTION_SIGKILL", PolicyName = "no-egress", Tags = ["network"],
            Args =
            [
                new PolicyArgValue("sock_arg", null) { Sock = new SockValue("AF_INET", "SOCK_STREAM", "IPPROTO_TCP", "10.0.0.2", "10.0.0.9", 40000, 80, "TCP_SYN_SENT") },
                new PolicyArgValue("file_arg", "target") { Text = "/etc/shadow", Mode = 0x8000 | 0x180 },
                new PolicyArgValue("int_arg", null) { Int = -2 },
            ],
        };

        var k = Message(e).ProcessKprobe;

        Assert.Equal(T.KprobeAction.Sigkill, k.Action);
        Assert.Equal("no-egress", k.PolicyName);
        Assert.Equal("10.0.0.9", k.Args[0].SockArg.Daddr);
        Assert.Equal(80u, k.Args[0].SockArg.Dport);
        Assert.Equal("/etc/shadow", k.Args[1].FileArg.Path);
        Assert.Equal("target", k.Args[1].Label);
        Assert.Equal("-rw-------", k.Args[1].FileArg.Permission);
        Assert.Equal(-2, k.Args[2].IntArg);
        Assert.Equal(["network"], k.Tags);
    }

    [Theory]
    [InlineData(EventKind.ProcessTracepoint, T.GetEventsResponse.EventOneofCase.ProcessTracepoint)]
    [InlineData(EventKind.ProcessUprobe, T.GetEventsResponse.EventOneofCase.ProcessUprobe)]
    [InlineData(EventKind.ProcessLsm, T.GetEventsResponse.EventOneofCase.ProcessLsm)]
    [InlineData(EventKind.ProcessKprobe, T.GetEventsResponse.EventOneofCase.ProcessKprobe)]
    public void EveryPolicyEventKindHasItsTetragonMessageAndTheSameJson(EventKind kind, T.GetEventsResponse.EventOneofCase expected)
    {
        var init = Init();
        var e = new ProcessPolicyEvent
        {
            Time = At, Process = Child(init), Parent = init, HookKind = kind, FunctionName = "bpf_check", Subsystem = "syscalls", EventName = "sys_enter_bpf",
            Action = "KPROBE_ACTION_POST", PolicyName = "bpf-watch", Message = "bpf program loaded",
            Args =
            [
                new PolicyArgValue("bpf_attr_arg", null) { Object = [new("ProgType", "BPF_PROG_TYPE_KPROBE"), new("InsnCnt", 42u), new("ProgName", "probe")] },
                new PolicyArgValue("size_arg", null) { Int = 4096 },
                new PolicyArgValue("string_arg", null) { Text = "x" },
            ],
        };

        var message = Message(e);

        Assert.Equal(expected, message.EventCase);
        var ours = EventMessages.ToJson(EventMessages.ToMessage(e, "node-a", TetragonJsonOptions.Default, FieldMasks.Empty));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(ours), JsonNode.Parse(ProtoNames.Format(message))), $"{ours}\n{ProtoNames.Format(message)}");
        Assert.Equal(message, T.GetEventsResponse.Parser.ParseFrom(message.ToByteArray()));
        if (kind == EventKind.ProcessKprobe)
        {
            Assert.Equal(new T.KprobeBpfAttr { ProgType = "BPF_PROG_TYPE_KPROBE", InsnCnt = 42, ProgName = "probe" }, message.ProcessKprobe.Args[0].BpfAttrArg);
            Assert.Equal(4096ul, message.ProcessKprobe.Args[1].SizeArg);
        }
    }

    [Fact]
    public void AnExitKeepsItsSignalStatusAndTime()
    {
        var init = Init();
        var exit = Message(new ProcessExitEvent { Time = At, Process = Child(init), Parent = init, Signal = "SIGKILL", Status = 9 }).ProcessExit;

        Assert.Equal("SIGKILL", exit.Signal);
        Assert.Equal(9u, exit.Status);
        Assert.Equal(At, exit.Time.ToDateTimeOffset());
        Assert.Equal(uint.MaxValue, exit.Process.Auid);
    }

    [Fact]
    public void AFlowHasNoTetragonMessage()
    {
        Assert.False(TetragonMessages.Serves(EventKind.Flow));
        Assert.True(TetragonMessages.Serves(EventKind.ProcessExec));
    }

    [Fact]
    public void FieldMasksUseTetragonsFieldMaskPaths()
    {
        var init = Init();
        var e = new ProcessExecEvent { Time = At, Process = Child(init), Parent = init };
        var request = new T.GetEventsRequest
        {
            FieldFilters =
            {
                new T.FieldFilter
                {
                    EventSet = { T.EventType.ProcessExec },
                    Fields = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "process.binary", "process.pod.namespace", "parent.exec_id" } },
                    Action = T.FieldFilterAction.Include,
                },
            },
        };

        var exec = Message(e, request: request).ProcessExec;

        Assert.Equal("/usr/bin/curl", exec.Process.Binary);
        Assert.Equal("shop", exec.Process.Pod.Namespace);
        Assert.Equal("", exec.Process.Pod.Name);
        Assert.Null(exec.Process.Pid);
        Assert.Equal("", exec.Process.Arguments);
        Assert.Equal(init.ExecId, exec.Parent.ExecId);
        Assert.Equal("", exec.Parent.Binary);
    }

    private static bool Passes(T.GetEventsRequest request, PalisadeEvent e)
    {
        // One match decides: filter regexes match in linear time with no timeout (FilterRegex),
        // so a loaded machine cannot make a first match fail.
        return TetragonFilters.Of(request).Passes(e);
    }

    [Fact]
    public void AllowAndDenyListsMatchAsTetragonsDo()
    {
        var init = Init();
        var curl = new ProcessExecEvent { Time = At, Process = Child(init), Parent = init };
        var injected = new ProcessExecEvent { Time = At, Process = Child(new ProcessRecord { ExecId = "cnVuYw==", Pid = 900, Ktime = 3, StartTime = At, Binary = "/usr/bin/runc" }, "/bin/sh", "c0ffee0123456789abcdef") };
        var host = new ProcessExecEvent { Time = At, Process = new ProcessRecord { ExecId = "aG9zdA==", Pid = 77, Ktime = 4, StartTime = At, Binary = "/usr/bin/ls" } };

        var allowCurl = new T.GetEventsRequest { AllowList = { new T.Filter { BinaryRegex = { "curl$" }, EventSet = { T.EventType.ProcessExec } } } };
        Assert.True(Passes(allowCurl, curl));
        Assert.False(Passes(allowCurl, host));

        var byContainer = new T.GetEventsRequest { AllowList = { new T.Filter { ContainerId = { "^c0ffee" } } } };
        Assert.True(Passes(byContainer, curl));
        Assert.False(Passes(byContainer, host));

        var byNamespace = new T.GetEventsRequest { AllowList = { new T.Filter { NamespaceRegex = { "^sh" } } } };
        Assert.True(Passes(byNamespace, curl));
        Assert.False(Passes(byNamespace, host));

        // in_init_tree: curl descends from the container's pid 1; the shell's parent is the runtime, on the host.
        var initTree = new T.GetEventsRequest { AllowList = { new T.Filter { InInitTree = true } } };
        Assert.True(Passes(initTree, curl));
        Assert.False(Passes(initTree, injected));
        var notInitTree = new T.GetEventsRequest { AllowList = { new T.Filter { InInitTree = false, ContainerId = { "." } } } };
        Assert.True(Passes(notInitTree, injected));

        var denyHost = new T.GetEventsRequest { DenyList = { new T.Filter { Namespace = { "" } } } };
        Assert.True(Passes(denyHost, curl));
        Assert.False(Passes(denyHost, host));

        var parentArgs = new T.GetEventsRequest { AllowList = { new T.Filter { ParentArgumentsRegex = { "^$" }, Pid = { 4200 } } } };
        Assert.True(Passes(parentArgs, curl));
    }

    [Fact]
    public void AFilterFieldPalisadeCannotMatchIsRefusedByName()
    {
        var cel = new T.GetEventsRequest { AllowList = { new T.Filter { CelExpression = { "true" } } } };
        var e = Assert.Throws<FilterException>(() => TetragonFilters.Of(cel));
        Assert.Contains("allow_list[0]: cel_expression", e.Message, StringComparison.Ordinal);

        var badRegex = new T.GetEventsRequest { DenyList = { new T.Filter { ContainerId = { "(" } } } };
        Assert.Contains("deny_list[0]: container_id", Assert.Throws<FilterException>(() => TetragonFilters.Of(badRegex)).Message, StringComparison.Ordinal);

        var badMask = new T.GetEventsRequest { FieldFilters = { new T.FieldFilter { EventSet = { T.EventType.ProcessExec } } } };
        Assert.Contains("field_filters[0]: fields", Assert.Throws<FilterException>(() => TetragonFilters.FieldFilters(badMask)).Message, StringComparison.Ordinal);
    }
}
