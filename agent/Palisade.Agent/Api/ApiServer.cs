using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Palisade.Agent.Configuration;

namespace Palisade.Agent.Api;

/// <summary>Where the gRPC API listens: a root-only unix socket by default, TCP (TLS off loopback) when asked.</summary>
internal static class ApiServer
{
    public const string UnixPrefix = "unix://";

    public static void Listen(KestrelServerOptions k, AgentOptions options)
    {
        if (options.ServerAddress is not { } address)
        {
            return;
        }
        if (address.StartsWith(UnixPrefix, StringComparison.Ordinal))
        {
            var path = address[UnixPrefix.Length..];
            if (Path.GetDirectoryName(path) is { Length: > 0 } dir)
            {
                Directory.CreateDirectory(dir);
            }
            if (File.Exists(path))
            {
                File.Delete(path); // a stale socket from an earlier run
            }
            k.ListenUnixSocket(path, o => o.Protocols = HttpProtocols.Http2);
            return;
        }
        var endpoint = options.ServerEndpoint ?? throw new InvalidOperationException($"server-address {address} was not resolved to an endpoint");
        void Configure(ListenOptions o)
        {
            o.Protocols = HttpProtocols.Http2;
            if (options.ServerTlsCertFile is not null && options.ServerTlsKeyFile is not null)
            {
                o.UseHttps(https => ServerTls.Configure(https, options));
            }
        }
        // "localhost:PORT" (Tetragon's habit) means both loopbacks: a client resolving localhost
        // may try ::1 first, and a listener on 127.0.0.1 alone refuses it.
        if (address.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            k.ListenLocalhost(endpoint.Port, Configure);
            return;
        }
        k.Listen(endpoint, Configure);
    }

    /// <summary>Makes the unix socket root-only (0600) as soon as it exists: whoever can talk to it can change enforcement.</summary>
    public static void SecureSocket(WebApplication app, AgentOptions options)
    {
        if (options.ServerAddress is { } address && address.StartsWith(UnixPrefix, StringComparison.Ordinal))
        {
            var path = address[UnixPrefix.Length..];
            app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(() =>
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite));
            app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped.Register(() =>
            {
                try
                {
                    File.Delete(path);
                }
                catch (IOException)
                {
                }
            });
        }
    }
}
