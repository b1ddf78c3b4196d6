using Palisade.Agent.Configuration;

namespace Palisade.Tests.Tetragon;

/// <summary>Tetragon's client-certificate flags: refused, naming the setting and the fix, when they cannot work.</summary>
public sealed class ServerTlsSettingsTests
{
    private static SettingsLayer Flags(params (string Key, string Value)[] values) => new("flags", values.ToDictionary(v => v.Key, v => v.Value));

    private static IReadOnlyList<string> Errors(params (string Key, string Value)[] values) =>
        Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Flags([("server-address", "127.0.0.1:54321"), .. values])])).Errors;

    [Fact]
    public void ClientCertificatesWithoutTlsAreRefused()
    {
        Assert.Contains(Errors(("server-tls-require-client-cert", "true"), ("server-tls-client-ca-files", "/etc/hosts")),
            e => e.StartsWith("server-tls-client-ca-files: client certificates need TLS", StringComparison.Ordinal));
    }

    [Fact]
    public void RequiringClientCertificatesNeedsTheirCas()
    {
        Assert.Contains(Errors(("server-tls-cert-file", "/c.pem"), ("server-tls-key-file", "/k.pem"), ("server-tls-require-client-cert", "true")),
            e => e.StartsWith("server-tls-require-client-cert: true needs server-tls-client-ca-files", StringComparison.Ordinal));
    }

    [Fact]
    public void ACaFileThatIsNoCertificateIsNamed()
    {
        var notPem = Path.GetTempFileName();
        try
        {
            Assert.Contains(Errors(("server-tls-cert-file", "/c.pem"), ("server-tls-key-file", "/k.pem"), ("server-tls-client-ca-files", $"{notPem}, /nonexistent/ca.pem")),
                e => e.Contains($"\"{notPem}\" has no PEM certificate", StringComparison.Ordinal));
            Assert.Contains(Errors(("server-tls-cert-file", "/c.pem"), ("server-tls-key-file", "/k.pem"), ("server-tls-client-ca-files", "/nonexistent/ca.pem")),
                e => e.Contains("\"/nonexistent/ca.pem\" cannot be read", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(notPem);
        }
    }

    [Fact]
    public void TheFlagsAreReadUnderTetragonsNames()
    {
        var options = AgentConfiguration.Resolve([Flags(("server-tls-require-client-cert", "TRUE"))]);
        Assert.True(options.ServerTlsRequireClientCert);
        Assert.Empty(options.ServerTlsClientCaFiles);
        Assert.NotNull(AgentSettings.Find("server-tls-client-ca-files"));
    }
}
