namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>The C helper programs built next to the tests (helpers/*.c).</summary>
internal static class Helpers
{
    public static string Path(string name)
    {
        var path = System.IO.Path.Combine(AppContext.BaseDirectory, "helpers", name);
        Assert.True(File.Exists(path), $"{path} is missing: the test build compiles helpers/{name}.c with gcc");
        return path;
    }

    /// <summary>The canonical path, as the kernel's dentry walk reports it (e.g. /bin/echo is /usr/bin/echo on merged-/usr systems).</summary>
    public static string RealPath(string path) => Command.Check("realpath", path).Trim();
}
