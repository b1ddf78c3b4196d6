using Palisade.Bpf;
using Palisade.Bpf.Abi;
using Palisade.Bpf.Probe;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

public sealed class LoaderTests
{
    [Fact]
    public void AVerifierRejectionNamesTheProgramAndCarriesTheLog()
    {
        Kernel.Require(KernelFeature.Tracepoint);
        var before = BpfIds.Programs();
        using (var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "bad_prog.bpf.o"))
        {
            var e = Assert.Throws<BpfLoadException>(obj.Load);

            Assert.Equal("bad_null_deref", e.ProgramName);
            Assert.Equal(Errnos.EACCES, e.Errno);
            Assert.Contains("map_value_or_null", e.VerifierLog, StringComparison.Ordinal);
            Assert.Contains("load failed for program bad_null_deref in object bad_prog: EACCES", e.Message, StringComparison.Ordinal);
            Assert.Contains("verifier log:", e.Message, StringComparison.Ordinal);
            Assert.False(obj.IsLoaded);
        }
        // libbpf unloads what it had loaded before the failure.
        Assert.Empty(BpfIds.Programs().Except(before));
    }

    [Fact]
    public void AnObjectLoadsOnlyTheProgramsLeftOnAutoload()
    {
        Kernel.Require(KernelFeature.Tracepoint);
        using var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "bad_prog.bpf.o");
        obj.Program("bad_null_deref").Autoload = false;

        obj.Load();

        Assert.True(obj.Program("good_program").Fd >= 0);
        Assert.True(obj.Program("bad_null_deref").Fd < 0);
    }

    [Fact]
    public void DisposingTheObjectDetachesAndUnloadsEverything()
    {
        Kernel.Require(KernelFeature.Tracepoint);
        var programs = BpfIds.Programs();
        var links = BpfIds.Links();
        var maps = BpfIds.Maps();
        var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "ringbuf_test.bpf.o");
        obj.Load();
        var link = obj.Program("test_sys_enter_write").AttachTracepoint("syscalls", "sys_enter_write");
        Assert.NotEmpty(BpfIds.Programs().Except(programs));

        obj.Dispose();

        Assert.False(link.IsAttached);
        Assert.Empty(BpfIds.Programs().Except(programs));
        Assert.Empty(BpfIds.Links().Except(links));
        // The kernel frees maps from a workqueue after the last reference goes: wait for it.
        Assert.True(Command.WaitUntil(() => !BpfIds.Maps().Except(maps).Any(), TimeSpan.FromSeconds(10)),
            $"maps left: {string.Join(", ", BpfIds.Maps().Except(maps))}");
    }

    [Fact]
    public void AFailedAttachThrowsWithTheTargetAndLeavesNothingBehind()
    {
        Kernel.Require(KernelFeature.Tracepoint);
        using var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "ringbuf_test.bpf.o");
        obj.Load();
        var links = BpfIds.Links();

        var e = Assert.Throws<BpfException>(() => obj.Program("test_sys_enter_write").AttachTracepoint("syscalls", "sys_enter_no_such_call"));

        Assert.Equal("attach tracepoint", e.Operation);
        Assert.Contains("syscalls/sys_enter_no_such_call", e.Target, StringComparison.Ordinal);
        Assert.Equal(Errnos.ENOENT, e.Errno);
        Assert.Empty(BpfIds.Links().Except(links));
    }

    [Fact]
    public void ConstantsAreCheckedAgainstTheirDeclaredSize()
    {
        Kernel.RequireRoot();
        using var obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "ringbuf_test.bpf.o");

        var wrongSize = Assert.Throws<ArgumentException>(() => obj.SetConstant("target_tgid", 1UL));
        var missing = Assert.Throws<KeyNotFoundException>(() => obj.SetConstant("no_such_constant", 1U));

        Assert.Contains("'target_tgid' of object ringbuf_test is 4 bytes; a UInt64 is 8", wrongSize.Message, StringComparison.Ordinal);
        Assert.Contains("no 'const volatile' global named 'no_such_constant'", missing.Message, StringComparison.Ordinal);
    }
}
