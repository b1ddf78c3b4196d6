using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Palisade.Bpf;
using Palisade.Events;
using Palisade.Policies;
using Palisade.Policies.Compilation;
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
public sealed unsafe class PolicyEngine : IDisposable, IRingBufferConsumer
{
    private readonly Lock _gate = new();
    private readonly Action<PalisadeEvent> _publish;
    private readonly Func<uint, ulong, ProcessRecord?>? _resolve;
    private readonly string _procRoot;
    private BpfObject? _object;
    private readonly Lock _objectGate = new(); // MapUsage() never touches a freed object
    private RingBufferReader? _reader;
    private readonly List<BpfLink> _links = [];
    private readonly Dictionary<string, Loaded> _policies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Point> _points = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, HookRef> _hooks = [];
    private readonly Stack<ushort> _freePointIds = new(Enumerable.Range(0, PolAbi.Points).Select(i => (ushort)(PolAbi.Points - 1 - i)));
    private readonly Stack<uint> _freeGids = new(Enumerable.Range(0, PolAbi.Gids).Select(i => (uint)(PolAbi.Gids - 1 - i)));
    private readonly Stack<uint> _freePolicyIds = new(Enumerable.Range(0, PolAbi.Policies).Select(i => (uint)(PolAbi.Policies - 1 - i)));
    private uint _nextHookId = 1;
    private long _events, _malformed;

    public PolicyEngine(Action<PalisadeEvent> publish, KernelFacts facts, Func<uint, ulong, ProcessRecord?>? resolve = null, string procRoot = "/proc")
    {
        _publish = publish;
        Facts = facts;
        _resolve = resolve;
        _procRoot = procRoot;
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
        public readonly Dictionary<ushort, HookTarget> Targets = []; // point id -> target
    }

    private sealed class Point(ushort id, HookTarget template)
    {
        public readonly ushort Id = id;
        public readonly HookTarget Template = template;
        public readonly List<(HookRef Hook, HookTarget Target)> Members = [];
        public readonly List<SlotSource> Slots = [];
        public readonly HashSet<uint> SelectorKeys = [];
        public BpfLink? Link; // uprobes: one attachment per point, its cookie the point id
        public readonly Dictionary<string, PalPolStrkey> StringKeys = new(StringComparer.Ordinal);
        public int Bytes;
    }

    // ---------------------------------------------------------------- lifecycle

    /// <summary>Loads and attaches the engine's programs. <paramref name="processMap"/>: the process sensor's pal_procs, to name processes in events.</summary>
    public void Start(BpfMap? processMap = null, string? cgroupRoot = null)
    {
        var obj = BpfObject.OpenEmbedded(typeof(PolicyEngine).Assembly, "policy.bpf.o");
        try
        {
            if (processMap is not null)
            {
                obj.Map("pal_procs").ReuseFrom(processMap);
            }
            obj.Load();
            _object = obj;
            // The process map is kept from the start, so matchBinaries holds for processes that
            // start before a policy arrives. The syscall and connect programs are attached only
            // while a point needs them: every syscall on the node would pay for them otherwise.
            foreach (var name in new[] { "pal_pol_exec", "pal_pol_fork", "pal_pol_exit" })
            {
                _links.Add(obj.Program(name).Attach());
            }
            _cgroupRoot = cgroupRoot ?? KernelEnvironment.Cgroup2Root();
            SeedProcesses();
            _reader = new RingBufferReader(this, obj.Map("pal_pol_events"));
            _reader.Start("palisade-policy");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _reader?.Dispose();
        _reader = null;
        foreach (var l in _links.Concat(_points.Values.Select(p => p.Link).OfType<BpfLink>()).Concat(_lazy.Values.SelectMany(x => x)))
        {
            l.Dispose();
        }
        _lazy.Clear();
        _links.Clear();
        lock (_objectGate)
        {
            _object?.Dispose();
            _object = null;
        }
    }

    /// <summary>Fill level of the engine's ring buffer.</summary>
    public IReadOnlyList<(string Map, long Pending, long Capacity)> RingBufferUsage() => _reader?.Usage() ?? [];

    /// <summary>Entries vs capacity of the engine's hash and LPM maps (selectors, strings, process state).</summary>
    public IReadOnlyList<(string Map, int Entries, int Capacity)> MapUsage()
    {
        lock (_objectGate)
        {
            return _object?.MapUsage() ?? [];
        }
    }

    private BpfObject Obj => _object ?? throw new InvalidOperationException("The policy engine is not started.");

    /// <summary>Fills the per-process map from /proc so matchBinaries holds for processes started before the agent.</summary>
    private void SeedProcesses()
    {
        var map = Obj.Map("pal_pol_procs").Typed<uint, PalPolProc>();
        foreach (var p in ProcFs.Scan(_procRoot, cgroupRoot: null))
        {
            var proc = new PalPolProc { Parent = p.ParentPid, CapEff = p.CapEffective, Nspid = p.NamespacePid };
            var bytes = Encoding.UTF8.GetBytes(p.Binary);
            var n = Math.Min(bytes.Length, PolAbi.Str - 1);
            bytes.AsSpan(0, n).CopyTo(new Span<byte>(proc.Bin, PolAbi.Str));
            proc.Len = (ushort)n;
            for (var i = 0; i < p.Namespaces.Length && i < (int)NamespaceSlot.Count; i++)
            {
                proc.Ns[i] = p.Namespaces[i];
            }
            try
            {
                map.Update(p.Pid, proc, MapUpdateFlags.NoExist);
            }
            catch (BpfException)
            {
                // The kernel recorded the process first (an exec raced the scan): its entry is newer.
            }
        }
    }

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
        _hooks.Remove(h.Id);
        foreach (var pointId in h.Targets.Keys)
        {
            var point = _points.Values.First(p => p.Id == pointId);
            point.Members.RemoveAll(m => m.Hook == h);
            WritePoint(point);
            if (point.Members.Count == 0)
            {
                point.Link?.Dispose();
                _points.Remove(point.Template.Key);
                _freePointIds.Push(point.Id);
            }
        }
        foreach (var gid in h.Gids.Values)
        {
            _freeGids.Push(gid);
        }
        WriteLists();
    }

    private static byte SlotOf(Point point, SlotSource src, List<SlotSource> slots)
    {
        var i = slots.IndexOf(src);
        if (i < 0)
        {
            if (slots.Count >= PolAbi.Slots)
            {
                throw new InvalidOperationException($"{point.Template.Describe()}: more than {PolAbi.Slots} distinct arguments are used by the policies on this point");
            }
            slots.Add(src);
            i = slots.Count - 1;
        }
        return (byte)i;
    }

    /// <summary>Rebuilds a point's map entries from its members and writes them; stale entries are removed after the point is updated.</summary>
    private void WritePoint(Point point)
    {
        var p = default(PalPolPoint);
        p.Id = point.Id;
        p.Flags = (byte)point.Template.Flags;
        p.GateSrc = point.Template.GateSrc;
        p.GateMask = point.Template.GateMask;
        var slots = new List<SlotSource>();
        var selectors = new Dictionary<uint, PalPolSelector>();
        var strings = new Dictionary<string, (PalPolStrkey Key, ulong[] Mask, StringClass Class, byte Slot, byte[] Bytes)>(StringComparer.Ordinal);
        var dims = new List<(byte Slot, StringClass Class, bool Negate, bool Follow, ulong[] Constrained)>();
        var filters = new List<PalPolFilter>();
        var fid = 0;
        var bit = 0;
        foreach (var (hook, target) in point.Members)
        {
            // Every argument the hook reports is extracted, even when no selector tests it.
            foreach (var a in hook.Hook.Args)
            {
                if (target.Args.TryGetValue(a.Index, out var src))
                {
                    SlotOf(point, src, slots);
                }
            }
            if (hook.Hook.ReturnArg is not null && target.Return is { } r)
            {
                SlotOf(point, r, slots);
            }
            foreach (var sel in hook.Hook.Selectors)
            {
                if (bit >= PolAbi.Selectors)
                {
                    throw new InvalidOperationException($"{point.Template.Describe()}: more than {PolAbi.Selectors} selectors on one point");
                }
                var b = (byte)bit++;
                p.All[b >> 6] |= 1UL << (b & 63);
                var a = sel.Actions;
                byte sockSlot = 0;
                if ((a.Flags & (ActionFlags.TrackSock | ActionFlags.UntrackSock)) != 0)
                {
                    // The compiler checked that every target has the socket.
                    sockSlot = SlotOf(point, a.SockArg == SelectorActions.ReturnSock ? target.Return!.Value : target.Args[(uint)a.SockArg], slots);
                }
                selectors[(uint)(point.Id * PolAbi.Selectors + b)] = new PalPolSelector
                {
                    HookId = hook.Id, PolicyId = hook.Policy.Id, Gid = hook.Gids[sel.Index], Index = (ushort)sel.Index, Actions = (ushort)a.Flags,
                    Signal = a.Signal, Error = a.Error, RateNs = a.RateLimitNs, RateScope = a.RateScope, SockSlot = sockSlot,
                };
                foreach (var m in sel.Strings)
                {
                    var slot = m.Ref.IsArg ? SlotOf(point, target.Args[(uint)m.Ref.ArgIndex], slots) : (byte)m.Ref.Pseudo;
                    var di = dims.FindIndex(d => d.Slot == slot && d.Class == m.Class && d.Negate == m.Negate && d.Follow == m.Follow);
                    if (di < 0)
                    {
                        if (dims.Count >= PolAbi.Dims)
                        {
                            throw new InvalidOperationException($"{point.Template.Describe()}: more than {PolAbi.Dims} string conditions of different kinds on one point");
                        }
                        dims.Add((slot, m.Class, m.Negate, m.Follow, new ulong[PolAbi.Words]));
                        di = dims.Count - 1;
                    }
                    dims[di].Constrained[b >> 6] |= 1UL << (b & 63);
                    foreach (var v in m.Values)
                    {
                        var bytes = Encoding.UTF8.GetBytes(v);
                        if (m.Class == StringClass.Postfix)
                        {
                            Array.Reverse(bytes);
                        }
                        if (m.Class == StringClass.Equal)
                        {
                            bytes = [.. bytes, 0];
                        }
                        var id = $"{slot}/{(byte)m.Class}/{Convert.ToHexString(bytes)}";
                        if (!strings.TryGetValue(id, out var e))
                        {
                            var key = default(PalPolStrkey);
                            key.Prefixlen = (uint)(32 + 8 * bytes.Length);
                            key.Point = point.Id;
                            key.Slot = slot;
                            key.Class = (byte)m.Class;
                            bytes.CopyTo(new Span<byte>(key.S, PolAbi.Str));
                            e = (key, new ulong[PolAbi.Words], m.Class, slot, bytes);
                            strings[id] = e;
                        }
                        e.Mask[b >> 6] |= 1UL << (b & 63);
                    }
                }
                foreach (var m in sel.Ints)
                {
                    var slot = m.Ref.IsArg ? SlotOf(point, target.Args[(uint)m.Ref.ArgIndex], slots) : (byte)m.Ref.Pseudo;
                    if (fid >= PolAbi.Fids)
                    {
                        throw new InvalidOperationException($"{point.Template.Describe()}: more than {PolAbi.Fids} integer conditions on one point");
                    }
                    var f = (byte)fid++;
                    p.FidSel[f] = b;
                    if (!m.Negate)
                    {
                        p.FidPositive |= 1UL << f;
                    }
                    foreach (var t in m.Tests)
                    {
                        filters.Add(new PalPolFilter { Slot = slot, Field = (byte)m.Field, Op = (byte)t.Op, Negate = m.Negate ? (byte)1 : (byte)0, Fid = f, Sel = b, A = t.A, B = t.B, C = t.C, D = t.D });
                    }
                }
            }
        }
        if (filters.Count > PolAbi.Filters)
        {
            throw new InvalidOperationException($"{point.Template.Describe()}: {filters.Count} integer values on one point; at most {PolAbi.Filters} fit");
        }
        // Prefix and postfix: the LPM trie returns the longest match only, so each entry also carries
        // the selectors of every shorter entry that is a prefix of it.
        foreach (var e in strings.Values.Where(e => e.Class != StringClass.Equal))
        {
            foreach (var shorter in strings.Values.Where(o => o.Class == e.Class && o.Slot == e.Slot && o.Bytes.Length < e.Bytes.Length && e.Bytes.AsSpan().StartsWith(o.Bytes)))
            {
                for (var w = 0; w < PolAbi.Words; w++)
                {
                    e.Mask[w] |= shorter.Mask[w];
                }
            }
        }
        var slotSpan = p.SlotSpan;
        for (var i = 0; i < slots.Count; i++)
        {
            slotSpan[i] = new PalPolSlotdef { Kind = (byte)slots[i].Kind, Src = slots[i].Src, SizeSrc = slots[i].SizeSrc, Cval = slots[i].Const };
        }
        var dimSpan = p.DimSpan;
        for (var i = 0; i < dims.Count; i++)
        {
            var d = new PalPolDim { Slot = dims[i].Slot, Class = (byte)dims[i].Class, Negate = dims[i].Negate ? (byte)1 : (byte)0, Follow = dims[i].Follow ? (byte)1 : (byte)0 };
            for (var w = 0; w < PolAbi.Words; w++)
            {
                d.Constrained[w] = dims[i].Constrained[w];
            }
            dimSpan[i] = d;
        }
        p.Ndims = (byte)dims.Count;
        filters.ToArray().CopyTo(p.FilterSpan);
        p.Nfilters = (byte)filters.Count;

        // New entries first, then the point (which makes them live), then stale entries go.
        var selMap = Obj.Map("pal_pol_sels").Typed<uint, PalPolSelector>();
        foreach (var (k, v) in selectors)
        {
            selMap.Update(k, v);
        }
        var strMap = Obj.Map("pal_pol_strings").Typed<PalPolStrkey, PalPolMask>();
        foreach (var (id, e) in strings)
        {
            var mask = default(PalPolMask);
            for (var w = 0; w < PolAbi.Words; w++)
            {
                mask.W[w] = e.Mask[w];
            }
            strMap.Update(e.Key, mask);
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
        point.Slots.Clear();
        point.Slots.AddRange(slots);
        point.Bytes = sizeof(PalPolPoint) + selectors.Count * (4 + sizeof(PalPolSelector)) + strings.Count * (sizeof(PalPolStrkey) + sizeof(PalPolMask));
    }

    /// <summary>Rewrites the syscall and other point lists from the live points.</summary>
    private void WriteLists()
    {
        var exit = new Dictionary<int, List<ushort>>();
        var enter = new Dictionary<int, List<ushort>>();
        var other = new Dictionary<int, List<ushort>>();
        foreach (var point in _points.Values.Where(p => p.Members.Count > 0))
        {
            var t = point.Template;
            var (table, key) = t.Kind switch
            {
                PointKind.SyscallExit => (exit, t.Syscall < 0 ? PolAbi.Syscalls - 1 : t.Syscall),
                PointKind.SyscallEnter => (enter, t.Syscall < 0 ? PolAbi.Syscalls - 1 : t.Syscall),
                PointKind.Exec => (other, OtherExec),
                PointKind.Uprobe or PointKind.Kprobe => (other, -1),
                PointKind.Tracepoint or PointKind.CgroupSkb => (other, OtherPlaces[t.Place!].Key),
                _ => (other, OtherConnect),
            };
            if (key < 0)
            {
                continue; // attached directly
            }
            if (!table.TryGetValue(key, out var list))
            {
                table[key] = list = [];
            }
            list.Add(point.Id);
        }
        // Signals a cgroup hook decided on are delivered at the exit of the syscall that got there.
        var connectPending = other.ContainsKey(OtherConnect);
        var pending = new HashSet<int>();
        if (connectPending)
        {
            pending.Add(SyscallTable.X64["connect"]);
        }
        if (other.ContainsKey(OtherPlaces["cgroup_skb/egress"].Key))
        {
            pending.UnionWith(PacketSends.Select(n => SyscallTable.X64[n]));
        }
        WriteList("pal_pol_sys_exit", exit, PolAbi.Syscalls, pending);
        WriteList("pal_pol_sys_enter", enter, PolAbi.Syscalls, new HashSet<int>());
        WriteList("pal_pol_other", other, PolAbi.OtherCount, new HashSet<int>());
        // Lists first, then attach: a program never runs against a list that is not there yet.
        Attach("sys_exit", exit.Count > 0 || pending.Count > 0, () => [Obj.Program("pal_pol_sys_exit_prog").Attach()]);
        Attach("sys_enter", enter.Count > 0, () => [Obj.Program("pal_pol_sys_enter_prog").Attach()]);
        foreach (var (place, (key, program)) in OtherPlaces)
        {
            Attach(place, other.ContainsKey(key), () => place.StartsWith("cgroup_skb/", StringComparison.Ordinal)
                ? [Obj.Program(program).AttachCgroup(_cgroupRoot ?? throw new InvalidOperationException("packet hooks need the cgroup v2 hierarchy, which is not mounted"))]
                : [Obj.Program(program).Attach()]);
        }
        Attach("connect", connectPending, () =>
        {
            var root = _cgroupRoot ?? throw new InvalidOperationException("connect hooks need the cgroup v2 hierarchy, which is not mounted");
            var links = new List<BpfLink> { Obj.Program("pal_pol_connect4").AttachCgroup(root) };
            try
            {
                links.Add(Obj.Program("pal_pol_connect6").AttachCgroup(root));
            }
            catch
            {
                links[0].Dispose();
                throw;
            }
            return links;
        });
    }

    // Keys of pal_pol_other (enum pal_pol_other_key) and the program of each kernel place.
    private const int OtherExec = (int)PalPolOtherKey.Exec, OtherConnect = (int)PalPolOtherKey.Connect;

    private static readonly Dictionary<string, (int Key, string Program)> OtherPlaces = new(StringComparer.Ordinal)
    {
        ["inet_sock_set_state"] = ((int)PalPolOtherKey.SockState, "pal_pol_sock_state"),
        ["cap_capable"] = ((int)PalPolOtherKey.CapCapable, "pal_pol_cap_capable"),
        ["net_dev_queue"] = ((int)PalPolOtherKey.NetDevQueue, "pal_pol_net_dev_queue"),
        ["net_dev_start_xmit"] = ((int)PalPolOtherKey.NetDevXmit, "pal_pol_net_dev_xmit"),
        ["kfree_skb"] = ((int)PalPolOtherKey.KfreeSkb, "pal_pol_kfree_skb"),
        ["cgroup_skb/ingress"] = ((int)PalPolOtherKey.SkbIngress, "pal_pol_skb_ingress"),
        ["cgroup_skb/egress"] = ((int)PalPolOtherKey.SkbEgress, "pal_pol_skb_egress"),
    };

    /// <summary>Syscalls a process sends packets in: where a kill an egress hook decided on is delivered.</summary>
    private static readonly string[] PacketSends = ["connect", "sendto", "sendmsg", "sendmmsg", "write", "writev", "pwritev", "pwritev2"];

    private void WriteList(string mapName, Dictionary<int, List<ushort>> lists, int size, IReadOnlySet<int> pendingNrs)
    {
        var map = Obj.Map(mapName).Typed<uint, PalPolSysent>();
        for (var nr = 0; nr < size; nr++)
        {
            var e = default(PalPolSysent);
            if (lists.TryGetValue(nr, out var ids))
            {
                if (ids.Count > PolAbi.PerSyscall)
                {
                    throw new InvalidOperationException($"more than {PolAbi.PerSyscall} different hooked functions on one syscall ({SyscallTable.NameOf(nr)})");
                }
                for (var i = 0; i < ids.Count; i++)
                {
                    e.Points[i] = ids[i];
                }
                e.N = (byte)ids.Count;
            }
            if (pendingNrs.Contains(nr))
            {
                e.Flags = (byte)PalPolSysentFlags.Pending;
            }
            if (e.N != 0 || e.Flags != 0 || _writtenLists.Contains((mapName, nr)))
            {
                map.Update((uint)nr, e);
                if (e.N != 0 || e.Flags != 0)
                {
                    _writtenLists.Add((mapName, nr));
                }
                else
                {
                    _writtenLists.Remove((mapName, nr));
                }
            }
        }
    }

    private readonly HashSet<(string, int)> _writtenLists = [];
    private string? _cgroupRoot;
    private readonly Dictionary<string, List<BpfLink>> _lazy = new(StringComparer.Ordinal);

    /// <summary>Attaches a group of programs while <paramref name="needed"/>, detaches it after.</summary>
    private void Attach(string group, bool needed, Func<List<BpfLink>> attach)
    {
        if (needed && !_lazy.ContainsKey(group))
        {
            _lazy[group] = attach();
        }
        else if (!needed && _lazy.Remove(group, out var links))
        {
            foreach (var l in links)
            {
                l.Dispose();
            }
        }
    }

    /// <summary>Which generic programs are attached now (for status and tests).</summary>
    public IReadOnlyCollection<string> AttachedGroups
    {
        get
        {
            lock (_gate)
            {
                return _lazy.Keys.ToList();
            }
        }
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
                    var point = _points.Values.FirstOrDefault(x => x.Id == pid);
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

    public void OnRecord(ReadOnlySpan<byte> record)
    {
        if (record.Length < sizeof(PalPolEvent))
        {
            Interlocked.Increment(ref _malformed);
            return;
        }
        var e = MemoryMarshal.Read<PalPolEvent>(record);
        var pointId = e.Point;
        HookRef? hook;
        lock (_gate)
        {
            _hooks.TryGetValue(e.HookId, out hook);
        }
        if (hook is null)
        {
            return; // the policy was deleted while the event was in flight
        }
        var process = _resolve?.Invoke(e.Hdr.Pid, e.ProcKtime);
        // The process sensor's ring buffer may deliver the exec a little after this event
        // (it batches wakeups, polling every 100 ms): wait for it, boundedly, before settling for less.
        for (var i = 0; process is null && e.ProcKtime != 0 && _resolve is not null && i < 8; i++)
        {
            Thread.Sleep(50);
            process = _resolve(e.Hdr.Pid, e.ProcKtime);
        }
        process ??= MinimalProcess(e.Hdr.Pid, e.Hdr.Tid);
        var values = MemoryMarshal.Cast<byte, PalPolValue>(new ReadOnlySpan<byte>(e.Values, PolAbi.Slots * sizeof(PalPolValue)));
        // The slot layout of the point the kernel evaluated, and the hook's target there.
        Point? point;
        HookTarget? target;
        lock (_gate)
        {
            point = _points.Values.FirstOrDefault(p => p.Id == pointId && p.Members.Any(m => m.Hook == hook));
            target = point?.Members.First(m => m.Hook == hook).Target;
        }
        var args = new List<PolicyArgValue>();
        foreach (var a in hook.Hook.Args)
        {
            if (a.Type == "nop" || target is null || !target.Args.TryGetValue(a.Index, out var src))
            {
                continue;
            }
            var slot = point!.Slots.IndexOf(src);
            // A point rebuilt while the event was in flight may have moved its slots: the kind
            // the kernel recorded must be the one we expect, or the argument is left out.
            if (slot >= 0 && slot < values.Length && values[slot].Kind == (byte)src.Kind)
            {
                args.Add(ToArg(a.Type, a.Label, values[slot], src));
            }
        }
        PolicyArgValue? ret = null;
        if (hook.Hook.ReturnArg is { } ra && target?.Return is { } rsrc && point!.Slots.IndexOf(rsrc) is var rs and >= 0)
        {
            ret = ToArg(ra.Type, ra.Label, values[rs], rsrc);
        }
        var monitored = e.Action == (byte)PalPolAction.Monitor;
        var action = (PalPolAction)e.Action switch
        {
            PalPolAction.Sigkill => "KPROBE_ACTION_SIGKILL",
            PalPolAction.Signal => "KPROBE_ACTION_SIGNAL",
            PalPolAction.Override => "KPROBE_ACTION_OVERRIDE",
            _ => "KPROBE_ACTION_POST",
        };
        var h = hook.Hook;
        _publish(new ProcessPolicyEvent
        {
            Time = DateTimeOffset.UtcNow,
            Process = process,
            HookKind = h.HookType switch { "tracepoint" => EventKind.ProcessTracepoint, "lsm" => EventKind.ProcessLsm, "uprobe" => EventKind.ProcessUprobe, _ => EventKind.ProcessKprobe },
            FunctionName = h.HookType == "uprobe" && target is not null ? target.Function : h.Name,
            Subsystem = h.Subsystem,
            EventName = h.Event,
            Args = args,
            Return = ret,
            Action = action,
            Monitored = monitored,
            PolicyName = hook.Policy.Policy.Name,
            Message = h.Message,
            Tags = h.Tags,
        });
        Interlocked.Increment(ref _events);
    }

    private ProcessRecord MinimalProcess(uint pid, uint tid) => new()
    {
        Pid = pid, Tid = tid, Ktime = 0, ExecId = "", Binary = ProcFs.ReadExe(Path.Combine(_procRoot, pid.ToString(System.Globalization.CultureInfo.InvariantCulture))), StartTime = DateTimeOffset.UtcNow,
    };

    private static PolicyArgValue ToArg(string type, string? label, in PalPolValue v, SlotSource src)
    {
        var truncated = (v.Flags & PalPolValue.Truncated) != 0;
        string Text(in PalPolValue value)
        {
            fixed (byte* s = value.S)
            {
                return Encoding.UTF8.GetString(s, Math.Min((int)value.Len, PolAbi.Str));
            }
        }
        switch (src.Kind)
        {
            case SlotKind.UserString:
                return new PolicyArgValue("string_arg", label) { Text = Text(v), Truncated = truncated };
            case SlotKind.UserBuffer:
                fixed (byte* b = v.S)
                {
                    var bytes = new ReadOnlySpan<byte>(b, Math.Min((int)v.Len, PolAbi.Str)).ToArray();
                    return type switch
                    {
                        "bpf_attr" or "bpf_map" or "perf_event" => KernelStructs.Decode(type, label, bytes),
                        _ => new PolicyArgValue("bytes_arg", label) { Bytes = bytes, Truncated = truncated },
                    };
                }
            case SlotKind.KString:
                return new PolicyArgValue("string_arg", label) { Text = Text(v), Truncated = truncated };
            case SlotKind.KFile or SlotKind.KPath or SlotKind.KDentry:
                return new PolicyArgValue(src.Kind == SlotKind.KFile ? "file_arg" : "path_arg", label) { Text = Text(v), Truncated = truncated };
            case SlotKind.KBinprm:
                return new PolicyArgValue("linux_binprm_arg", label) { Text = Text(v) };
            case SlotKind.KSock:
                return new PolicyArgValue("sock_arg", label) { Sock = Sock(v.Sock) };
            case SlotKind.KSkb:
            {
                var sock = Sock(v.Sock);
                return new PolicyArgValue("skb_arg", label)
                {
                    Object =
                    [
                        new("family", sock.Family), new("protocol", sock.Protocol), new("len", (uint)v.Ival),
                        new("saddr", sock.SAddr), new("daddr", sock.DAddr), new("sport", (uint)sock.SPort), new("dport", (uint)sock.DPort),
                        new("proto", (uint)v.Sock.Protocol),
                    ],
                };
            }
            case SlotKind.KNetDev:
                return new PolicyArgValue("net_dev_arg", label) { Object = [new("name", Text(v))] };
            case SlotKind.KUserNs:
                fixed (byte* n = v.S)
                {
                    var u = new ReadOnlySpan<uint>(n, 4);
                    return new PolicyArgValue("user_ns_arg", label)
                    {
                        Object =
                        [
                            new("level", (int)u[0]), new("uid", (int)u[1]), new("gid", (int)u[2]),
                            new("ns", (IReadOnlyList<KeyValuePair<string, object>>)[new("inum", u[3]), new("is_host", u[0] == 0)]),
                        ],
                    };
                }
            case SlotKind.FdPath or SlotKind.RetFdPath:
                return type == "int" ? new PolicyArgValue("int_arg", label) { Int = (long)v.Ival }
                    : new PolicyArgValue(type == "path" ? "path_arg" : "file_arg", label) { Text = Text(v), Truncated = truncated };
            case SlotKind.ExecPath:
                return new PolicyArgValue(type == "file" ? "file_arg" : "linux_binprm_arg", label) { Text = Text(v) };
            case SlotKind.UserSockaddr:
                return new PolicyArgValue("sockaddr_arg", label) { Sock = Sock(v.Sock) };
            case SlotKind.CtxSock or SlotKind.FdSock or SlotKind.RetFdSock:
                return new PolicyArgValue(type == "sockaddr" ? "sockaddr_arg" : "sock_arg", label) { Sock = Sock(v.Sock) };
            case SlotKind.Cred or SlotKind.KCred:
                fixed (byte* c = v.S)
                {
                    var u = new ReadOnlySpan<uint>(c, 10);
                    var caps = new ReadOnlySpan<ulong>(c + 40, 3);
                    return new PolicyArgValue("process_credentials_arg", label)
                    {
                        Cred = new CredValue(new Credentials(u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7]), u[8], new CapabilitySets(caps[0], caps[1], caps[2]), u[9]),
                    };
                }
            case SlotKind.SyscallNr:
                return new PolicyArgValue(type == "syscall64" ? "syscall_id" : "long_arg", label) { Int = (long)v.Ival };
            case SlotKind.TaskCap:
                return new PolicyArgValue(type is "cap_effective" or "cap_inheritable" or "cap_permitted" ? type + "_arg" : "size_arg", label) { Int = (long)v.Ival };
        }
        if (type == "capability")
        {
            return new PolicyArgValue("capability_arg", label) { Int = (long)v.Ival, Object = [new("value", (int)v.Ival), new("name", (uint)v.Ival < Capabilities.Names.Length ? Capabilities.Names[(int)v.Ival] : "")] };
        }
        return type switch
        {
            "int" or "int32" or "sint32" or "int16" or "sint16" or "int8" or "sint8" or "auto" => new PolicyArgValue("int_arg", label) { Int = (int)v.Ival },
            "uint32" or "uint16" or "uint8" or "uint" => new PolicyArgValue("uint_arg", label) { Int = (uint)v.Ival },
            "size_t" or "uint64" or "ulong" => new PolicyArgValue("size_arg", label) { Int = (long)v.Ival },
            "cap_effective" or "cap_inheritable" or "cap_permitted" or "kernel_cap_t" => new PolicyArgValue((type == "kernel_cap_t" ? "cap_effective" : type) + "_arg", label) { Int = (long)v.Ival },
            _ => new PolicyArgValue("long_arg", label) { Int = (long)v.Ival },
        };
    }

    private static SockValue Sock(PalPolSock s)
    {
        static string Addr(PalPolSock sock, bool source)
        {
            byte* a = source ? sock.Saddr : sock.Daddr;
            return sock.Family switch
            {
                2 => new IPAddress(new ReadOnlySpan<byte>(a, 4)).ToString(),
                10 => new IPAddress(new ReadOnlySpan<byte>(a, 16)).ToString(),
                _ => "",
            };
        }
        return new SockValue(SocketNames.Name(SocketNames.Families, s.Family), SocketNames.SocketTypes.GetValueOrDefault(s.Type, s.Type.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            SocketNames.Name(SocketNames.Protocols, s.Protocol), Addr(s, true), Addr(s, false), s.Sport, s.Dport,
            s.State == 0 ? "" : SocketNames.Name(SocketNames.States, s.State));
    }
}
