namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// A container root filesystem made of Debian's static busybox (static: the rootfs has no libc) and one link per applet, in a
/// folder the caller owns. No image registry is reachable here, so containers run from this
/// with `podman run --rootfs`.
/// </summary>
internal static class BusyboxRootfs
{
    // busybox-static installs here; /usr/bin/busybox on merged-/usr systems is the same file.
    private static readonly string[] s_candidates = ["/bin/busybox", "/usr/bin/busybox"];

    /// <summary>Builds the rootfs in <paramref name="dir"/> (created) and returns it.</summary>
    public static string Build(string dir)
    {
        var busybox = s_candidates.FirstOrDefault(File.Exists);
        Assert.True(busybox is not null, "busybox is missing: apt-get install busybox-static (build.sh installs it)");
        foreach (var sub in new[] { "bin", "dev", "etc", "proc", "sys", "tmp", "run" })
        {
            Directory.CreateDirectory(Path.Combine(dir, sub));
        }
        var target = Path.Combine(dir, "bin", "busybox");
        File.Copy(busybox!, target, overwrite: true);
        File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var applets = Command.Check(target, "--list").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var applet in applets)
        {
            // The list names busybox itself: a link there would replace the binary with a loop.
            if (applet == "busybox" || applet.Contains('/', StringComparison.Ordinal))
            {
                continue;
            }
            File.CreateSymbolicLink(Path.Combine(dir, "bin", applet), "busybox");
        }
        Assert.True(File.Exists(Path.Combine(dir, "bin", "sh")), $"{busybox} --list has no sh applet");
        return dir;
    }
}
