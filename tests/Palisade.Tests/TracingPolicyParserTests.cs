using Palisade.Policies;
using Palisade.Policies.Tracing;

namespace Palisade.Tests;

public sealed class TetragonExamplesCompatibilityTests
{
    internal static string ExamplesDir()
    {
        var shared = Environment.GetEnvironmentVariable("PALISADE_SHARED_DIR") ?? Path.Combine(RepoPaths.Root, "..", "shared");
        var dir = Path.GetFullPath(Path.Combine(shared, "compat", "tetragon-examples"));
        Assert.True(Directory.Exists(dir), $"{dir} is missing: the compatibility corpus lives in ../shared beside the repository (or set PALISADE_SHARED_DIR)");
        return dir;
    }

    public static TheoryData<string> Files()
    {
        var dir = ExamplesDir();
        return [.. Directory.EnumerateFiles(dir, "*.y*ml", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order()];
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryPublishedTetragonPolicyParsesAndValidates(string file)
    {
        var result = TracingPolicyParser.Parse(File.ReadAllText(Path.Combine(ExamplesDir(), file)), file);

        Assert.True(result.Ok, string.Join(Environment.NewLine, result.Errors));
        Assert.NotEmpty(result.Policies);
    }

    [Fact]
    public void TheCorpusHoldsAtLeast84Policies()
    {
        var dir = ExamplesDir();
        var count = Directory.EnumerateFiles(dir, "*.y*ml", SearchOption.AllDirectories)
            .Sum(f => TracingPolicyParser.Parse(File.ReadAllText(f), f).Policies.Count);

        Assert.True(count >= 84, $"{count} policies parsed");
    }
}

public sealed class TracingPolicyParserTests
{
    private const string Header = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: test\nspec:\n";

    private static PolicyParseResult Parse(string spec) => TracingPolicyParser.Parse(Header + spec, "test.yaml");

    private const string KprobeWithArgs = """
          kprobes:
          - call: fd_install
            syscall: false
            args:
            - index: 0
              type: int
            - index: 1
              type: file
            selectors:

        """;

    [Fact]
    public void AValidPolicyBecomesAModelWithCanonicalOperatorsAndActions()
    {
        var result = Parse(KprobeWithArgs
            + "            - matchArgs:\n              - index: 1\n                operator: prefix\n                values: [\"/etc/shadow\"]\n"
            + "              matchActions:\n              - action: sigkill\n");

        Assert.True(result.Ok, string.Join("\n", result.Errors));
        var kprobe = Assert.Single(Assert.Single(result.Policies).Spec.Kprobes);
        Assert.Equal("fd_install", kprobe.Call);
        var selector = Assert.Single(kprobe.Selectors);
        Assert.Equal("Prefix", selector.MatchArgs[0].Operator);
        Assert.Equal("Sigkill", selector.MatchActions[0].Action);
    }

    [Theory]
    [InlineData("            - matchArgs:\n              - index: 1\n                operator: Equals\n                values: [\"x\"]\n",
        "spec.kprobes[0].selectors[0].matchArgs[0].operator: unknown operator \"Equals\". Did you mean \"Equal\"?")]
    [InlineData("            - matchArgs:\n              - index: 5\n                operator: Equal\n                values: [\"x\"]\n",
        "spec.kprobes[0].selectors[0].matchArgs[0].index: 5 matches no argument of this hook: its args have index 0, 1.")]
    [InlineData("            - matchActions:\n              - action: Sigkil\n",
        "spec.kprobes[0].selectors[0].matchActions[0].action: unknown action \"Sigkil\". Did you mean \"Sigkill\"?")]
    [InlineData("            - matchActions:\n              - action: Signal\n",
        "spec.kprobes[0].selectors[0].matchActions[0].argSig: is required for the Signal action: the signal number to send, e.g. 9 for SIGKILL or 19 for SIGSTOP.")]
    [InlineData("            - matchBinaries:\n              - operator: Equal\n                values: [\"/bin/sh\"]\n",
        "spec.kprobes[0].selectors[0].matchBinaries[0].operator: \"Equal\" is not a matchBinaries operator. Allowed: In, NotIn, Prefix, NotPrefix, Postfix, NotPostfix.")]
    [InlineData("            - matchNamespaces:\n              - namespace: Network\n                operator: In\n                values: [\"host_ns\"]\n",
        "spec.kprobes[0].selectors[0].matchNamespaces[0].namespace: unknown namespace \"Network\". Did you mean \"Net\"?")]
    [InlineData("            - matchCapabilities:\n              - type: Effective\n                operator: In\n                values: [\"CAP_SYS_ADMN\"]\n",
        "spec.kprobes[0].selectors[0].matchCapabilities[0].values: unknown capability \"CAP_SYS_ADMN\". Did you mean \"CAP_SYS_ADMIN\"?")]
    [InlineData("            - matchPIDs:\n              - operator: In\n                values: [\"one\"]\n",
        "spec.kprobes[0].selectors[0].matchPIDs[0].values: \"one\" is not a process id.")]
    [InlineData("            - matchActions:\n              - action: Post\n                rateLimit: often\n",
        "spec.kprobes[0].selectors[0].matchActions[0].rateLimit: \"often\" is not a rate-limit interval. Use a number with an optional unit s, m or h, e.g. 30s, 1m.")]
    [InlineData("            - matchArg:\n              - index: 0\n",
        "spec.kprobes[0].selectors[0].matchArg: unknown field. Did you mean \"matchArgs\"?")]
    public void BadSelectorsGetPreciseErrors(string selector, string expected)
    {
        var result = Parse(KprobeWithArgs + selector);

        Assert.Contains(expected, result.Errors.Select(e => $"{e.Path}: {e.Message}"));
        Assert.Empty(result.Policies);
    }

    [Theory]
    [InlineData("  kprobes:\n  - call: x\n    args:\n    - index: 0\n      type: strng\n", "spec.kprobes[0].args[0].type: unknown argument type \"strng\". Did you mean \"string\"?")]
    [InlineData("  kprobes:\n  - syscall: true\n", "spec.kprobes[0].call: is required.")]
    [InlineData("  kprobes:\n  - call: x\n    syscall: yes please\n", "spec.kprobes[0].syscall: \"yes please\" is not a boolean. Use true or false.")]
    [InlineData("  kprobe:\n  - call: x\n", "spec.kprobe: unknown field. Did you mean \"kprobes\"?")]
    [InlineData("  kprobes:\n    call: x\n", "spec.kprobes: must be a list, not a mapping.")]
    [InlineData("  tracepoints:\n  - subsystem: syscalls\n", "spec.tracepoints[0].event: is required.")]
    [InlineData("  uprobes:\n  - path: /bin/bash\n", "spec.uprobes[0].symbols: is required: name the functions to probe (symbols), or give offsets or addrs.")]
    [InlineData("  kprobes:\n  - call: x\n    return: true\n", "spec.kprobes[0].returnArg: is required when return is true: say which type the return value has, e.g. returnArg: {index: 0, type: int}.")]
    [InlineData("  options:\n  - name: policy-mode\n    value: audit\n", "spec.options[0].value: \"audit\" is not a policy mode. Allowed: enforce, monitor.")]
    [InlineData("  kprobes:\n  - call: \"list:missing\"\n", "spec.kprobes[0].call: \"list:missing\" names a list that spec.lists does not define. Allowed: .")]
    public void BadHooksGetPreciseErrors(string spec, string expected)
    {
        var result = Parse(spec);

        Assert.Contains(expected, result.Errors.Select(e => $"{e.Path}: {e.Message}"));
    }

    [Fact]
    public void MoreThanFiveSelectorsAreRejectedNotTruncated()
    {
        var selectors = string.Concat(Enumerable.Repeat("    - matchActions:\n      - action: Post\n", 6));

        var result = Parse("  kprobes:\n  - call: x\n    selectors:\n" + selectors);

        Assert.Contains(result.Errors, e => e.Path == "spec.kprobes[0].selectors" && e.Message.StartsWith("has 6 selectors; at most 5 are allowed per hook.", StringComparison.Ordinal));
        Assert.Empty(result.Policies);
    }

    [Fact]
    public void ErrorsCarryTheLineOfTheOffendingValue()
    {
        var result = Parse("  kprobes:\n  - call: x\n    args:\n    - index: 0\n      type: strng\n");

        var error = Assert.Single(result.Errors);
        Assert.Equal(10, error.Line);
    }

    [Theory]
    [InlineData("apiVersion: cilium.io/v1\nkind: TracingPolicy\nmetadata:\n  name: a\nspec: {}\n", "apiVersion: \"cilium.io/v1\" is not supported. Use cilium.io/v1alpha1.")]
    [InlineData("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicies\nmetadata:\n  name: a\nspec: {}\n", "kind: \"TracingPolicies\" is not a tracing policy kind. Did you mean \"TracingPolicy\"?")]
    [InlineData("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: Bad_Name\nspec: {}\n", "metadata.name: \"Bad_Name\" is not a valid name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters.")]
    [InlineData("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: a\n", "spec: is required: a policy needs at least one hook (kprobes, tracepoints, uprobes, lsmhooks, usdts).")]
    public void BadDocumentsGetPreciseErrors(string yaml, string expected)
    {
        var result = TracingPolicyParser.Parse(yaml, "t.yaml");

        Assert.Contains(expected, result.Errors.Select(e => $"{e.Path}: {e.Message}"));
    }

    [Fact]
    public void OneBadDocumentDoesNotStopTheOthersInTheFile()
    {
        var good = Header + "  kprobes:\n  - call: security_file_open\n";
        var bad = Header.Replace("name: test", "name: other", StringComparison.Ordinal) + "  kprobes:\n  - call: x\n    syscall: maybe\n";

        var result = TracingPolicyParser.Parse(good + "---\n" + bad + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n", "multi.yaml");

        Assert.Equal("test", Assert.Single(result.Policies).Name);
        Assert.StartsWith("document 2: spec.kprobes[0].syscall", Assert.Single(result.Errors).Path + ".syscall", StringComparison.Ordinal);
        Assert.Equal(["document 3: kind Pod is not a tracing policy"], result.Skipped);
    }

    [Fact]
    public void InvalidYamlIsReportedWithItsPosition()
    {
        var result = TracingPolicyParser.Parse("spec:\n  kprobes: [\n", "broken.yaml");

        var error = Assert.Single(result.Errors);
        Assert.StartsWith("not valid YAML", error.Message, StringComparison.Ordinal);
        Assert.True(error.Line > 0);
    }
}

public sealed class ExamplePolicyLibraryTests
{
    public static TheoryData<string> Files() =>
        [.. Directory.EnumerateFiles(RepoPaths.File("policies", "examples"), "*.yaml").Select(f => Path.GetFileName(f)).Order()];

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryExamplePolicyValidatesAndIsDocumented(string file)
    {
        var result = TracingPolicyParser.Parse(File.ReadAllText(RepoPaths.File("policies", "examples", file)), file);

        Assert.True(result.Ok, string.Join(Environment.NewLine, result.Errors));
        Assert.Single(result.Policies);
        Assert.Contains($"`{file}`", File.ReadAllText(RepoPaths.File("policies", "examples", "README.md")), StringComparison.Ordinal);
    }

    [Fact]
    public void TheDefaultSelectionEnforcesOnlyWhereNormalWorkCannotBeHit()
    {
        var defaults = Directory.EnumerateFiles(RepoPaths.File("policies", "examples"), "*.yaml")
            .SelectMany(f => TracingPolicyParser.Parse(File.ReadAllText(f), f).Policies)
            .Where(p => p.Labels.TryGetValue("palisade.io/default", out var v) && v == "true")
            .ToList();

        Assert.NotEmpty(defaults);
        // The README's run command loads these on a machine that builds and tests software: the
        // only enforcement allowed is on exec from /dev/shm, where nothing legitimate runs.
        foreach (var policy in defaults.Where(p => p.Name != "exec-from-dev-shm"))
        {
            var actions = policy.Spec.Kprobes.SelectMany(k => k.Selectors).SelectMany(s => s.MatchActions).Select(a => a.Action);
            Assert.DoesNotContain("Sigkill", actions);
            Assert.DoesNotContain("Signal", actions);
            Assert.DoesNotContain("Override", actions);
        }
        var shm = Assert.Single(defaults, p => p.Name == "exec-from-dev-shm");
        var match = Assert.Single(Assert.Single(Assert.Single(shm.Spec.Kprobes).Selectors).MatchArgs);
        Assert.Equal(["/dev/shm/"], match.Values);
    }
}
