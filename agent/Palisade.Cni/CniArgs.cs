namespace Palisade.Cni;

/// <summary>
/// CNI_ARGS: <c>KEY=VALUE</c> pairs separated by <c>;</c>. A value may itself hold <c>=</c> and
/// <c>,</c> (our <c>PALISADE_LABELS=app=web,tier=front</c>), so a pair splits at its first
/// <c>=</c> only. Unknown keys are refused unless <c>IgnoreUnknown=1</c>, as libcni's plugins do.
/// </summary>
internal sealed record CniArgs(
    IReadOnlyList<KeyValuePair<string, string>> Pairs,
    string PodNamespace,
    string PodName,
    string PodUid,
    IReadOnlyDictionary<string, string> Labels)
{
    public const string LabelsKey = "PALISADE_LABELS";

    /// <summary>Named ports of a standalone pod, <c>NAME=PORT[/PROTOCOL]</c> comma-separated (with Kubernetes the Pod's container ports are used).</summary>
    public const string NamedPortsKey = "PALISADE_NAMED_PORTS";

    /// <summary>The pod's named ports (PALISADE_NAMED_PORTS), in the order given.</summary>
    public IReadOnlyList<(string Name, string Protocol, int Port)> NamedPorts { get; init; } = [];

    /// <summary>Keys we read, plus those Kubernetes runtimes always pass (read by nobody here, but not unknown).</summary>
    public static readonly string[] KnownKeys =
        ["IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_UID", "K8S_POD_INFRA_CONTAINER_ID", LabelsKey, NamedPortsKey];

    public static readonly CniArgs Empty = new([], "", "", "", new Dictionary<string, string>());

    /// <summary>Parses CNI_ARGS; throws a <see cref="CniException"/> (code 4) naming the pair at fault.</summary>
    public static CniArgs Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return Empty;
        }
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var pair in text.Split(';'))
        {
            if (pair.Length == 0)
            {
                continue; // "A=1;" from a runtime that joins with a trailing separator
            }
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw Invalid($"pair \"{pair}\" is not KEY=VALUE", "write each argument as KEY=VALUE, separated by ';'");
            }
            pairs.Add(new(pair[..equals], pair[(equals + 1)..]));
        }

        var ignoreUnknown = false;
        string podNamespace = "", podName = "", podUid = "", labels = "", namedPorts = "";
        foreach (var (key, value) in pairs)
        {
            switch (key)
            {
                case "IgnoreUnknown":
                    ignoreUnknown = value.ToLowerInvariant() switch
                    {
                        "1" or "true" => true,
                        "0" or "false" => false,
                        _ => throw Invalid($"IgnoreUnknown=\"{value}\" is not a boolean", "use IgnoreUnknown=1 or IgnoreUnknown=0"),
                    };
                    break;
                case "K8S_POD_NAMESPACE":
                    podNamespace = value;
                    break;
                case "K8S_POD_NAME":
                    podName = value;
                    break;
                case "K8S_POD_UID":
                    podUid = value;
                    break;
                case LabelsKey:
                    labels = value;
                    break;
                case NamedPortsKey:
                    namedPorts = value;
                    break;
            }
        }
        if (!ignoreUnknown)
        {
            var unknown = pairs.Select(p => p.Key).Where(k => Array.IndexOf(KnownKeys, k) < 0).Distinct(StringComparer.Ordinal).ToList();
            if (unknown.Count > 0)
            {
                throw Invalid($"unknown argument{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown)}",
                    $"palisade-cni reads {string.Join(", ", KnownKeys)}; add IgnoreUnknown=1 to CNI_ARGS to pass others through");
            }
        }
        return new CniArgs(pairs, podNamespace, podName, podUid, ParseLabels(labels, LabelsKey)) { NamedPorts = ParseNamedPorts(namedPorts) };
    }

    /// <summary>
    /// <c>http=8080/TCP,dns=53/UDP</c> into named ports (protocol TCP when left out, as in a Pod's
    /// ports); a name is an IANA_SVC_NAME (at most 15 of [a-z0-9-], a letter in it, no "--", no
    /// '-' at either end), the port 1-65535, each name once per protocol.
    /// </summary>
    public static List<(string Name, string Protocol, int Port)> ParseNamedPorts(string text)
    {
        var ports = new List<(string Name, string Protocol, int Port)>();
        if (text.Length == 0)
        {
            return ports;
        }
        const string Fix = "write named ports as " + NamedPortsKey + "=http=8080/TCP,dns=53/UDP";
        foreach (var item in text.Split(','))
        {
            var equals = item.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw Invalid($"{NamedPortsKey}: \"{item}\" is not NAME=PORT[/PROTOCOL]", Fix);
            }
            var (name, rest) = (item[..equals], item[(equals + 1)..]);
            if (ServiceNameProblem(name) is { } problem)
            {
                throw Invalid($"{NamedPortsKey}: port name \"{name}\": {problem}", "use an IANA service name: at most 15 lower-case letters, digits and '-', with a letter, no \"--\", not starting or ending with '-'");
            }
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            var (number, protocol) = slash < 0 ? (rest, "TCP") : (rest[..slash], rest[(slash + 1)..].ToUpperInvariant());
            if (!int.TryParse(number, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                throw Invalid($"{NamedPortsKey}: port \"{number}\" of {name} is not a number from 1 to 65535", Fix);
            }
            if (protocol is not ("TCP" or "UDP" or "SCTP"))
            {
                throw Invalid($"{NamedPortsKey}: protocol \"{rest[(slash + 1)..]}\" of {name} is not TCP, UDP or SCTP", Fix);
            }
            if (ports.Any(p => p.Name == name && p.Protocol == protocol))
            {
                throw Invalid($"{NamedPortsKey}: port name {name}/{protocol} is given twice", "give each name once per protocol");
            }
            ports.Add((name, protocol, port));
        }
        return ports;
    }

    // Kubernetes' IsValidPortName (IANA_SVC_NAME, RFC 6335).
    private static string? ServiceNameProblem(string name)
    {
        if (name.Length > 15)
        {
            return "longer than 15 characters";
        }
        if (!name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
        {
            return "only lower-case letters, digits and '-' are allowed";
        }
        if (!name.Any(char.IsAsciiLetterLower))
        {
            return "it must contain a letter";
        }
        if (name.Contains("--", StringComparison.Ordinal) || name[0] == '-' || name[^1] == '-')
        {
            return "no \"--\" and no '-' at either end";
        }
        return null;
    }

    /// <summary><c>app=web,tier=front</c> into labels; each must be a valid Kubernetes label.</summary>
    public static Dictionary<string, string> ParseLabels(string text, string where)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (text.Length == 0)
        {
            return labels;
        }
        foreach (var item in text.Split(','))
        {
            var equals = item.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw Invalid($"{where}: \"{item}\" is not KEY=VALUE", $"write labels as {LabelsKey}=app=web,tier=front");
            }
            var (key, value) = (item[..equals], item[(equals + 1)..]);
            var problem = Label.KeyProblem(key) ?? Label.ValueProblem(value);
            if (problem is not null)
            {
                throw Invalid($"{where}: label \"{item}\": {problem}", "use Kubernetes label syntax: [prefix/]name=value, names and values of at most 63 of [A-Za-z0-9-_.], starting and ending alphanumeric");
            }
            if (!labels.TryAdd(key, value))
            {
                throw Invalid($"{where}: label {key} is given twice", "give each label once");
            }
        }
        return labels;
    }

    private static CniException Invalid(string what, string fix) =>
        new(CniErrorCode.InvalidEnvironment, $"CNI_ARGS: {what}", fix);
}

/// <summary>Kubernetes label syntax (apimachinery's IsQualifiedName / IsValidLabelValue).</summary>
internal static class Label
{
    public static string? KeyProblem(string key)
    {
        var slash = key.LastIndexOf('/');
        if (slash >= 0)
        {
            var prefix = key[..slash];
            if (prefix.Length is 0 or > 253 || !prefix.Split('.').All(IsDnsLabel))
            {
                return $"prefix \"{prefix}\" is not a DNS subdomain";
            }
        }
        var name = key[(slash + 1)..];
        return name.Length == 0 ? "the name is empty" : IsName(name) ? null : $"name \"{name}\" is not a valid label name";
    }

    public static string? ValueProblem(string value) =>
        value.Length == 0 || IsName(value) ? null : $"value \"{value}\" is not a valid label value";

    private static bool IsName(string s) =>
        s.Length <= 63 && char.IsAsciiLetterOrDigit(s[0]) && char.IsAsciiLetterOrDigit(s[^1])
        && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static bool IsDnsLabel(string s) =>
        s.Length is > 0 and <= 63 && IsLowerAlphanumeric(s[0]) && IsLowerAlphanumeric(s[^1]) && s.All(c => IsLowerAlphanumeric(c) || c == '-');

    private static bool IsLowerAlphanumeric(char c) => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c);
}
