using Palisade.Events;
using Palisade.Runtime.Processes;

namespace Palisade.Tests;

/// <summary>The host namespaces that decide is_host: pid 1's, or the kernel's initial ones where pid 1 is hidden.</summary>
public sealed class HostNamespacesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("pal-procns-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Links(string pid, Func<string, uint> inum)
    {
        var ns = Directory.CreateDirectory(Path.Combine(_root, pid, "ns")).FullName;
        foreach (var name in NamespaceKinds.Names)
        {
            File.CreateSymbolicLink(Path.Combine(ns, name), $"{name}:[{inum(name)}]");
        }
    }

    private static int Kind(string name) => Array.IndexOf(NamespaceKinds.Names, name);

    [Fact]
    public void PidOnesNamespacesAreTheHostsWhenReadable()
    {
        Links("1", n => 1000u + (uint)Kind(n));
        Links("self", _ => 7);
        Assert.Equal(NamespaceKinds.Names.Select(n => 1000u + (uint)Kind(n)), ProcFs.ReadHostNamespaces(_root));
    }

    [Fact]
    public void WithPidOneHiddenTheInitialNamespacesStandInAndMntAndNetAreOurOwn()
    {
        Links("self", n => 5000u + (uint)Kind(n));
        var host = ProcFs.ReadHostNamespaces(_root);
        Assert.Equal(0xEFFFFFFDu, host[Kind("user")]);
        Assert.Equal(0xEFFFFFFCu, host[Kind("pid")]);
        Assert.Equal(0xEFFFFFFEu, host[Kind("uts")]);
        Assert.Equal(0xEFFFFFFFu, host[Kind("ipc")]);
        Assert.Equal(0xEFFFFFFBu, host[Kind("cgroup")]);
        Assert.Equal(0xEFFFFFFAu, host[Kind("time")]);
        Assert.Equal(5000u + (uint)Kind("mnt"), host[Kind("mnt")]);
        Assert.Equal(5000u + (uint)Kind("net"), host[Kind("net")]);
    }
}
