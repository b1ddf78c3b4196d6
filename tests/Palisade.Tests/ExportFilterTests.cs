using System.Text.Json;
using System.Text.Json.Nodes;
using Palisade.Events;
using Palisade.Exporters;
using Palisade.Exporters.Filters;

namespace Palisade.Tests;

/// <summary>Export allow/deny filters, field filters, redaction and the rate limit (Tetragon's formats).</summary>
public sealed class ExportFilterTests
{
    private static ProcessRecord Proc(string binary, string args = "", PodInfo? pod = null, uint pid = 100, ProcessRecord? parent = null) => new()
    {
        ExecId = $"x-{pid}", Pid = pid, Ktime = 1, StartTime = DateTimeOffset.UnixEpoch, Binary = binary, Arguments = args, Pod = pod, Parent = parent,
    };

    private static ProcessExecEvent Exec(ProcessRecord p) => new() { Time = DateTimeOffset.UnixEpoch, Process = p, Parent = p.Parent };

    private static ProcessPolicyEvent Kprobe(ProcessRecord p, string policy) => new()
    {
        Time = DateTimeOffset.UnixEpoch, Process = p, HookKind = EventKind.ProcessKprobe, FunctionName = "fd_install", Args = [],
        Action = "KPROBE_ACTION_POST", PolicyName = policy,
    };

    private static readonly PodInfo Web = new("default", "web-1", Labels: new Dictionary<string, string> { ["app"] = "web" });

    [Fact]
    public void FieldsAreAndedValuesOred()
    {
        var f = EventFilter.Parse("""{"event_set":["PROCESS_EXEC","PROCESS_EXIT"],"binary_regex":["^/usr/bin/c.*","/bin/sh$"]}""", "t");
        Assert.True(f.Matches(Exec(Proc("/usr/bin/curl"))));
        Assert.True(f.Matches(Exec(Proc("/bin/sh"))));
        Assert.False(f.Matches(Exec(Proc("/usr/bin/wget"))));
        Assert.False(f.Matches(Kprobe(Proc("/usr/bin/curl"), "p")));
    }

    [Fact]
    public void NamespaceEmptyStringMeansHost()
    {
        var host = EventFilter.Parse("""{"namespace":[""]}""", "t");
        var dflt = EventFilter.Parse("""{"namespace":["default"]}""", "t");
        Assert.True(host.Matches(Exec(Proc("/bin/a"))));
        Assert.False(host.Matches(Exec(Proc("/bin/a", pod: Web))));
        Assert.True(dflt.Matches(Exec(Proc("/bin/a", pod: Web))));
    }

    [Fact]
    public void LabelsPodPolicyPidSetAndParent()
    {
        var parent = Proc("/usr/sbin/sshd", pid: 7);
        var child = Proc("/bin/bash", "-c id", Web, 8, parent);
        Assert.True(EventFilter.Parse("""{"labels":["app=web"]}""", "t").Matches(Exec(child)));
        Assert.False(EventFilter.Parse("""{"labels":["app!=web"]}""", "t").Matches(Exec(child)));
        Assert.True(EventFilter.Parse("""{"pod_regex":["^web-"]}""", "t").Matches(Exec(child)));
        Assert.True(EventFilter.Parse("""{"parent_binary_regex":["sshd"]}""", "t").Matches(Exec(child)));
        Assert.True(EventFilter.Parse("""{"pid_set":[7]}""", "t").Matches(Exec(child)));
        Assert.False(EventFilter.Parse("""{"pid":[7]}""", "t").Matches(Exec(child)));
        Assert.True(EventFilter.Parse("""{"arguments_regex":["-c"]}""", "t").Matches(Exec(child)));
        Assert.True(EventFilter.Parse("""{"policy_names":["files"]}""", "t").Matches(Kprobe(child, "files")));
        Assert.False(EventFilter.Parse("""{"policy_names":["files"]}""", "t").Matches(Exec(child)));
    }

    [Fact]
    public void DenyWinsOverAllow()
    {
        var filter = new ExportFilter(
            EventFilter.ParseList("""{"event_set":["PROCESS_EXEC"]}""", "allow"),
            EventFilter.ParseList("""{"binary_regex":["^/usr/bin/true$"]}""" + "\n\n" + """{"namespace":["kube-system"]}""", "deny"));
        Assert.True(filter.Passes(Exec(Proc("/bin/ls"))));
        Assert.False(filter.Passes(Exec(Proc("/usr/bin/true"))));
        Assert.False(filter.Passes(Kprobe(Proc("/bin/ls"), "p")));
    }

    [Theory]
    [InlineData("""{"event_sets":["PROCESS_EXEC"]}""", "event_sets: unknown filter field. Did you mean \"event_set\"?")]
    [InlineData("""{"event_set":["PROCESS_EXECC"]}""", "unknown event type \"PROCESS_EXECC\"")]
    [InlineData("""{"binary_regex":["(unclosed"]}""", "\"(unclosed\" is not a valid regular expression")]
    [InlineData("""{"namespace":"default"}""", "namespace: must be a list of strings")]
    [InlineData("""{"pid":["x"]}""", "pid: must be a list of process ids")]
    [InlineData("""not json""", "not valid JSON")]
    public void BadFiltersNameTheFieldAndTheFix(string json, string expected)
    {
        var e = Assert.Throws<FilterException>(() => EventFilter.ParseList(json, "export-allowlist"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("export-allowlist line 1", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("field-filters", "[1]", "field-filters line 1: must be a JSON object, not Array. Fix: e.g. {\"fields\"")]
    [InlineData("field-filters", "{fields", "field-filters line 1: not valid JSON")]
    [InlineData("redaction-filters", "3", "redaction-filters line 1: must be a JSON object, not Number. Fix: e.g. {\"redact\"")]
    [InlineData("redaction-filters", "{redact", "redaction-filters line 1: not valid JSON")]
    [InlineData("export-allowlist", "\"x\"", "export-allowlist line 1: must be a JSON object, not String. Fix: e.g. {\"event_set\"")]
    public void EveryFilterListRefusesALineThatIsNotAJsonObject(string setting, string line, string expected)
    {
        var e = Assert.Throws<FilterException>(() => setting switch
        {
            "field-filters" => (object)FieldFilter.ParseList(line, setting),
            "redaction-filters" => Redactor.Parse(line, setting),
            _ => EventFilter.ParseList(line, setting),
        });
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FieldFilterIncludeKeepsOnlyNamedFieldsOfMatchingTypes()
    {
        var include = FieldFilter.Parse("""{"event_set":["PROCESS_EXEC"],"fields":"process.binary,process.pid,parent.binary","action":"INCLUDE"}""", "t");
        var body = JsonNode.Parse("""{"process":{"binary":"/bin/a","pid":3,"cwd":"/"},"parent":{"binary":"/bin/p","pid":1},"ancestors":[]}""")!.AsObject();
        Assert.True(include.AppliesTo(EventKind.ProcessExec));
        Assert.False(include.AppliesTo(EventKind.ProcessExit));
        include.Apply(body);
        Assert.Equal("""{"process":{"binary":"/bin/a","pid":3},"parent":{"binary":"/bin/p"}}""", body.ToJsonString());

        var exclude = FieldFilter.Parse("""{"fields":"process.cwd,ancestors","action":"EXCLUDE","event_set":["PROCESS_EXIT"],"invert_event_set":true}""", "t");
        Assert.True(exclude.AppliesTo(EventKind.ProcessExec));
        Assert.False(exclude.AppliesTo(EventKind.ProcessExit));
        var body2 = JsonNode.Parse("""{"process":{"binary":"/bin/a","cwd":"/"},"ancestors":[]}""")!.AsObject();
        exclude.Apply(body2);
        Assert.Equal("""{"process":{"binary":"/bin/a"}}""", body2.ToJsonString());
    }

    [Fact]
    public void FieldFiltersApplyInTheJsonLineButKeepNodeAndTime()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            TetragonJson.WriteFiltered(w, Exec(Proc("/bin/a", "x")), "n1", TetragonJsonOptions.Default,
                [FieldFilter.Parse("""{"fields":"process.binary","action":"INCLUDE"}""", "t")]);
        }
        var doc = JsonNode.Parse(buffer.WrittenSpan)!;
        Assert.Equal("""{"binary":"/bin/a"}""", doc["process_exec"]!["process"]!.ToJsonString());
        Assert.Equal("n1", (string?)doc["node_name"]);
        Assert.NotNull(doc["time"]);
    }

    [Fact]
    public void RedactionMasksCaptureGroupsForMatchingBinaries()
    {
        var r = Redactor.Parse("""{"binary_regex":["mysql$"],"redact":["(?:-p|--password)(?:=| )?(\\S+)"]}""" + "\n" + """{"redact":["TOKEN=(\\w+)"]}""", "redaction-filters");
        Assert.Equal("-u root -p***** db", r.Redact("/usr/bin/mysql", "-u root -psecret db"));
        Assert.Equal("--password=*****", r.Redact("/usr/bin/mysql", "--password=hunter2"));
        Assert.Equal("--password=hunter2", r.Redact("/usr/bin/psql", "--password=hunter2"));
        Assert.Equal("TOKEN=***** x", r.Redact("/bin/env", "TOKEN=abc123 x"));

        var p = Proc("/usr/bin/mysql", "-psecret");
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            TetragonJson.Write(w, Exec(p), "n", new TetragonJsonOptions { Redactor = r });
        }
        var line = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        Assert.DoesNotContain("secret", line, StringComparison.Ordinal);
        Assert.Contains("-p*****", line, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", CompactFormat.Format(Exec(p), "n", false, r), StringComparison.Ordinal);
    }

    [Fact]
    public void RedactionWithoutCaptureGroupIsRejected()
    {
        var e = Assert.Throws<FilterException>(() => Redactor.Parse("""{"redact":["--password=\\S+"]}""", "redaction-filters"));
        Assert.Contains("no capture group", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RateLimitRefillsPerMinuteAndReportsDrops()
    {
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var limiter = new RateLimiter(60, time);
        var passed = Enumerable.Range(0, 100).Count(_ => limiter.TryTake());
        Assert.Equal(60, passed);
        Assert.Equal(40, limiter.Dropped);
        Assert.Equal(40, limiter.TakeReport());
        Assert.Equal(0, limiter.TakeReport());
        time.Advance(TimeSpan.FromSeconds(10)); // 10 tokens back
        Assert.Equal(10, Enumerable.Range(0, 20).Count(_ => limiter.TryTake()));
        Assert.Equal(10, limiter.TakeReport());
    }

    [Fact]
    public async Task SinkAppliesFiltersRateLimitAndEmitsRateLimitInfo()
    {
        var dir = Directory.CreateTempSubdirectory("pal-filter-").FullName;
        try
        {
            var hub = new EventHub();
            var pipeline = new SinkPipeline(new ExportFilter([], EventFilter.ParseList("""{"binary_regex":["deny-me"]}""", "deny")), [], 10);
            var sink = new JsonFileSink(hub.Subscribe("file", 1000), "n", Path.Combine(dir, "e.json"), pipeline: pipeline);
            sink.Start();
            for (var i = 0; i < 30; i++)
            {
                hub.Publish(Exec(Proc(i % 2 == 0 ? "/bin/deny-me" : "/bin/ok", pid: (uint)i)));
            }
            await sink.DisposeAsync();
            var lines = File.ReadAllLines(Path.Combine(dir, "e.json"));
            Assert.Equal(15, sink.Filtered);
            Assert.Equal(5, sink.Drops["rate_limited"]);
            Assert.Equal(10, lines.Count(l => l.Contains("process_exec", StringComparison.Ordinal)));
            var info = Assert.Single(lines, l => l.Contains("rate_limit_info", StringComparison.Ordinal));
            Assert.Equal("5", JsonNode.Parse(info)!["rate_limit_info"]!["number_of_dropped_process_events"]!.GetValue<string>());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
