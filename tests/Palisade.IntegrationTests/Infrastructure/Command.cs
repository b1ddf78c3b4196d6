using System.Diagnostics;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>What a finished command printed and returned.</summary>
internal sealed record CommandResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs commands the tests need (ip, ping, sh) with a bound on how long they may take.</summary>
internal static class Command
{
    public static CommandResult Run(string file, params string[] args) => Run(TimeSpan.FromSeconds(60), file, args);

    public static CommandResult Run(TimeSpan timeout, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeout.TotalSeconds} s");
        }
        return new CommandResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs and throws with the output when the exit code is not 0.</summary>
    public static string Check(string file, params string[] args)
    {
        var result = Run(file, args);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"`{file} {string.Join(' ', args)}` exited {result.ExitCode}: {result.Stderr}{result.Stdout}");
        }
        return result.Stdout;
    }

    /// <summary>Polls <paramref name="condition"/> until true or the bound passes; the bound is a safety net, not a timing assertion.</summary>
    public static bool WaitUntil(Func<bool> condition, TimeSpan bound)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < bound)
        {
            if (condition())
            {
                return true;
            }
            Thread.Sleep(20);
        }
        return condition();
    }
}
