using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Palisade.Agent.Configuration;

namespace Palisade.Agent.Api;

/// <summary>
/// TLS of the gRPC API on TCP, with Tetragon's client-certificate flags: the server
/// certificate (server-tls-cert-file/-key-file), client CAs (server-tls-client-ca-files) and
/// mutual TLS (server-tls-require-client-cert). Client certificates chain to the given CAs
/// only, never to the system store: the API can change enforcement.
/// </summary>
public static class ServerTls
{
    /// <summary>The comma-separated file list of server-tls-client-ca-files.</summary>
    public static IReadOnlyList<string> Files(string value) =>
        [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>Adds an error for each client-certificate setting that cannot work, naming it and the fix.</summary>
    public static void Check(string caFiles, bool require, bool tls, List<string> errors)
    {
        var files = Files(caFiles);
        var ca = AgentSettings.ServerTlsClientCaFiles.Key;
        var req = AgentSettings.ServerTlsRequireClientCert.Key;
        if ((files.Count > 0 || require) && !tls)
        {
            errors.Add($"{(files.Count > 0 ? ca : req)}: client certificates need TLS. Fix: set {AgentSettings.ServerTlsCertFile.Key} and {AgentSettings.ServerTlsKeyFile.Key} too.");
        }
        if (require && files.Count == 0)
        {
            errors.Add($"{req}: true needs {ca}, the CAs that sign the client certificates. Fix: e.g. --{ca} /etc/palisade/tls/client-ca.pem.");
        }
        foreach (var file in files)
        {
            try
            {
                if (Load([file]).Count == 0)
                {
                    errors.Add($"{ca}: \"{file}\" has no PEM certificate. Fix: give a CA bundle (-----BEGIN CERTIFICATE-----).");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                errors.Add($"{ca}: \"{file}\" cannot be read as PEM certificates ({e.Message}).");
            }
        }
    }

    /// <summary>Kestrel's HTTPS options for the API's endpoint.</summary>
    public static void Configure(HttpsConnectionAdapterOptions https, AgentOptions options)
    {
        https.ServerCertificate = X509Certificate2.CreateFromPemFile(options.ServerTlsCertFile!, options.ServerTlsKeyFile);
        if (options.ServerTlsClientCaFiles.Count == 0)
        {
            return;
        }
        var authorities = Load(options.ServerTlsClientCaFiles);
        https.ClientCertificateMode = options.ServerTlsRequireClientCert ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.AllowCertificate;
        https.ClientCertificateValidation = (certificate, _, _) => Trusted(certificate, authorities);
    }

    /// <summary>True when <paramref name="certificate"/> chains to one of <paramref name="authorities"/> (and to nothing else).</summary>
    public static bool Trusted(X509Certificate2 certificate, X509Certificate2Collection authorities)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // CAs given as files have no reachable CRL here
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2")); // clientAuth
        return chain.Build(certificate);
    }

    private static X509Certificate2Collection Load(IReadOnlyList<string> files)
    {
        var all = new X509Certificate2Collection();
        foreach (var file in files)
        {
            all.ImportFromPemFile(file);
        }
        return all;
    }
}
