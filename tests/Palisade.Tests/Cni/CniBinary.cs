using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Palisade.Tests.Cni;

/// <summary>Runs the published ./artifacts/palisade-cni exactly as a runtime does: CNI_* environment only, config on stdin, stdout and exit code read back.</summary>
internal static class CniBinary
{
    public static string Path { get; } = RepoPaths.File("artifacts", "palisade-cni");

    public sealed record Outcome(int ExitCode, string Stdout, string Stderr)
    {
        public JsonNode Json => JsonNode.Parse(Stdout) ?? throw new InvalidOperationException("stdout is JSON null");

        public uint Code => (uint)Json["code"]!;

        public string Msg => (string)Json["msg"]!;
    }

    public static async Task<Outcome> RunAsync(IReadOnlyDictionary<string, string> environment, string stdin)
    {
        if (!File.Exists(Path))
        {
            throw new FileNotFoundException($"{Path} is missing: ./build.sh publishes it (or run: dotnet publish agent/Palisade.Cni -c Release -r linux-x64 -p:PublishAot=true -o artifacts/publish/palisade-cni && cp artifacts/publish/palisade-cni/palisade-cni artifacts/)");
        }
        var start = new ProcessStartInfo(Path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment.Clear();
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a safety net, not a timing assertion
        await process.WaitForExitAsync(timeout.Token);
        return new Outcome(process.ExitCode, (await stdout).Trim(), await stderr);
    }

    public static Dictionary<string, string> Env(string command, string containerId = "c0ffee01", string ifname = "eth0", string netns = "/run/netns/pod1", string? args = null)
    {
        var env = new Dictionary<string, string> { ["CNI_COMMAND"] = command, ["CNI_PATH"] = "/opt/cni/bin" };
        if (command is "ADD" or "DEL" or "CHECK")
        {
            env["CNI_CONTAINERID"] = containerId;
            env["CNI_IFNAME"] = ifname;
            if (netns.Length > 0)
            {
                env["CNI_NETNS"] = netns;
            }
        }
        if (args is not null)
        {
            env["CNI_ARGS"] = args;
        }
        return env;
    }
}
