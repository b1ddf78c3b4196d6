namespace Palisade.Cni.Api;

/// <summary>
/// The agent's side of the endpoint API: one request in, one response out. Implementations
/// answer every failure with <see cref="Response.Error"/> (a CNI error code and message);
/// an exception thrown here becomes error 999 with its message, never a dropped connection.
/// </summary>
public interface IEndpointApi
{
    Task<Response> HandleAsync(Request request, CancellationToken cancellationToken);
}
