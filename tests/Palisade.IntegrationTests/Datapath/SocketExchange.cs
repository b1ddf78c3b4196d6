using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Palisade.Datapath;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>One TCP or UDP message from a client to a server, each in a pod or on the host, with netcat.</summary>
internal static class SocketExchange
{
    /// <summary>Sends <paramref name="message"/> and returns what the server received (empty when nothing came).</summary>
    public static string Send(Endpoint? client, Endpoint? server, IPAddress serverAddress, int port, bool udp, string message)
    {
        var portText = port.ToString(CultureInfo.InvariantCulture);
        var family = serverAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "-6" : "-4";
        string[] serverArgs = udp
            ? ["timeout", "20", "nc", family, "-u", "-l", serverAddress.ToString(), portText]
            : ["timeout", "20", "nc", family, "-l", serverAddress.ToString(), portText];
        var received = new StringBuilder();
        using var process = Start(server, serverArgs, received);
        try
        {
            var listening = Command.WaitUntil(() => Listening(server, port, udp), TimeSpan.FromSeconds(10));
            Assert.True(listening, $"nc did not start listening on {serverAddress} port {port}");
            string[] clientArgs = udp
                ? ["sh", "-c", $"echo {message} | timeout 10 nc {family} -u -w 1 {serverAddress} {portText}"]
                : ["sh", "-c", $"echo {message} | timeout 10 nc {family} -N -w 5 {serverAddress} {portText}"];
            var result = client is null
                ? Command.Run(clientArgs[0], clientArgs[1..])
                : Command.Run("ip", ["netns", "exec", TestPods.Namespace(client), .. clientArgs]);
            Command.WaitUntil(() => Text(received).Contains(message, StringComparison.Ordinal), TimeSpan.FromSeconds(10));
            var text = Text(received);
            return text.Length > 0 ? text : $"(nothing; client exited {result.ExitCode}: {result.Stderr})";
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
            process.WaitForExit();
        }
    }

    private static string Text(StringBuilder sb)
    {
        lock (sb)
        {
            return sb.ToString();
        }
    }

    private static bool Listening(Endpoint? pod, int port, bool udp)
    {
        string[] ss = ["ss", "-Hn", udp ? "-lu" : "-lt", "sport", "=", ":" + port.ToString(CultureInfo.InvariantCulture)];
        var result = pod is null ? Command.Run(ss[0], ss[1..]) : Command.Run("ip", ["netns", "exec", TestPods.Namespace(pod), .. ss]);
        return result.ExitCode == 0 && result.Stdout.Trim().Length > 0;
    }

    private static Process Start(Endpoint? pod, string[] args, StringBuilder output)
    {
        var psi = new ProcessStartInfo(pod is null ? args[0] : "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in pod is null ? args[1..] : ["netns", "exec", TestPods.Namespace(pod), .. args])
        {
            psi.ArgumentList.Add(arg);
        }
        var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start nc");
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                lock (output)
                {
                    output.AppendLine(line);
                }
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
