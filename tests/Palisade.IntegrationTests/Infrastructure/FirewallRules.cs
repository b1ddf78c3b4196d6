namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// The machine's packet-filter rules at one moment, as `iptables-save`, `ip6tables-save` and
/// `nft list ruleset` print them (whichever is installed), so a test can show that pod
/// networking added none.
/// </summary>
internal sealed class FirewallRules
{
    private static readonly string[][] s_listers =
    [
        ["iptables-save"],
        ["ip6tables-save"],
        ["nft", "list", "ruleset"],
    ];

    private readonly HashSet<string> _lines;

    private FirewallRules(HashSet<string> lines) => _lines = lines;

    /// <summary>The rules now; a lister that is not installed contributes nothing.</summary>
    public static FirewallRules Snapshot()
    {
        var lines = new HashSet<string>(StringComparer.Ordinal);
        foreach (var lister in s_listers)
        {
            if (!Installed(lister[0]))
            {
                continue;
            }
            var result = Command.Run(lister[0], lister[1..]);
            Assert.True(result.ExitCode == 0, $"{string.Join(' ', lister)} exited {result.ExitCode}: {result.Stderr}");
            foreach (var line in result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                // Comments carry dates, chain headers packet counters: neither is a rule.
                if (!line.StartsWith('#'))
                {
                    lines.Add($"{lister[0]}: {StripCounters(line)}");
                }
            }
        }
        return new FirewallRules(lines);
    }

    /// <summary>
    /// Rules in this snapshot and not in <paramref name="before"/>, leaving out those of the
    /// reference CNI plugins (chains and comments named CNI), which other test runs and the
    /// benchmarks on the same machine may add at any time through podman and the bridge plugin.
    /// </summary>
    public IReadOnlyList<string> AddedSince(FirewallRules before) =>
        [.. _lines.Where(l => !before._lines.Contains(l) && !l.Contains("CNI", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    // ":INPUT ACCEPT [12:345]" -> ":INPUT ACCEPT"; nft's "counter packets 12 bytes 345" -> "counter".
    private static string StripCounters(string line)
    {
        var open = line.LastIndexOf(" [", StringComparison.Ordinal);
        line = open > 0 && line.EndsWith(']') ? line[..open] : line;
        return System.Text.RegularExpressions.Regex.Replace(line, @" packets \d+ bytes \d+", "");
    }

    private static bool Installed(string tool) =>
        new[] { "/usr/sbin", "/usr/bin", "/sbin", "/bin" }.Any(dir => File.Exists(Path.Combine(dir, tool)));
}
