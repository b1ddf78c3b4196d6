using System.Net.Sockets;
using Google.Protobuf;

namespace Palisade.Cni.Api;

/// <summary>
/// The agent's endpoint API on its unix socket: accepts connections, reads one framed
/// <see cref="Request"/> from each, answers with the <see cref="IEndpointApi"/>'s
/// <see cref="Response"/> and closes. A bad frame, a slow client or a handler that throws
/// costs that one connection, never the server.
/// </summary>
public sealed class EndpointApiServer : IAsyncDisposable
{
    /// <summary>A client that has not sent its request by then is dropped: the plugin writes it right after connecting.</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Connections served at once; more wait in the listen backlog (50 concurrent ADDs must all fit).</summary>
    public const int DefaultMaxConcurrentConnections = 128;

    // Kernel queue of connections not yet accepted; a burst of pod starts must not be refused.
    private const int ListenBacklog = 512;

    private readonly string _socketPath;
    private readonly IEndpointApi _api;
    private readonly TimeSpan _requestTimeout;
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly HashSet<Task> _connections = [];
    private readonly Action<string>? _log;
    private Socket? _listener;
    private Task? _acceptLoop;

    /// <summary>A server for <paramref name="api"/> on <paramref name="socketPath"/>; nothing listens until <see cref="StartAsync"/>.</summary>
    public EndpointApiServer(string socketPath, IEndpointApi api, Action<string>? log = null,
        TimeSpan? requestTimeout = null, int maxConcurrentConnections = DefaultMaxConcurrentConnections)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(api);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrentConnections, 1);
        _socketPath = Path.GetFullPath(socketPath);
        _api = api;
        _log = log;
        _requestTimeout = requestTimeout ?? DefaultRequestTimeout;
        _slots = new SemaphoreSlim(maxConcurrentConnections, maxConcurrentConnections);
    }

    /// <summary>The socket's path.</summary>
    public string SocketPath => _socketPath;

    /// <summary>Requests answered (including those answered with an error).</summary>
    public long Served => Interlocked.Read(ref _served);

    /// <summary>Connections dropped on a bad frame, a timeout or a failed write.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    private long _served;
    private long _dropped;

    /// <summary>
    /// Creates the socket's directory (mode 0700 when it is new), removes a stale socket file
    /// left by an agent that died, binds (mode 0600) and starts accepting. Throws
    /// <see cref="IOException"/> when another process already serves the path, or the path is
    /// not a socket.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_listener is not null)
        {
            throw new InvalidOperationException("the endpoint API server is already started");
        }
        var directory = Path.GetDirectoryName(_socketPath)!;
        if (!Directory.Exists(directory))
        {
            // Root only: the socket hands out pod networking, and its directory also holds the DEL queue.
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        await RemoveStaleSocketAsync(cancellationToken).ConfigureAwait(false);

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(_socketPath));
            // Before Listen, so no client can connect while the mode is still the umask's.
            File.SetUnixFileMode(_socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(ListenBacklog);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        _acceptLoop = AcceptLoopAsync(listener);
    }

    private async Task RemoveStaleSocketAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(_socketPath) && !Directory.Exists(_socketPath))
        {
            return;
        }
        if (Interop.Libc.IsSocket(_socketPath) != true)
        {
            throw new IOException($"endpoint socket path {_socketPath} exists and is not a socket: remove it or choose another path");
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(1));
            await probe.ConnectAsync(new UnixDomainSocketEndPoint(_socketPath), timeout.Token).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused)
        {
            // Nobody listens: the file is what a killed agent left behind.
            File.Delete(_socketPath);
            _log?.Invoke($"removed the stale endpoint socket {_socketPath}");
            return;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // A listener too busy to accept is still a listener.
        }
        throw new IOException($"endpoint socket {_socketPath} is in use by another process (is another agent running?): stop it or choose another path");
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                await _slots.WaitAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            try
            {
                client = await listener.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                _slots.Release();
                break;
            }
            catch (SocketException e)
            {
                // EMFILE and friends: back off a moment rather than spin, and keep serving.
                _slots.Release();
                _log?.Invoke($"endpoint API accept failed: {e.Message}");
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100), token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                continue;
            }
            var connection = ServeAsync(client, token);
            lock (_gate)
            {
                _connections.Add(connection);
            }
            _ = connection.ContinueWith(t =>
            {
                lock (_gate)
                {
                    _connections.Remove(t);
                }
                _slots.Release();
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken stopping)
    {
        await Task.Yield(); // the accept loop goes back to accepting at once
        using var socket = client;
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        Request request;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            timeout.CancelAfter(_requestTimeout);
            request = await EndpointWire.ReadAsync(stream, Request.Parser, timeout.Token).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            Interlocked.Increment(ref _dropped);
            _log?.Invoke($"endpoint API: bad request frame: {e.Message}");
            // Decode failures get the CNI code for them; a client that already left gets nothing.
            await TryWriteAsync(stream, ErrorResponse(6, "the agent could not decode the request", e.Message), stopping).ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
        {
            Interlocked.Increment(ref _dropped);
            _log?.Invoke($"endpoint API: no request read: {(e is OperationCanceledException ? "timed out" : e.Message)}");
            return;
        }

        Response response;
        try
        {
            response = await _api.HandleAsync(request, stopping).ConfigureAwait(false)
                ?? ErrorResponse(999, "the agent's endpoint API returned no response", $"request: {request.OpCase}");
        }
#pragma warning disable CA1031 // IEndpointApi's contract: any exception becomes error 999, never a dropped connection
        catch (Exception e)
#pragma warning restore CA1031
        {
            _log?.Invoke($"endpoint API: {request.OpCase} failed: {e}");
            response = ErrorResponse(999, $"the agent failed to handle {request.OpCase}: {e.Message}", e.GetType().FullName ?? "");
        }
        if (await TryWriteAsync(stream, response, stopping).ConfigureAwait(false))
        {
            Interlocked.Increment(ref _served);
        }
        else
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    private async Task<bool> TryWriteAsync(Stream stream, IMessage response, CancellationToken stopping)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            timeout.CancelAfter(_requestTimeout);
            await EndpointWire.WriteAsync(stream, response, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
        {
            _log?.Invoke($"endpoint API: response not delivered: {(e is OperationCanceledException ? "timed out" : e.Message)}");
            return false;
        }
    }

    /// <summary>A response that carries only an error.</summary>
    public static Response ErrorResponse(uint code, string msg, string details = "") =>
        new() { Error = new Error { Code = code, Msg = msg, Details = details } };

    /// <summary>Stops accepting, cancels and awaits the requests in flight, and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        Task[] inFlight;
        lock (_gate)
        {
            inFlight = [.. _connections];
        }
        await Task.WhenAll(inFlight).ConfigureAwait(false);
        if (_listener is not null)
        {
            try
            {
                File.Delete(_socketPath);
            }
            catch (IOException)
            {
            }
        }
        _stopping.Dispose();
        _slots.Dispose();
    }
}
