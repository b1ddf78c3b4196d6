namespace Palisade.Cni;

/// <summary>The CNI operations (CNI_COMMAND).</summary>
internal enum CniCommand
{
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

/// <summary>
/// The CNI_* environment of one invocation, checked as the spec asks: CNI_COMMAND always;
/// CNI_CONTAINERID and CNI_IFNAME for ADD, DEL and CHECK; CNI_NETNS for ADD and CHECK;
/// CNI_PATH for GC. Every missing or malformed variable is named in one code-4 error.
/// </summary>
internal sealed record CniEnvironment(CniCommand Command, string ContainerId, string Netns, string IfName, string Args, string Path)
{
    // The DEL queue names its file after the container id and ifname; a file name holds 255 bytes.
    private const int MaxContainerIdLength = 200;

    // IFNAMSIZ - 1
    private const int MaxIfNameLength = 15;

    public static readonly string[] Commands = ["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"];

    /// <summary>Reads and checks the environment; throws a <see cref="CniException"/> with code 4.</summary>
    public static CniEnvironment Read(Func<string, string?> getenv)
    {
        var commandText = getenv("CNI_COMMAND") ?? "";
        if (commandText.Length == 0)
        {
            throw new CniException(CniErrorCode.InvalidEnvironment, "CNI_COMMAND is not set",
                $"palisade-cni is a CNI plugin: a container runtime runs it with CNI_COMMAND set to one of {string.Join(", ", Commands)} and the network configuration on stdin");
        }
        var index = Array.IndexOf(Commands, commandText);
        if (index < 0)
        {
            throw new CniException(CniErrorCode.InvalidEnvironment, $"CNI_COMMAND: \"{commandText}\" is not a CNI command",
                $"set CNI_COMMAND to one of {string.Join(", ", Commands)}");
        }
        var command = (CniCommand)index;
        string Get(string name) => getenv(name) ?? "";
        var environment = new CniEnvironment(command, Get("CNI_CONTAINERID"), Get("CNI_NETNS"), Get("CNI_IFNAME"), Get("CNI_ARGS"), Get("CNI_PATH"));

        var missing = new List<string>();
        var invalid = new List<string>();
        var attachment = command is CniCommand.Add or CniCommand.Del or CniCommand.Check;
        if (attachment)
        {
            if (environment.ContainerId.Length == 0)
            {
                missing.Add("CNI_CONTAINERID");
            }
            else if (ContainerIdProblem(environment.ContainerId) is { } problem)
            {
                invalid.Add($"CNI_CONTAINERID \"{environment.ContainerId}\" {problem}");
            }
            if (environment.IfName.Length == 0)
            {
                missing.Add("CNI_IFNAME");
            }
            else if (IfNameProblem(environment.IfName) is { } problem)
            {
                invalid.Add($"CNI_IFNAME \"{environment.IfName}\" {problem}");
            }
        }
        if (command is CniCommand.Add or CniCommand.Check)
        {
            if (environment.Netns.Length == 0)
            {
                missing.Add("CNI_NETNS");
            }
        }
        if (environment.Netns.Length > 0 && attachment && !environment.Netns.StartsWith('/'))
        {
            invalid.Add($"CNI_NETNS \"{environment.Netns}\" is not an absolute path (e.g. /run/netns/NAME)");
        }
        if (command is CniCommand.Gc && environment.Path.Length == 0)
        {
            missing.Add("CNI_PATH");
        }
        if (missing.Count > 0 || invalid.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0)
            {
                parts.Add($"{string.Join(", ", missing)} {(missing.Count == 1 ? "is" : "are")} not set");
            }
            parts.AddRange(invalid);
            throw new CniException(CniErrorCode.InvalidEnvironment, $"{commandText}: {string.Join("; ", parts)}",
                $"{commandText} needs {Required(command)}: the container runtime sets them (CNI spec, section 2)");
        }
        return environment;
    }

    private static string Required(CniCommand command) => command switch
    {
        CniCommand.Add or CniCommand.Check => "CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME",
        CniCommand.Del => "CNI_CONTAINERID and CNI_IFNAME",
        CniCommand.Gc => "CNI_PATH",
        _ => "CNI_COMMAND",
    };

    /// <summary>The spec's rule: an alphanumeric, then alphanumerics, '_', '.' or '-'.</summary>
    public static string? ContainerIdProblem(string id)
    {
        if (id.Length > MaxContainerIdLength)
        {
            return $"is longer than {MaxContainerIdLength} characters";
        }
        if (!char.IsAsciiLetterOrDigit(id[0]) || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
        {
            return "must start with a letter or digit, followed by letters, digits, '_', '.' or '-'";
        }
        return null;
    }

    /// <summary>The kernel's rule for interface names (dev_valid_name).</summary>
    public static string? IfNameProblem(string name)
    {
        if (name.Length > MaxIfNameLength)
        {
            return $"is longer than {MaxIfNameLength} characters";
        }
        if (name is "." or "..")
        {
            return "is not an interface name";
        }
        if (name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            return "must not contain '/', ':', whitespace or control characters";
        }
        return null;
    }
}
