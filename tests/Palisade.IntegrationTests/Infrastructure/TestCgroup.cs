using Palisade.Bpf;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>A cgroup v2 directory made for one test; processes the test starts are placed in it. Removed on dispose.</summary>
internal sealed class TestCgroup : IDisposable
{
    public TestCgroup()
    {
        var root = KernelEnvironment.Cgroup2Root() ?? throw new InvalidOperationException("cgroup2 is not mounted");
        Path = System.IO.Path.Combine(root, $"palisade-test-{Environment.ProcessId}-{Guid.NewGuid():N}"[..48]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>A shell prefix that moves the shell into this cgroup before running the rest.</summary>
    public string EnterCommand => $"echo $$ > {Path}/cgroup.procs";

    public void Dispose() => Remove(Path);

    /// <summary>Removes an empty cgroup directory; the processes placed there have exited, but the kernel may need a moment to notice.</summary>
    public static void Remove(string path) =>
        Command.WaitUntil(() =>
        {
            try
            {
                Directory.Delete(path);
                return true;
            }
            catch (IOException)
            {
                return !Directory.Exists(path);
            }
        }, TimeSpan.FromSeconds(10));
}
