using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Palisade.IntegrationTests.Infrastructure;
using T = Palisade.Api.Tetragon;

namespace Palisade.IntegrationTests;

/// <summary>
/// Tetragon's gRPC API against the real agent, through a client generated from our copy of
/// Tetragon's protos (field numbers pinned to Tetragon's by TetragonProtoTests): what `tetra`
/// does, on the root-only unix socket and on TCP as `--server-address localhost:PORT`.
/// </summary>
public sealed class TetragonApiTests : IDisposable
{
    private readonly string _dir;

    public TetragonApiTests()
    {
        Kernel.Require();
        _dir = Directory.CreateTempSubdirectory("pal-tetra-").FullName;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static GrpcChannel Channel(string address)
    {
        if (!address.StartsWith("unix://", StringComparison.Ordinal))
        {
            return GrpcChannel.ForAddress($"http://{address}");
        }
        var path = address["unix://".Length..];
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), token).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        return GrpcChannel.ForAddress("http://palisade", new GrpcChannelOptions { HttpHandler = handler });
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static T.TracingPolicyStatus? Find(T.FineGuidanceSensors.FineGuidanceSensorsClient client, string name) =>
        client.ListTracingPolicies(new T.ListTracingPoliciesRequest(), cancellationToken: Ct).Policies.SingleOrDefault(p => p.Name == name);

#pragma warning disable CS0612 // EnableTracingPolicy/DisableTracingPolicy are deprecated in Tetragon's API; tetra still calls them
    [Fact]
    public void PoliciesAreListedAddedDisabledEnabledAndDeletedAsWithTetra()
    {
        using var agent = AgentProcess.Start();
        agent.WaitReady();
        using var channel = Channel(agent.ApiAddress);
        var client = new T.FineGuidanceSensors.FineGuidanceSensorsClient(channel);

        Assert.Equal(T.HealthStatusResult.HealthStatusRunning, client.GetHealth(new T.GetHealthStatusRequest(), cancellationToken: Ct).HealthStatus.Single().Status);
        Assert.Matches(@"^\d+\.\d+\.\d+$", client.GetVersion(new T.GetVersionRequest(), cancellationToken: Ct).Version);
        Assert.Null(Find(client, "tetra-kill"));

        var forbidden = Path.Combine(_dir, "forbidden") + "/";
        client.AddTracingPolicy(new T.AddTracingPolicyRequest { Yaml = TestPolicies.ExecPrefixKill("tetra-kill", forbidden) }, cancellationToken: Ct);
        var added = Find(client, "tetra-kill");
        Assert.NotNull(added);
        Assert.Equal(T.TracingPolicyState.TpStateEnabled, added.State);
        Assert.Equal(T.TracingPolicyMode.TpModeEnforce, added.Mode);
        Assert.Equal("kprobes", added.HookStatuses.Single().Section);
        Assert.Contains("kprobe:security_bprm_check", added.Sensors);

        client.DisableTracingPolicy(new T.DisableTracingPolicyRequest { Name = "tetra-kill" }, cancellationToken: Ct);
        Assert.Equal(T.TracingPolicyState.TpStateDisabled, Find(client, "tetra-kill")!.State);
        client.EnableTracingPolicy(new T.EnableTracingPolicyRequest { Name = "tetra-kill" }, cancellationToken: Ct);
        Assert.Equal(T.TracingPolicyState.TpStateEnabled, Find(client, "tetra-kill")!.State);
        client.ConfigureTracingPolicy(new T.ConfigureTracingPolicyRequest { Name = "tetra-kill", Mode = T.TracingPolicyMode.TpModeMonitor }, cancellationToken: Ct);
        Assert.Equal(T.TracingPolicyMode.TpModeMonitor, Find(client, "tetra-kill")!.Mode);
        // One engine behind both APIs: ours sees what Tetragon's changed.
        Assert.Matches(@"tetra-kill\s+enabled\s+monitor", agent.Cli("policy", "list").Stdout);

        client.DeleteTracingPolicy(new T.DeleteTracingPolicyRequest { Name = "tetra-kill" }, cancellationToken: Ct);
        Assert.Null(Find(client, "tetra-kill"));
        var again = Assert.Throws<RpcException>(() => client.DeleteTracingPolicy(new T.DeleteTracingPolicyRequest { Name = "tetra-kill" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, again.StatusCode);
        Assert.Contains("no policy named \"tetra-kill\"", again.Status.Detail, StringComparison.Ordinal);

        var bad = Assert.Throws<RpcException>(() => client.AddTracingPolicy(new T.AddTracingPolicyRequest { Yaml = "kind: TracingPolicy\nspec: [" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        var domains = Assert.Throws<RpcException>(() => client.ListDomains(new T.ListDomainsRequest(), cancellationToken: Ct));
        Assert.Equal(StatusCode.Unimplemented, domains.StatusCode);
        Assert.Contains("ListDomains", domains.Status.Detail, StringComparison.Ordinal);
        var hook = Assert.Throws<RpcException>(() => client.RuntimeHook(new T.RuntimeHookRequest(), cancellationToken: Ct));
        Assert.Equal(StatusCode.Unimplemented, hook.StatusCode);
        Assert.Contains("RuntimeHook", hook.Status.Detail, StringComparison.Ordinal);
    }
#pragma warning restore CS0612

    [Fact]
    public async Task ProcessExecEventsStreamOnTcpWithAnAllowFilterAndAFieldMask()
    {
        var address = $"localhost:{FreePort()}";
        using var agent = AgentProcess.Start("--server-address", address);
        agent.WaitReady();
        using var channel = Channel(address);
        var client = new T.FineGuidanceSensors.FineGuidanceSensorsClient(channel);
        var marker = Path.Combine(_dir, "tetra-marker");
        File.Copy("/usr/bin/true", marker);
        File.SetUnixFileMode(marker, UnixFileMode.UserRead | UnixFileMode.UserExecute);

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cancel.CancelAfter(TimeSpan.FromSeconds(60));
        using var call = client.GetEvents(new T.GetEventsRequest
        {
            AllowList = { new T.Filter { BinaryRegex = { "tetra-marker$" }, EventSet = { T.EventType.ProcessExec } } },
            FieldFilters =
            {
                new T.FieldFilter
                {
                    EventSet = { T.EventType.ProcessExec },
                    Fields = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "process.binary", "process.arguments", "process.pid", "parent.binary" } },
                    Action = T.FieldFilterAction.Include,
                },
            },
        }, cancellationToken: cancel.Token);

        // The stream subscribes when the call reaches the agent, which the client cannot see:
        // the marker runs again until its exec arrives, so no exec is missed to a race.
        var next = call.ResponseStream.MoveNext(cancel.Token);
        var runs = 0;
        while (!next.IsCompleted && !cancel.IsCancellationRequested)
        {
            Assert.Equal(0, Command.Run(marker, "tetragon-api", $"run-{++runs}").ExitCode);
            await Task.WhenAny(next, Task.Delay(250, cancel.Token)).ConfigureAwait(true);
        }
        Assert.True(await next.ConfigureAwait(true), "the stream ended without an event:\n" + agent.Log);

        var e = call.ResponseStream.Current;
        Assert.Equal(T.GetEventsResponse.EventOneofCase.ProcessExec, e.EventCase);
        Assert.False(string.IsNullOrEmpty(e.NodeName));
        Assert.NotNull(e.Time);
        var process = e.ProcessExec.Process;
        Assert.Equal(marker, process.Binary);
        Assert.StartsWith("tetragon-api run-", process.Arguments, StringComparison.Ordinal);
        Assert.True(process.Pid > 0);
        // The mask kept only what it named.
        Assert.Equal("", process.ExecId);
        Assert.Equal("", process.Cwd);
        Assert.Null(process.StartTime);
        Assert.False(string.IsNullOrEmpty(e.ProcessExec.Parent.Binary));
        Assert.Equal("", e.ProcessExec.Parent.ExecId);

        // Our own API answers on the same TCP address.
        Assert.Equal(0, Command.Run(AgentProcess.Launcher(), "policy", "list", "--server-address", address).ExitCode);
        await cancel.CancelAsync().ConfigureAwait(true);
    }

    private static X509Certificate2 Issue(string name, X509Certificate2? issuer, bool authority, string usage)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(authority, false, 0, true));
        if (authority)
        {
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        }
        else
        {
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
        }
        var from = DateTimeOffset.UtcNow.AddDays(-1);
        var until = from.AddDays(authority ? 60 : 30); // a leaf may not outlive its issuer
        using var cert = issuer is null ? request.CreateSelfSigned(from, until)
            : request.Create(issuer, from, until, RandomNumberGenerator.GetBytes(8));
        // Through PKCS#12 so the key is usable by the TLS stack, not only in this process' memory.
        using var withKey = cert.HasPrivateKey ? new X509Certificate2(cert) : cert.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pfx), null, X509KeyStorageFlags.Exportable);
    }

    private static string Write(string dir, string name, string pem)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, pem);
        return path;
    }

    [Fact]
    public void MutualTlsRefusesAClientWithoutACertificateFromTheClientCas()
    {
        using var ca = Issue("palisade-test-ca", null, true, "");
        using var rogueCa = Issue("rogue-ca", null, true, "");
        using var server = Issue("localhost", ca, false, "1.3.6.1.5.5.7.3.1");
        using var client = Issue("tetra", ca, false, "1.3.6.1.5.5.7.3.2");
        using var rogue = Issue("rogue", rogueCa, false, "1.3.6.1.5.5.7.3.2");
        var address = $"localhost:{FreePort()}";
        using var agent = AgentProcess.Start("--server-address", address,
            "--server-tls-cert-file", Write(_dir, "server.pem", server.ExportCertificatePem()),
            "--server-tls-key-file", Write(_dir, "server.key", server.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem()),
            "--server-tls-client-ca-files", Write(_dir, "ca.pem", ca.ExportCertificatePem()),
            "--server-tls-require-client-cert", "true");
        agent.WaitReady();

        T.GetVersionResponse Version(X509Certificate2? certificate)
        {
            var handler = new SocketsHttpHandler();
            handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) => presented?.GetCertHashString() == server.GetCertHashString();
            if (certificate is not null)
            {
                handler.SslOptions.ClientCertificates = [certificate];
            }
            using var channel = GrpcChannel.ForAddress($"https://{address}", new GrpcChannelOptions { HttpHandler = handler });
            return new T.FineGuidanceSensors.FineGuidanceSensorsClient(channel).GetVersion(new T.GetVersionRequest(), cancellationToken: Ct);
        }

        Assert.Matches(@"^\d+\.\d+\.\d+$", Version(client).Version);
        Assert.Throws<RpcException>(() => Version(null));
        Assert.Throws<RpcException>(() => Version(rogue));
    }
}
