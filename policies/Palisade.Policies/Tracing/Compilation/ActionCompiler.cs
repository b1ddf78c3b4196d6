using System.Globalization;

namespace Palisade.Policies.Tracing.Compilation;

/// <summary>matchActions and returnArgAction: what a matching selector does.</summary>
internal static class ActionCompiler
{
    internal static SelectorActions CompileActions(IReadOnlyList<ActionSelector> actions, string path, List<PolicyError> errors)
    {
        if (actions.Count == 0)
        {
            return SelectorActions.PostOnly;
        }
        var flags = ActionFlags.Post;
        uint signal = 0;
        int error = 0;
        ulong rate = 0;
        byte scope = 0;
        string? url = null, fqdn = null;
        var noPost = false;
        var sockArg = 0;
        var names = new List<string>();
        for (var j = 0; j < actions.Count; j++)
        {
            var a = actions[j];
            var name = Vocabulary.Actions.FirstOrDefault(x => string.Equals(x, a.Action, StringComparison.OrdinalIgnoreCase)) ?? a.Action;
            names.Add(name);
            switch (name)
            {
                case "Post":
                    foreach (var (option, on) in new[] { ("kernelStackTrace", a.KernelStackTrace), ("userStackTrace", a.UserStackTrace), ("imaHash", a.ImaHash) })
                    {
                        if (on)
                        {
                            throw new UnsupportedHookException($"{path}[{j}].{option} is not implemented by this version of Palisade");
                        }
                    }
                    if (a.RateLimit is not null)
                    {
                        rate = ParseDuration(a.RateLimit, $"{path}[{j}].rateLimit", errors);
                        scope = a.RateLimitScope switch { "process" => 1, "global" => 2, _ => 0 };
                    }
                    break;
                case "NoPost":
                    noPost = true;
                    break;
                case "Sigkill":
                    flags |= ActionFlags.Sigkill;
                    break;
                case "Signal":
                    flags |= ActionFlags.Signal;
                    signal = a.ArgSig ?? 0;
                    if (signal is 0 or > 64)
                    {
                        errors.Add(new PolicyError($"{path}[{j}].argSig", $"Signal needs argSig between 1 and 64, got {a.ArgSig?.ToString(CultureInfo.InvariantCulture) ?? "none"}", 0, 0));
                    }
                    break;
                case "Override":
                    flags |= ActionFlags.Override;
                    error = a.ArgError ?? -1;
                    break;
                case "TrackSock" or "UntrackSock":
                    flags |= name == "TrackSock" ? ActionFlags.TrackSock : ActionFlags.UntrackSock;
                    sockArg = (int)(a.ArgSock ?? 0);
                    break;
                case "GetUrl":
                    flags |= ActionFlags.UserSpace;
                    url = a.ArgUrl;
                    break;
                case "DnsLookup":
                    flags |= ActionFlags.UserSpace;
                    fqdn = a.ArgFqdn;
                    break;
                default:
                    throw new UnsupportedHookException($"{path}[{j}].action {name} is not implemented by this version of Palisade");
            }
        }
        if (noPost)
        {
            flags &= ~ActionFlags.Post;
        }
        return new SelectorActions(flags, signal, error, rate, scope, names, url, fqdn) { SockArg = sockArg };
    }

    private static ulong ParseDuration(string text, string path, List<PolicyError> errors)
    {
        var unit = text.Length > 0 && char.IsLetter(text[^1]) ? text[^1] : 's';
        var number = char.IsLetter(text[^1]) ? text[..^1] : text;
        if (!ulong.TryParse(number, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || unit is not ('s' or 'm' or 'h'))
        {
            errors.Add(new PolicyError(path, $"\"{text}\" is not a duration; use a number with s, m or h (\"30s\", \"1m\")", 0, 0));
            return 0;
        }
        return n * (unit switch { 'm' => 60UL, 'h' => 3600UL, _ => 1UL }) * 1_000_000_000UL;
    }

    /// <summary>returnArgAction: TrackSock and UntrackSock act on the returned socket for every selector that matches.</summary>
    internal static List<CompiledSelector> WithReturnArgAction(List<CompiledSelector> selectors, string? action, string path)
    {
        var flag = action switch
        {
            null or "Post" => ActionFlags.None,
            "TrackSock" => ActionFlags.TrackSock,
            "UntrackSock" => ActionFlags.UntrackSock,
            _ => throw new UnsupportedHookException($"{path}.returnArgAction {action} is not implemented by this version of Palisade (Post, TrackSock, UntrackSock)"),
        };
        return flag == ActionFlags.None ? selectors
            : selectors.Select(s => s with { Actions = s.Actions with { Flags = s.Actions.Flags | flag, SockArg = SelectorActions.ReturnSock } }).ToList();
    }
}
