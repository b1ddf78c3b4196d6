using System.Text;
using System.Text.Json;
using Palisade.Cli.Observe;
using Palisade.Datapath.Flows;
using Palisade.Events;
using Palisade.Exporters;
using static Palisade.Tests.Flows.FlowFilterTests;

namespace Palisade.Tests.Flows;

/// <summary>`palisade observe` takes `hubble observe`'s flags and filters an exported JSON-lines file on stdin in each output format.</summary>
public sealed class ObserveCommandTests
{
    private static readonly DateTimeOffset T = new(2026, 12, 2, 5, 0, 0, TimeSpan.Zero);

    private static ObserveCommand.Plan Plan(ObserveFlags? flags = null, string output = "compact", int? last = null, int? first = null,
        string? since = null, bool fromAgent = false, bool follow = false) =>
        ObserveCommand.MakePlan(flags ?? new ObserveFlags(), output, color: false, follow, last, first, since, until: null, fromAgent, T.AddMinutes(10));

    private static string Line(PalisadeEvent e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, TetragonJson.WriterOptions))
        {
            TetragonJson.WriteFiltered(w, e, "node-1", TetragonJsonOptions.Default, []);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static FlowEvent WithProcess(FlowEvent f) => new()
    {
        Time = f.Time, Uuid = f.Uuid, Verdict = f.Verdict, DropReason = f.DropReason, IP = f.IP, L4 = f.L4, Source = f.Source, Destination = f.Destination,
        EventType = f.EventType, TrafficDirection = f.TrafficDirection, IsReply = f.IsReply, TraceObservationPoint = TraceObservationPoint.ToEndpoint,
        Summary = "TCP Flags: SYN", Interface = new FlowInterface(7, "lxc1411"), Process = FlowRecords.Curl(),
    };

    private static readonly FlowEvent Forwarded = WithProcess(Flow(time: T));
    private static readonly FlowEvent Dropped = WithProcess(Flow(verdict: FlowVerdict.Dropped, eventType: FlowEventType.Drop, time: T.AddSeconds(1)));
    private static readonly FlowEvent Dns = Flow(srcNs: "kube-system", srcPod: "coredns-1", l4: FlowL4.Udp(53, 40000), time: T.AddSeconds(2));

    private static string Export() => string.Join('\n',
        Line(Forwarded),
        Line(new ProcessExecEvent { Time = T, Process = FlowRecords.Curl() }),
        "{ this is not json",
        Line(Dropped),
        "",
        Line(Dns));

    private static async Task<(int Code, string Out, string Err)> Run(ObserveCommand.Plan plan, string input)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await ObserveCommand.FromFile(new StringReader(input), output, error, plan, CancellationToken.None);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void APodFlagWithoutASideMatchesEitherSideAndGetsTheDefaultNamespace()
    {
        var filters = ObserveFilters.Whitelist(new ObserveFlags { Pod = ["xwing"], Verdict = ["dropped"] });
        Assert.Equal(2, filters.Count);
        Assert.Equal(["default/xwing"], filters[0].SourcePod);
        Assert.Equal(["default/xwing"], filters[1].DestinationPod);
        Assert.All(filters, f => Assert.Equal([Palisade.Api.V1.Verdict.Dropped], f.Verdict));
    }

    [Fact]
    public void FromAndToFlagsMakeOneFilterAndTheNamespaceFlagNamesThePods()
    {
        var filters = ObserveFilters.Whitelist(new ObserveFlags { FromPod = ["xwing"], ToPod = ["empire/deathstar"], Namespace = ["rebels"], Type = ["policy-verdict"], ToPort = ["80"] });
        var f = Assert.Single(filters);
        Assert.Equal(["rebels/xwing"], f.SourcePod);
        Assert.Equal(["empire/deathstar"], f.DestinationPod);
        Assert.Equal(5, Assert.Single(f.EventType).Type);
        Assert.Equal(["80"], f.DestinationPort);
        var onlyNamespace = ObserveFilters.Whitelist(new ObserveFlags { Namespace = ["kube-system"] });
        Assert.Equal(["kube-system/"], onlyNamespace[0].SourcePod);
        Assert.Equal(["kube-system/"], onlyNamespace[1].DestinationPod);
        Assert.Empty(ObserveFilters.Whitelist(new ObserveFlags()));
    }

    [Fact]
    public void TheAgentIsAskedForTheLastTwentyFlowsUnlessFollowingOrGivenAWindow()
    {
        Assert.Equal(20UL, Plan(fromAgent: true).Request.Number);
        Assert.Equal(0UL, Plan(fromAgent: true, follow: true).Request.Number);
        Assert.Equal(0UL, Plan(fromAgent: true, since: "5m").Request.Number);
        Assert.Equal(T.AddMinutes(5), Plan(since: "5m").Request.Since.ToDateTimeOffset());
        Assert.Equal(T.AddMinutes(10) - TimeSpan.FromMinutes(90), Plan(since: "1h30m").Request.Since.ToDateTimeOffset());
        Assert.Equal(T, Plan(since: "2026-12-02T05:00:00Z").Request.Since.ToDateTimeOffset());
        var firstThree = Plan(first: 3).Request;
        Assert.True(firstThree.First);
        Assert.Equal(3UL, firstThree.Number);
        Assert.Equal(0UL, Plan().Request.Number);
    }

    [Theory]
    [InlineData("--type", "is not a flow type")]
    [InlineData("--verdict", "is not a verdict")]
    [InlineData("--since", "neither a duration")]
    [InlineData("--ip", "is not an IP address")]
    [InlineData("--last", "cannot be used together")]
    public void ABadFlagIsRefusedByName(string flag, string why)
    {
        var e = Record.Exception(() => flag switch
        {
            "--type" => Plan(new ObserveFlags { Type = ["l7"] }),
            "--verdict" => Plan(new ObserveFlags { Verdict = ["ALLOWED"] }),
            "--since" => Plan(since: "yesterday"),
            "--ip" => Plan(new ObserveFlags { Ip = ["10.0.0.999"] }),
            _ => Plan(last: 1, first: 1),
        });
        Assert.True(e is ObserveUsageException or FlowFilterException, e?.ToString());
        Assert.Contains(why, e!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnExportedFileOnStdinIsFilteredByVerdictAndPrintedAsJson()
    {
        var (code, output, error) = await Run(Plan(new ObserveFlags { Verdict = ["DROPPED"] }, "json"), Export());
        Assert.Equal(Line(Dropped), output.TrimEnd('\n'));
        // The bad line is reported by number and skipped; the exit code says something was skipped.
        Assert.Contains("line 3: not a JSON event line", error, StringComparison.Ordinal);
        Assert.Equal(1, code);
    }

    [Fact]
    public async Task ACompactLineNamesBothSidesTheDropReasonAndTheProcess()
    {
        var (_, output, _) = await Run(Plan(new ObserveFlags { Verdict = ["DROPPED"] }), Export());
        Assert.Equal("Dec 02 05:00:01.000: default/xwing:43512 (ID:5123) -> empire/deathstar-1:80 (ID:7177) POLICY_DENIED DROPPED (TCP Flags: SYN) pid=4242 /usr/bin/curl http://10.244.0.9/",
            output.TrimEnd('\n'));
        var (_, forwarded, _) = await Run(Plan(new ObserveFlags { Pod = ["default/xwing"], Verdict = ["FORWARDED"] }), Export());
        Assert.Contains("-> empire/deathstar-1:80 (ID:7177) to-endpoint FORWARDED (TCP Flags: SYN)", forwarded, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ATableHasAHeaderAndOneRowPerFlow()
    {
        var (_, output, _) = await Run(Plan(output: "table"), Export());
        var lines = output.TrimEnd('\n').Split('\n');
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("TIMESTAMP", lines[0], StringComparison.Ordinal);
        Assert.Contains("SUMMARY", lines[0], StringComparison.Ordinal);
        Assert.Contains("kube-system/coredns-1:53", lines[3], StringComparison.Ordinal);
        Assert.Contains("FORWARDED", lines[3], StringComparison.Ordinal);
    }

    [Fact]
    public async Task LastFirstSinceProtocolAndLabelNarrowAFile()
    {
        Assert.Contains("coredns", (await Run(Plan(last: 1), Export())).Out, StringComparison.Ordinal);
        Assert.Single((await Run(Plan(last: 1), Export())).Out.TrimEnd('\n').Split('\n'));
        var firstTwo = (await Run(Plan(first: 2, output: "json"), Export())).Out.TrimEnd('\n').Split('\n');
        Assert.Equal([Line(Forwarded), Line(Dropped)], firstTwo);
        var since = (await Run(Plan(since: "2026-12-02T05:00:01.500Z", output: "json"), Export())).Out.TrimEnd('\n');
        Assert.Equal(Line(Dns), since);
        Assert.Equal(Line(Dns), (await Run(Plan(new ObserveFlags { Protocol = ["udp"] }, "json"), Export())).Out.TrimEnd('\n'));
        Assert.Equal(3, (await Run(Plan(new ObserveFlags { Label = ["app=xwing"] }, "json"), Export())).Out.TrimEnd('\n').Split('\n').Length);
        Assert.Equal("", (await Run(Plan(new ObserveFlags { Label = ["tier=db"] }, "json"), Export())).Out);
    }

    [Fact]
    public void AnExportedLineReadsBackAsTheFlowItWas()
    {
        var o = FlowJsonReader.Read(Line(Dropped))!;
        var f = o.Flow;
        Assert.Equal("node-1", o.NodeName);
        Assert.Equal(Dropped.Time, f.Time);
        Assert.Equal(Dropped.Uuid, f.Uuid);
        Assert.Equal(FlowVerdict.Dropped, f.Verdict);
        Assert.Equal(DropReason.PolicyDenied, f.DropReason);
        Assert.Equal(Dropped.IP, f.IP);
        Assert.Equal(Dropped.L4, f.L4);
        Assert.Equal(Dropped.Source!.Labels, f.Source!.Labels);
        Assert.Equal(Dropped.Destination!.PodName, f.Destination!.PodName);
        Assert.Equal(Dropped.EventType, f.EventType);
        Assert.Equal(Dropped.TrafficDirection, f.TrafficDirection);
        Assert.Equal(Dropped.IsReply, f.IsReply);
        Assert.Equal(TraceObservationPoint.ToEndpoint, f.TraceObservationPoint);
        Assert.Equal(Dropped.Interface, f.Interface);
        Assert.Equal(Dropped.Summary, f.Summary);
        Assert.Equal("/usr/bin/curl", f.Process!.Binary);
        Assert.Null(FlowJsonReader.Read(Line(new ProcessExecEvent { Time = T, Process = FlowRecords.Curl() })));
    }
}
