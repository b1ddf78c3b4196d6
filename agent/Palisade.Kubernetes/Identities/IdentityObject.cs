using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Palisade.Kubernetes.Identities;

/// <summary>
/// A PalisadeIdentity (palisade.io/v1alpha1, cluster-scoped) as the API server serves it. Its
/// shape is CiliumIdentity's: the name is the number, <c>security-labels</c> the labels
/// ("k8s:app" to "web"), <c>metadata.labels</c> the same labels without their source, for
/// <c>kubectl get -l</c>.
/// </summary>
public sealed class IdentityResource : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = IdentityObject.ApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = IdentityObject.Kind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    /// <summary>Kept as raw JSON: one object of another shape must not stop the watch of all the others.</summary>
    [JsonPropertyName("security-labels")]
    public JsonElement? SecurityLabels { get; set; }
}

public sealed class IdentityResourceList : IKubernetesObject<V1ListMeta>, IItems<IdentityResource>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<IdentityResource> Items { get; set; } = [];
}

/// <summary>
/// One identity object, read and checked: its number, its labels in our form
/// (<c>k8s:KEY=VALUE</c>, sorted), the key that finds it by labels, its resourceVersion, and when
/// a node last said it uses it (the <see cref="LastUsedAnnotation"/>, else its creation).
/// </summary>
public sealed record IdentityObject(uint Id, IReadOnlyList<string> Labels, string Key, string ResourceVersion, DateTimeOffset? LastUsed)
{
    public const string Group = "palisade.io";
    public const string Version = "v1alpha1";
    public const string Plural = "palisadeidentities";
    public const string Kind = "PalisadeIdentity";
    public const string ApiVersion = Group + "/" + Version;

    /// <summary>RFC 3339 time a node last used the identity; every node that holds it refreshes it, garbage collection reads it.</summary>
    public const string LastUsedAnnotation = "palisade.io/last-used";

    /// <summary>The key of a label set: its labels sorted, one per line (labels never hold a line break).</summary>
    public static string KeyOf(IEnumerable<string> labels) => string.Join('\n', labels.Order(StringComparer.Ordinal));

    /// <summary>Reads an object; null with <paramref name="problem"/> saying what is wrong when it is not an identity we can use.</summary>
    public static IdentityObject? From(IdentityResource resource, uint first, uint last, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(resource);
        var name = resource.Metadata?.Name;
        if (string.IsNullOrEmpty(name) || !uint.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || name != id.ToString(CultureInfo.InvariantCulture))
        {
            problem = $"{Kind} \"{name}\": the name is not an identity number (a decimal number without leading zeros)";
            return null;
        }
        if (id < first || id > last)
        {
            problem = $"{Kind} {id}: outside the cluster range {first} to {last}";
            return null;
        }
        if (resource.SecurityLabels is not { ValueKind: JsonValueKind.Object } labels || !labels.EnumerateObject().Any())
        {
            problem = $"{Kind} {id}: security-labels is missing, empty or not an object";
            return null;
        }
        var list = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in labels.EnumerateObject())
        {
            var key = property.Name;
            if (property.Value.ValueKind != JsonValueKind.String)
            {
                problem = $"{Kind} {id}: security-labels entry \"{key}\" is {property.Value.ValueKind}, not a string";
                return null;
            }
            var value = property.Value.GetString()!;
            if (!seen.Add(key))
            {
                problem = $"{Kind} {id}: security-labels has \"{key}\" twice";
                return null;
            }
            if (string.IsNullOrEmpty(key) || key.IndexOf(':', StringComparison.Ordinal) <= 0 || key.Contains('=', StringComparison.Ordinal)
                || key.Contains('\n', StringComparison.Ordinal) || value.Contains('\n', StringComparison.Ordinal))
            {
                problem = $"{Kind} {id}: security-labels entry \"{key}\" is not SOURCE:KEY with a one-line value";
                return null;
            }
            list.Add($"{key}={value}");
        }
        list.Sort(StringComparer.Ordinal);
        DateTimeOffset? lastUsed = null;
        if (resource.Metadata!.Annotations?.TryGetValue(LastUsedAnnotation, out var stamp) == true
            && DateTimeOffset.TryParse(stamp, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
        {
            lastUsed = parsed;
        }
        else if (resource.Metadata.CreationTimestamp is { } created)
        {
            lastUsed = new DateTimeOffset(DateTime.SpecifyKind(created, DateTimeKind.Utc));
        }
        problem = null;
        return new IdentityObject(id, list, KeyOf(list), resource.Metadata.ResourceVersion ?? "", lastUsed);
    }

    /// <summary>The object that creates identity <paramref name="id"/> for <paramref name="labels"/> (our form, k8s:KEY=VALUE).</summary>
    public static IdentityResource For(uint id, IReadOnlyList<string> labels, DateTimeOffset now)
    {
        var security = new Dictionary<string, string>(StringComparer.Ordinal);
        var selectable = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var label in labels)
        {
            var eq = label.IndexOf('=', StringComparison.Ordinal);
            var (key, value) = eq < 0 ? (label, "") : (label[..eq], label[(eq + 1)..]);
            security[key] = value;
            // As Cilium: only k8s-sourced labels become object labels, without the source, and not the
            // namespace-label ones (user text that could exceed a label's 63 characters).
            if (key.StartsWith("k8s:", StringComparison.Ordinal) && !key.StartsWith("k8s:io.cilium.k8s.namespace.labels.", StringComparison.Ordinal)
                && IsLabelValue(value) && IsLabelKey(key[4..]))
            {
                selectable[key[4..]] = value;
            }
        }
        return new IdentityResource
        {
            Metadata = new V1ObjectMeta
            {
                Name = id.ToString(CultureInfo.InvariantCulture),
                Labels = selectable,
                Annotations = new Dictionary<string, string> { [LastUsedAnnotation] = Stamp(now) },
            },
            SecurityLabels = ToJson(security),
        };
    }

    private static JsonElement ToJson(Dictionary<string, string> map)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var (key, value) in map.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                writer.WriteString(key, value);
            }
            writer.WriteEndObject();
        }
        using var document = JsonDocument.Parse(buffer.ToArray());
        return document.RootElement.Clone();
    }

    /// <summary>The annotation's text for a time: RFC 3339, UTC, seconds.</summary>
    public static string Stamp(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static bool IsLabelValue(string value) => value.Length <= 63 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static bool IsLabelKey(string key)
    {
        var slash = key.LastIndexOf('/');
        var name = slash < 0 ? key : key[(slash + 1)..];
        return name.Length is > 0 and <= 63 && key.Length <= 253 && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/');
    }
}
