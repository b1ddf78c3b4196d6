using Palisade.Datapath.Flows;

namespace Palisade.Tests.Flows;

public sealed class FlowUuidTests
{
    [Fact]
    public void Uuids_are_version_4_with_the_rfc_variant_and_distinct()
    {
        var seen = new HashSet<string>();
        for (var i = 0; i < 10_000; i++)
        {
            var text = FlowUuid.Next();
            Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", text);
            Assert.True(seen.Add(text), $"{text} came twice");
        }
    }

    [Fact]
    public async Task Threads_do_not_share_a_sequence()
    {
        var a = Task.Run(() => Enumerable.Range(0, 1000).Select(_ => FlowUuid.Next()).ToList());
        var b = Task.Run(() => Enumerable.Range(0, 1000).Select(_ => FlowUuid.Next()).ToList());
        var all = (await a).Concat(await b).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
    }
}
