using System.Buffers.Binary;
using System.Net.Sockets;
using Palisade.Cni.Api;

namespace Palisade.Tests.Cni;

/// <summary>The endpoint API's unix socket: one exchange per connection, many at once, and nothing a client does stops the server.</summary>
public sealed class EndpointApiTransportTests
{
    private static Request Add(string id) => new() { Add = new AddRequest { Attachment = new Attachment { ContainerId = id, Ifname = "eth0" }, Netns = "/run/netns/" + id } };

    [Fact]
    public async Task AClientGetsTheHandlersResponse()
    {
        await using var agent = await FakeAgent.StartAsync();

        var response = await new EndpointApiClient(agent.SocketPath).SendAsync(Add("c1"), TestContext.Current.CancellationToken);

        Assert.Equal(FakeEndpointApi.SampleResult("/run/netns/c1"), response.Result);
        Assert.Equal("c1", Assert.Single(agent.Api.Requests).Add.Attachment.ContainerId);
    }

    [Fact]
    public async Task TheSocketIsRootOnlyInADirectoryItCreates()
    {
        var root = FakeAgent.NewDirectory();
        var path = Path.Combine(root, "run", "palisade", "endpoint.sock");
        try
        {
            await using (var server = new EndpointApiServer(path, new FakeEndpointApi()))
            {
                await server.StartAsync(TestContext.Current.CancellationToken);

                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
            }
            Assert.False(File.Exists(path));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task FiftyConcurrentClientsAreAllAnswered()
    {
        var api = new FakeEndpointApi();
        var release = new TaskCompletionSource();
        var inHandler = 0;
        var slowApi = new DelegatingApi(async (request, ct) =>
        {
            // Every request waits until all 50 are inside the handler: they are served at once, not in turn.
            if (Interlocked.Increment(ref inHandler) == 50)
            {
                release.SetResult();
            }
            await release.Task.WaitAsync(ct);
            return await api.HandleAsync(request, ct);
        });
        await using var agent = await FakeAgent.StartAsync(slowApi);
        var client = new EndpointApiClient(agent.SocketPath);

        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => client.SendAsync(Add($"c{i}"), TestContext.Current.CancellationToken)));

        Assert.All(responses, r => Assert.NotNull(r.Result));
        Assert.Equal(50, api.Requests.Count);
    }

    [Fact]
    public async Task ABadFrameGetsADecodeErrorAndTheServerGoesOn()
    {
        await using var agent = await FakeAgent.StartAsync();
        using var raw = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await raw.ConnectAsync(new UnixDomainSocketEndPoint(agent.SocketPath), TestContext.Current.CancellationToken);
        await using var stream = new NetworkStream(raw);
        var frame = new byte[4 + 3];
        BinaryPrimitives.WriteInt32BigEndian(frame, 3);
        frame[4] = 0xff; // not a protobuf field tag
        await stream.WriteAsync(frame, TestContext.Current.CancellationToken);

        var error = await EndpointWire.ReadAsync(stream, Response.Parser, TestContext.Current.CancellationToken);
        var next = await new EndpointApiClient(agent.SocketPath).SendAsync(Add("c2"), TestContext.Current.CancellationToken);

        Assert.Equal(6u, error.Error.Code);
        Assert.NotNull(next.Result);
    }

    [Fact]
    public async Task AnOversizedFrameClosesOnlyThatConnection()
    {
        await using var agent = await FakeAgent.StartAsync();
        using var raw = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await raw.ConnectAsync(new UnixDomainSocketEndPoint(agent.SocketPath), TestContext.Current.CancellationToken);
        await raw.SendAsync(new byte[] { 0x7f, 0xff, 0xff, 0xff }, TestContext.Current.CancellationToken);

        var response = await EndpointWire.ReadAsync(new NetworkStream(raw), Response.Parser, TestContext.Current.CancellationToken);
        var next = await new EndpointApiClient(agent.SocketPath).SendAsync(Add("c3"), TestContext.Current.CancellationToken);

        Assert.Contains("frame of 2147483647 bytes", response.Error.Details, StringComparison.Ordinal);
        Assert.NotNull(next.Result);
    }

    [Fact]
    public async Task AHandlerThatThrowsIsError999()
    {
        await using var agent = await FakeAgent.StartAsync(new DelegatingApi((_, _) => throw new InvalidOperationException("IPAM is on fire")));

        var response = await new EndpointApiClient(agent.SocketPath).SendAsync(Add("c4"), TestContext.Current.CancellationToken);

        Assert.Equal(999u, response.Error.Code);
        Assert.Contains("IPAM is on fire", response.Error.Msg, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AClientThatSendsNothingIsDroppedWithoutHoldingOthers()
    {
        var directory = FakeAgent.NewDirectory();
        try
        {
            await using var server = new EndpointApiServer(Path.Combine(directory, "e.sock"), new FakeEndpointApi(), requestTimeout: TimeSpan.FromMilliseconds(200), maxConcurrentConnections: 1);
            await server.StartAsync(TestContext.Current.CancellationToken);
            using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await silent.ConnectAsync(new UnixDomainSocketEndPoint(server.SocketPath), TestContext.Current.CancellationToken);

            // One slot only: this is answered once the silent client has timed out.
            var response = await new EndpointApiClient(server.SocketPath).SendAsync(Add("c5"), TestContext.Current.CancellationToken);

            Assert.NotNull(response.Result);
            Assert.Equal(1, server.Dropped);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task AStaleSocketFileIsReplaced()
    {
        var directory = FakeAgent.NewDirectory();
        var path = Path.Combine(directory, "e.sock");
        try
        {
            using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                dead.Bind(new UnixDomainSocketEndPoint(path)); // bound, never listening: what a killed agent leaves
            }
            await using var server = new EndpointApiServer(path, new FakeEndpointApi());

            await server.StartAsync(TestContext.Current.CancellationToken);

            Assert.NotNull((await new EndpointApiClient(path).SendAsync(Add("c6"), TestContext.Current.CancellationToken)).Result);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task ASocketInUseOrAFileIsNotTakenOver()
    {
        await using var agent = await FakeAgent.StartAsync();
        var file = Path.Combine(agent.Directory, "not-a-socket");
        await File.WriteAllTextAsync(file, "keep me", TestContext.Current.CancellationToken);

        var inUse = await Assert.ThrowsAsync<IOException>(() => new EndpointApiServer(agent.SocketPath, new FakeEndpointApi()).StartAsync(TestContext.Current.CancellationToken));
        var notSocket = await Assert.ThrowsAsync<IOException>(() => new EndpointApiServer(file, new FakeEndpointApi()).StartAsync(TestContext.Current.CancellationToken));

        Assert.Contains("is in use by another process", inUse.Message, StringComparison.Ordinal);
        Assert.Contains("exists and is not a socket", notSocket.Message, StringComparison.Ordinal);
        Assert.Equal("keep me", await File.ReadAllTextAsync(file, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task NoAgentIsUnreachableNamingTheSocket()
    {
        var directory = FakeAgent.NewDirectory();
        try
        {
            var path = Path.Combine(directory, "none.sock");

            var e = await Assert.ThrowsAsync<EndpointUnreachableException>(() => new EndpointApiClient(path).SendAsync(Add("c7"), TestContext.Current.CancellationToken));

            Assert.Equal($"the Palisade agent is not reachable at {path}: the socket does not exist", e.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private sealed class DelegatingApi(Func<Request, CancellationToken, Task<Response>> handle) : IEndpointApi
    {
        public Task<Response> HandleAsync(Request request, CancellationToken cancellationToken) => handle(request, cancellationToken);
    }
}
