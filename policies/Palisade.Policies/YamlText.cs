using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Palisade.Policies;

/// <summary>Why a text is not YAML we will read: what is wrong, how to fix it, and where (1-based; 0 when unknown).</summary>
public sealed record YamlProblem(string Message, int Line, int Column);

/// <summary>
/// Loads YAML into YamlDotNet's node model so that every input ends in a stream or a
/// <see cref="YamlProblem"/>, never an exception. YamlDotNet itself throws more than
/// <see cref="YamlException"/> on some malformed input (an <see cref="InvalidOperationException"/>
/// from its scanner on "name: {{", seen from a one-character typo), and its node model
/// recurses, so depth and alias expansion are bounded here before they can overflow the
/// stack or hang the reader.
/// </summary>
public static partial class YamlText
{
    /// <summary>Deeper than any real policy or settings file (Tetragon's deepest is about 10) and far from the stack's limit.</summary>
    public const int MaxDepth = 64;

    /// <summary>Nodes a stream may stand for once aliases are expanded; bounds "billion laughs" documents.</summary>
    public const int MaxExpandedNodes = 200_000;

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="stream"/> is null and the problem says why.</summary>
    public static YamlProblem? Load(string text, out YamlStream? stream)
    {
        stream = null;
        var scanner = new Scanner(new StringReader(text));
        var guarded = new GuardedParser(new Parser(scanner));
        var loaded = new YamlStream();
        try
        {
            loaded.Load(guarded);
        }
        catch (YamlException e)
        {
            return Problem(text, e.InnerException?.Message ?? e.Message, (int)e.Start.Line, (int)e.Start.Column);
        }
#pragma warning disable CA1031 // YamlDotNet's own bugs surface as any exception type; each must become a verdict
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            var at = Position(scanner, guarded);
            return Problem(text, $"the YAML reader gave up here ({e.Message})", at.Line, at.Column);
        }
        if (!guarded.SawAlias)
        {
            stream = loaded; // without aliases every node is in the text once: nothing can expand
            return null;
        }
        var expanded = new Dictionary<YamlNode, long>(ReferenceEqualityComparer.Instance);
        var visiting = new HashSet<YamlNode>(ReferenceEqualityComparer.Instance);
        long total = 0;
        foreach (var doc in loaded.Documents)
        {
            var size = Expanded(doc.RootNode, expanded, visiting);
            total += size;
            if (size < 0)
            {
                return new YamlProblem("an alias refers to a node that contains it. Fix: remove the *alias or point it at another anchor.", (int)doc.RootNode.Start.Line, (int)doc.RootNode.Start.Column);
            }
            if (total > MaxExpandedNodes)
            {
                return new YamlProblem($"the aliases expand to more than {MaxExpandedNodes} values. Fix: write the values out, or use fewer nested *aliases.", (int)doc.RootNode.Start.Line, (int)doc.RootNode.Start.Column);
            }
        }
        stream = loaded;
        return null;
    }

    /// <summary>The number of nodes <paramref name="node"/> stands for, aliases expanded; -1 for a cycle. Saturates past the bound.</summary>
    private static long Expanded(YamlNode node, Dictionary<YamlNode, long> memo, HashSet<YamlNode> visiting)
    {
        if (memo.TryGetValue(node, out var known))
        {
            return known;
        }
        if (!visiting.Add(node))
        {
            return -1;
        }
        long size = 1;
        IEnumerable<YamlNode> children = node switch
        {
            YamlMappingNode m => m.Children.SelectMany(kv => new[] { kv.Key, kv.Value }),
            YamlSequenceNode s => s.Children,
            _ => [],
        };
        foreach (var child in children)
        {
            var c = Expanded(child, memo, visiting);
            if (c < 0)
            {
                return -1;
            }
            size = Math.Min(size + c, MaxExpandedNodes + 1L);
        }
        visiting.Remove(node);
        memo[node] = size;
        return size;
    }

    private static (int Line, int Column) Position(Scanner scanner, GuardedParser parser)
    {
        try
        {
            var mark = scanner.CurrentPosition;
            return ((int)mark.Line, (int)mark.Column);
        }
#pragma warning disable CA1031 // the scanner is in a broken state: fall back to the last event it produced
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            return ((int)parser.LastEnd.Line, (int)parser.LastEnd.Column);
        }
    }

    /// <summary>The message for a syntax error, with the fix for the typos users make most.</summary>
    private static YamlProblem Problem(string text, string reason, int line, int column)
    {
        // "{{" or "}}" where a value belongs: a template placeholder left unfilled, or a literal
        // that YAML reads as a nested flow mapping. Name the first such line: it is the cause
        // far more often than the place where the reader finally stopped.
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var m = Braces().Match(lines[i]);
            if (m.Success)
            {
                var value = lines[i].Trim();
                value = value.Length > 60 ? value[..60] + "…" : value;
                return new YamlProblem(
                    $"not valid YAML: line {i + 1} (\"{value}\") has \"{m.Value}\" where a value belongs, which YAML reads as a nested {{...}} mapping. " +
                    "Fix: if it is a template placeholder, fill it in before loading the file; if it is meant literally, quote the value (\"...\").",
                    i + 1, m.Index + 1);
            }
        }
        if (text.Contains('\0', StringComparison.Ordinal))
        {
            var at = text.IndexOf('\0', StringComparison.Ordinal);
            var nulLine = text.AsSpan(0, at).Count('\n') + 1;
            return new YamlProblem($"not valid YAML: the file contains a NUL byte (line {nulLine}). Fix: save it as plain UTF-8 text.", nulLine, 0);
        }
        if (TabIndent().Match(text) is { Success: true } tab)
        {
            var tabLine = text.AsSpan(0, tab.Index).Count('\n') + 1;
            return new YamlProblem($"not valid YAML: {reason}. Line {tabLine} is indented with a tab; YAML allows only spaces there. Fix: indent with spaces.", line, column);
        }
        return new YamlProblem($"not valid YAML: {reason}", line, column);
    }

    // A plain value (after "key:" or "- ") or a flow item that starts with "{{" or "}}".
    [GeneratedRegex(@"(?<=(:|^\s*-|[\[,{])\s*)(\{\{|\}\})")]
    private static partial Regex Braces();

    [GeneratedRegex(@"(?m)^ *\t")]
    private static partial Regex TabIndent();

    /// <summary>
    /// Passes events through, rejecting nesting past <see cref="MaxDepth"/> (the node model
    /// recurses per level) and aliases used inside mapping keys (hashing those keys expands
    /// the aliases during loading, before any size check could run).
    /// </summary>
    private sealed class GuardedParser(IParser inner) : IParser
    {
        private readonly Stack<(bool Mapping, bool NextIsKey, bool InKey)> _frames = new();

        public ParsingEvent? Current => inner.Current;

        public Mark LastEnd { get; private set; } = Mark.Empty;

        /// <summary>Whether an *alias was read: only then can the stream stand for more nodes than it has.</summary>
        public bool SawAlias { get; private set; }

        public bool MoveNext()
        {
            if (!inner.MoveNext())
            {
                return false;
            }
            var e = inner.Current!;
            LastEnd = e.End;
            switch (e)
            {
                case DocumentStart:
                    _frames.Clear();
                    _frames.Push((false, false, false));
                    break;
                case Scalar or AnchorAlias:
                    SawAlias |= e is AnchorAlias;
                    if (e is AnchorAlias alias && InKey())
                    {
                        throw new YamlException(e.Start, e.End, $"the alias *{alias.Value} is used inside a mapping key; Palisade does not read aliases in keys. Fix: write the key out");
                    }
                    Consumed();
                    break;
                case MappingStart or SequenceStart:
                    if (_frames.Count > MaxDepth)
                    {
                        throw new YamlException(e.Start, e.End, $"values are nested more than {MaxDepth} levels deep. Fix: check the indentation and the [ ] and {{ }} pairs near here");
                    }
                    _frames.Push((e is MappingStart, true, InKey()));
                    break;
                case MappingEnd or SequenceEnd:
                    if (_frames.Count > 1)
                    {
                        _frames.Pop();
                    }
                    Consumed();
                    break;
            }
            return true;
        }

        private bool InKey() => _frames.TryPeek(out var top) && (top.InKey || (top.Mapping && top.NextIsKey));

        // A whole node ended: in a mapping, a key is followed by its value and a value by the next key.
        private void Consumed()
        {
            if (_frames.TryPop(out var top))
            {
                _frames.Push(top.Mapping ? top with { NextIsKey = !top.NextIsKey } : top);
            }
        }
    }
}
