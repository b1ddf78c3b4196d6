using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Palisade.Bpf;
using Palisade.Events;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Policies.Tracing.Compilation;
using Palisade.Runtime.Abi;
using Palisade.Runtime.Processes;

namespace Palisade.Runtime.Policies;

/// <summary>Status of one loaded policy.</summary>
public sealed record PolicyStatus(string Name, string State, string Mode, bool Enabled, IReadOnlyList<HookReport> Hooks, IReadOnlyList<string> Errors,
    long KernelMemoryBytes, PolicyCounters Counters, string? Source);

public sealed record HookReport(string Type, string Name, string Mode, string Detail, IReadOnlyList<SelectorReport> Selectors);

public sealed record SelectorReport(int Index, PolicyCounters Counters);

public sealed record PolicyCounters(ulong Matched, ulong Posted, ulong Killed, ulong Signalled, ulong Overridden, ulong Monitored, ulong RateLimited, ulong Lost)
{
    public static readonly PolicyCounters Zero = new(0, 0, 0, 0, 0, 0, 0, 0);
    public PolicyCounters Add(PolicyCounters o) => new(Matched + o.Matched, Posted + o.Posted, Killed + o.Killed, Signalled + o.Signalled,
        Overridden + o.Overridden, Monitored + o.Monitored, RateLimited + o.RateLimited, Lost + o.Lost);
}

/// <summary>
/// Runs TracingPolicies in the kernel: compiles each, merges its hooks into shared points,
/// writes the maps policy.bpf.c reads, and turns the kernel's policy events into
/// <see cref="ProcessPolicyEvent"/>s. Add, delete, enable, disable and mode switches apply
/// live; a policy that fails never affects the others.
/// </summary>
public sealed unsafe partial class TracingPolicyEngine : IDisposable, IRingBufferConsumer
{
    private readonly Lock _gate = new();
    private readonly Action<PalisadeEvent> _publish;
    private readonly Func<uint, ulong, ProcessRecord?>? _resolve;
    private BpfObject? _object;
    private readonly Lock _objectGate = new(); // MapUsage() never touches a freed object
    private readonly Dictionary<string, Loaded> _policies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Point> _points = new(StringComparer.Ordinal);
    // Read by the event path without _gate: published only once complete, removed before reuse.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ushort, Point> _pointsById = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<uint, HookRef> _hooks = new();
    private readonly PolicyEventDecoder _decoder;
    private readonly Stack<ushort> _freePointIds = new(Enumerable.Range(0, PolAbi.Points).Select(i => (ushort)(PolAbi.Points - 1 - i)));
    private readonly Stack<uint> _freeGids = new(Enumerable.Range(0, PolAbi.Gids).Select(i => (uint)(PolAbi.Gids - 1 - i)));
    private readonly Stack<uint> _freePolicyIds = new(Enumerable.Range(0, PolAbi.Policies).Select(i => (uint)(PolAbi.Policies - 1 - i)));
    private uint _nextHookId = 1;
    private long _events, _malformed;

    /// <summary>Hook kinds whose events carry the process's ancestors (enable-ancestors kprobe, tracepoint, uprobe, lsm).</summary>
    public IReadOnlySet<EventKind> AncestorKinds { get; init; } = new HashSet<EventKind>();

    public TracingPolicyEngine(Action<PalisadeEvent> publish, KernelFacts facts, Func<uint, ulong, ProcessRecord?>? resolve = null, string procRoot = "/proc")
    {
        _publish = publish;
        Facts = facts;
        _resolve = resolve;
        _decoder = new PolicyEventDecoder(procRoot);
    }

    public KernelFacts Facts { get; }

    /// <summary>
    /// The host's namespaces for host_ns: those of pid 1, or, where /proc/1/ns cannot be read
    /// (hardened kernels refuse it even to root), the agent's own, which a node agent shares with
    /// the host. A namespace neither names is left out, so host_ns on it is refused, not guessed.
    /// </summary>
    public static KernelFacts FactsFor(string procRoot, bool kprobes)
    {
        var init = ProcFs.ReadNamespaces(Path.Combine(procRoot, "1"));
        var self = ProcFs.ReadNamespaces(Path.Combine(procRoot, "self"));
        var map = new Dictionary<string, uint>(StringComparer.Ordinal);
        for (var i = 0; i < Vocabulary.Namespaces.Length && i < init.Length; i++)
        {
            var inum = init[i] != 0 ? init[i] : i < self.Length ? self[i] : 0;
            if (inum != 0)
            {
                map[Vocabulary.Namespaces[i]] = inum;
            }
        }
        return new KernelFacts(kprobes, map) { ProcRoot = procRoot };
    }

    public long Events => Interlocked.Read(ref _events);

    private sealed class Loaded(TracingPolicy policy, CompiledPolicy compiled, uint id, string? source)
    {
        public TracingPolicy Policy = policy;
        public CompiledPolicy Compiled = compiled;
        public readonly uint Id = id;
        public string? Source = source;
        public bool Enabled = true;
        public bool Monitor = compiled.Monitor;
        public readonly HashSet<ulong> Scope = []; // pod-scoped: cgroup ids in pal_pol_scope
        public readonly List<HookRef> Hooks = [];
    }

    private sealed class HookRef(uint id, Loaded policy, CompiledHook hook)
    {
        public readonly uint Id = id;
        public readonly Loaded Policy = policy;
        public readonly CompiledHook Hook = hook;
        public readonly Dictionary<int, uint> Gids = []; // selector index -> gid
        public readonly System.Collections.Concurrent.ConcurrentDictionary<ushort, HookTarget> Targets = new(); // point id -> target
    }

    private sealed class Point(ushort id, HookTarget template)
    {
        public readonly ushort Id = id;
        public readonly HookTarget Template = template;
        public readonly List<(HookRef Hook, HookTarget Target)> Members = [];
        public SlotSource[] Slots = []; // replaced whole, so the event path never sees a half-written layout
        public readonly HashSet<uint> SelectorKeys = [];
        public BpfLink? Link; // uprobes: one attachment per point, its cookie the point id
        public readonly Dictionary<string, PalPolStrkey> StringKeys = new(StringComparer.Ordinal);
        public int Bytes;
    }

    // ---------------------------------------------------------------- lifecycle

    /// <summary>
    /// Loads the engine's programs over the process sensor's process table and ring buffer
    /// (one table, one ordered event stream) and hooks its exec points into the sensor's exec
    /// program. The syscall and connect programs are attached only while a point needs them:
    /// every syscall on the node would pay for them otherwise.
    /// </summary>
    public void Start(ProcessSensor sensor, string? cgroupRoot = null)
    {
        _pins = sensor.PinDirectory;
        BpfObject obj;
        try
        {
            obj = Load(sensor);
        }
        catch (BpfException) when (_pins is not null && Directory.Exists(Path.Combine(_pins, SensorName)))
        {
            // The earlier run's pins do not fit this build: start afresh (its programs detach here).
            SensorPins.Remove(Path.Combine(_pins, SensorName));
            obj = Load(sensor);
        }
        try
        {
            _object = obj;
            _cgroupRoot = cgroupRoot ?? KernelEnvironment.Cgroup2Root();
            AdoptLinks();
            sensor.AttachPolicyEngine(obj.Program("pal_pol_exec"), this);
            _sensor = sensor;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private const string SensorName = "policy";
    private string? _pins;

    private static BpfObject Load(ProcessSensor sensor)
    {
        var obj = BpfObject.OpenEmbedded(typeof(TracingPolicyEngine).Assembly, "policy.bpf.o");
        try
        {
            obj.Map("pal_procs").ReuseFrom(sensor.ProcessMap);
            obj.Map("pal_process_events").ReuseFrom(sensor.EventMap);
            if (sensor.PinDirectory is { } pins)
            {
                SensorPins.Create(pins, SensorName);
                obj.PinMapsUnder(SensorPins.Maps(pins, SensorName), m => m.Name is "pal_procs" or "pal_process_events");
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

    private ProcessSensor? _sensor;

    public void Dispose()
    {
        // The sensor's exec program stops calling ours before our programs go.
        _sensor?.DetachPolicyEngine(keepInKernel: _pins is not null);
        _sensor = null;
        foreach (var l in _points.Values.Select(p => p.Link).OfType<BpfLink>().Concat(_lazy.Values.SelectMany(x => x)).Concat(_adopted.Values.SelectMany(x => x)))
        {
            l.Dispose(); // a pinned one stays attached
        }
        _lazy.Clear();
        _adopted.Clear();
        lock (_objectGate)
        {
            _object?.Dispose();
            _object = null;
        }
    }

    /// <summary>Entries vs capacity of the engine's hash and LPM maps (selectors, strings, process state).</summary>
    public IReadOnlyList<(string Map, int Entries, int Capacity)> MapUsage()
    {
        lock (_objectGate)
        {
            return _object?.MapUsage() ?? [];
        }
    }

    private BpfObject Obj => _object ?? throw new InvalidOperationException("The policy engine is not started.");

    // ---------------------------------------------------------------- API

    /// <summary>Adds or replaces the policy of the same name. Never throws for a bad policy: the status says what is wrong.</summary>
    /// <param name="scope">
    /// For a pod-scoped policy (<see cref="TracingPolicy.IsPodScoped"/>): the cgroup ids it
    /// applies in, written before any of its hooks can act. Null: none yet.
    /// </param>
    public PolicyStatus Apply(TracingPolicy policy, string? source = null, IReadOnlyCollection<ulong>? scope = null)
    {
        var compiled = PolicyCompiler.Compile(policy, Facts);
        lock (_gate)
        {
            if (_policies.ContainsKey(policy.Key))
            {
                RemoveLocked(policy.Key);
            }
            if (_freePolicyIds.Count == 0)
            {
                throw new InvalidOperationException($"at most {PolAbi.Policies} policies can be loaded");
            }
            var loaded = new Loaded(policy, compiled, _freePolicyIds.Pop(), source);
            _policies[policy.Key] = loaded;
            if (policy.IsPodScoped)
            {
                SetScopeLocked(loaded, scope ?? []);
            }
            WriteState(loaded);
            if (compiled.Errors.Count == 0)
            {
                foreach (var hook in compiled.Hooks.Where(h => h.Runs))
                {
                    try
                    {
                        AddHookLocked(loaded, hook);
                    }
                    catch (Exception ex) when (ex is InvalidOperationException or BpfException)
                    {
                        var failed = loaded.Hooks.FirstOrDefault(h => h.Hook == hook);
                        if (failed is not null)
                        {
                            RemoveHookLocked(failed);
                        }
                        loaded.Compiled = loaded.Compiled with
                        {
                            Hooks = loaded.Compiled.Hooks.Select(h => h == hook ? h with { Status = new HookStatus(HookMode.Unsupported, ex.Message) } : h).ToList(),
                        };
                    }
                }
            }
            return StatusLocked(loaded);
        }
    }

    public bool Delete(string name)
    {
        lock (_gate)
        {
            return RemoveLocked(name);
        }
    }

    /// <summary>
    /// Sets the cgroups a pod-scoped policy applies in (the containers of its namespace's
    /// selected pods). Entries are added before stale ones go, so a cgroup in both the old and
    /// the new set is never out of scope. Returns false for an unknown or unscoped policy.
    /// </summary>
    public bool SetScope(string key, IReadOnlyCollection<ulong> cgroups)
    {
        lock (_gate)
        {
            if (!_policies.TryGetValue(key, out var p) || !p.Policy.IsPodScoped)
            {
                return false;
            }
            SetScopeLocked(p, cgroups);
            return true;
        }
    }

    private void SetScopeLocked(Loaded p, IReadOnlyCollection<ulong> cgroups)
    {
        var map = Obj.Map("pal_pol_scope").Typed<PalPolScopeKey, byte>();
        var wanted = cgroups.ToHashSet();
        var entries = _policies.Values.Sum(x => x.Scope.Count); // what pal_pol_scope holds
        foreach (var id in wanted.Where(id => !p.Scope.Contains(id)))
        {
            if (entries >= PolAbi.Scopes)
            {
                throw new InvalidOperationException($"at most {PolAbi.Scopes} (cgroup, scoped policy) pairs can be in use");
            }
            map.Update(new PalPolScopeKey { CgroupId = id, PolicyId = p.Id }, 1);
            p.Scope.Add(id);
            entries++;
        }
        foreach (var id in p.Scope.Where(id => !wanted.Contains(id)).ToList())
        {
            map.Delete(new PalPolScopeKey { CgroupId = id, PolicyId = p.Id });
            p.Scope.Remove(id);
        }
    }

    /// <summary>Enables or disables a policy; a disabled policy keeps its maps but its selectors do nothing.</summary>
    public bool SetEnabled(string name, bool enabled) => Configure(name, p => p.Enabled = enabled);

    /// <summary>Switches enforce (false) / monitor (true).</summary>
    public bool SetMonitor(string name, bool monitor) => Configure(name, p => p.Monitor = monitor);

    private bool Configure(string name, Action<Loaded> change)
    {
        lock (_gate)
        {
            if (!_policies.TryGetValue(name, out var p))
            {
                return false;
            }
            change(p);
            WriteState(p);
            return true;
        }
    }

    public IReadOnlyList<PolicyStatus> List()
    {
        lock (_gate)
        {
            return _policies.Values.OrderBy(p => p.Policy.Key, StringComparer.Ordinal).Select(StatusLocked).ToList();
        }
    }

    public PolicyStatus? Get(string name)
    {
        lock (_gate)
        {
            return _policies.TryGetValue(name, out var p) ? StatusLocked(p) : null;
        }
    }

    // ---------------------------------------------------------------- maps

    private void WriteState(Loaded p)
    {
        var state = new PalPolState { Enabled = p.Enabled ? 1u : 0u, Monitor = p.Monitor ? 1u : 0u, Scoped = p.Policy.IsPodScoped ? 1u : 0u };
        Obj.Map("pal_pol_states").Typed<uint, PalPolState>().Update(p.Id, state);
    }

    private void AddHookLocked(Loaded policy, CompiledHook hook)
    {
        var href = new HookRef(_nextHookId++, policy, hook);
        policy.Hooks.Add(href);
        _hooks[href.Id] = href;
        foreach (var s in hook.Selectors)
        {
            if (_freeGids.Count == 0)
            {
                throw new InvalidOperationException($"at most {PolAbi.Gids} selectors can be loaded in total");
            }
            href.Gids[s.Index] = _freeGids.Pop();
            Obj.Map("pal_pol_counters").PerCpu<uint, PalPolCounters>().Update(href.Gids[s.Index], new PalPolCounters[BpfPerCpuMap<uint, PalPolCounters>.PossibleCpus]);
        }
        foreach (var target in hook.Targets)
        {
            if (!_points.TryGetValue(target.Key, out var point))
            {
                if (_freePointIds.Count == 0)
                {
                    throw new InvalidOperationException($"at most {PolAbi.Points} hook points can be in use");
                }
                point = new Point(_freePointIds.Pop(), target);
                if (target.Kind is PointKind.Uprobe or PointKind.Kprobe)
                {
                    try
                    {
                        point.Link = target.Kind == PointKind.Uprobe
                            ? Obj.Program("pal_pol_uprobe").AttachUprobe(target.Binary!, target.Function, cookie: point.Id)
                            : Obj.Program("pal_pol_kprobe").AttachKprobe(target.Function, cookie: point.Id);
                    }
                    catch
                    {
                        _freePointIds.Push(point.Id);
                        throw;
                    }
                }
                _points[target.Key] = point;
                _pointsById[point.Id] = point;
            }
            point.Members.Add((href, target));
            href.Targets[point.Id] = target;
            try
            {
                WritePoint(point);
            }
            catch
            {
                point.Members.RemoveAll(m => m.Hook == href);
                WritePoint(point);
                throw;
            }
        }
        WriteLists();
    }

    private bool RemoveLocked(string name)
    {
        if (!_policies.Remove(name, out var p))
        {
            return false;
        }
        // Disable first: from this instant no selector of the policy acts, whatever the map order below.
        Obj.Map("pal_pol_states").Typed<uint, PalPolState>().Delete(p.Id);
        foreach (var h in p.Hooks.ToList())
        {
            RemoveHookLocked(h);
        }
        SetScopeLocked(p, []);
        _freePolicyIds.Push(p.Id);
        return true;
    }

    private void RemoveHookLocked(HookRef h)
    {
        h.Policy.Hooks.Remove(h);
        _hooks.TryRemove(h.Id, out _);
        foreach (var pointId in h.Targets.Keys)
        {
            var point = _pointsById[pointId];
            point.Members.RemoveAll(m => m.Hook == h);
            WritePoint(point);
            if (point.Members.Count == 0)
            {
                point.Link?.Dispose();
                _points.Remove(point.Template.Key);
                _pointsById.TryRemove(point.Id, out _);
                _freePointIds.Push(point.Id);
            }
        }
        foreach (var gid in h.Gids.Values)
        {
            _freeGids.Push(gid);
        }
        WriteLists();
    }

    private static readonly PointLimits Limits = new(PolAbi.Slots, PolAbi.Selectors, PolAbi.Dims, PolAbi.Fids, PolAbi.Filters, PolAbi.Words);

    /// <summary>Rebuilds a point's map entries from its members (PointPlanner) and writes them; stale entries are removed after the point is updated.</summary>
    private void WritePoint(Point point)
    {
        var layout = PointPlanner.Plan(point.Template, point.Members.Select(m => new PointMember(m.Hook.Id, m.Hook.Policy.Id, m.Hook.Gids, m.Hook.Hook, m.Target)).ToList(), Limits);
        var p = default(PalPolPoint);
        p.Id = point.Id;
        p.Flags = (byte)point.Template.Flags;
        p.GateSrc = point.Template.GateSrc;
        p.GateMask = point.Template.GateMask;
        for (var w = 0; w < PolAbi.Words; w++)
        {
            p.All[w] = layout.All[w];
        }
        p.FidPositive = layout.FidPositive;
        layout.FidSel.CopyTo(new Span<byte>(p.FidSel, PolAbi.Fids));
        var selectors = layout.Selectors.ToDictionary(
            sel => (uint)(point.Id * PolAbi.Selectors + sel.Bit),
            sel => new PalPolSelector
            {
                HookId = sel.HookId, PolicyId = sel.PolicyId, Gid = sel.Gid, Index = sel.Index, Actions = (ushort)sel.Actions,
                Signal = sel.Signal, Error = sel.Error, RateNs = sel.RateNs, RateScope = sel.RateScope, SockSlot = sel.SockSlot,
            });
        var strings = layout.Strings.ToDictionary(e => e.Id, e =>
        {
            var key = default(PalPolStrkey);
            key.Prefixlen = (uint)(32 + 8 * e.Bytes.Length);
            key.Point = point.Id;
            key.Slot = e.Slot;
            key.Class = (byte)e.Class;
            e.Bytes.CopyTo(new Span<byte>(key.S, PolAbi.Str));
            var mask = default(PalPolMask);
            for (var w = 0; w < PolAbi.Words; w++)
            {
                mask.W[w] = e.Mask[w];
            }
            return (Key: key, Mask: mask);
        }, StringComparer.Ordinal);
        var slotSpan = p.SlotSpan;
        for (var i = 0; i < layout.Slots.Count; i++)
        {
            var src = layout.Slots[i];
            slotSpan[i] = new PalPolSlotdef { Kind = (byte)src.Kind, Src = src.Src, SizeSrc = src.SizeSrc, Cval = src.Const };
        }
        var dimSpan = p.DimSpan;
        for (var i = 0; i < layout.Dims.Count; i++)
        {
            var d = layout.Dims[i];
            var dim = new PalPolDim { Slot = d.Slot, Class = (byte)d.Class, Negate = d.Negate ? (byte)1 : (byte)0, Follow = d.Follow ? (byte)1 : (byte)0 };
            for (var w = 0; w < PolAbi.Words; w++)
            {
                dim.Constrained[w] = d.Constrained[w];
            }
            dimSpan[i] = dim;
        }
        p.Ndims = (byte)layout.Dims.Count;
        var filterSpan = p.FilterSpan;
        for (var i = 0; i < layout.Filters.Count; i++)
        {
            var f = layout.Filters[i];
            filterSpan[i] = new PalPolFilter { Slot = f.Slot, Field = (byte)f.Field, Op = (byte)f.Op, Negate = f.Negate ? (byte)1 : (byte)0, Fid = f.Fid, Sel = f.Sel, A = f.A, B = f.B, C = f.C, D = f.D };
        }
        p.Nfilters = (byte)layout.Filters.Count;
        var slots = layout.Slots;

        // New entries first, then the point (which makes them live), then stale entries go.
        var selMap = Obj.Map("pal_pol_sels").Typed<uint, PalPolSelector>();
        foreach (var (k, v) in selectors)
        {
            selMap.Update(k, v);
        }
        var strMap = Obj.Map("pal_pol_strings").Typed<PalPolStrkey, PalPolMask>();
        foreach (var (id, e) in strings)
        {
            strMap.Update(e.Key, e.Mask);
        }
        Obj.Map("pal_pol_points").Typed<uint, PalPolPoint>().Update(point.Id, p);
        foreach (var stale in point.SelectorKeys.Where(k => !selectors.ContainsKey(k)).ToList())
        {
            selMap.Delete(stale);
        }
        foreach (var (id, key) in point.StringKeys.Where(kv => !strings.ContainsKey(kv.Key)).ToList())
        {
            strMap.Delete(key);
        }
        point.SelectorKeys.Clear();
        point.SelectorKeys.UnionWith(selectors.Keys);
        point.StringKeys.Clear();
        foreach (var (id, e) in strings)
        {
            point.StringKeys[id] = e.Key;
        }
        point.Slots = [.. slots];
        point.Bytes = sizeof(PalPolPoint) + selectors.Count * (4 + sizeof(PalPolSelector)) + strings.Count * (sizeof(PalPolStrkey) + sizeof(PalPolMask));
    }

    // ---------------------------------------------------------------- status

    private PolicyStatus StatusLocked(Loaded p)
    {
        var counters = Obj.Map("pal_pol_counters").PerCpu<uint, PalPolCounters>();
        var total = PolicyCounters.Zero;
        var hooks = new List<HookReport>();
        long bytes = 0;
        foreach (var h in p.Compiled.Hooks)
        {
            var live = p.Hooks.FirstOrDefault(x => x.Hook == h);
            var sels = new List<SelectorReport>();
            if (live is not null)
            {
                foreach (var (index, gid) in live.Gids.OrderBy(kv => kv.Key))
                {
                    var c = PolicyCounters.Zero;
                    if (counters.TryLookup(gid, out var perCpu))
                    {
                        foreach (var v in perCpu)
                        {
                            c = c.Add(new PolicyCounters(v.Matched, v.Posted, v.Killed, v.Signalled, v.Overridden, v.Monitored, v.RateLimited, v.Lost));
                        }
                    }
                    sels.Add(new SelectorReport(index, c));
                    total = total.Add(c);
                }
                foreach (var pid in live.Targets.Keys)
                {
                    var point = _pointsById.GetValueOrDefault(pid);
                    if (point is not null)
                    {
                        bytes += point.Bytes / Math.Max(1, point.Members.Count);
                    }
                }
            }
            var mode = h.Status.Mode switch { HookMode.Native => "native", HookMode.Emulated => "emulated", _ => "unsupported" };
            hooks.Add(new HookReport(h.HookType, h.Name, mode, h.Status.Detail, sels));
        }
        var state = !p.Enabled ? "disabled" : p.Compiled.Errors.Count > 0 ? "error" : p.Hooks.Count == 0 ? "error"
            : p.Compiled.Hooks.All(h => h.Runs && p.Hooks.Any(x => x.Hook == h)) ? "enabled" : "partially_enabled";
        var errors = p.Compiled.Errors.Select(e => e.ToString()).ToList();
        if (errors.Count == 0 && p.Hooks.Count == 0)
        {
            errors.Add("no hook of this policy can run on this kernel: " + string.Join("; ", p.Compiled.Hooks.Select(h => $"{h.Name}: {h.Status.Detail}")));
        }
        return new PolicyStatus(p.Policy.Key, state, p.Monitor ? "monitor" : "enforce", p.Enabled, hooks, errors, bytes, total, p.Source);
    }

    // ---------------------------------------------------------------- events

    /// <summary>
    /// A policy record from the shared ring buffer, on the process sensor's reader thread: the
    /// exec of its process came first in the same stream, so the process is resolved at once.
    /// Lookups are O(1) and take no lock the writers hold for long.
    /// </summary>
    public void OnRecord(ReadOnlySpan<byte> record)
    {
        if (record.Length < sizeof(PalPolEvent))
        {
            Interlocked.Increment(ref _malformed);
            return;
        }
        var e = MemoryMarshal.Read<PalPolEvent>(record);
        if (!_hooks.TryGetValue(e.HookId, out var hook))
        {
            return; // the policy was deleted while the event was in flight
        }
        var point = _pointsById.GetValueOrDefault((ushort)e.Point);
        var target = point is not null && hook.Targets.TryGetValue(point.Id, out var t) ? t : null;
        var process = _resolve?.Invoke(e.Hdr.Pid, e.ProcKtime) ?? _decoder.MinimalProcess(e.Hdr.Pid, e.Hdr.Tid);
        _publish(_decoder.Decode(record, hook.Hook, hook.Policy.Policy.Name, target, point?.Slots ?? [], process, AncestorKinds));
        Interlocked.Increment(ref _events);
    }
}
