using Palisade.Policies;
using Palisade.Policies.Tracing;

namespace Palisade.Cli;

/// <summary>`palisade policy validate`: every error of every file with its field path and line, exit code 1 when any file has one.</summary>
internal static class PolicyValidation
{
    public static int Run(IReadOnlyList<FileInfo> files, TextWriter output, TextWriter error)
    {
        var failed = false;
        foreach (var file in files)
        {
            string text;
            try
            {
                text = File.ReadAllText(file.FullName);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A missing file, a directory or no permission: say which, as for a bad policy.
                error.WriteLine($"{file.FullName}: cannot be read ({e.Message})");
                failed = true;
                continue;
            }
            var result = TracingPolicyParser.Parse(text, file.Name);
            foreach (var e in result.Errors)
            {
                output.WriteLine($"{file.Name}: {e}");
            }
            foreach (var note in result.Skipped)
            {
                output.WriteLine($"{file.Name}: skipped {note}");
            }
            if (result.Ok)
            {
                output.WriteLine($"{file.Name}: ok ({string.Join(", ", result.Policies.Select(p => $"{p.Kind} {p.Name}"))})");
            }
            failed |= !result.Ok;
        }
        return failed ? 1 : 0;
    }
}
