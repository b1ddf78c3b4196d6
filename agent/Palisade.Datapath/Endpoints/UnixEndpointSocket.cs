using System.Net.Sockets;
using Palisade.Cni.Api;

namespace Palisade.Datapath.Endpoints;

/// <summary>Serves an <see cref="IEndpointApi"/> to the plugin. The agent's seam for the endpoint socket server.</summary>
public interface IEndpointApiHost : IAsyncDisposable
{
    /// <summary>Listens on <paramref name="socketPath"/> (replacing a stale socket) and answers with <paramref name="api"/>; returns once listening.</summary>
    Task StartAsync(string socketPath, IEndpointApi api, CancellationToken cancellationToken);
}

/// <summary>
/// A minimal endpoint socket: one framed request and one framed response per connection
/// (<see cref="EndpointWire"/>), the socket mode 0600. Stands in until the endpoint API
/// server of Palisade.Cni.Api is plugged in through <see cref="IEndpointApiHost"/>.
/// </summary>
public sealed class UnixEndpointSocket : IEndpointApiHost
{
    private readonly CancellationTokenSource _stop = new();
    private Socket? _listener;
    private Task? _accepting;
    private string? _path;

    public async Task StartAsync(string socketPath, IEndpointApi api, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
        if (File.Exists(socketPath))
        {
            File.Delete(socketPath); // left by an agent that died; nobody can be listening on it now that we start
        }
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(128);
        _listener = listener;
        _path = socketPath;
        _accepting = AcceptAsync(listener, api, _stop.Token);
        await Task.CompletedTask.ConfigureAwait(false);
    }

    private static async Task AcceptAsync(Socket listener, IEndpointApi api, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = ServeAsync(connection, api, stop);
        }
    }

    private static async Task ServeAsync(Socket connection, IEndpointApi api, CancellationToken stop)
    {
        await using var stream = new NetworkStream(connection, ownsSocket: true);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
            // A plugin that connects and sends nothing must not hold a task forever.
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            var request = await EndpointWire.ReadAsync(stream, Request.Parser, timeout.Token).ConfigureAwait(false);
            Response response;
            try
            {
                response = await api.HandleAsync(request, stop).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // the contract: an exception becomes error 999, never a dropped connection
            catch (Exception e) when (e is not OperationCanceledException)
#pragma warning restore CA1031
            {
                response = new Response { Error = new Error { Code = ErrorCodes.Internal, Msg = $"{e.GetType().Name}: {e.Message}" } };
            }
            await EndpointWire.WriteAsync(stream, response, stop).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or OperationCanceledException or SocketException)
        {
            // A broken or silent client: nothing to answer.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        if (_accepting is not null)
        {
            await _accepting.ConfigureAwait(false);
        }
        if (_path is not null && File.Exists(_path))
        {
            File.Delete(_path);
        }
        _stop.Dispose();
    }
}
