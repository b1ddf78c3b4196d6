using Palisade.Agent.Configuration;
using Palisade.Cli;
using Palisade.Exporters.Filters;
using Palisade.Fuzz;
using Palisade.Policies;
using Palisade.Policies.Tracing;

namespace Palisade.Tests;

/// <summary>Inputs that once broke a parser (found by reading or by fuzz.sh) now end in a verdict.</summary>
public sealed class FuzzFindingTests
{
    private static string FindingsDir => Path.Combine(AppContext.BaseDirectory, "FuzzFindings");

    public static TheoryData<string, string> Findings() =>
        [.. Directory.EnumerateFiles(FindingsDir, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) is not (".gitkeep" or "README.md"))
            .Select(f => (Path.GetFileName(Path.GetDirectoryName(f))!, Path.GetFileName(f)))
            .Order()
            .Select(t => new TheoryDataRow<string, string>(t.Item1, t.Item2))];

    [Theory]
    [MemberData(nameof(Findings))]
    public void EveryFindingEndsInAVerdict(string target, string file)
    {
        var input = File.ReadAllBytes(Path.Combine(FindingsDir, target, file));

        var run = () => FuzzTargets.All[target].Run(input);

        var thrown = Record.Exception(run);
        Assert.Null(thrown);
    }

    [Fact]
    public void DeepNestingIsAnErrorNotAStackOverflow()
    {
        var error = Assert.Single(TracingPolicyParser.Parse(new string('[', 5000), "deep.yaml").Errors);

        Assert.Contains($"nested more than {YamlText.MaxDepth} levels deep", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AliasesThatExpandBeyondTheBoundAreAnError()
    {
        var error = Assert.Single(TracingPolicyParser.Parse(File.ReadAllText(Path.Combine(FindingsDir, "policy", "alias-expansion.yaml")), "laughs.yaml").Errors);

        Assert.Contains("aliases expand to more than", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASettingsFileWithDoubleBracesNamesTheLine()
    {
        var errors = new List<string>();

        AgentConfiguration.ParseYaml("log-format: json\nlog-level: {{\n", "palisade.yaml", errors);

        Assert.StartsWith("palisade.yaml: not valid YAML: line 2 (\"log-level: {{\")", Assert.Single(errors), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("export-file-perm", "77777777777777", "is not octal permissions")]
    [InlineData("process-cache-grace", "99999999999999999999h", "is not a duration of at most a year")]
    [InlineData("rb-size", "9223372036854775807K", "must be a size from 4K to 1G")]
    public void OutOfRangeSettingsAreErrorsNotOverflows(string key, string value, string expected)
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([new SettingsLayer("test", new Dictionary<string, string> { [key] = value })]));

        Assert.Contains(e.Errors, m => m.StartsWith($"{key}: \"{value}\"", StringComparison.Ordinal) && m.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void RegexesThatOnlyBreakWhenCombinedAreAFilterError()
    {
        var e = Assert.Throws<FilterException>(() => EventFilter.ParseList("{\"binary_regex\":[\"(?x)#\"]}", "export-allowlist"));

        Assert.StartsWith("export-allowlist line 1: binary_regex: the patterns cannot be combined", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"event_set\":\"PROCESS_EXEC\",\"fields\":\"process.pid\"}", "field-filters line 1: event_set: must be a list of strings")]
    [InlineData("{\"fields\":\"process.pid\",\"action\":1}", "field-filters line 1: action: 1 is not \"INCLUDE\" or \"EXCLUDE\"")]
    [InlineData("{\"fields\":\"process.pid\",\"invert_event_set\":\"yes\"}", "field-filters line 1: invert_event_set: must be true or false")]
    public void FieldFiltersOfTheWrongJsonTypeAreFilterErrors(string line, string expected)
    {
        var e = Assert.Throws<FilterException>(() => FieldFilter.ParseList(line, "field-filters"));

        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ATruncatedFilterArrayIsAFilterError()
    {
        var e = Assert.Throws<FilterException>(() => EventFilter.ParseList("[{\"event_set\":", "export-denylist"));

        Assert.StartsWith("export-denylist: not valid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PolicyValidateOnABrokenFilePrintsThePreciseErrorAndFails()
    {
        var file = Path.Combine(Path.GetTempPath(), $"palisade-validate-{Environment.ProcessId}.yaml");
        File.WriteAllText(file, File.ReadAllText(RepoPaths.File("policies", "examples", "exec-from-tmp.yaml")).Replace("name: exec-from-tmp", "name: {{", StringComparison.Ordinal));
        var output = new StringWriter();
        var error = new StringWriter();
        try
        {
            var exit = PolicyValidation.Run([new FileInfo(file)], output, error);

            Assert.Equal(1, exit);
            Assert.Equal(
                $"{Path.GetFileName(file)}: not valid YAML: line 6 (\"name: {{{{\") has \"{{{{\" where a value belongs, which YAML reads as a nested {{...}} mapping. " +
                "Fix: if it is a template placeholder, fill it in before loading the file; if it is meant literally, quote the value (\"...\"). (line 6, column 9)",
                output.ToString().Trim());
            Assert.Empty(error.ToString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void PolicyValidateOnADirectoryReportsItInsteadOfAStackTrace()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var exit = PolicyValidation.Run([new FileInfo(Path.GetTempPath())], output, error);

        Assert.Equal(1, exit);
        Assert.Contains("cannot be read", error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AnExecRecordWhoseLengthsOverrunItIsCountedMalformed()
    {
        var seeds = FuzzTargets.All["events"].Seeds().ToDictionary(s => s.Name, s => s.Bytes);
        var record = seeds["exec"].AsSpan(2).ToArray();
        record[^1] = 0xff; // the record ends early: its string lengths now claim more than it holds
        var cut = record[..^20];

        var decoder = new Palisade.Runtime.Processes.ProcessEventDecoder("n", new Palisade.Runtime.Processes.ProcessCache(1024, TimeSpan.Zero, TimeProvider.System),
            new Palisade.Runtime.Processes.BootClock(DateTimeOffset.UnixEpoch), new uint[10], ancestors: false, _ => Assert.Fail("no event expected"));
        decoder.OnRecord(cut);

        Assert.Equal(1, decoder.Stats.Malformed);
    }

    [Fact]
    public void AnExportedFlowWhoseIdsPassInt32ReadsBackIntoObserve()
    {
        // The exporter writes uint32 ids as numbers; the reader took them as int32 and skipped the whole line.
        const string line = """{"flow":{"time":"2026-12-02T05:00:01Z","verdict":"FORWARDED","source":{"ID":4000000000,"identity":4294967295},"interface":{"index":3000000000,"name":"lxc9"},"process":{"pid":4000000001,"binary":"/bin/sh"}},"node_name":"n"}""";

        var flow = Palisade.Cli.Observe.FlowJsonReader.Read(line)!.Flow;

        Assert.Equal(4_000_000_000u, flow.Source!.ID);
        Assert.Equal(uint.MaxValue, flow.Source.Identity);
        Assert.Equal(3_000_000_000u, flow.Interface!.Index);
        Assert.Equal(4_000_000_001u, flow.Process!.Pid);
    }
}
