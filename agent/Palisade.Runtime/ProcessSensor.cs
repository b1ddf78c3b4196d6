using Palisade.Bpf;
using Palisade.Bpf.Abi;
using Palisade.Events;
using Palisade.Runtime.Abi;
using Palisade.Runtime.Processes;

namespace Palisade.Runtime;

/// <summary>Settings of the process lifecycle sensor.</summary>
public sealed record ProcessSensorOptions
{
    /// <summary>Smallest argv capture worth having.</summary>
    public const int MinArgsMax = 256;

    /// <summary>Largest argv capture: what PAL_EXEC_DATA_SLACK in bpf/include/palisade.h leaves room for after the paths.</summary>
    public const int MaxArgsMax = 8191;

    /// <summary>A ring buffer is at least one page.</summary>
    public const int MinRingBufferBytes = 4096;

    public required string NodeName { get; init; }
    /// <summary>Bytes of argv captured per exec (256 to 8191).</summary>
    public int ArgsMax { get; init; } = 4096;
    /// <summary>Ring buffer size in bytes: a power of two, at least one page.</summary>
    public int RingBufferBytes { get; init; } = 8 * 1024 * 1024;
    /// <summary>Capacity of the in-kernel process map (live processes on the node).</summary>
    public int ProcessMapEntries { get; init; } = 65536;
    public string ProcRoot { get; init; } = "/proc";
    public int CacheCapacity { get; init; } = 65536;
    /// <summary>Events of a gone process can only arrive late through another ring buffer, whose reader polls every 100 ms: 5 s is 50 times that.</summary>
    public TimeSpan CacheGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the cache is swept for records past <see cref="CacheGrace"/> (Tetragon's process-cache-gc-interval).</summary>
    public TimeSpan CacheGcInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Bytes queued before the kernel wakes the reader (0: every record); the reader also polls every 100 ms.</summary>
    public int WakeupBytes { get; init; } = 65536;
    /// <summary>Include ancestors beyond the parent in exec and exit events.</summary>
    public bool Ancestors { get; init; }
    /// <summary>Resolve uids of host processes to names from the host's passwd file (Tetragon's username-metadata=unix).</summary>
    public bool UserNames { get; init; }
    /// <summary>
    /// bpffs directory (see <see cref="SensorPins"/>) where maps and links are pinned so they
    /// stay in the kernel after the sensor is disposed (--keep-sensors-on-exit); pins found
    /// there at start are adopted. Null: nothing is pinned, everything goes with the sensor.
    /// </summary>
    public string? PinDirectory { get; init; }
}

/// <summary>Kernel and user-space counters of the process sensor; every loss is somewhere in here.</summary>
public sealed record ProcessSensorStats(
    ulong KernelExecs, ulong KernelExits, ulong KernelForks,
    ulong LostExec, ulong LostExit, ulong LostFork, ulong ProcessMapFull,
    long RingBufferRecords, long ConsumerErrors, DecoderStats Decoder, ProcessCacheStats Cache)
{
    public ulong KernelLost => LostExec + LostExit + LostFork;
}

/// <summary>
/// The process lifecycle sensor: loads bpf/runtime/process.bpf.c, seeds the cache and the
/// kernel process map from /proc, and turns exec/fork/exit records into events.
/// </summary>
public sealed class ProcessSensor : IDisposable
{
    private readonly ProcessSensorOptions _options;
    private readonly EventHub _hub;
    private readonly TimeProvider _time;
    private BpfObject? _object;
    private readonly Lock _objectGate = new(); // MapUsage() never touches a freed object
    private RingBufferReader? _reader;
    private ITimer? _collector;

    private readonly IPodResolver _pods;

    /// <summary>
    /// Bytes waiting in the ring buffer before a writer wakes the reader (the reader also polls);
    /// programs that share the ring (the pod datapath's flow records) use the same threshold.
    /// </summary>
    public uint WakeupBytes => (uint)Math.Min(_options.WakeupBytes, _options.RingBufferBytes / 4);

    public ProcessSensor(ProcessSensorOptions options, EventHub hub, TimeProvider time, IPodResolver? pods = null)
    {
        _pods = pods ?? NoPodResolver.Instance;
        ValidateOptions(options);
        _options = options;
        _hub = hub;
        _time = time;
        Cache = new ProcessCache(options.CacheCapacity, options.CacheGrace, time);
    }

    public ProcessCache Cache { get; }

    public ProcessEventDecoder? Decoder { get; private set; }

    /// <summary>The cached record of the process identified by (pid, ktime), or null (ktime 0: unknown identity).</summary>
    public ProcessRecord? Resolve(uint pid, ulong ktime) =>
        ktime != 0 && Decoder is { } d && d.TryResolve(new ProcessKey(pid, ktime), out var record) ? record : null;

    /// <summary>The pin directory when the sensor keeps its programs in the kernel after it goes (null: it does not).</summary>
    public string? PinDirectory => _options.PinDirectory;

    /// <summary>Links of an earlier run that this sensor took over at start instead of attaching its own.</summary>
    public int AdoptedLinks { get; private set; }

    /// <summary>Processes read from /proc at start.</summary>
    public int SeededFromProcFs { get; private set; }

    private BpfObject Object => _object ?? throw new InvalidOperationException("The sensor is not started.");

    /// <summary>The process table (tgid -> struct pal_proc), which every other object that needs a process reuses.</summary>
    public BpfMap ProcessMap => Object.Map("pal_procs");

    /// <summary>The sensor's ring buffer, shared by the objects whose events name a process, so each follows its process's exec.</summary>
    public BpfMap EventMap => Object.Map("pal_process_events");

    /// <summary>
    /// Hooks the policy engine into the sensor: its exec program is tail-called once the
    /// process table has the new image, and its records (PAL_EVENT_POLICY) on the shared ring
    /// buffer go to <paramref name="records"/>, on the reader's thread, after the exec they follow.
    /// </summary>
    public void AttachPolicyEngine(BpfProgram execPoints, IRingBufferConsumer records)
    {
        _router.Policy = records;
        Object.Map("pal_exec_tail").Typed<uint, int>().Update(0, execPoints.Fd);
    }

    /// <summary>
    /// Undoes <see cref="AttachPolicyEngine"/>: exec points first, so no record arrives for a gone consumer.
    /// With <paramref name="keepInKernel"/> (pinned sensors) the exec points stay in the kernel, for the next agent to replace.
    /// </summary>
    public void DetachPolicyEngine(bool keepInKernel = false)
    {
        lock (_objectGate)
        {
            if (_object is not null && !keepInKernel)
            {
                _object.Map("pal_exec_tail").Typed<uint, int>().Delete(0);
            }
        }
        _router.Policy = null;
    }

    /// <summary>
    /// Hooks a flow decoder into the sensor: flow records (PAL_EVENT_FLOW) that the datapath's
    /// programs write to the shared ring buffer (<see cref="EventMap"/>, by ReuseFrom) go to
    /// <paramref name="records"/>, on the reader's thread, in order with the execs they follow.
    /// </summary>
    public void AttachFlowConsumer(IRingBufferConsumer records) => _router.Flows = records;

    /// <summary>Undoes <see cref="AttachFlowConsumer"/>; flow records still in flight are dropped.</summary>
    public void DetachFlowConsumer() => _router.Flows = null;

    /// <summary>Routes each record of the shared ring buffer: process lifecycle to the decoder, policy hits to the engine, flows to the flow decoder.</summary>
    private sealed class RecordRouter : IRingBufferConsumer
    {
        public ProcessEventDecoder? Decoder;
        public volatile IRingBufferConsumer? Policy;
        public volatile IRingBufferConsumer? Flows;

        public void OnRecord(ReadOnlySpan<byte> record)
        {
            var type = record.Length >= sizeof(uint) ? System.Runtime.InteropServices.MemoryMarshal.Read<uint>(record) : 0;
            if (type == (uint)PalEventType.Policy)
            {
                // Without a consumer the engine stopped while its record was in flight.
                Policy?.OnRecord(record);
                return;
            }
            if (type == (uint)PalEventType.Flow)
            {
                Flows?.OnRecord(record);
                return;
            }
            Decoder!.OnRecord(record);
        }
    }

    private readonly RecordRouter _router = new();

    public static void ValidateOptions(ProcessSensorOptions o)
    {
        if (o.ArgsMax is < ProcessSensorOptions.MinArgsMax or > ProcessSensorOptions.MaxArgsMax)
        {
            throw new ArgumentException($"process-args-max: {o.ArgsMax} is outside {ProcessSensorOptions.MinArgsMax}..{ProcessSensorOptions.MaxArgsMax} bytes.");
        }
        if (o.RingBufferBytes < ProcessSensorOptions.MinRingBufferBytes || (o.RingBufferBytes & (o.RingBufferBytes - 1)) != 0)
        {
            throw new ArgumentException($"rb-size: {o.RingBufferBytes} must be a power of two of at least {ProcessSensorOptions.MinRingBufferBytes} bytes.");
        }
    }

    /// <summary>Loads and attaches the programs, reads /proc, then starts consuming events.</summary>
    public void Start() => Start(startReader: true);

    /// <summary>Starts without consuming when <paramref name="startReader"/> is false (tests fill the ring buffer this way).</summary>
    internal void Start(bool startReader)
    {
        BpfObject obj;
        try
        {
            obj = Load();
        }
        catch (BpfException) when (_options.PinDirectory is { } pins && Directory.Exists(Path.Combine(pins, SensorName)))
        {
            // The pins of an earlier run do not fit this one (another --rb-size, another
            // build): start afresh. Enforcement pauses from here until this run attaches.
            SensorPins.Remove(pins);
            StaleRemoved = true;
            obj = Load();
        }
        try
        {
            var clock = new BootClock(_time);
            var hostNamespaces = ProcFs.ReadHostNamespaces(_options.ProcRoot);
            var users = _options.UserNames ? new UserNames(_options.ProcRoot) : null;
            Decoder = new ProcessEventDecoder(_options.NodeName, Cache, clock, hostNamespaces, _options.Ancestors, _hub.Publish, _pods, users);
            // Attach before reading /proc, so no process can slip between the two.
            foreach (var program in (string[])["pal_fork", "pal_exit", "pal_exec"])
            {
                AttachOrAdopt(obj, program);
            }
            SeededFromProcFs = Seed(obj, clock, hostNamespaces, users);
            _router.Decoder = Decoder;
            _reader = new RingBufferReader(_router, obj.Map("pal_process_events"));
            if (startReader)
            {
                _reader.Start("palisade-process");
            }
            _collector = _time.CreateTimer(_ => Cache.Collect(), null, _options.CacheGcInterval, _options.CacheGcInterval);
            _object = obj;
        }
        catch
        {
            obj.Dispose();
            throw;
        }
    }

    private const string SensorName = "process";

    /// <summary>True when pins of an earlier run were found unusable and removed at start.</summary>
    public bool StaleRemoved { get; private set; }

    private BpfObject Load()
    {
        var obj = BpfObject.OpenEmbedded(typeof(ProcessSensor).Assembly, "process.bpf.o");
        try
        {
            obj.SetConstant("args_max", (uint)_options.ArgsMax);
            obj.SetConstant("wakeup_bytes", WakeupBytes);
            obj.Map("pal_process_events").MaxEntries = _options.RingBufferBytes;
            obj.Map("pal_procs").MaxEntries = _options.ProcessMapEntries;
            if (_options.PinDirectory is { } pins)
            {
                // Every map, so the programs an earlier run left attached and ours share one state.
                SensorPins.Create(pins, SensorName);
                obj.PinMapsUnder(SensorPins.Maps(pins, SensorName));
            }
            obj.Load();
            return obj;
        }
        catch
        {
            obj.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Attaches <paramref name="program"/>, or, when an earlier run left its link pinned, takes
    /// that link over: the program stays attached once, never twice.
    /// </summary>
    private void AttachOrAdopt(BpfObject obj, string program)
    {
        if (_options.PinDirectory is not { } pins)
        {
            obj.Program(program).Attach();
            return;
        }
        var path = Path.Combine(SensorPins.Links(pins, SensorName), program);
        if (File.Exists(path))
        {
            obj.AdoptPinnedLink(path, program);
            AdoptedLinks++;
            return;
        }
        obj.Program(program).Attach().Pin(path);
    }

    /// <summary>Starts consuming after Start(startReader: false).</summary>
    internal void StartReader() => _reader!.Start("palisade-process");

    /// <summary>Fill level of the sensor's ring buffer (empty before start).</summary>
    public IReadOnlyList<(string Map, long Pending, long Capacity)> RingBufferUsage() => _reader?.Usage() ?? [];

    public ProcessSensorStats Stats()
    {
        var obj = _object ?? throw new InvalidOperationException("The sensor is not started.");
        var stats = obj.Map("pal_process_stats").PerCpu<uint, ulong>();
        ulong Sum(ProcessStat s) => stats.TryLookup((uint)s, out var v) ? v.Aggregate(0UL, (a, b) => a + b) : 0;
        return new ProcessSensorStats(Sum(ProcessStat.Exec), Sum(ProcessStat.Exit), Sum(ProcessStat.Fork),
            Sum(ProcessStat.LostExec), Sum(ProcessStat.LostExit), Sum(ProcessStat.LostFork), Sum(ProcessStat.ProcMapFull),
            _reader?.Records ?? 0, _reader?.ConsumerErrors ?? 0, Decoder!.Stats, Cache.Stats);
    }

    private int Seed(BpfObject obj, BootClock clock, uint[] hostNamespaces, UserNames? users)
    {
        var map = obj.Map("pal_procs").Typed<uint, PalProc>();
        var cgroupRoot = KernelEnvironment.Cgroup2Root();
        var byPid = new Dictionary<uint, ProcessRecord>();
        var count = 0;
        foreach (var p in ProcFs.Scan(_options.ProcRoot, cgroupRoot))
        {
            byPid.TryGetValue(p.ParentPid, out var parent);
            var container = ContainerIds.FromCgroup(p.CgroupLeaf, p.CgroupParent);
            var namespaces = new Namespaces([.. p.Namespaces.Select((inum, i) => new NamespaceId(inum, inum != 0 && inum == hostNamespaces[i]))]);
            var record = new ProcessRecord
            {
                ExecId = ExecId.Create(_options.NodeName, p.StartBootNs, p.Pid),
                Pid = p.Pid,
                Tid = p.Pid,
                Ktime = p.StartBootNs,
                StartTime = clock.ToWallClock(p.StartBootNs),
                Binary = p.Binary,
                Arguments = ProcessEventDecoder.Arguments(p.Argv),
                Cwd = p.Cwd,
                Flags = ProcessFlags.ProcFs,
                Credentials = new Credentials(p.Uids[0], p.Gids[0], p.Uids[1], p.Gids[1], p.Uids[2], p.Gids[2], p.Uids[3], p.Gids[3]),
                Auid = p.Auid,
                Capabilities = new CapabilitySets(p.CapPermitted, p.CapEffective, p.CapInheritable),
                Namespaces = namespaces,
                UserName = users?.For(p.Uids[0], namespaces),
                NamespacePid = p.NamespacePid,
                CgroupId = p.CgroupId,
                ContainerId = container?.ContainerId,
                PodUid = container?.PodUid,
                Pod = container is null ? null : _pods.Resolve(new ContainerContext(container.ContainerId, container.PodUid, p.CgroupId)),
                ParentExecId = parent?.ExecId,
                Parent = parent,
            };
            Cache.Add(record);
            byPid[p.Pid] = record;
            var entry = PalProc.FromProcFs(p.StartBootNs, parent?.Ktime ?? 0, p.ParentPid, p.CapEffective, p.Namespaces, p.NamespacePid, p.Binary);
            try
            {
                // Never overwrite what the kernel already learnt from a real exec or fork.
                map.Update(p.Pid, entry, MapUpdateFlags.NoExist);
            }
            catch (BpfException e) when (e.Errno == Errnos.EEXIST)
            {
            }
            count++;
        }
        return count;
    }

    /// <summary>Entries vs capacity of the sensor's hash maps (empty before start and after dispose).</summary>
    public IReadOnlyList<(string Map, int Entries, int Capacity)> MapUsage()
    {
        lock (_objectGate)
        {
            return _object?.MapUsage() ?? [];
        }
    }

    public void Dispose()
    {
        _collector?.Dispose();
        _reader?.Dispose();
        lock (_objectGate)
        {
            _object?.Dispose();
            _object = null;
        }
    }
}
