using System.Collections.Concurrent;
using Palisade.Cni.Api;

namespace Palisade.Tests.Cni;

/// <summary>An agent stand-in: records every request and answers with what the test set (an ADD result by default).</summary>
internal sealed class FakeEndpointApi : IEndpointApi
{
    public ConcurrentQueue<Request> Requests { get; } = new();

    public Func<Request, Response> Answer { get; set; } = request => request.OpCase == Request.OpOneofCase.Add ? new Response { Result = SampleResult(request.Add.Netns) } : new Response();

    public Task<Response> HandleAsync(Request request, CancellationToken cancellationToken)
    {
        Requests.Enqueue(request);
        return Task.FromResult(Answer(request));
    }

    /// <summary>What the agent sets up: host veth, pod eth0 with a v4 and a v6 address, default routes, no DNS.</summary>
    public static Result SampleResult(string netns = "/run/netns/pod") => new()
    {
        Interfaces =
        {
            new Interface { Name = "lxc1a2b3c", Mac = "aa:bb:cc:00:00:01" },
            new Interface { Name = "eth0", Mac = "aa:bb:cc:00:00:02", Sandbox = netns, Mtu = 1500 },
        },
        Ips =
        {
            new IpConfig { Address = "10.200.0.5/24", Gateway = "10.200.0.1", Interface = 1 },
            new IpConfig { Address = "fd00:200::5/64", Gateway = "fd00:200::1", Interface = 1 },
        },
        Routes = { new Route { Dst = "0.0.0.0/0", Gw = "10.200.0.1" }, new Route { Dst = "::/0" } },
    };
}

/// <summary>A fake agent on a unix socket of its own under /tmp (a socket path holds 108 bytes), removed on dispose.</summary>
internal sealed class FakeAgent : IAsyncDisposable
{
    private FakeAgent(string directory, FakeEndpointApi api, EndpointApiServer server)
    {
        Directory = directory;
        Api = api;
        Server = server;
    }

    public string Directory { get; }

    public string SocketPath => Server.SocketPath;

    public FakeEndpointApi Api { get; }

    public EndpointApiServer Server { get; }

    /// <summary>A temp directory that no agent listens in: the DEL queue and dead sockets go here.</summary>
    public static string NewDirectory() => System.IO.Directory.CreateTempSubdirectory("pal-cni-").FullName;

    public static async Task<FakeAgent> StartAsync(IEndpointApi? api = null)
    {
        var directory = NewDirectory();
        var fake = api as FakeEndpointApi ?? new FakeEndpointApi();
        var server = new EndpointApiServer(Path.Combine(directory, "endpoint.sock"), api ?? fake);
        await server.StartAsync();
        return new FakeAgent(directory, fake, server);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
