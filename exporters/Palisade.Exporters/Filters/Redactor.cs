using System.Text.Json;
using Palisade.Events;

namespace Palisade.Exporters.Filters;

/// <summary>
/// Tetragon's --redaction-filters: every capture group of a "redact" regex that matches a
/// process's arguments is replaced by "*****", for binaries matching binary_regex (all when
/// absent). Applies to the process, its parent and its ancestors in every sink.
/// </summary>
public sealed class Redactor
{
    public const string Mask = "*****";

    private readonly List<(System.Text.RegularExpressions.Regex? Binary, System.Text.RegularExpressions.Regex[] Redact)> _rules;
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<ProcessRecord, string> _cache = [];

    private Redactor(List<(System.Text.RegularExpressions.Regex?, System.Text.RegularExpressions.Regex[])> rules) => _rules = rules;

    public int Count => _rules.Count;

    public static Redactor Parse(string text, string where) => new(FilterLines.Parse(text, where, ParseRule));

    private static (System.Text.RegularExpressions.Regex?, System.Text.RegularExpressions.Regex[]) ParseRule(string line, string at)
    {
        using (var doc = FilterLines.Object(line, at, "{\"redact\":[\"--password[= ](\\\\S+)\"]}"))
        {
            System.Text.RegularExpressions.Regex? binary = null;
            System.Text.RegularExpressions.Regex[] redact = [];
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "redact":
                        redact = [.. FilterLines.Strings(p.Value, $"{at}: redact", "[\"--password[= ](\\\\S+)\"]").Select(v => Compile(v, $"{at}: redact"))];
                        foreach (var r in redact.Where(r => r.GetGroupNumbers().Length < 2))
                        {
                            throw new FilterException($"{at}: redact: \"{r}\" has no capture group, so nothing would be redacted. Fix: put the secret in parentheses, e.g. \"--password[= ](\\\\S+)\".");
                        }
                        break;
                    case "binary_regex":
                        binary = Compile(string.Join('|', FilterLines.Strings(p.Value, $"{at}: binary_regex", "[\"^/usr/bin/mysql$\"]").Select(v => $"(?:{v})")), $"{at}: binary_regex");
                        break;
                    case "match":
                        throw new FilterException($"{at}: match: not supported (Tetragon deprecated it too). Fix: use binary_regex to choose binaries.");
                    default:
                        throw new FilterException($"{at}: {p.Name}: unknown redaction field. Allowed: redact, binary_regex.");
                }
            }
            if (redact.Length == 0)
            {
                throw new FilterException($"{at}: redact: missing. Fix: give regexes whose capture groups are secrets, e.g. {{\"redact\":[\"(?:--password|-p)[\\\\s=]+(\\\\S+)\"]}}.");
            }
            return (binary, redact);
        }
    }

    private static System.Text.RegularExpressions.Regex Compile(string pattern, string field)
    {
        try
        {
            return FilterRegex.Create(pattern);
        }
        catch (ArgumentException e)
        {
            throw new FilterException($"{field}: \"{pattern}\" is not a valid regular expression ({e.Message}).");
        }
    }

    /// <summary>The process's arguments with secrets masked (cached per process).</summary>
    public string Arguments(ProcessRecord p)
    {
        if (_rules.Count == 0 || p.Arguments.Length == 0)
        {
            return p.Arguments;
        }
        return _cache.GetValue(p, r => Redact(r.Binary, r.Arguments));
    }

    /// <summary>Masks every capture group of every matching rule.</summary>
    public string Redact(string binary, string arguments)
    {
        var result = arguments;
        try
        {
            foreach (var (bin, redact) in _rules)
            {
                if (bin is not null && !bin.IsMatch(binary))
                {
                    continue;
                }
                foreach (var regex in redact)
                {
                    result = MaskGroups(regex, result);
                }
            }
        }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            // Too slow to decide: hide everything rather than leak.
            return Mask;
        }
        return result;
    }

    private static string MaskGroups(System.Text.RegularExpressions.Regex regex, string input)
    {
        var spans = new List<(int Start, int Length)>();
        for (var m = regex.Match(input); m.Success; m = m.NextMatch())
        {
            for (var g = 1; g < m.Groups.Count; g++)
            {
                if (m.Groups[g].Success && m.Groups[g].Length > 0)
                {
                    spans.Add((m.Groups[g].Index, m.Groups[g].Length));
                }
            }
        }
        if (spans.Count == 0)
        {
            return input;
        }
        var sb = new System.Text.StringBuilder(input.Length);
        var at = 0;
        foreach (var (start, length) in spans.OrderBy(s => s.Start))
        {
            if (start < at)
            {
                continue; // nested group inside one already masked
            }
            sb.Append(input, at, start - at).Append(Mask);
            at = start + length;
        }
        return sb.Append(input, at, input.Length - at).ToString();
    }
}
