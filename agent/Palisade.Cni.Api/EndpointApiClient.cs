using System.Net.Sockets;

namespace Palisade.Cni.Api;

/// <summary>
/// The plugin's side of the endpoint API: connects to the agent's socket, sends one
/// <see cref="Request"/> and reads its <see cref="Response"/>. Failures to reach the agent
/// are an <see cref="EndpointUnreachableException"/> (the agent is down: nothing was sent),
/// failures after the request went out an <see cref="EndpointExchangeException"/> (the agent
/// may have acted on it).
/// </summary>
public sealed class EndpointApiClient
{
    /// <summary>Connecting to a local socket is immediate unless the agent is stuck.</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(3);

    /// <summary>An ADD waits for the endpoint's veth, identity and programs; well above the agent's own deadline.</summary>
    public static readonly TimeSpan DefaultResponseTimeout = TimeSpan.FromSeconds(60);

    /// <summary>A client of the agent at <paramref name="socketPath"/>.</summary>
    public EndpointApiClient(string socketPath, TimeSpan? connectTimeout = null, TimeSpan? responseTimeout = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        SocketPath = socketPath;
        ConnectTimeout = connectTimeout ?? DefaultConnectTimeout;
        ResponseTimeout = responseTimeout ?? DefaultResponseTimeout;
    }

    public string SocketPath { get; }

    public TimeSpan ConnectTimeout { get; }

    public TimeSpan ResponseTimeout { get; }

    /// <summary>One exchange: connect, send <paramref name="request"/>, read the response.</summary>
    public async Task<Response> SendAsync(Request request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            connectTimeout.CancelAfter(ConnectTimeout);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), connectTimeout.Token).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                throw new EndpointUnreachableException(SocketPath, Describe(e), e);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new EndpointUnreachableException(SocketPath, $"no connection within {ConnectTimeout.TotalSeconds:0.#} s", e);
            }
        }

        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var responseTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        responseTimeout.CancelAfter(ResponseTimeout);
        try
        {
            await EndpointWire.WriteAsync(stream, request, responseTimeout.Token).ConfigureAwait(false);
            return await EndpointWire.ReadAsync(stream, Response.Parser, responseTimeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new EndpointExchangeException(SocketPath, $"no response within {ResponseTimeout.TotalSeconds:0.#} s", e);
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException)
        {
            throw new EndpointExchangeException(SocketPath, e.Message, e);
        }
    }

    private static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "nothing listens on it (connection refused)",
        SocketError.AddressNotAvailable or SocketError.HostNotFound => "the socket does not exist",
        SocketError.AccessDenied => "permission denied (the plugin must run as root)",
        _ => e.Message,
    };
}

/// <summary>The agent could not be reached: its socket is missing, refuses or does not accept in time. Nothing was sent.</summary>
public sealed class EndpointUnreachableException(string socketPath, string reason, Exception? inner = null)
    : IOException($"the Palisade agent is not reachable at {socketPath}: {reason}", inner)
{
    public string SocketPath { get; } = socketPath;

    public string Reason { get; } = reason;
}

/// <summary>The request went out but no valid response came back: the agent may or may not have acted on it.</summary>
public sealed class EndpointExchangeException(string socketPath, string reason, Exception? inner = null)
    : IOException($"the Palisade agent at {socketPath} did not answer: {reason}", inner)
{
    public string SocketPath { get; } = socketPath;

    public string Reason { get; } = reason;
}
