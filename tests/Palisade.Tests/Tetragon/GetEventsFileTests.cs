using System.Text;
using System.Text.Json;
using Palisade.Cli;
using Palisade.Events;
using Palisade.Exporters;

namespace Palisade.Tests.Tetragon;

/// <summary>`cat events.json | palisade getevents ...`: tetra's filters and field lists on an exported file.</summary>
public sealed class GetEventsFileTests
{
    private static readonly DateTimeOffset T = new(2026, 12, 2, 5, 0, 0, TimeSpan.Zero);

    private static string Line(PalisadeEvent e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.Write(w, e, "node-1");
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static ProcessRecord Process(string binary, PodInfo? pod = null) => new()
    {
        ExecId = "id-" + binary, Pid = 42, Ktime = 1, StartTime = T, Binary = binary, Arguments = "-x", Cwd = "/", Auid = uint.MaxValue, Pod = pod,
    };

    private static readonly string HostExec = Line(new ProcessExecEvent { Time = T, Process = Process("/usr/bin/curl") });
    private static readonly string PodExec = Line(new ProcessExecEvent { Time = T, Process = Process("/bin/sh", new PodInfo("shop", "web-1")) });
    private static readonly string Kill = Line(new ProcessPolicyEvent
    {
        Time = T, Process = Process("/bin/cat", new PodInfo("shop", "web-1")), HookKind = EventKind.ProcessKprobe, FunctionName = "fd_install",
        Args = [], Action = "KPROBE_ACTION_SIGKILL", PolicyName = "protect-shadow",
    });

    private static EventFileFilter Filter(string[]? types = null, string[]? ns = null, string[]? pods = null, string[]? bins = null,
        string[]? policies = null, string[]? include = null, string[]? exclude = null) =>
        new(types ?? [], ns ?? [], pods ?? [], bins ?? [], policies ?? [], include ?? [], exclude ?? []);

    [Fact]
    public void NoFiltersPassEverythingUnchanged()
    {
        var f = Filter();
        Assert.True(JsonDocument.Parse(f.Apply(HostExec)!.ToJsonString()).RootElement.TryGetProperty("process_exec", out _));
        Assert.NotNull(f.Apply(Kill));
    }

    [Fact]
    public void EventTypesNamespacesPodsBinariesAndPoliciesFilterAsTheAgentDoes()
    {
        Assert.Null(Filter(types: ["process_kprobe"]).Apply(HostExec));
        Assert.NotNull(Filter(types: ["process_kprobe"]).Apply(Kill));
        Assert.NotNull(Filter(ns: [""]).Apply(HostExec)); // --host
        Assert.Null(Filter(ns: [""]).Apply(PodExec));
        Assert.NotNull(Filter(ns: ["shop"]).Apply(PodExec));
        Assert.Null(Filter(pods: ["^db-"]).Apply(PodExec));
        Assert.NotNull(Filter(pods: ["^web-"]).Apply(PodExec));
        Assert.NotNull(Filter(bins: ["curl$"]).Apply(HostExec));
        Assert.Null(Filter(bins: ["curl$"]).Apply(PodExec));
        Assert.NotNull(Filter(policies: ["protect-shadow"]).Apply(Kill));
        Assert.Null(Filter(policies: ["protect-shadow"]).Apply(PodExec));
    }

    [Fact]
    public void IncludeAndExcludeFieldsShapeTheBody()
    {
        var kept = Filter(include: ["process.binary,process.pod.name"]).Apply(PodExec)!;
        var process = JsonDocument.Parse(kept.ToJsonString()).RootElement.GetProperty("process_exec").GetProperty("process");
        Assert.Equal("/bin/sh", process.GetProperty("binary").GetString());
        Assert.Equal("web-1", process.GetProperty("pod").GetProperty("name").GetString());
        Assert.False(process.TryGetProperty("arguments", out _));
        Assert.False(process.GetProperty("pod").TryGetProperty("namespace", out _));

        var without = Filter(exclude: ["process.arguments"]).Apply(PodExec)!;
        var p2 = JsonDocument.Parse(without.ToJsonString()).RootElement.GetProperty("process_exec").GetProperty("process");
        Assert.False(p2.TryGetProperty("arguments", out _));
        Assert.True(p2.TryGetProperty("binary", out _));
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("[1,2]")]
    [InlineData("{\"node_name\":\"n\"}")]
    public void ALineThatIsNoEventIsAJsonError(string line)
    {
        Assert.ThrowsAny<JsonException>(() => Filter().Apply(line));
    }

    [Theory]
    [InlineData(Palisade.Api.V1.EventType.ProcessExec, "process_exec")]
    [InlineData(Palisade.Api.V1.EventType.ProcessKprobe, "process_kprobe")]
    [InlineData(Palisade.Api.V1.EventType.ProcessTracepoint, "process_tracepoint")]
    public void EventTypesMapToTheirBodyKeys(Palisade.Api.V1.EventType type, string key)
    {
        Assert.Equal(key, ClientCommands.EventTypeName(type));
    }
}
