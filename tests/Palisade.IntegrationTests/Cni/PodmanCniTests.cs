using System.Collections.Concurrent;
using Palisade.Cni.Api;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Cni;

/// <summary>
/// A real container runtime calls the published palisade-cni: podman (CNI backend, libcni)
/// starts a container from a local busybox rootfs on a network whose conflist names our
/// plugin, and the agent (a fake here, on a temp socket) receives the ADD and then the DEL.
/// </summary>
public sealed class PodmanCniTests
{
    [Fact]
    public async Task PodmanCallsThePluginForAddAndDel()
    {
        Kernel.RequireRoot();
        var plugin = Path.Combine(RepoRoot(), "artifacts", "palisade-cni");
        Assert.True(File.Exists(plugin), $"{plugin} is missing: ./build.sh publishes it");
        var id = Guid.NewGuid().ToString("N")[..8];
        var network = $"pal-cni-{id}";
        var root = Directory.CreateTempSubdirectory("pal-podman-").FullName;
        var api = new RecordingApi();
        try
        {
            var plugins = Directory.CreateDirectory(Path.Combine(root, "plugins")).FullName;
            File.CreateSymbolicLink(Path.Combine(plugins, "palisade-cni"), plugin);
            var conflists = Directory.CreateDirectory(Path.Combine(root, "net.d")).FullName;
            var socket = Path.Combine(root, "endpoint.sock");
            await File.WriteAllTextAsync(Path.Combine(conflists, $"{network}.conflist"), $$"""
                {"cniVersion":"1.0.0","name":"{{network}}","plugins":[{"type":"palisade-cni","socket":"{{socket}}","delQueueDir":"{{root}}/q"}]}
                """, TestContext.Current.CancellationToken);
            var conf = Path.Combine(root, "containers.conf");
            await File.WriteAllTextAsync(conf, $"[network]\ncni_plugin_dirs = [\"{plugins}\"]\nnetwork_config_dir = \"{conflists}\"\n", TestContext.Current.CancellationToken);
            var rootfs = Directory.CreateDirectory(Path.Combine(root, "rootfs", "bin")).FullName;
            File.Copy("/usr/bin/busybox", Path.Combine(rootfs, "busybox"));
            File.CreateSymbolicLink(Path.Combine(rootfs, "sh"), "busybox");

            await using var server = new EndpointApiServer(socket, api);
            await server.StartAsync(TestContext.Current.CancellationToken);
            var run = await Task.Run(() => Command.Run(TimeSpan.FromSeconds(120), "env", $"CONTAINERS_CONF={conf}", "podman", "--runtime", "runc", "run", "--rm",
                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", network, "--rootfs", Path.Combine(root, "rootfs"), "/bin/sh", "-c", "exit 0"),
                TestContext.Current.CancellationToken);

            Assert.True(run.ExitCode == 0, $"podman failed ({run.ExitCode}): {run.Stderr}");
            var requests = api.Requests.ToArray();
            Assert.Equal([Request.OpOneofCase.Add, Request.OpOneofCase.Del], requests.Select(r => r.OpCase));
            var add = requests[0].Add;
            Assert.Equal((network, "1.0.0", "eth0"), (add.NetworkName, add.CniVersion, add.Attachment.Ifname));
            Assert.StartsWith("/run/netns/", add.Netns, StringComparison.Ordinal);
            Assert.Equal(add.Attachment, requests[1].Del.Attachment);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Palisade.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Palisade.sln not found");
    }

    /// <summary>The agent's part played by a recorder: ADD gets a plausible result (no interface is really made).</summary>
    private sealed class RecordingApi : IEndpointApi
    {
        public ConcurrentQueue<Request> Requests { get; } = new();

        public Task<Response> HandleAsync(Request request, CancellationToken cancellationToken)
        {
            Requests.Enqueue(request);
            if (request.OpCase != Request.OpOneofCase.Add)
            {
                return Task.FromResult(new Response());
            }
            return Task.FromResult(new Response
            {
                Result = new Result
                {
                    Interfaces = { new Interface { Name = "eth0", Mac = "aa:bb:cc:00:00:02", Sandbox = request.Add.Netns } },
                    Ips = { new IpConfig { Address = "10.234.200.5/24", Gateway = "10.234.200.1", Interface = 0 } },
                },
            });
        }
    }
}
