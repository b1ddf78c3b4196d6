namespace Palisade.Tests;

/// <summary>Locates files of the repository (docs, shared/) from the test binary.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string File(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "Palisade.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"Palisade.sln not found above {AppContext.BaseDirectory}.");
    }
}
