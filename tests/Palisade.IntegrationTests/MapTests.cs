using Palisade.Bpf;
using Palisade.Bpf.Abi;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests;

public sealed class MapTests : IDisposable
{
    private readonly BpfObject _obj;

    public MapTests()
    {
        Kernel.RequireRoot();
        _obj = BpfObject.OpenEmbedded(Kernel.TestObjects, "maps_test.bpf.o");
        _obj.Map("test_hash").MaxEntries = 2048;
        _obj.Load();
    }

    public void Dispose() => _obj.Dispose();

    private static PalEventHeader Header(uint pid) => new() { Type = 1, Size = 32, Pid = pid, Tid = pid + 1, KtimeNs = pid * 1000UL, CgroupId = 42 };

    [Fact]
    public void MaxEntriesSetBeforeLoadIsWhatTheKernelCreated()
    {
        Assert.Equal(2048, _obj.Map("test_hash").MaxEntries);
    }

    [Fact]
    public void StructValuesRoundTrip()
    {
        var map = _obj.Map("test_hash").Typed<uint, PalEventHeader>();

        map.Update(7, Header(7));

        Assert.True(map.TryLookup(7, out var value));
        Assert.Equal(Header(7), value);
        Assert.False(map.TryLookup(8, out _));
        Assert.True(map.Delete(7));
        Assert.False(map.Delete(7));
    }

    [Fact]
    public void UpdateFlagsAreHonoured()
    {
        var map = _obj.Map("test_hash").Typed<uint, PalEventHeader>();
        map.Update(1, Header(1), MapUpdateFlags.NoExist);

        var exists = Assert.Throws<BpfException>(() => map.Update(1, Header(1), MapUpdateFlags.NoExist));
        var missing = Assert.Throws<BpfException>(() => map.Update(2, Header(2), MapUpdateFlags.Exist));

        Assert.Equal(Errnos.EEXIST, exists.Errno);
        Assert.Equal(Errnos.ENOENT, missing.Errno);
        Assert.Contains("map test_hash of object maps_test", exists.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BatchWriteAndBatchReadSeeEveryEntry()
    {
        var map = _obj.Map("test_hash").Typed<uint, PalEventHeader>();
        var keys = Enumerable.Range(1, 1000).Select(i => (uint)i).ToArray();
        var values = keys.Select(Header).ToArray();

        map.UpdateBatch(keys, values);
        var all = map.ReadAll(batchSize: 64);

        Assert.Equal(1000, all.Count);
        Assert.All(all, kv => Assert.Equal(Header(kv.Key), kv.Value));
        Assert.Equal(keys.ToHashSet(), map.Keys().ToHashSet());
    }

    [Fact]
    public void AFullHashMapSaysSo()
    {
        var map = _obj.Map("test_hash").Typed<uint, PalEventHeader>();
        for (uint i = 0; i < 2048; i++)
        {
            map.Update(i, Header(i));
        }

        var e = Assert.Throws<BpfException>(() => map.Update(5000, Header(5000)));

        Assert.Equal(Errnos.E2BIG, e.Errno);
        Assert.Contains("The map is full (2048 entries)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ArraysReadAllSlots()
    {
        var map = _obj.Map("test_array").Typed<uint, ulong>();
        map.Update(3, 33);

        var all = map.ReadAll();

        Assert.Equal(8, all.Count);
        Assert.Equal(33UL, all.Single(kv => kv.Key == 3).Value);
    }

    [Fact]
    public void PerCpuValuesRoundTripOnePerCpu()
    {
        var map = _obj.Map("test_percpu").PerCpu<uint, uint>();
        var values = Enumerable.Range(0, BpfPerCpuMap<uint, uint>.PossibleCpus).Select(i => (uint)(i + 10)).ToArray();

        map.Update(1, values);

        Assert.True(map.TryLookup(1, out var read));
        Assert.Equal(values, read);
    }

    [Fact]
    public void ATypedViewWithTheWrongSizeIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => _obj.Map("test_hash").Typed<uint, ulong>());

        Assert.Contains("UInt64 is 8 bytes but the value of map test_hash of object maps_test is 32 bytes", e.Message, StringComparison.Ordinal);
    }
}
