using System.Reflection;
using System.Text.RegularExpressions;
using Palisade.Abi;
using Palisade.Bpf;
using Palisade.Bpf.Abi;

namespace Palisade.Tests;

/// <summary>The C enums of bpf/include (flag sets and sizes included) and their C# twins must agree name for name, value for value.</summary>
public sealed partial class EnumTwinTests
{
    // Where twins live: the loader, the runtime sensors, and the pure event and policy models.
    private static readonly Assembly[] AbiAssemblies =
    [
        typeof(BpfObject).Assembly, typeof(Palisade.Runtime.Abi.PalProc).Assembly,
        typeof(Palisade.Events.ProcessFlags).Assembly, typeof(Palisade.Policies.Tracing.Compilation.SlotKind).Assembly,
        typeof(Palisade.Datapath.Endpoint).Assembly,
    ];

    private static List<(Type Type, BpfEnumAttribute Attr)> Twins(IEnumerable<Assembly> assemblies) =>
        [.. assemblies.SelectMany(a => a.GetTypes())
            .Select(t => (Type: t, Attr: t.GetCustomAttribute<BpfEnumAttribute>()!))
            .Where(x => x.Attr is not null)];

    /// <summary>C enums named pal_* with no C# twin, and C enums with more than one.</summary>
    private static IEnumerable<string> UntwinnedEnums(IEnumerable<string> cEnums, IEnumerable<(Type Type, BpfEnumAttribute Attr)> twins)
    {
        var byName = twins.ToLookup(t => t.Attr.CName, t => t.Type.Name, StringComparer.Ordinal);
        foreach (var name in cEnums.Where(n => n.StartsWith("pal_", StringComparison.Ordinal)).Distinct())
        {
            var found = byName[name].ToList();
            if (found.Count == 0)
            {
                yield return $"C enum {name} has no C# enum marked [BpfEnum(\"{name}\", ...)]";
            }
            else if (found.Count > 1)
            {
                yield return $"C enum {name} has {found.Count} C# twins ({string.Join(", ", found)}); keep one";
            }
        }
    }

    private static BpfObject LayoutObject() => BpfObject.OpenEmbedded(typeof(BpfObject).Assembly, "layout.bpf.o");

    [Fact]
    public void EveryBpfEnumTwinHasTheCEnumeratorsAndValues()
    {
        using var obj = LayoutObject();
        var twins = Twins(AbiAssemblies);
        Assert.NotEmpty(twins);

        var problems = new List<string>();
        foreach (var (type, attr) in twins)
        {
            var c = obj.Btf.FindEnum(attr.CName);
            if (c is null)
            {
                problems.Add($"enum {attr.CName} ({type.Name}'s twin) is not in the layout object: add PAL_LAYOUT_ENUM({attr.CName}) to bpf/layout/layout.bpf.c");
                continue;
            }
            problems.AddRange(EnumTwinCheck.Compare(c, type));
        }
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void EveryPalEnumInTheLayoutObjectHasExactlyOneCSharpTwin()
    {
        using var obj = LayoutObject();

        var problems = UntwinnedEnums(obj.Btf.EnumNames(), Twins(AbiAssemblies)).ToList();

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void EveryEnumOfTheSharedHeadersIsInTheLayoutObject()
    {
        // The BTF has only the enums layout.bpf.c uses; the headers are the list of what exists.
        var declared = Directory.GetFiles(Path.Combine(RepoPaths.Root, "bpf", "include"), "*.h")
            .SelectMany(f => EnumDeclaration().Matches(File.ReadAllText(f)).Select(m => m.Groups[1].Value))
            .ToList();
        Assert.NotEmpty(declared);
        using var obj = LayoutObject();
        var inBtf = obj.Btf.EnumNames().ToHashSet(StringComparer.Ordinal);

        var missing = declared.Where(n => !inBtf.Contains(n)).Select(n => $"enum {n} is declared in bpf/include but bpf/layout/layout.bpf.c has no PAL_LAYOUT_ENUM({n})");

        Assert.Empty(missing);
    }

    [Fact]
    public void ATwinWithARenumberedAMissingAndAnExtraEnumeratorIsReported()
    {
        using var obj = LayoutObject();
        var c = obj.Btf.FindEnum("pal_pol_action")!;

        var problems = EnumTwinCheck.Compare(c, typeof(DriftedAction));

        Assert.Equal(
        [
            "PAL_ACT_MONITOR = 5 of enum pal_pol_action is in C but not in DriftedAction",
            "DriftedAction has PAL_ACT_LOG = 6, which enum pal_pol_action in C does not",
            "PAL_ACT_SIGKILL is 2 in C but 3 in DriftedAction",
            "PAL_ACT_SIGNAL is 3 in C but 2 in DriftedAction",
        ], problems);
    }

    [Fact]
    public void ACEnumWithoutATwinIsReported()
    {
        using var obj = LayoutObject();
        var cEnums = obj.Btf.EnumNames().Append("pal_new_flags");

        var problems = UntwinnedEnums(cEnums, Twins([.. AbiAssemblies, typeof(DriftedAction).Assembly])).ToList();

        Assert.Equal(
        [
            "C enum pal_pol_action has 2 C# twins (PalPolAction, DriftedAction); keep one",
            "C enum pal_new_flags has no C# enum marked [BpfEnum(\"pal_new_flags\", ...)]",
        ], problems);
    }

    [BpfEnum("pal_pol_action", "PAL_ACT_")]
    private enum DriftedAction { Post = 1, Sigkill = 3, Signal = 2, Override = 4, Log = 6 }

    [GeneratedRegex(@"^enum\s+(pal_\w+)\s*\{", RegexOptions.Multiline)]
    private static partial Regex EnumDeclaration();
}
