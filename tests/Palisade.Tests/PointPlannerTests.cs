using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Policies.Tracing.Compilation;

namespace Palisade.Tests;

/// <summary>What the kernel gets for a point: selector bits, slots, LPM keys and filters, computed without a kernel.</summary>
public sealed class PointPlannerTests
{
    private static readonly KernelFacts Facts = new(false, new Dictionary<string, uint>());
    private static readonly PointLimits Limits = new(Slots: 6, Selectors: 256, Dims: 12, Fids: 64, Filters: 48, Words: 4);

    private static CompiledHook Hook(string spec)
    {
        var parsed = TracingPolicyParser.Parse("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: p\nspec:\n" + spec, "p.yaml");
        Assert.Empty(parsed.Errors);
        var compiled = PolicyCompiler.Compile(Assert.Single(parsed.Policies), Facts);
        Assert.Empty(compiled.Errors);
        return Assert.Single(compiled.Hooks);
    }

    private static PointLayout Plan(params CompiledHook[] hooks) => PointPlanner.Plan(hooks[0].Targets[0],
        hooks.Select((h, i) => new PointMember((uint)i + 1, (uint)i, h.Selectors.ToDictionary(s => s.Index, s => (uint)(100 * i + s.Index)), h, h.Targets[0])).ToList(), Limits);

    private const string FdInstall = "  kprobes:\n  - call: fd_install\n    args:\n    - index: 0\n      type: int\n    - index: 1\n      type: file\n    selectors:\n";

    [Fact]
    public void TwoPoliciesOnOnePointGetConsecutiveSelectorBitsAndShareTheFileSlot()
    {
        var a = Hook(FdInstall + "    - matchArgs:\n      - index: 1\n        operator: Prefix\n        values: [\"/etc\"]\n      matchActions:\n      - action: Sigkill\n");
        var b = Hook(FdInstall + "    - matchArgs:\n      - index: 1\n        operator: Equal\n        values: [\"/etc/shadow\"]\n");

        var layout = Plan(a, b);

        Assert.Equal([0, 1], layout.Selectors.Select(s => s.Bit));
        Assert.Equal([1u, 2u], layout.Selectors.Select(s => s.HookId));
        Assert.True((layout.Selectors[0].Actions & ActionFlags.Sigkill) != 0);
        Assert.Equal(0b11UL, layout.All[0]);
        Assert.Equal(2, layout.Slots.Count); // fd and file, extracted once for both hooks
        Assert.Equal(2, layout.Dims.Count); // a prefix and an exact dimension on the file slot
    }

    [Fact]
    public void ALongerPrefixKeyAlsoCarriesTheSelectorsOfTheShorterOne()
    {
        var h = Hook(FdInstall
            + "    - matchArgs:\n      - index: 1\n        operator: Prefix\n        values: [\"/etc\"]\n"
            + "    - matchArgs:\n      - index: 1\n        operator: Prefix\n        values: [\"/etc/ssh\"]\n");

        var layout = Plan(h);

        var shorter = layout.Strings.Single(s => s.Bytes.Length == 4);
        var longer = layout.Strings.Single(s => s.Bytes.Length == 8);
        Assert.Equal(0b01UL, shorter.Mask[0]);
        Assert.Equal(0b11UL, longer.Mask[0]); // the trie returns only the longest match
    }

    [Fact]
    public void PostfixKeysAreReversedAndExactKeysEndInNul()
    {
        Assert.Equal("cba"u8.ToArray(), PointPlanner.KeyBytes("abc", StringClass.Postfix));
        Assert.Equal("abc\0"u8.ToArray(), PointPlanner.KeyBytes("abc", StringClass.Equal));
        Assert.Equal("abc"u8.ToArray(), PointPlanner.KeyBytes("abc", StringClass.Prefix));
    }

    [Fact]
    public void IntegerValuesOfOneConditionShareAFidAndNegatedOnesAreNotPositive()
    {
        var h = Hook(FdInstall
            + "    - matchArgs:\n      - index: 0\n        operator: Equal\n        values: [\"3\", \"4\"]\n"
            + "    - matchArgs:\n      - index: 0\n        operator: NotEqual\n        values: [\"5\"]\n");

        var layout = Plan(h);

        Assert.Equal([0, 0, 1], layout.Filters.Select(f => (int)f.Fid));
        Assert.Equal([0, 0, 1], layout.Filters.Select(f => (int)f.Sel));
        Assert.Equal(0b01UL, layout.FidPositive);
    }

    [Fact]
    public void MoreSelectorsThanAPointHoldsIsAnErrorThatNamesTheLimit()
    {
        var h = Hook(FdInstall + string.Concat(Enumerable.Repeat("    - matchArgs:\n      - index: 0\n        operator: Equal\n        values: [\"1\"]\n", 3)));

        var e = Assert.Throws<InvalidOperationException>(() => PointPlanner.Plan(h.Targets[0],
            [new PointMember(1, 0, h.Selectors.ToDictionary(s => s.Index, s => (uint)s.Index), h, h.Targets[0])], Limits with { Selectors = 2 }));
        Assert.Contains("more than 2 selectors on one point", e.Message, StringComparison.Ordinal);
    }
}
