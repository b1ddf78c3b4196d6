using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Palisade.Agent;
using Palisade.Agent.Configuration;
using Palisade.Cni.Api;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Endpoints;

/// <summary>The agent's pod-networking service: off without a pod CIDR; with one, the conflist appears only once the socket answers and goes on a clean stop.</summary>
public sealed class DatapathServiceTests
{
    [Fact]
    public async Task WithoutAPodCidrNothingIsTouched()
    {
        var options = AgentConfiguration.Resolve([]);
        var service = new DatapathService(options, new DatapathParts(), NullLogger<DatapathService>.Instance);

        await service.StartAsync(TestContext.Current.CancellationToken);

        Assert.Equal("off", service.State);
        Assert.Null(service.Endpoints);
        await service.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task TheConflistIsWrittenOnceTheSocketAnswersAndRemovedOnStop()
    {
        Kernel.RequireRoot();
        var blackhole = PodCidrBlackhole.Acquire();
        var id = Random.Shared.Next(0x1000, 0xffff).ToString("x4", CultureInfo.InvariantCulture);
        var subnet = Random.Shared.Next(1, 240);
        var dir = Path.Combine(Path.GetTempPath(), $"palisade-dps-{id}-{Guid.NewGuid():N}"[..32]);
        var device = $"palh{id}";
        var ns = $"pal-dps-{id}";
        DatapathService? service = null;
        try
        {
            Command.Check("ip", "netns", "add", ns);
            var options = AgentConfiguration.Resolve([new SettingsLayer("test", new Dictionary<string, string>
            {
                ["pod-cidr"] = $"10.214.{subnet}.0/24",
                ["pod-cidr-v6"] = $"fd00:214:0:{subnet:x}::/64",
                ["ipam-state-dir"] = Path.Combine(dir, "ipam"),
                ["endpoint-state-dir"] = Path.Combine(dir, "endpoints"),
                ["endpoint-socket"] = Path.Combine(dir, "endpoint.sock"),
                ["cni-del-queue-dir"] = Path.Combine(dir, "del-queue"),
                ["cni-conf-dir"] = Path.Combine(dir, "net.d"),
                ["datapath-host-device"] = device,
            })]);
            service = new DatapathService(options, new DatapathParts(), NullLogger<DatapathService>.Instance);
            Assert.False(File.Exists(Path.Combine(dir, "net.d", "05-palisade.conflist")));

            await service.StartAsync(TestContext.Current.CancellationToken);

            Assert.Equal("running", service.State);
            var conflist = File.ReadAllText(Path.Combine(dir, "net.d", "05-palisade.conflist"));
            Assert.Contains("\"type\": \"palisade-cni\"", conflist, StringComparison.Ordinal);
            Assert.Contains(Path.Combine(dir, "endpoint.sock"), conflist, StringComparison.Ordinal);
            Assert.Contains($"10.214.{subnet}.1/32", Command.Check("ip", "addr", "show", "dev", device), StringComparison.Ordinal);
            var add = await Exchange(Path.Combine(dir, "endpoint.sock"), new Request
            {
                Add = new AddRequest { Attachment = new Attachment { ContainerId = $"ctr-{id}", Ifname = "eth0" }, Netns = $"/var/run/netns/{ns}" },
            });
            Assert.Null(add.Error);
            Assert.Equal($"10.214.{subnet}.2/32", add.Result.Ips[0].Address);
            using (var status = new MemoryStream())
            {
                await using (var w = new System.Text.Json.Utf8JsonWriter(status))
                {
                    w.WriteStartObject();
                    service.WriteStatus(w);
                    w.WriteEndObject();
                }
                var datapath = System.Text.Json.JsonDocument.Parse(status.ToArray()).RootElement.GetProperty("datapath");
                Assert.Equal(1, datapath.GetProperty("endpoints").GetInt32());
                Assert.Equal(1, datapath.GetProperty("pools")[0].GetProperty("allocated").GetInt32());
            }

            await service.StopAsync(TestContext.Current.CancellationToken);

            Assert.Equal("stopped", service.State);
            Assert.False(File.Exists(Path.Combine(dir, "net.d", "05-palisade.conflist")));
            Assert.False(File.Exists(Path.Combine(dir, "endpoint.sock")));
            Assert.Equal(0, Command.Run("ip", "link", "show", device).ExitCode); // the gateways stay for the pods
            Assert.Equal(0, Command.Run("ip", "-n", ns, "link", "show", "eth0").ExitCode);
        }
        finally
        {
            if (service is not null)
            {
                await service.DisposeAsync();
            }
            Command.Run("ip", "netns", "delete", ns);
            Command.Run("ip", "link", "del", Palisade.Datapath.Endpoints.EndpointNames.HostInterface(new Palisade.Datapath.AttachmentId($"ctr-{id}", "eth0")));
            Command.Run("ip", "link", "del", device);
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
            PodCidrBlackhole.Release(blackhole);
        }
    }

    private static async Task<Response> Exchange(string socket, Request request)
    {
        using var client = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        await client.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
        await using var stream = new System.Net.Sockets.NetworkStream(client);
        await EndpointWire.WriteAsync(stream, request, CancellationToken.None);
        return await EndpointWire.ReadAsync(stream, Response.Parser, CancellationToken.None);
    }
}
