using System.Diagnostics;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// Runs a program with extra environment variables and optional standard input, the way a
/// container runtime runs a CNI plugin or the tests run podman with their own containers.conf.
/// </summary>
internal static class EnvironmentCommand
{
    public static CommandResult Run(
        string file,
        IEnumerable<string> args,
        IReadOnlyDictionary<string, string> environment,
        string? stdin = null,
        TimeSpan? timeout = null)
    {
        var bound = timeout ?? TimeSpan.FromSeconds(60);
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        // Always close stdin: a plugin reads its config to EOF, and podman must not wait on a terminal.
        try
        {
            if (stdin is not null)
            {
                process.StandardInput.Write(stdin);
            }
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The program exited without reading all of it (e.g. it rejected its environment first): its exit code says why.
        }
        if (!process.WaitForExit(bound))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {bound.TotalSeconds} s");
        }
        return new CommandResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}
