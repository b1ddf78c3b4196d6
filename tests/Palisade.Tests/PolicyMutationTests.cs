using System.Text;
using Palisade.Policies;
using Palisade.Policies.Tracing;

namespace Palisade.Tests;

/// <summary>
/// Every published policy, broken the ways a user's typo breaks a file, still gets a verdict:
/// policies, or errors that each say what is wrong. Deterministic (a fixed seed per file and
/// kind) and bounded (a few mutants of each kind per file), so a failure names its input.
/// </summary>
public sealed class PolicyMutationTests
{
    private const int MutantsPerKind = 2;

    /// <summary>A typo: takes the file's lines and a random source, returns the broken text.</summary>
    private delegate string Mutation(List<string> lines, Random random);

    private static readonly (string Kind, Mutation Apply)[] Mutations =
    [
        ("'{{' before a value", (l, r) => AtValue(l, r, v => "{{" + v)),
        ("'}}' after a value", (l, r) => AtValue(l, r, v => v + "}}")),
        ("a template placeholder as a value", (l, r) => AtValue(l, r, _ => "{{ .Values.name }}")),
        ("an extra ':'", (l, r) => AtValue(l, r, v => v + ": ")),
        ("'- ' at the start of a line", (l, r) => Line(l, r, s => "- " + s)),
        ("a tab in the indentation", (l, r) => Line(l, r, s => "\t" + s.TrimStart(' '))),
        ("an unbalanced quote", (l, r) => AtValue(l, r, v => "\"" + v)),
        ("the file cut short", (l, r) => string.Join('\n', l)[..r.Next(string.Join('\n', l).Length + 1)]),
        ("a duplicated key", (l, r) => Line(l, r, s => s + "\n" + s)),
        ("one space less of indentation", (l, r) => Line(l, r, s => s.StartsWith(' ') ? s[1..] : s)),
        ("one space more of indentation", (l, r) => Line(l, r, s => " " + s)),
        ("a list where a value belongs", (l, r) => AtValue(l, r, v => $"[{v}, {v}]")),
        ("a value where a list belongs", (l, r) => Line(l, r, s => s.TrimStart().StartsWith("- ", StringComparison.Ordinal) ? s.Replace("- ", "  ", StringComparison.Ordinal) : s)),
        ("a huge number", (l, r) => AtValue(l, r, _ => "99999999999999999999999999999999")),
        ("a NUL byte", (l, r) => Line(l, r, s => s.Insert(r.Next(s.Length + 1), "\0"))),
        ("a stray '[' or '{'", (l, r) => Line(l, r, s => s.Insert(r.Next(s.Length + 1), r.Next(2) == 0 ? "[" : "{"))),
        ("an anchor and aliases", (l, r) => AtValue(l, r, v => $"&a {v}") + "\nx: *a\n"),
    ];

    public static TheoryData<string> Files()
    {
        var dir = CompatDir();
        return [.. Directory.EnumerateFiles(dir, "*.y*ml", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order(StringComparer.Ordinal)];
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryTypoInAPublishedPolicyEndsInAVerdictNeverAnException(string file)
    {
        var lines = File.ReadAllText(Path.Combine(CompatDir(), file)).Split('\n').ToList();
        var failures = new List<string>();

        for (var k = 0; k < Mutations.Length; k++)
        {
            for (var n = 0; n < MutantsPerKind; n++)
            {
                var seed = StableSeed(file, k, n);
                var mutant = Mutations[k].Apply([.. lines], new Random(seed));
                try
                {
                    var result = TracingPolicyParser.Parse(mutant, file);
                    if (result.Policies.Count == 0 && result.Errors.Count == 0 && result.Skipped.Count == 0 && !string.IsNullOrWhiteSpace(mutant.Replace("---", "", StringComparison.Ordinal)) && !IsOnlyComments(mutant))
                    {
                        failures.Add($"{Mutations[k].Kind} (seed {seed}): neither policies, errors nor skipped documents");
                    }
                    foreach (var e in result.Errors.Where(e => e.Path.EndsWith(TracingPolicyParser.InternalErrorPath, StringComparison.Ordinal) || e.Message.Length == 0))
                    {
                        failures.Add($"{Mutations[k].Kind} (seed {seed}): {e}");
                    }
                }
#pragma warning disable CA1031 // the assertion is precisely that nothing escapes
                catch (Exception e)
#pragma warning restore CA1031
                {
                    failures.Add($"{Mutations[k].Kind} (seed {seed}): {e.GetType().Name}: {e.Message}");
                }
            }
        }

        Assert.True(failures.Count == 0, $"{file}:{Environment.NewLine}{string.Join(Environment.NewLine, failures.Take(10))}");
    }

    [Fact]
    public void DoubleBracesWhereAValueBelongsNameTheLineAndTheFix()
    {
        var yaml = File.ReadAllText(RepoPaths.File("policies", "examples", "exec-from-tmp.yaml")).Replace("name: exec-from-tmp", "name: {{", StringComparison.Ordinal);

        var error = Assert.Single(TracingPolicyParser.Parse(yaml, "exec-from-tmp.yaml").Errors);

        Assert.Equal(6, error.Line);
        Assert.Contains("line 6 (\"name: {{\") has \"{{\" where a value belongs", error.Message, StringComparison.Ordinal);
        Assert.Contains("quote the value", error.Message, StringComparison.Ordinal);
    }

    // A value after "key: " on a random line that has one; the file unchanged when none has.
    private static string AtValue(List<string> lines, Random random, Func<string, string> change)
    {
        var candidates = lines.Select((s, i) => (s, i)).Where(x => x.s.Contains(": ", StringComparison.Ordinal) && !x.s.TrimStart().StartsWith('#')).ToList();
        if (candidates.Count > 0)
        {
            var (s, i) = candidates[random.Next(candidates.Count)];
            var at = s.IndexOf(": ", StringComparison.Ordinal) + 2;
            lines[i] = s[..at] + change(s[at..]);
        }
        return string.Join('\n', lines);
    }

    private static string Line(List<string> lines, Random random, Func<string, string> change)
    {
        var i = random.Next(lines.Count);
        lines[i] = change(lines[i]);
        return string.Join('\n', lines);
    }

    private static bool IsOnlyComments(string yaml) =>
        yaml.Split('\n').All(l => l.Trim().Length == 0 || l.TrimStart().StartsWith('#') || l.Trim() is "---" or "...");

    // string.GetHashCode is randomized per process; this one is the same on every run.
    private static int StableSeed(string file, int kind, int n)
    {
        var hash = 17;
        foreach (var b in Encoding.UTF8.GetBytes(file))
        {
            hash = unchecked((hash * 31) + b);
        }
        return unchecked((hash * 31 + kind) * 31 + n);
    }

    private static string CompatDir() => Path.GetDirectoryName(TetragonExamplesCompatibilityTests.ExamplesDir())!;
}
