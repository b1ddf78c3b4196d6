using Palisade.Events;
using Palisade.Exporters.Filters;

namespace Palisade.Tests;

/// <summary>The export filter fields Tetragon has beyond the basics: container_id, namespace_regex, parent_arguments_regex, in_init_tree, capabilities.</summary>
public sealed class ExportFilterTetragonFieldsTests
{
    private const string Container = "containerd://0123456789abcdef";

    private static ProcessRecord Proc(string binary, ProcessRecord? parent = null, string args = "", uint nsPid = 0, string? container = Container,
        CapabilitySets caps = default, PodInfo? pod = null) => new()
    {
        ExecId = "x-" + binary, Pid = 100, Ktime = 1, StartTime = DateTimeOffset.UnixEpoch, Binary = binary, Arguments = args, Parent = parent,
        NamespacePid = nsPid, ContainerId = container, Capabilities = caps, Pod = pod ?? new PodInfo("shop-eu", "web-1"),
    };

    private static ProcessExecEvent Exec(ProcessRecord p) => new() { Time = DateTimeOffset.UnixEpoch, Process = p, Parent = p.Parent };

    private static bool Match(string json, ProcessRecord p) => EventFilter.Parse(json, "t").Matches(Exec(p));

    [Fact]
    public void ContainerIdNamespaceRegexAndParentArguments()
    {
        var parent = Proc("/bin/sh", args: "-c ./run.sh --debug");
        var p = Proc("/app/run", parent);

        Assert.True(Match("""{"container_id":["^containerd://0123"]}""", p));
        Assert.False(Match("""{"container_id":["^docker://"]}""", p));
        Assert.False(Match("""{"container_id":[".*"]}""", Proc("/usr/bin/top", container: null, pod: null)));
        Assert.True(Match("""{"namespace_regex":["^shop-"]}""", p));
        Assert.False(Match("""{"namespace_regex":["^kube-"]}""", p));
        Assert.True(Match("""{"parent_arguments_regex":["--debug"]}""", p));
        Assert.False(Match("""{"parent_arguments_regex":["--debug"]}""", parent));
    }

    [Fact]
    public void InInitTreeIsTheContainersInitAndWhatItStarted()
    {
        var init = Proc("/pause", nsPid: 1);
        var child = Proc("/app/server", init, nsPid: 7);
        var execd = Proc("/bin/sh", Proc("/usr/bin/containerd-shim", container: null, pod: null), nsPid: 9); // kubectl exec

        Assert.True(Match("""{"in_init_tree":true}""", init));
        Assert.True(Match("""{"in_init_tree":true}""", child));
        Assert.False(Match("""{"in_init_tree":true}""", execd));
        Assert.True(Match("""{"in_init_tree":false}""", execd));
    }

    [Fact]
    public void CapabilitiesAnyAllExactlyNone()
    {
        const ulong sysAdmin = 1UL << 21, netRaw = 1UL << 13, chown = 1UL << 0;
        var p = Proc("/bin/x", caps: new CapabilitySets(sysAdmin | netRaw | chown, sysAdmin | netRaw, 0));

        Assert.True(Match("""{"capabilities":{"effective":{"any":["CAP_SYS_ADMIN","CAP_BPF"]}}}""", p));
        Assert.False(Match("""{"capabilities":{"effective":{"any":["CAP_BPF"]}}}""", p));
        Assert.True(Match("""{"capabilities":{"effective":{"all":["CAP_SYS_ADMIN","CAP_NET_RAW"]}}}""", p));
        Assert.False(Match("""{"capabilities":{"effective":{"all":["CAP_SYS_ADMIN","CAP_CHOWN"]}}}""", p));
        Assert.True(Match("""{"capabilities":{"permitted":{"exactly":["CAP_SYS_ADMIN","CAP_NET_RAW","CAP_CHOWN"]}}}""", p));
        Assert.True(Match("""{"capabilities":{"inheritable":{"none":["CAP_SYS_ADMIN"]}}}""", p));
        Assert.False(Match("""{"capabilities":{"effective":{"none":["CAP_NET_RAW"]}}}""", p));
    }

    [Theory]
    [InlineData("""{"in_init_tree":"yes"}""", "in_init_tree: must be true or false")]
    [InlineData("""{"capabilities":{"effective":{"any":["CAP_NOPE"]}}}""", "\"CAP_NOPE\" is not a capability")]
    [InlineData("""{"capabilities":{"bounding":{"any":["CAP_BPF"]}}}""", "capabilities.bounding: not a capability set")]
    [InlineData("""{"capabilities":{"effective":{"some":["CAP_BPF"]}}}""", "capabilities.effective.some: not an operator")]
    [InlineData("""{"capabilities":[1]}""", "capabilities: must be an object")]
    [InlineData("""{"container_id":["(x"]}""", "is not a valid regular expression")]
    public void BadValuesNameTheFieldAndTheFix(string json, string expected)
    {
        var e = Assert.Throws<FilterException>(() => EventFilter.ParseList(json, "export-denylist"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
