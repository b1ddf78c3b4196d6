using System.Reflection;
using Palisade.Bpf;
using Palisade.Bpf.Abi;

namespace Palisade.Tests;

/// <summary>The C structs of bpf/include and their C# twins must agree byte for byte.</summary>
public sealed class StructLayoutTests
{
    private static readonly Assembly[] AbiAssemblies = [typeof(BpfObject).Assembly, typeof(Palisade.Runtime.Abi.PalProc).Assembly, typeof(Palisade.Datapath.Endpoint).Assembly];

    private static Dictionary<string, Type> CSharpTwins() =>
        AbiAssemblies.SelectMany(a => a.GetTypes())
            .Select(t => (Type: t, Attr: t.GetCustomAttribute<BpfStructAttribute>()))
            .Where(x => x.Attr is not null)
            .ToDictionary(x => x.Attr!.CName, x => x.Type);

    [Fact]
    public void EveryStructInTheLayoutObjectHasAMatchingCSharpTwin()
    {
        using var obj = BpfObject.OpenEmbedded(typeof(BpfObject).Assembly, "layout.bpf.o");
        var btf = obj.Btf;
        var twins = CSharpTwins();
        var layoutVars = btf.AllVariables().Where(v => v.Name.StartsWith("layout__", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(layoutVars);

        var problems = new List<string>();
        foreach (var variable in layoutVars)
        {
            var cStruct = btf.StructOf(variable);
            if (cStruct is null)
            {
                problems.Add($"{variable.Name} is not a struct");
                continue;
            }
            if (!twins.TryGetValue(cStruct.Name, out var csType))
            {
                problems.Add($"C struct {cStruct.Name} has no C# struct marked [BpfStruct(\"{cStruct.Name}\")]");
                continue;
            }
            problems.AddRange(StructLayoutCheck.Compare(cStruct, csType));
        }
        var covered = layoutVars.Select(v => btf.StructOf(v)?.Name).ToHashSet();
        problems.AddRange(twins.Keys.Where(name => !covered.Contains(name))
            .Select(name => $"C# twin of {name} exists but bpf/layout/layout.bpf.c has no PAL_LAYOUT({name})"));

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void AFieldAddedInCButNotInCSharpIsReported()
    {
        using var obj = BpfObject.OpenEmbedded(typeof(BpfObject).Assembly, "layout.bpf.o");
        var real = obj.Btf.FindStruct("pal_event_header")!;
        var grown = real with
        {
            Size = real.Size + 8,
            Members = [.. real.Members, new BtfMember("flags", real.Size * 8, 0, 8)],
        };

        var problems = StructLayoutCheck.Compare(grown, typeof(PalEventHeader));

        Assert.Contains(problems, p => p.Contains("pal_event_header.flags", StringComparison.Ordinal) && p.Contains("add Flags", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("is 40 bytes in C but PalEventHeader is 32 bytes", StringComparison.Ordinal));
    }

    [Fact]
    public void AFieldMovedInCIsReportedWithBothOffsets()
    {
        using var obj = BpfObject.OpenEmbedded(typeof(BpfObject).Assembly, "layout.bpf.o");
        var real = obj.Btf.FindStruct("pal_event_header")!;
        var moved = real with { Members = [.. real.Members.Select(m => m.Name == "pid" ? m with { BitOffset = m.BitOffset + 32 } : m)] };

        var problems = StructLayoutCheck.Compare(moved, typeof(PalEventHeader));

        Assert.Equal(["pal_event_header.pid is at offset 20 in C but PalEventHeader.Pid is at 16"], problems);
    }
}
