using System.Net;
using System.Text.Json;
using Palisade.Cni.Api;
using Dns = Palisade.Cni.Api.Dns;

namespace Palisade.Cni;

/// <summary>
/// A CNI result in JSON (any supported version: 0.3.x/0.4.0 with <c>version</c> per IP, or
/// 1.x) into the endpoint API's <see cref="Result"/>: what a <c>prevResult</c> holds. Fields
/// the API does not carry (route MTU, socketPath, ...) are dropped; bad addresses are code 7.
/// </summary>
internal static class PrevResultReader
{
    private const string Root = "prevResult";

    public static Result Read(JsonElement prev)
    {
        if (prev.ValueKind != JsonValueKind.Object)
        {
            throw NetworkConfig.Decode($"{Root}: is a JSON {NetworkConfig.Kind(prev)}, not an object", "prevResult is the result the previous plugin printed");
        }
        var result = new Result();
        foreach (var (item, where) in Items(prev, "interfaces"))
        {
            var name = NetworkConfig.OptionalString(item, "name", where) ?? throw NetworkConfig.Invalid($"{where}.name is missing", "every interface of a result has a name");
            result.Interfaces.Add(new Interface
            {
                Name = name,
                Mac = NetworkConfig.OptionalString(item, "mac", where) ?? "",
                Sandbox = NetworkConfig.OptionalString(item, "sandbox", where) ?? "",
                Mtu = OptionalUInt(item, "mtu", where),
            });
        }
        foreach (var (item, where) in Items(prev, "ips"))
        {
            var address = NetworkConfig.OptionalString(item, "address", where) ?? throw NetworkConfig.Invalid($"{where}.address is missing", "every IP of a result has an address in CIDR form");
            RequireCidr(address, $"{where}.address");
            var gateway = NetworkConfig.OptionalString(item, "gateway", where) ?? "";
            RequireAddress(gateway, $"{where}.gateway");
            var index = -1;
            if (item.TryGetProperty("interface", out var interfaceIndex) && interfaceIndex.ValueKind != JsonValueKind.Null)
            {
                if (interfaceIndex.ValueKind != JsonValueKind.Number || !interfaceIndex.TryGetInt32(out index) || index < 0)
                {
                    throw NetworkConfig.Invalid($"{where}.interface: {NetworkConfig.Truncate(interfaceIndex.GetRawText())} is not an index into interfaces", "interface is a number from 0");
                }
                if (index >= result.Interfaces.Count)
                {
                    throw NetworkConfig.Invalid($"{where}.interface: {index} is past the end of interfaces ({result.Interfaces.Count})", "interface indexes the result's interfaces list");
                }
            }
            result.Ips.Add(new IpConfig { Address = address, Gateway = gateway, Interface = index });
        }
        foreach (var (item, where) in Items(prev, "routes"))
        {
            var dst = NetworkConfig.OptionalString(item, "dst", where) ?? throw NetworkConfig.Invalid($"{where}.dst is missing", "every route has a dst in CIDR form");
            RequireCidr(dst, $"{where}.dst");
            var gw = NetworkConfig.OptionalString(item, "gw", where) ?? "";
            RequireAddress(gw, $"{where}.gw");
            result.Routes.Add(new Route { Dst = dst, Gw = gw });
        }
        if (prev.TryGetProperty("dns", out var dns))
        {
            result.Dns = ReadDns(dns, $"{Root}.dns");
        }
        return result;
    }

    /// <summary>A <c>dns</c> object (of the config or of a result); null when empty.</summary>
    public static Dns? ReadDns(JsonElement dns, string where)
    {
        if (dns.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (dns.ValueKind != JsonValueKind.Object)
        {
            throw NetworkConfig.Decode($"{where}: is a JSON {NetworkConfig.Kind(dns)}, not an object", "dns is {\"nameservers\": [...], \"domain\": ..., \"search\": [...], \"options\": [...]}");
        }
        var result = new Dns { Domain = NetworkConfig.OptionalString(dns, "domain", where) ?? "" };
        result.Nameservers.AddRange(Strings(dns, "nameservers", where));
        foreach (var nameserver in result.Nameservers)
        {
            if (!IPAddress.TryParse(nameserver, out _))
            {
                throw NetworkConfig.Invalid($"{where}.nameservers: \"{nameserver}\" is not an IP address", "list nameservers as IPv4 or IPv6 addresses");
            }
        }
        result.Search.AddRange(Strings(dns, "search", where));
        result.Options.AddRange(Strings(dns, "options", where));
        return result.Nameservers.Count == 0 && result.Domain.Length == 0 && result.Search.Count == 0 && result.Options.Count == 0 ? null : result;
    }

    private static IEnumerable<(JsonElement Item, string Where)> Items(JsonElement parent, string key)
    {
        if (!parent.TryGetProperty(key, out var list) || list.ValueKind == JsonValueKind.Null)
        {
            yield break;
        }
        if (list.ValueKind != JsonValueKind.Array)
        {
            throw NetworkConfig.Decode($"{Root}.{key}: is a JSON {NetworkConfig.Kind(list)}, not an array", $"{key} is a list of objects");
        }
        var i = 0;
        foreach (var item in list.EnumerateArray())
        {
            var where = $"{Root}.{key}[{i++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw NetworkConfig.Decode($"{where}: is a JSON {NetworkConfig.Kind(item)}, not an object", $"{key} is a list of objects");
            }
            yield return (item, where);
        }
    }

    private static List<string> Strings(JsonElement parent, string key, string where)
    {
        var strings = new List<string>();
        if (!parent.TryGetProperty(key, out var list) || list.ValueKind == JsonValueKind.Null)
        {
            return strings;
        }
        if (list.ValueKind != JsonValueKind.Array || list.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
        {
            throw NetworkConfig.Decode($"{where}.{key}: {NetworkConfig.Truncate(list.GetRawText())} is not a list of strings", $"write {key} as [\"...\", ...]");
        }
        strings.AddRange(list.EnumerateArray().Select(e => e.GetString()!));
        return strings;
    }

    private static uint OptionalUInt(JsonElement parent, string key, string where)
    {
        if (!parent.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return 0;
        }
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetUInt32(out var number))
        {
            throw NetworkConfig.Decode($"{where}.{key}: {NetworkConfig.Truncate(value.GetRawText())} is not an unsigned number", $"write {key} as a number");
        }
        return number;
    }

    private static void RequireCidr(string text, string where)
    {
        if (!IPNetwork.TryParse(text, out _) && !IsHostCidr(text))
        {
            throw NetworkConfig.Invalid($"{where}: \"{NetworkConfig.Truncate(text)}\" is not an address in CIDR form", "write it as ADDRESS/PREFIX, e.g. 10.200.0.5/24");
        }
    }

    // IPNetwork.TryParse refuses host bits set (10.200.0.5/24); a CNI address has them.
    private static bool IsHostCidr(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var address) || text.AsSpan(0, slash).Contains('%'))
        {
            return false;
        }
        var maxPrefix = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        var prefix = text.AsSpan(slash + 1);
        return prefix.Length is > 0 and <= 3 && !prefix.ContainsAnyExcept("0123456789") && int.Parse(prefix, System.Globalization.CultureInfo.InvariantCulture) <= maxPrefix;
    }

    private static void RequireAddress(string text, string where)
    {
        if (text.Length > 0 && !IPAddress.TryParse(text, out _))
        {
            throw NetworkConfig.Invalid($"{where}: \"{NetworkConfig.Truncate(text)}\" is not an IP address", "write a gateway as a bare IPv4 or IPv6 address");
        }
    }

    /// <summary>Whether a CIDR address (as the agent writes them) is IPv4: 0.x results call it version "4".</summary>
    public static bool IsIPv4(string cidr)
    {
        var slash = cidr.IndexOf('/', StringComparison.Ordinal);
        return IPAddress.TryParse(slash < 0 ? cidr.AsSpan() : cidr.AsSpan(0, slash), out var address)
            && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
    }
}
