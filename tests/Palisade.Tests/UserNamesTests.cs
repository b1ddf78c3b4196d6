using Palisade.Events;
using Palisade.Runtime.Processes;

namespace Palisade.Tests;

/// <summary>username-metadata=unix: uid -> name from the host's passwd file, host processes only.</summary>
public sealed class UserNamesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pal-users-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Namespaces Ns(bool hostMnt, bool hostUser) =>
        new([.. NamespaceKinds.Names.Select(n => new NamespaceId(1, n == "mnt" ? hostMnt : n == "user" ? hostUser : true))]);

    [Fact]
    public void PasswdLinesGiveTheFirstNameOfEachUidAndSkipWhatIsNotAnEntry()
    {
        var names = UserNames.Parse("""
            root:x:0:0:root:/root:/bin/bash
            # a comment
            daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

            toor:x:0:0:second name of uid 0:/root:/bin/sh
            +nisuser::::::
            -excluded::::::
            broken:x:notanumber:0::/:/bin/false
            short:x
            :x:7:7::/:/bin/false
            alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
            """.Replace("\n", "\r\n"));
        Assert.Equal(new Dictionary<uint, string> { [0] = "root", [1] = "daemon", [1000] = "alice" }, names);
    }

    [Fact]
    public void OnlyHostProcessesGetANameAndAChangedFileIsReread()
    {
        var passwd = Path.Combine(_dir, "passwd");
        File.WriteAllText(passwd, "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var users = new UserNames("/proc", passwd, time);

        Assert.Equal("alice", users.For(1000, Ns(true, true)));
        Assert.Equal("root", users.For(0, Ns(true, true)));
        Assert.Null(users.For(4242, Ns(true, true)));
        // A container's uid 0 is its own root, named by its own /etc/passwd: no name.
        Assert.Null(users.For(0, Ns(hostMnt: false, hostUser: true)));
        Assert.Null(users.For(0, Ns(hostMnt: true, hostUser: false)));
        Assert.Null(users.For(0, null));
        Assert.Equal(1, users.Loads);

        File.WriteAllText(passwd, "root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\nextra:x:1001:1001::/:/bin/sh\n");
        File.SetLastWriteTimeUtc(passwd, DateTime.UtcNow.AddMinutes(1));
        // Checked at most once a second: the old name until then, the new one after.
        Assert.Equal("alice", users.For(1000, Ns(true, true)));
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal("bob", users.For(1000, Ns(true, true)));
        Assert.Equal(2, users.Loads);

        // A file that goes away gives no names, not an error.
        File.Delete(passwd);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(users.For(1000, Ns(true, true)));
    }
}
