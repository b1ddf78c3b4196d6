using System.Text.Json;
using System.Text.Json.Serialization;
using Palisade.Cni.Api;

namespace Palisade.Cni;

/// <summary>The spec's error JSON (section 5, "Error").</summary>
internal sealed class ErrorJson
{
    [JsonPropertyName("cniVersion")] public required string CniVersion { get; init; }
    [JsonPropertyName("code")] public required uint Code { get; init; }
    [JsonPropertyName("msg")] public required string Msg { get; init; }
    [JsonPropertyName("details")] public string? Details { get; init; }
}

/// <summary>VERSION's answer.</summary>
internal sealed class VersionJson
{
    [JsonPropertyName("cniVersion")] public required string CniVersion { get; init; }
    [JsonPropertyName("supportedVersions")] public required string[] SupportedVersions { get; init; }
}

/// <summary>An ADD result: 1.0.0/1.1.0 shape, or 0.3.x/0.4.0 with <c>version</c> per IP and no interface MTU.</summary>
internal sealed class ResultJson
{
    [JsonPropertyName("cniVersion")] public required string CniVersion { get; init; }
    [JsonPropertyName("interfaces")] public List<InterfaceJson>? Interfaces { get; init; }
    [JsonPropertyName("ips")] public List<IpJson>? Ips { get; init; }
    [JsonPropertyName("routes")] public List<RouteJson>? Routes { get; init; }
    [JsonPropertyName("dns")] public DnsJson? Dns { get; init; }
}

internal sealed class InterfaceJson
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("mac")] public string? Mac { get; init; }
    [JsonPropertyName("mtu")] public uint? Mtu { get; init; }
    [JsonPropertyName("sandbox")] public string? Sandbox { get; init; }
}

internal sealed class IpJson
{
    [JsonPropertyName("version")] public string? Version { get; init; }
    [JsonPropertyName("interface")] public int? Interface { get; init; }
    [JsonPropertyName("address")] public required string Address { get; init; }
    [JsonPropertyName("gateway")] public string? Gateway { get; init; }
}

internal sealed class RouteJson
{
    [JsonPropertyName("dst")] public required string Dst { get; init; }
    [JsonPropertyName("gw")] public string? Gw { get; init; }
}

internal sealed class DnsJson
{
    [JsonPropertyName("nameservers")] public List<string>? Nameservers { get; init; }
    [JsonPropertyName("domain")] public string? Domain { get; init; }
    [JsonPropertyName("search")] public List<string>? Search { get; init; }
    [JsonPropertyName("options")] public List<string>? Options { get; init; }
}

/// <summary>Source-generated serializers: NativeAOT has no reflection-based JSON.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ErrorJson))]
[JsonSerializable(typeof(VersionJson))]
[JsonSerializable(typeof(ResultJson))]
internal sealed partial class CniJsonContext : JsonSerializerContext;

/// <summary>The endpoint API's <see cref="Result"/> as the JSON of the configuration's cniVersion.</summary>
internal static class ResultFormat
{
    public static ResultJson ToJson(Result result, string cniVersion)
    {
        var legacy = CniVersion.IsLegacyResult(cniVersion);
        return new ResultJson
        {
            CniVersion = cniVersion,
            Interfaces = result.Interfaces.Count == 0 ? null : [.. result.Interfaces.Select(i => new InterfaceJson
            {
                Name = i.Name,
                Mac = Empty(i.Mac),
                Mtu = legacy || i.Mtu == 0 ? null : i.Mtu,
                Sandbox = Empty(i.Sandbox),
            })],
            Ips = result.Ips.Count == 0 ? null : [.. result.Ips.Select(ip => new IpJson
            {
                Version = legacy ? (PrevResultReader.IsIPv4(ip.Address) ? "4" : "6") : null,
                Interface = ip.Interface < 0 ? null : ip.Interface,
                Address = ip.Address,
                Gateway = Empty(ip.Gateway),
            })],
            Routes = result.Routes.Count == 0 ? null : [.. result.Routes.Select(r => new RouteJson { Dst = r.Dst, Gw = Empty(r.Gw) })],
            Dns = ToJson(result.Dns),
        };
    }

    private static DnsJson? ToJson(Dns? dns) =>
        dns is null || (dns.Nameservers.Count == 0 && dns.Domain.Length == 0 && dns.Search.Count == 0 && dns.Options.Count == 0)
            ? null
            : new DnsJson
            {
                Nameservers = dns.Nameservers.Count == 0 ? null : [.. dns.Nameservers],
                Domain = Empty(dns.Domain),
                Search = dns.Search.Count == 0 ? null : [.. dns.Search],
                Options = dns.Options.Count == 0 ? null : [.. dns.Options],
            };

    private static string? Empty(string s) => s.Length == 0 ? null : s;

    /// <summary>
    /// A chained ADD's result: the previous plugin's, with ours appended (our IPs' interface
    /// indexes moved past its interfaces), as the spec asks of a plugin given a prevResult.
    /// </summary>
    public static Result Merge(Result? previous, Result ours)
    {
        if (previous is null)
        {
            return ours;
        }
        var merged = previous.Clone();
        var offset = merged.Interfaces.Count;
        merged.Interfaces.AddRange(ours.Interfaces);
        merged.Ips.AddRange(ours.Ips.Select(ip => new IpConfig(ip) { Interface = ip.Interface < 0 ? -1 : ip.Interface + offset }));
        merged.Routes.AddRange(ours.Routes);
        if (ours.Dns is not null)
        {
            merged.Dns = ours.Dns;
        }
        return merged;
    }

    // Messages quote config values: "socket" reads better than \u0022socket\u0022, and stdout is no HTML page.
    private static readonly CniJsonContext Context = new(new JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    });

    public static byte[] Serialize(ResultJson result) => JsonSerializer.SerializeToUtf8Bytes(result, Context.ResultJson);

    public static byte[] Serialize(ErrorJson error) => JsonSerializer.SerializeToUtf8Bytes(error, Context.ErrorJson);

    public static byte[] Serialize(VersionJson version) => JsonSerializer.SerializeToUtf8Bytes(version, Context.VersionJson);
}
