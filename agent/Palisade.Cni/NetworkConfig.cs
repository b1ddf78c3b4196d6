using System.Text.Json;
using Palisade.Cni.Api;
using Versions = Palisade.Cni.CniVersion;

namespace Palisade.Cni;

/// <summary>
/// The plugin configuration the runtime writes on stdin (one entry of a conflist with
/// <c>cniVersion</c>, <c>name</c>, <c>runtimeConfig</c>, <c>prevResult</c> inserted), read with
/// <see cref="JsonDocument"/> (no reflection, AOT-safe) so that each problem names its key.
/// Not JSON or a value of the wrong JSON type is code 6; a value that is well-typed but
/// wrong is code 7; an <c>ipam</c> plugin is code 2 (the agent allocates addresses).
/// </summary>
internal sealed record NetworkConfig
{
    /// <summary>Largest configuration accepted: the agent receives it whole in one endpoint API frame.</summary>
    public const int MaxBytes = EndpointWire.MaxMessageBytes / 2;

    public const uint MinMtu = 68;    // IPv4's minimum
    public const uint MaxMtu = 65535;

    public required string CniVersion { get; init; }

    public required string Name { get; init; }

    public required string Type { get; init; }

    public uint Mtu { get; init; }

    /// <summary>The agent's endpoint API socket.</summary>
    public string Socket { get; init; } = EndpointWire.DefaultSocketPath;

    /// <summary>Where DELs wait while the agent is down.</summary>
    public string DelQueueDir { get; init; } = DelQueue.DefaultDirectory;

    /// <summary>The result of the previous plugin (chained ADD) or of the ADD (CHECK, DEL); null when absent.</summary>
    public Result? PrevResult { get; init; }

    /// <summary>GC's <c>cni.dev/valid-attachments</c>; null when absent.</summary>
    public IReadOnlyList<Attachment>? ValidAttachments { get; init; }

    /// <summary>The config's <c>dns</c>: what the result reports when the agent sets none.</summary>
    public Dns? Dns { get; init; }

    /// <summary>Labels from <c>args.cni.labels</c> (the CNI conventions' structured form).</summary>
    public IReadOnlyDictionary<string, string> ArgsLabels { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Parses and checks the configuration for <paramref name="command"/>. The version is
    /// checked first: with an unsupported version nothing else can be judged.
    /// </summary>
    public static NetworkConfig Parse(ReadOnlySpan<byte> json, CniCommand command)
    {
        if (json.Length > MaxBytes)
        {
            throw Decode($"the network configuration on stdin is {json.Length} bytes; the limit is {MaxBytes}", "pass one plugin configuration, not a whole directory of them");
        }
        if (json.Trim(" \t\r\n"u8).IsEmpty)
        {
            throw Decode("no network configuration on stdin", "the runtime writes the plugin's configuration (JSON) on stdin");
        }
        // JsonDocument checks the UTF-8 of a string only when it is read, and then throws
        // InvalidOperationException (found by fuzzing): judge it up front instead.
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            throw Decode("the network configuration is not valid UTF-8", "write the configuration in UTF-8");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw Decode($"the network configuration is not valid JSON: {e.Message}", "fix the conflist the runtime reads");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Decode($"the network configuration is a JSON {Kind(root)}, not an object", "the configuration is one JSON object: {\"cniVersion\": ..., \"name\": ..., \"type\": \"palisade-cni\"}");
            }
            return FromRoot(root, command);
        }
    }

    private static NetworkConfig FromRoot(JsonElement root, CniCommand command)
    {
        var version = OptionalString(root, "cniVersion");
        if (version is null)
        {
            throw new CniException(CniErrorCode.IncompatibleVersion, "cniVersion is missing from the network configuration",
                $"set \"cniVersion\" to one of {string.Join(", ", Versions.Supported)}");
        }
        if (Versions.Parse(version) is null)
        {
            throw Decode($"cniVersion: \"{version}\" is not a version (MAJOR.MINOR.PATCH)", $"set \"cniVersion\" to one of {string.Join(", ", Versions.Supported)}");
        }
        if (!Versions.IsSupported(version))
        {
            throw new CniException(CniErrorCode.IncompatibleVersion, $"cniVersion: \"{version}\" is not supported by palisade-cni",
                $"palisade-cni supports {string.Join(", ", Versions.Supported)}");
        }

        var name = OptionalString(root, "name") ?? throw Invalid("name is missing from the network configuration", "set \"name\" to the network's name (e.g. \"palisade\")");
        if (NameProblem(name) is { } nameProblem)
        {
            throw Invalid($"name: \"{name}\" {nameProblem}", "a network name starts with a letter or digit, followed by letters, digits, '_', '.' or '-'");
        }
        var type = OptionalString(root, "type") ?? throw Invalid("type is missing from the network configuration", "set \"type\" to \"palisade-cni\", the plugin's file name");
        if (type.Length == 0 || type.Contains('/', StringComparison.Ordinal) || type.Contains('\0', StringComparison.Ordinal))
        {
            throw Invalid($"type: \"{type}\" is not a plugin file name", "set \"type\" to \"palisade-cni\"");
        }

        var config = new NetworkConfig
        {
            CniVersion = version,
            Name = name,
            Type = type,
            Mtu = ReadMtu(root),
            Socket = AbsolutePath(root, "socket") ?? EndpointWire.DefaultSocketPath,
            DelQueueDir = AbsolutePath(root, "delQueueDir") ?? DelQueue.DefaultDirectory,
            Dns = root.TryGetProperty("dns", out var dns) ? PrevResultReader.ReadDns(dns, "dns") : null,
            ArgsLabels = ReadArgsLabels(root),
        };

        if (root.TryGetProperty("ipam", out var ipam))
        {
            if (ipam.ValueKind != JsonValueKind.Object)
            {
                throw Decode($"ipam: is a JSON {Kind(ipam)}, not an object", "remove \"ipam\": the agent allocates addresses");
            }
            if (ipam.TryGetProperty("type", out var ipamType) && !(ipamType.ValueKind == JsonValueKind.String && ipamType.GetString()!.Length == 0))
            {
                throw new CniException(CniErrorCode.UnsupportedField, $"ipam: {ipam.GetRawText()} is not supported",
                    "palisade-cni takes addresses from the agent's IPAM (the node's pod CIDR); remove the \"ipam\" section");
            }
        }
        foreach (var key in (ReadOnlySpan<string>)["runtimeConfig", "args"])
        {
            if (root.TryGetProperty(key, out var value) && value.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
            {
                throw Decode($"{key}: is a JSON {Kind(value)}, not an object", $"\"{key}\" is inserted by the runtime as an object; remove it from the conflist");
            }
        }

        // DEL must succeed whatever the runtime cached: its prevResult is not needed, so not judged.
        if (command is not CniCommand.Del && root.TryGetProperty("prevResult", out var prev) && prev.ValueKind != JsonValueKind.Null)
        {
            config = config with { PrevResult = PrevResultReader.Read(prev) };
        }
        if (command is CniCommand.Gc && root.TryGetProperty("cni.dev/valid-attachments", out var attachments) && attachments.ValueKind != JsonValueKind.Null)
        {
            config = config with { ValidAttachments = ReadAttachments(attachments) };
        }
        return config;
    }

    private static uint ReadMtu(JsonElement root)
    {
        if (!root.TryGetProperty("mtu", out var mtu) || mtu.ValueKind == JsonValueKind.Null)
        {
            return 0;
        }
        if (mtu.ValueKind != JsonValueKind.Number)
        {
            throw Decode($"mtu: {mtu.GetRawText()} is a JSON {Kind(mtu)}, not a number", $"set \"mtu\" to a number from {MinMtu} to {MaxMtu}, or leave it out for the agent's default");
        }
        if (!mtu.TryGetUInt32(out var value) || value is < MinMtu or > MaxMtu)
        {
            throw Invalid($"mtu: {mtu.GetRawText()} is not a valid MTU", $"set \"mtu\" to a number from {MinMtu} to {MaxMtu}, or leave it out for the agent's default");
        }
        return value;
    }

    private static string? AbsolutePath(JsonElement root, string key)
    {
        var path = OptionalString(root, key);
        if (path is null)
        {
            return null;
        }
        if (!path.StartsWith('/') || path.Contains('\0', StringComparison.Ordinal))
        {
            throw Invalid($"{key}: \"{path}\" is not an absolute path", $"set \"{key}\" to an absolute path, or leave it out for the default");
        }
        return path;
    }

    private static Dictionary<string, string> ReadArgsLabels(JsonElement root)
    {
        if (!root.TryGetProperty("args", out var args) || args.ValueKind != JsonValueKind.Object
            || !args.TryGetProperty("cni", out var cni) || cni.ValueKind != JsonValueKind.Object
            || !cni.TryGetProperty("labels", out var labels) || labels.ValueKind == JsonValueKind.Null)
        {
            return new Dictionary<string, string>();
        }
        if (labels.ValueKind != JsonValueKind.Array)
        {
            throw Decode($"args.cni.labels: is a JSON {Kind(labels)}, not an array", "labels are [{\"key\": \"app\", \"value\": \"web\"}, ...]");
        }
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var i = 0;
        foreach (var label in labels.EnumerateArray())
        {
            var where = $"args.cni.labels[{i++}]";
            if (label.ValueKind != JsonValueKind.Object)
            {
                throw Decode($"{where}: is a JSON {Kind(label)}, not an object", "labels are [{\"key\": \"app\", \"value\": \"web\"}, ...]");
            }
            var key = OptionalString(label, "key", where) ?? throw Invalid($"{where}: key is missing", "each label has a \"key\" and a \"value\"");
            var value = OptionalString(label, "value", where) ?? "";
            if ((Label.KeyProblem(key) ?? Label.ValueProblem(value)) is { } problem)
            {
                throw Invalid($"{where}: label {key}={value}: {problem}", "use Kubernetes label syntax: [prefix/]name=value");
            }
            result[key] = value;
        }
        return result;
    }

    private static List<Attachment> ReadAttachments(JsonElement attachments)
    {
        const string key = "cni.dev/valid-attachments";
        if (attachments.ValueKind != JsonValueKind.Array)
        {
            throw Decode($"{key}: is a JSON {Kind(attachments)}, not an array", "the runtime lists the attachments still in use as [{\"containerID\": ..., \"ifname\": ...}]");
        }
        var list = new List<Attachment>();
        var i = 0;
        foreach (var item in attachments.EnumerateArray())
        {
            var where = $"{key}[{i++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw Decode($"{where}: is a JSON {Kind(item)}, not an object", "each attachment is {\"containerID\": ..., \"ifname\": ...}");
            }
            var id = OptionalString(item, "containerID", where);
            var ifname = OptionalString(item, "ifname", where);
            if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(ifname))
            {
                throw Invalid($"{where}: {(string.IsNullOrEmpty(id) ? "containerID" : "ifname")} is missing", "each attachment names its containerID and ifname");
            }
            list.Add(new Attachment { ContainerId = id, Ifname = ifname });
        }
        return list;
    }

    /// <summary>The spec's rule for network names (libcni's ValidateNetworkName).</summary>
    public static string? NameProblem(string name) =>
        name.Length == 0 ? "is empty"
        : !char.IsAsciiLetterOrDigit(name[0]) || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')
            ? "has characters a network name cannot have"
            : null;

    /// <summary>A string member, null when absent or JSON null; a member of another JSON type is code 6.</summary>
    internal static string? OptionalString(JsonElement parent, string key, string? where = null)
    {
        if (!parent.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            var field = where is null ? key : $"{where}.{key}";
            throw Decode($"{field}: {Truncate(value.GetRawText())} is a JSON {Kind(value)}, not a string", $"write \"{key}\" as a JSON string");
        }
        return value.GetString()!;
    }

    internal static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    internal static string Truncate(string s) => s.Length <= 80 ? s : s[..77] + "...";

    internal static CniException Decode(string msg, string fix) => new(CniErrorCode.DecodingFailure, msg, fix);

    internal static CniException Invalid(string msg, string fix) => new(CniErrorCode.InvalidNetworkConfig, msg, fix);
}
