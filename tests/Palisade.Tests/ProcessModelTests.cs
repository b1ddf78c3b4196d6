using System.Text;
using Palisade.Events;
using Palisade.Runtime.Processes;

namespace Palisade.Tests;

public sealed class ExecIdTests
{
    [Fact]
    public void MatchesTetragonsEncodingOfNodeKtimeAndPid()
    {
        // From Tetragon's documented process_exec example.
        Assert.Equal("a2luZC1jb250cm9sLXBsYW5lOjExNDI4NjE1NjM2OTAxOjUxNTgz", ExecId.Create("kind-control-plane", 11428615636901, 51583));
    }

    [Fact]
    public void RoundTripsThroughParse()
    {
        Assert.Equal(("node:with:colons", 42UL, 7u), ExecId.Parse(ExecId.Create("node:with:colons", 42, 7)));
        Assert.Null(ExecId.Parse("not base64 at all!"));
    }
}

public sealed class ContainerIdTests
{
    private const string Id = "1fb931d2f6e5e4cfdbaf30fdb8e2fdd81320bdb3047ded50120a4f82838209ce";

    [Theory]
    [InlineData("cri-containerd-" + Id + ".scope", "kubepods-burstable-pod1a2b3c4d_1111_2222_3333_444455556666.slice", "containerd", "1a2b3c4d-1111-2222-3333-444455556666")]
    [InlineData("crio-" + Id + ".scope", "kubepods-pod1a2b3c4d_1111_2222_3333_444455556666.slice", "cri-o", "1a2b3c4d-1111-2222-3333-444455556666")]
    [InlineData("docker-" + Id + ".scope", "system.slice", "docker", null)]
    [InlineData("libpod-" + Id + ".scope", "machine.slice", "podman", null)]
    [InlineData(Id, "pod1a2b3c4d-1111-2222-3333-444455556666", "kubernetes", "1a2b3c4d-1111-2222-3333-444455556666")]
    [InlineData(Id, "docker", "docker", null)]
    public void ContainerRuntimesCgroupNamesYieldTheContainerId(string leaf, string parent, string runtime, string? podUid)
    {
        var c = ContainerIds.FromCgroup(leaf, parent);

        Assert.NotNull(c);
        Assert.Equal(Id, c.ContainerId);
        Assert.Equal(runtime, c.Runtime);
        Assert.Equal(podUid, c.PodUid);
    }

    [Theory]
    [InlineData("session-3.scope", "user-0.slice")]
    [InlineData("crio-conmon-" + Id + ".scope", "kubepods.slice")]
    [InlineData("", null)]
    [InlineData(null, null)]
    public void HostProcessesHaveNoContainer(string? leaf, string? parent)
    {
        Assert.Null(ContainerIds.FromCgroup(leaf, parent));
    }

    [Fact]
    public void TheDockerFieldIsTheFirst31Characters()
    {
        Assert.Equal("1fb931d2f6e5e4cfdbaf30fdb8e2fdd", ContainerIds.Short(Id));
    }
}

public sealed class ProcFsParsingTests
{
    [Fact]
    public void StatFieldsCountFromTheLastParenthesisSoOddCommandNamesParse()
    {
        var stat = "4242 (we ird) (name)) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 200 18446744073709551615";

        var (ppid, flags, start) = ProcFs.ParseStat(stat);

        Assert.Equal(17u, ppid);
        Assert.Equal(4194560u, flags);
        Assert.Equal(123456UL, start);
    }

    [Fact]
    public void StatusGivesIdsCapabilitiesAndTheInnermostNamespacePid()
    {
        var status = ProcFs.ParseStatus([
            "Name:\tsleep", "Uid:\t1000\t1001\t1002\t1003", "Gid:\t2000\t2001\t2002\t2003",
            "NSpid:\t5000\t12", "CapInh:\t0000000000000000", "CapPrm:\t000001ffffffffff", "CapEff:\t0000000000003000",
        ]);

        Assert.Equal([1000u, 1001u, 1002u, 1003u], status.Uids);
        Assert.Equal([2000u, 2001u, 2002u, 2003u], status.Gids);
        Assert.Equal(12u, status.NsPid);
        Assert.Equal(0x1ffffffffffUL, status.CapPrm);
        Assert.Equal(0x3000UL, status.CapEff);
    }

    [Fact]
    public void TheCgroupV2PathIsTheZeroLine()
    {
        Assert.Equal("/system.slice/ssh.service", ProcFs.ParseCgroupV2Path("12:pids:/system.slice\n0::/system.slice/ssh.service\n"));
        Assert.Null(ProcFs.ParseCgroupV2Path("12:pids:/\n"));
    }
}

public sealed class DecoderHelperTests
{
    [Theory]
    [InlineData("echo\0bin\0usr\0", "/usr/bin/echo")]
    [InlineData("tmp\0", "/tmp")]
    [InlineData("", "/")]
    public void PathsAreRebuiltFromLeafFirstComponents(string components, string expected)
    {
        Assert.Equal(expected, ProcessEventDecoder.PathFromComponents(Encoding.UTF8.GetBytes(components)));
    }

    [Theory]
    [InlineData("/bin/echo\0hello\0world\0", "hello world")]
    [InlineData("sh\0-c\0cd /tmp && ls\0", "-c \"cd /tmp && ls\"")]
    [InlineData("/bin/true\0", "")]
    [InlineData("", "")]
    public void ArgumentsFollowTetragonsQuoting(string argv, string expected)
    {
        Assert.Equal(expected, ProcessEventDecoder.Arguments(Encoding.UTF8.GetBytes(argv)));
    }

    [Theory]
    [InlineData("./x.sh", "/tmp/work", "/tmp/work/x.sh")]
    [InlineData("../a/./b", "/tmp/work", "/tmp/a/b")]
    [InlineData("/abs/s.sh", "/tmp", "/abs/s.sh")]
    [InlineData("s.sh", "/", "/s.sh")]
    public void ScriptNamesBecomeAbsolute(string path, string cwd, string expected)
    {
        Assert.Equal(expected, ProcessEventDecoder.AbsolutePath(path, cwd));
    }
}

public sealed class ProcessCacheTests
{
    private static ProcessRecord Record(uint pid, ulong ktime, ProcessRecord? parent = null) => new()
    {
        ExecId = ExecId.Create("n", ktime, pid),
        Pid = pid,
        Ktime = ktime,
        StartTime = DateTimeOffset.UnixEpoch,
        Binary = "/bin/x",
        Parent = parent,
        ParentExecId = parent?.ExecId,
    };

    [Fact]
    public void AnExitedProcessIsEvictedOnlyAfterTheGracePeriod()
    {
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var cache = new ProcessCache(1024, TimeSpan.FromSeconds(10), time);
        var p = Record(1, 100);
        cache.Add(p);

        cache.End(p, time.GetUtcNow());
        time.Advance(TimeSpan.FromSeconds(9));
        cache.Collect();
        Assert.True(cache.TryGet(new ProcessKey(1, 100), out _));

        time.Advance(TimeSpan.FromSeconds(2));
        cache.Collect();
        Assert.False(cache.TryGet(new ProcessKey(1, 100), out _));
        Assert.Equal(1, cache.Stats.EvictedAfterGrace);
    }

    [Fact]
    public void AParentStaysWhileAChildIsAliveAndGoesAfterIt()
    {
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var cache = new ProcessCache(1024, TimeSpan.FromSeconds(1), time);
        var parent = Record(1, 100);
        cache.Add(parent);
        var child = Record(2, 200, parent);
        cache.Add(child);

        cache.End(parent, time.GetUtcNow());
        time.Advance(TimeSpan.FromSeconds(5));
        cache.Collect();
        Assert.True(cache.TryGet(new ProcessKey(1, 100), out _));

        cache.End(child, time.GetUtcNow());
        time.Advance(TimeSpan.FromSeconds(2));
        cache.Collect(); // child goes, releasing the parent
        time.Advance(TimeSpan.FromSeconds(2));
        cache.Collect();
        Assert.Equal(0, cache.Stats.Count);
    }

    [Fact]
    public void PastCapacityFinishedRecordsGoBeforeRunningOnes()
    {
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var cache = new ProcessCache(16, TimeSpan.FromHours(1), time);
        var finished = Record(1, 1);
        cache.Add(finished);
        cache.End(finished, time.GetUtcNow());
        for (uint i = 2; i <= 17; i++)
        {
            cache.Add(Record(i, i));
        }

        Assert.Equal(16, cache.Stats.Count);
        Assert.False(cache.TryGet(new ProcessKey(1, 1), out _));
        Assert.True(cache.TryGet(new ProcessKey(2, 2), out _));
        Assert.Equal(1, cache.Stats.EvictedForCapacity);
    }

    [Fact]
    public void MemoryIsBoundedUnderChurn()
    {
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var cache = new ProcessCache(1024, TimeSpan.FromMilliseconds(100), time);
        var root = Record(1, 1);
        cache.Add(root);
        for (uint i = 2; i < 200_000; i++)
        {
            var p = Record(i, i, root);
            cache.Add(p);
            cache.End(p, time.GetUtcNow());
            time.Advance(TimeSpan.FromMilliseconds(1));
            if (i % 100 == 0)
            {
                cache.Collect();
            }
        }

        Assert.True(cache.Stats.Count <= 1024, $"{cache.Stats.Count} records after 200 000 short-lived processes");
        Assert.Equal(1, root.RefCount - (cache.Stats.Count - 1));
    }
}

public sealed class EventHubTests
{
    private static ProcessExecEvent Event(uint pid) => new()
    {
        Time = DateTimeOffset.UnixEpoch,
        Process = new ProcessRecord { ExecId = "x", Pid = pid, Ktime = 1, StartTime = DateTimeOffset.UnixEpoch, Binary = "/b" },
    };

    [Fact]
    public void AStuckSubscriberLosesItsOwnEventsOnlyAndCountsThem()
    {
        var hub = new EventHub();
        using var stuck = hub.Subscribe("stuck", 10);
        using var healthy = hub.Subscribe("healthy", 1000);

        for (uint i = 0; i < 100; i++)
        {
            hub.Publish(Event(i));
        }

        Assert.Equal(90, stuck.Dropped);
        Assert.Equal(10, stuck.Queued);
        Assert.Equal(0, healthy.Dropped);
        Assert.Equal(100, healthy.Depth);
        Assert.Equal(100, hub.Published);
    }
}
