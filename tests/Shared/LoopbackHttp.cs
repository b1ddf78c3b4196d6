using System.Net;
using System.Net.Sockets;

namespace Palisade.Tests.Shared;

/// <summary>
/// Starts an <see cref="HttpListener"/> on a free loopback port. A port found free can be taken
/// by another test before the listener binds it (the suites run in parallel), so a bind that
/// fails is retried on a new port instead of failing the test.
/// </summary>
public static class LoopbackHttp
{
    public static (HttpListener Listener, int Port) Start()
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                return (listener, port);
            }
            catch (HttpListenerException) when (attempt < 20)
            {
                try
                {
                    listener.Close();
                }
                catch (HttpListenerException)
                {
                    // Closing a listener that never bound can throw the same error again.
                }
            }
        }
    }

    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }
}
