using System.Text;
using Palisade.Policies.Network;

namespace Palisade.Tests.NetworkPolicies;

/// <summary>
/// Every published Cilium policy, broken the ways a user's typo breaks a file, still gets a
/// verdict: policies (which normalise), skipped documents, or errors that each say what is
/// wrong. Deterministic (a fixed seed per file, kind and mutant) and bounded, so a failure
/// names its input.
/// </summary>
public sealed class NetworkPolicyMutationTests
{
    private const int MutantsPerKind = 3;

    private delegate string Mutation(List<string> lines, Random random);

    private static readonly (string Kind, Mutation Apply)[] Mutations =
    [
        ("'{{' before a value", (l, r) => AtValue(l, r, v => "{{" + v)),
        ("a template placeholder as a value", (l, r) => AtValue(l, r, _ => "{{ .Values.port }}")),
        ("an extra ':'", (l, r) => AtValue(l, r, v => v + ": ")),
        ("'- ' at the start of a line", (l, r) => Line(l, r, s => "- " + s)),
        ("a tab in the indentation", (l, r) => Line(l, r, s => "\t" + s.TrimStart(' '))),
        ("an unbalanced quote", (l, r) => AtValue(l, r, v => "\"" + v)),
        ("the file cut short", (l, r) => string.Join('\n', l)[..r.Next(string.Join('\n', l).Length + 1)]),
        ("a duplicated key", (l, r) => Line(l, r, s => s + "\n" + s)),
        ("one space less of indentation", (l, r) => Line(l, r, s => s.StartsWith(' ') ? s[1..] : s)),
        ("one space more of indentation", (l, r) => Line(l, r, s => " " + s)),
        ("a list where a value belongs", (l, r) => AtValue(l, r, v => $"[{v}, {v}]")),
        ("a mapping where a value belongs", (l, r) => AtValue(l, r, v => $"{{a: {v}}}")),
        ("a huge number", (l, r) => AtValue(l, r, _ => "99999999999999999999999999999999")),
        ("a negative number", (l, r) => AtValue(l, r, _ => "-1")),
        ("an empty value", (l, r) => AtValue(l, r, _ => "")),
        ("a null value", (l, r) => AtValue(l, r, _ => "null")),
        ("an empty list", (l, r) => AtValue(l, r, _ => "[]")),
        ("a NUL byte", (l, r) => Line(l, r, s => s.Insert(r.Next(s.Length + 1), "\0"))),
        ("a stray '[' or '{'", (l, r) => Line(l, r, s => s.Insert(r.Next(s.Length + 1), r.Next(2) == 0 ? "[" : "{"))),
        ("a key typo", (l, r) => Line(l, r, s => s.Contains(':', StringComparison.Ordinal) && s.Trim().Length > 3 ? s.Remove(s.IndexOf(s.Trim()[0], StringComparison.Ordinal) + 1, 1) : s)),
        ("a CIDR without its prefix", (l, r) => string.Join('\n', l).Replace("/", "", StringComparison.Ordinal)),
        ("a line removed", (l, r) => { l.RemoveAt(r.Next(l.Count)); return string.Join('\n', l); }),
    ];

    public static TheoryData<string> Files() => [.. CiliumExamplesCompatibilityTests.FileNames()];

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryTypoInAPublishedPolicyEndsInAVerdictNeverAnException(string file)
    {
        var lines = File.ReadAllText(Path.Combine(CiliumExamplesCompatibilityTests.CorpusDir(), file)).Split('\n').ToList();
        var failures = new List<string>();

        for (var k = 0; k < Mutations.Length; k++)
        {
            for (var n = 0; n < MutantsPerKind; n++)
            {
                var seed = StableSeed(file, k, n);
                var mutant = Mutations[k].Apply([.. lines], new Random(seed));
                try
                {
                    var result = NetworkPolicyParser.Parse(mutant, file);
                    if (result.Policies.Count == 0 && result.Errors.Count == 0 && result.Skipped.Count == 0 && !IsOnlyComments(mutant))
                    {
                        failures.Add($"{Mutations[k].Kind} (seed {seed}): neither policies, errors nor skipped documents");
                    }
                    foreach (var e in result.Errors.Where(e => e.Path.EndsWith(NetworkPolicyParser.InternalErrorPath, StringComparison.Ordinal) || e.Message.Length == 0))
                    {
                        failures.Add($"{Mutations[k].Kind} (seed {seed}): {e}");
                    }
                    foreach (var policy in result.Policies)
                    {
                        _ = NetworkPolicyNormalizer.Normalize(policy).Rules.Count();
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
        var hash = 23;
        foreach (var b in Encoding.UTF8.GetBytes(file))
        {
            hash = unchecked((hash * 31) + b);
        }
        return unchecked((((hash * 31) + kind) * 31) + n);
    }
}
