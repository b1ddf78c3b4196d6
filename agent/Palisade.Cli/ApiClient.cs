using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Palisade.Api.V1;

namespace Palisade.Cli;

/// <summary>Connects the client verbs to the agent's gRPC API (unix socket by default).</summary>
internal static class ApiClient
{
    public const string DefaultAddress = "unix:///var/run/palisade/palisade.sock";

    /// <summary>--server-address, else PALISADE_SERVER_ADDRESS, else the default socket.</summary>
    public static string Resolve(string? flag) =>
        flag ?? (Environment.GetEnvironmentVariable("PALISADE_SERVER_ADDRESS") is { Length: > 0 } env ? env : DefaultAddress);

    public static GrpcChannel Channel(string address)
    {
        if (address.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = address["unix://".Length..];
            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, token) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), token).ConfigureAwait(false);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            return GrpcChannel.ForAddress("http://palisade", new GrpcChannelOptions { HttpHandler = handler });
        }
        var scheme = Environment.GetEnvironmentVariable("PALISADE_SERVER_TLS") == "true" ? "https" : "http";
        return GrpcChannel.ForAddress($"{scheme}://{address}");
    }

    public static FineGuidanceSensors.FineGuidanceSensorsClient Connect(string address) => new(Channel(address));

    /// <summary>A one-line explanation of an API failure, with what to do about it.</summary>
    public static string Explain(RpcException e, string address) => e.StatusCode switch
    {
        StatusCode.Unavailable => $"cannot reach the agent at {address} ({e.Status.Detail}). Is `palisade agent` running, and are you root (the socket is mode 0600)? Set --server-address or PALISADE_SERVER_ADDRESS if it listens elsewhere.",
        StatusCode.PermissionDenied => $"the agent refused: {e.Status.Detail}",
        _ => e.Status.Detail,
    };
}
