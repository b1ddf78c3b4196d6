using System.Diagnostics;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>Traffic between test namespaces: pings and one-connection TCP exchanges whose processes are known by pid.</summary>
internal static class PodTraffic
{
    public const string Busybox = "/usr/bin/busybox";

    /// <summary>Two echo requests from <paramref name="netns"/> (null: the root namespace); fails the test without replies.</summary>
    public static void Ping(string? netns, string address)
    {
        // -W bounds the wait for a reply on a loaded machine; a safety net, not a timing assertion.
        string[] ping = ["ping", "-c", "2", "-W", "10", address];
        var args = netns is null ? ping : ["ip", "netns", "exec", netns, .. ping];
        var result = Command.Run(args[0], args[1..]);
        Assert.True(result.ExitCode == 0, $"ping {address} from {netns ?? "the root namespace"}: {result.Stdout}{result.Stderr}");
    }

    /// <summary>
    /// One TCP connection: busybox nc listens in <paramref name="serverNetns"/> and answers
    /// "pong", busybox nc in <paramref name="clientNetns"/> connects and reads it. Both are started as
    /// `ip netns exec NS busybox nc`, which execs in place, so their pids are the processes that
    /// own the sockets. Returns the reply and the two pids.
    /// </summary>
    public static (string Reply, int ServerPid, int ClientPid) TcpExchange(string serverNetns, string clientNetns, string address, int port)
    {
        using var server = Start(serverNetns, [Busybox, "nc", "-l", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        try
        {
            server.StandardInput.WriteLine("pong");
            server.StandardInput.Close();
            Assert.True(Command.WaitUntil(() => Command.Run("ip", "netns", "exec", serverNetns, "ss", "-Hltn", $"sport = :{port}").Stdout.Contains($":{port}", StringComparison.Ordinal),
                TimeSpan.FromSeconds(30)), $"the server in {serverNetns} never listened on {port}");
            // -w 10 bounds a connection that never completes; a safety net, not a timing assertion.
            using var client = Start(clientNetns, [Busybox, "nc", "-w", "10", address, port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            client.StandardInput.Close();
            var reply = client.StandardOutput.ReadToEndAsync();
            var errors = client.StandardError.ReadToEndAsync();
            Assert.True(client.WaitForExit(TimeSpan.FromSeconds(60)), $"the client in {clientNetns} never finished");
            Assert.True(reply.Result.Trim() == "pong", $"{clientNetns} -> {address}:{port}: exit {client.ExitCode}, got \"{reply.Result}\" {errors.Result}");
            return (reply.Result.Trim(), server.Id, client.Id);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }
        }
    }

    private static Process Start(string netns, string[] command) =>
        Process.Start(new ProcessStartInfo("ip", ["netns", "exec", netns, .. command])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
}
