using Palisade.Cni.Api;

namespace Palisade.Datapath.Endpoints;

/// <summary>Serves an <see cref="IEndpointApi"/> to the plugin. The agent's seam for the endpoint socket server.</summary>
public interface IEndpointApiHost : IAsyncDisposable
{
    /// <summary>Listens on <paramref name="socketPath"/> (replacing a stale socket) and answers with <paramref name="api"/>; returns once listening.</summary>
    Task StartAsync(string socketPath, IEndpointApi api, CancellationToken cancellationToken);
}

/// <summary>
/// The endpoint socket the plugin calls: <see cref="EndpointApiServer"/> (root-only 0600
/// socket, stale-socket removal, bounded concurrency, bad frames answered, never a crash).
/// </summary>
public sealed class EndpointSocket(Action<string>? log = null) : IEndpointApiHost
{
    private EndpointApiServer? _server;

    /// <summary>Requests answered so far.</summary>
    public long Served => _server?.Served ?? 0;

    public async Task StartAsync(string socketPath, IEndpointApi api, CancellationToken cancellationToken)
    {
        var server = new EndpointApiServer(socketPath, api, log);
        await server.StartAsync(cancellationToken).ConfigureAwait(false);
        _server = server;
    }

    public async ValueTask DisposeAsync()
    {
        var server = Interlocked.Exchange(ref _server, null);
        if (server is not null)
        {
            await server.DisposeAsync().ConfigureAwait(false);
        }
    }
}
