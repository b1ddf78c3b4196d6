using System.Text.Json;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>What is loaded in the kernel right now, as bpftool sees it: used to prove nothing is left behind.</summary>
internal static class BpfIds
{
    public static HashSet<int> Programs() => Ids("prog");

    public static HashSet<int> Maps() => Ids("map");

    public static HashSet<int> Links() => Ids("link");

    private static HashSet<int> Ids(string kind)
    {
        var json = Command.Check("bpftool", "-j", kind, "show");
        using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json);
        return doc.RootElement.EnumerateArray().Select(e => e.GetProperty("id").GetInt32()).ToHashSet();
    }
}
