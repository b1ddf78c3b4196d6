using System.Text;

namespace Palisade.Exporters.Elasticsearch;

/// <summary>
/// Elastic Cloud's deployment id, "NAME:BASE64", where BASE64 decodes to
/// "HOST[:PORT]$ES_UUID$KIBANA_UUID" (the Kibana part may be missing). The Elasticsearch
/// URL is https://ES_UUID.HOST[:PORT], as Elastic's own clients decode it (port 443 unless
/// the host names one).
/// </summary>
public static class CloudId
{
    /// <summary>The Elasticsearch URL of <paramref name="cloudId"/>; a <see cref="FormatException"/> says what is wrong.</summary>
    public static Uri Decode(string cloudId)
    {
        const string Fix = "Fix: copy the Cloud ID from the deployment's page in the Elastic Cloud console (NAME:BASE64).";
        // The last ':' (base64 has none): a deployment name may hold one.
        var colon = cloudId.LastIndexOf(':');
        if (colon < 0 || colon == cloudId.Length - 1)
        {
            throw new FormatException($"\"{cloudId}\" is not a Cloud ID: no ':' followed by the base64 part. {Fix}");
        }
        var encoded = cloudId[(colon + 1)..];
        string decoded;
        try
        {
            decoded = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Convert.FromBase64String(encoded));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new FormatException($"\"{cloudId}\" is not a Cloud ID: the part after ':' is not base64 text. {Fix}");
        }
        var parts = decoded.Split('$');
        if (parts.Length < 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            throw new FormatException($"\"{cloudId}\" is not a Cloud ID: it decodes to \"{decoded}\", not HOST$ES_UUID$KIBANA_UUID. {Fix}");
        }
        var host = parts[0];
        var port = "";
        var portAt = host.LastIndexOf(':');
        if (portAt >= 0)
        {
            port = host[portAt..];
            host = host[..portAt];
        }
        if (!Uri.TryCreate($"https://{parts[1]}.{host}{port}/", UriKind.Absolute, out var url) || url.Host != $"{parts[1]}.{host}".ToLowerInvariant())
        {
            throw new FormatException($"\"{cloudId}\" is not a Cloud ID: \"{parts[1]}.{host}{port}\" is not a host name. {Fix}");
        }
        return url;
    }
}
