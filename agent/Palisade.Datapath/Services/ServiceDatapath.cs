using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Palisade.Bpf;
using Palisade.Datapath.Abi;
using Palisade.Policies.Services;

namespace Palisade.Datapath.Services;

/// <summary>Settings of the socket-LB maps and programs.</summary>
public sealed record ServiceDatapathOptions
{
    /// <summary>cgroup v2 directory the programs attach to; null: the hierarchy's root, so every socket of the node is served.</summary>
    public string? CgroupRoot { get; init; }

    /// <summary>Frontends (address:port/protocol) at most; reverse-NAT indices are 16 bits, so at most 65535.</summary>
    public int MaxFrontends { get; init; } = 65535;

    /// <summary>Backends per family at most.</summary>
    public int MaxBackends { get; init; } = 65536;

    /// <summary>Entries of a family's service map: one master per frontend plus one slot per (frontend, backend).</summary>
    public int MaxSlots { get; init; } = 262144;

    /// <summary>Sockets remembered for recvmsg/getpeername (an LRU: the oldest are forgotten first).</summary>
    public int SocketRevNatEntries { get; init; } = 262144;

    /// <summary>Client affinity entries (an LRU).</summary>
    public int AffinityEntries { get; init; } = 65536;

    /// <summary>Entries of a Maglev table, one of <see cref="Maglev.Sizes"/>.</summary>
    public int MaglevTableSize { get; init; } = Maglev.DefaultSize;

    /// <summary>Frontends with a Maglev table at most.</summary>
    public int MaxMaglevFrontends { get; init; } = 1024;

    /// <summary>The algorithm of frontends that do not choose one.</summary>
    public LbAlgorithm DefaultAlgorithm { get; init; } = LbAlgorithm.Random;

    /// <summary>The Maglev seed all nodes share.</summary>
    public MaglevSeed MaglevSeed { get; init; } = MaglevSeed.Default;
}

/// <summary>What the socket-LB holds and has done.</summary>
public sealed record ServiceDatapathStats(
    int Frontends,
    int Backends,
    int Slots,
    long MapBytes,
    ulong Translated,
    ulong NoBackend,
    ulong BackendMiss,
    ulong RevNatFull,
    ulong AffinityHits,
    ulong Reversed);

/// <summary>Connections a frontend translated and refused (no backend) since it was programmed.</summary>
public readonly record struct FrontendCounters(ulong Translated, ulong Refused);

/// <summary>
/// Loads bpf/net/lb.bpf.c and keeps its maps equal to a set of <see cref="ServiceFrontend"/>s:
/// each frontend gets a reverse-NAT index, each distinct backend (address, port, protocol) an
/// id shared by every frontend that uses it, a master entry and one slot per backend, and a
/// Maglev table when its algorithm says so. Changes are written in an order in which every
/// intermediate state is a mix of the old and the new backends, never an empty or dangling
/// one (see bpf/include/pal_lb.h). Thread-safe.
/// </summary>
public sealed class ServiceDatapath : IDisposable
{
    private static readonly string[] Programs =
    [
        "pal_lb_connect4", "pal_lb_connect6", "pal_lb_sendmsg4", "pal_lb_sendmsg6",
        "pal_lb_recvmsg4", "pal_lb_recvmsg6", "pal_lb_getpeername4", "pal_lb_getpeername6",
    ];

    private readonly ServiceDatapathOptions _options;
    private readonly Lock _gate = new();
    private readonly List<BpfLink> _links = [];
    private readonly Dictionary<string, Programmed> _frontends = new(StringComparer.Ordinal);
    private readonly Dictionary<BackendKey, BackendState> _backends = [];
    private readonly Stack<ushort> _freeRevNat = new();
    private readonly Stack<uint> _freeBackendIds = new();
    private ushort _nextRevNat = 1;
    private uint _nextBackendId = 1;
    private BpfObject? _object;

    public ServiceDatapath(ServiceDatapathOptions? options = null)
    {
        _options = options ?? new ServiceDatapathOptions();
        if (Maglev.SizeProblem(_options.MaglevTableSize) is { } problem)
        {
            throw new ArgumentException(problem);
        }
        if (_options.MaxFrontends is < 1 or > 65535)
        {
            throw new ArgumentException($"service frontends: {_options.MaxFrontends} is outside 1..65535 (reverse-NAT indices are 16 bits).");
        }
        if (_options.DefaultAlgorithm == LbAlgorithm.Default)
        {
            throw new ArgumentException("the default service algorithm must be random or maglev.");
        }
    }

    /// <summary>The cgroup the programs are attached to (after <see cref="Start"/>).</summary>
    public string? CgroupRoot { get; private set; }

    public ServiceDatapathOptions Options => _options;

    private BpfObject Object => _object ?? throw new InvalidOperationException("The service datapath is not started.");

    /// <summary>Loads the programs and attaches them; <see cref="BpfException"/> with the verifier's log when the kernel refuses one.</summary>
    public void Start()
    {
        var root = _options.CgroupRoot ?? KernelEnvironment.Cgroup2Root()
            ?? throw new InvalidOperationException("No cgroup v2 hierarchy is mounted (looked for cgroup2 in /proc/self/mountinfo); socket-LB attaches to its root. Mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`.");
        var obj = BpfObject.OpenEmbedded(typeof(ServiceDatapath).Assembly, "lb.bpf.o");
        try
        {
            obj.SetConstant("maglev_size", (uint)_options.MaglevTableSize);
            obj.Map("pal_lb_maglev").ValueSize = sizeof(uint) * _options.MaglevTableSize;
            obj.Map("pal_lb_maglev").MaxEntries = _options.MaxMaglevFrontends;
            foreach (var family in new[] { "4", "6" })
            {
                obj.Map($"pal_lb{family}_services").MaxEntries = _options.MaxSlots;
                obj.Map($"pal_lb{family}_backends").MaxEntries = _options.MaxBackends;
                obj.Map($"pal_lb{family}_revnat").MaxEntries = _options.MaxFrontends;
                obj.Map($"pal_lb{family}_sock_revnat").MaxEntries = _options.SocketRevNatEntries;
            }
            obj.Map("pal_lb_affinity").MaxEntries = _options.AffinityEntries;
            obj.Load();
            foreach (var name in Programs)
            {
                _links.Add(obj.Program(name).AttachCgroup(root));
            }
        }
        catch
        {
            DisposeLinks();
            obj.Dispose();
            throw;
        }
        lock (_gate)
        {
            _object = obj;
            CgroupRoot = root;
        }
    }

    /// <summary>The frontends programmed now, by key.</summary>
    public IReadOnlyList<ServiceFrontend> Frontends()
    {
        lock (_gate)
        {
            return [.. _frontends.Values.Select(p => p.Frontend)];
        }
    }

    /// <summary>
    /// Makes the maps hold exactly <paramref name="desired"/>: frontends that changed are
    /// rewritten, new ones added, those not in it removed. A frontend listed twice: the last wins.
    /// </summary>
    public void Apply(IReadOnlyCollection<ServiceFrontend> desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        lock (_gate)
        {
            var wanted = new Dictionary<string, ServiceFrontend>(StringComparer.Ordinal);
            foreach (var f in desired)
            {
                wanted[f.Key] = f;
            }
            // Removals first: they free indices and slots the additions may need.
            foreach (var key in _frontends.Keys.Where(k => !wanted.ContainsKey(k)).ToList())
            {
                RemoveLocked(key);
            }
            foreach (var f in wanted.Values)
            {
                UpsertLocked(f);
            }
        }
    }

    /// <summary>Adds or changes one frontend (nothing is written when it is programmed as it is).</summary>
    public void Upsert(ServiceFrontend frontend)
    {
        ArgumentNullException.ThrowIfNull(frontend);
        lock (_gate)
        {
            UpsertLocked(frontend);
        }
    }

    /// <summary>Removes one frontend; false when it was not programmed.</summary>
    public bool Remove(ServiceFrontend frontend)
    {
        ArgumentNullException.ThrowIfNull(frontend);
        lock (_gate)
        {
            return RemoveLocked(frontend.Key);
        }
    }

    /// <summary>Connections translated and refused by one frontend; null when it is not programmed.</summary>
    public FrontendCounters? Counters(ServiceFrontend frontend)
    {
        ArgumentNullException.ThrowIfNull(frontend);
        lock (_gate)
        {
            if (!_frontends.TryGetValue(frontend.Key, out var p))
            {
                return null;
            }
            var stats = Object.Map("pal_lb_frontend_stats").PerCpu<uint, ulong>();
            ulong Sum(uint i) => stats.TryLookup(i, out var v) ? v.Aggregate(0UL, (a, b) => a + b) : 0;
            return new FrontendCounters(Sum(2u * p.RevNat) - p.BaseTranslated, Sum(2u * p.RevNat + 1) - p.BaseRefused);
        }
    }

    public ServiceDatapathStats Stats()
    {
        lock (_gate)
        {
            var obj = Object;
            var stats = obj.Map("pal_lb_stats").PerCpu<uint, ulong>();
            ulong Sum(PalLbStat s) => stats.TryLookup((uint)s, out var v) ? v.Aggregate(0UL, (a, b) => a + b) : 0;
            return new ServiceDatapathStats(_frontends.Count, _backends.Count, _frontends.Values.Sum(p => p.BackendIds.Length + 1), MapBytes(),
                Sum(PalLbStat.Translated), Sum(PalLbStat.NoBackend), Sum(PalLbStat.BackendMiss), Sum(PalLbStat.RevnatFull),
                Sum(PalLbStat.AffinityHit), Sum(PalLbStat.Reversed));
        }
    }

    /// <summary>
    /// Kernel memory of the service maps as the kernel accounts it (memlock of
    /// /proc/self/fdinfo), the LRUs and counters included: what a node pays for its services.
    /// </summary>
    public long MapBytes()
    {
        long total = 0;
        foreach (var map in Object.Maps.Where(m => !m.Name.Contains('.', StringComparison.Ordinal)))
        {
            total += Memlock(map.Fd);
        }
        return total;
    }

    private static long Memlock(int fd)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/self/fdinfo/{fd}"))
            {
                if (line.StartsWith("memlock:", StringComparison.Ordinal) && long.TryParse(line.AsSpan(8).Trim(), out var bytes))
                {
                    return bytes;
                }
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }

    private LbAlgorithm AlgorithmOf(ServiceFrontend f) => f.Algorithm == LbAlgorithm.Default ? _options.DefaultAlgorithm : f.Algorithm;

    private void UpsertLocked(ServiceFrontend f)
    {
        var obj = Object;
        var family = f.Address.AddressFamily;
        if (family is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw new ArgumentException($"frontend {f.Key}: not an IPv4 or IPv6 address");
        }
        var active = f.Backends.Where(b => b.Address.AddressFamily == family).DistinctBy(b => (b.Address, b.Port)).ToList();
        var terminating = f.TerminatingBackends.Where(b => b.Address.AddressFamily == family && !active.Any(a => a.Address.Equals(b.Address) && a.Port == b.Port))
            .DistinctBy(b => (b.Address, b.Port)).ToList();
        if (active.Count > ushort.MaxValue)
        {
            throw new ArgumentException($"frontend {f.Key}: {active.Count} backends, more than the {ushort.MaxValue} a frontend can have");
        }
        var maglev = AlgorithmOf(f) == LbAlgorithm.Maglev && active.Count > 0;
        var flags = (maglev ? PalLbFlags.Maglev : 0) | (f.AffinityTimeoutSeconds > 0 ? PalLbFlags.Affinity : 0) | (f.Kind == FrontendKind.NodePort ? PalLbFlags.Nodeport : 0);

        _frontends.TryGetValue(f.Key, out var old);
        if (old is not null && old.Same(f, flags, active, terminating))
        {
            old.Frontend = f;
            return;
        }

        // Backends first (ids, entries with their terminating flag), so every slot written below names one that exists.
        var ids = active.Select(b => Acquire(obj, f.Protocol, b, terminating: false)).ToArray();
        // Terminating backends get an entry but no slot: no new connection picks them, while
        // connections already made to them keep their reverse translation.
        foreach (var b in terminating)
        {
            Acquire(obj, f.Protocol, b, terminating: true);
        }

        var revNat = old?.RevNat ?? AllocateRevNat(f);
        var program = new Programmed(f, revNat, ids, flags, active, terminating);
        if (old is null)
        {
            WriteRevNat(obj, f, revNat);
            var stats = obj.Map("pal_lb_frontend_stats").PerCpu<uint, ulong>();
            program.BaseTranslated = stats.TryLookup(2u * revNat, out var t) ? t.Aggregate(0UL, (a, b) => a + b) : 0;
            program.BaseRefused = stats.TryLookup(2u * revNat + 1, out var r) ? r.Aggregate(0UL, (a, b) => a + b) : 0;
        }
        else
        {
            program.BaseTranslated = old.BaseTranslated;
            program.BaseRefused = old.BaseRefused;
        }

        // The Maglev table before the master that tells the programs to use it.
        if (maglev)
        {
            var table = Maglev.Build([.. active.Select(b => new MaglevBackend($"{b.Key}/{f.Protocol.ToString().ToUpperInvariant()}", b.Weight))], _options.MaglevTableSize, _options.MaglevSeed);
            var lut = new uint[table.Length];
            for (var i = 0; i < table.Length; i++)
            {
                lut[i] = ids[table[i]];
            }
            obj.Map("pal_lb_maglev").UpdateBytes((uint)revNat, MemoryMarshal.AsBytes(lut.AsSpan()));
        }

        // Slots 1..n, then the master with count n, then the slots past n: every state between is
        // a master whose count names slots that exist and hold an old or a new backend.
        for (var slot = 0; slot < ids.Length; slot++)
        {
            WriteSlot(obj, f, (ushort)(slot + 1), new PalLbService { BackendId = ids[slot], RevNatIndex = revNat });
        }
        WriteSlot(obj, f, 0, new PalLbService { Count = (ushort)ids.Length, RevNatIndex = revNat, Flags = (byte)flags, AffinityTimeout = f.AffinityTimeoutSeconds });
        if (old is not null)
        {
            for (var slot = ids.Length; slot < old.BackendIds.Length; slot++)
            {
                DeleteSlot(obj, f, (ushort)(slot + 1));
            }
            if ((old.Flags & PalLbFlags.Maglev) != 0 && !maglev)
            {
                obj.Map("pal_lb_maglev").DeleteKey((uint)revNat);
            }
            Release(obj, old.BackendKeys(f.Protocol));
        }
        _frontends[f.Key] = program;
    }

    private bool RemoveLocked(string key)
    {
        if (!_frontends.Remove(key, out var p))
        {
            return false;
        }
        var obj = Object;
        var f = p.Frontend;
        // The master first: from then on no new connection is translated to this frontend's backends.
        DeleteSlot(obj, f, 0);
        for (var slot = 1; slot <= p.BackendIds.Length; slot++)
        {
            DeleteSlot(obj, f, (ushort)slot);
        }
        if ((p.Flags & PalLbFlags.Maglev) != 0)
        {
            obj.Map("pal_lb_maglev").DeleteKey((uint)p.RevNat);
        }
        var v6 = f.Address.AddressFamily == AddressFamily.InterNetworkV6;
        obj.Map(v6 ? "pal_lb6_revnat" : "pal_lb4_revnat").DeleteKey(p.RevNat);
        Release(obj, p.BackendKeys(f.Protocol));
        _freeRevNat.Push(p.RevNat);
        return true;
    }

    private ushort AllocateRevNat(ServiceFrontend f)
    {
        if (_freeRevNat.TryPop(out var index))
        {
            return index;
        }
        if (_nextRevNat > _options.MaxFrontends)
        {
            throw new InvalidOperationException($"frontend {f.Key} ({f.Service}): all {_options.MaxFrontends} frontends are in use. Fix: raise service-max-frontends (at most 65535)");
        }
        return _nextRevNat++;
    }

    private uint Acquire(BpfObject obj, L4Protocol protocol, ServiceBackend b, bool terminating)
    {
        var key = new BackendKey(b.Address, b.Port, protocol);
        if (!_backends.TryGetValue(key, out var state))
        {
            if (!_freeBackendIds.TryPop(out var id))
            {
                if (_nextBackendId > (uint)_options.MaxBackends * 2)
                {
                    throw new InvalidOperationException($"backend {b.Key}: all backend ids are in use. Fix: raise service-max-backends");
                }
                id = _nextBackendId++;
            }
            state = new BackendState(id);
            _backends[key] = state;
        }
        state.Refs++;
        // Terminating only when every frontend that uses it says so: one ready use keeps it ready.
        if (terminating)
        {
            state.TerminatingRefs++;
        }
        WriteBackend(obj, key, state);
        return state.Id;
    }

    private void Release(BpfObject obj, IEnumerable<(BackendKey Key, bool Terminating)> keys)
    {
        foreach (var (key, terminating) in keys)
        {
            if (!_backends.TryGetValue(key, out var state))
            {
                continue;
            }
            state.Refs--;
            if (terminating)
            {
                state.TerminatingRefs--;
            }
            if (state.Refs <= 0)
            {
                _backends.Remove(key);
                obj.Map(key.Address.AddressFamily == AddressFamily.InterNetworkV6 ? "pal_lb6_backends" : "pal_lb4_backends").DeleteKey(state.Id);
                _freeBackendIds.Push(state.Id);
            }
            else
            {
                WriteBackend(obj, key, state);
            }
        }
    }

    private static void WriteBackend(BpfObject obj, BackendKey key, BackendState state)
    {
        var flags = state.TerminatingRefs >= state.Refs ? PalLbBackendFlags.Terminating : PalLbBackendFlags.None;
        if (state.Written == flags)
        {
            return;
        }
        var port = NetOrder(key.Port);
        if (key.Address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var v = new PalLb6Backend { Port = port, Proto = (byte)key.Protocol, Flags = (byte)flags };
            unsafe
            {
                key.Address.GetAddressBytes().CopyTo(new Span<byte>(v.Address, 16));
            }
            obj.Map("pal_lb6_backends").Typed<uint, PalLb6Backend>().Update(state.Id, v);
        }
        else
        {
            obj.Map("pal_lb4_backends").Typed<uint, PalLb4Backend>().Update(state.Id,
                new PalLb4Backend { Address = V4(key.Address), Port = port, Proto = (byte)key.Protocol, Flags = (byte)flags });
        }
        state.Written = flags;
    }

    private static void WriteRevNat(BpfObject obj, ServiceFrontend f, ushort revNat)
    {
        if (f.Address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var v = new PalLb6Revnat { Port = NetOrder(f.Port) };
            unsafe
            {
                f.Address.GetAddressBytes().CopyTo(new Span<byte>(v.Address, 16));
            }
            obj.Map("pal_lb6_revnat").Typed<ushort, PalLb6Revnat>().Update(revNat, v);
        }
        else
        {
            obj.Map("pal_lb4_revnat").Typed<ushort, PalLb4Revnat>().Update(revNat, new PalLb4Revnat { Address = V4(f.Address), Port = NetOrder(f.Port) });
        }
    }

    private static void WriteSlot(BpfObject obj, ServiceFrontend f, ushort slot, PalLbService value)
    {
        if (f.Address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            obj.Map("pal_lb6_services").Typed<PalLb6Key, PalLbService>().Update(Key6(f, slot), value);
        }
        else
        {
            obj.Map("pal_lb4_services").Typed<PalLb4Key, PalLbService>().Update(Key4(f, slot), value);
        }
    }

    private static void DeleteSlot(BpfObject obj, ServiceFrontend f, ushort slot)
    {
        if (f.Address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            obj.Map("pal_lb6_services").DeleteKey(Key6(f, slot));
        }
        else
        {
            obj.Map("pal_lb4_services").DeleteKey(Key4(f, slot));
        }
    }

    private static PalLb4Key Key4(ServiceFrontend f, ushort slot) =>
        new() { Address = V4(f.Address), Dport = NetOrder(f.Port), BackendSlot = slot, Proto = (byte)f.Protocol };

    private static unsafe PalLb6Key Key6(ServiceFrontend f, ushort slot)
    {
        var k = new PalLb6Key { Dport = NetOrder(f.Port), BackendSlot = slot, Proto = (byte)f.Protocol };
        f.Address.GetAddressBytes().CopyTo(new Span<byte>(k.Address, 16));
        return k;
    }

    /// <summary>The address as a __be32 in memory (its bytes in network order).</summary>
    private static uint V4(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return MemoryMarshal.Read<uint>(bytes);
    }

    private static ushort NetOrder(ushort port) => BitConverter.IsLittleEndian ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(port) : port;

    private void DisposeLinks()
    {
        foreach (var link in _links)
        {
            link.Dispose();
        }
        _links.Clear();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            DisposeLinks();
            _object?.Dispose();
            _object = null;
            _frontends.Clear();
            _backends.Clear();
        }
    }

    private readonly record struct BackendKey(IPAddress Address, ushort Port, L4Protocol Protocol);

    private sealed class BackendState(uint id)
    {
        public uint Id { get; } = id;
        public int Refs { get; set; }
        public int TerminatingRefs { get; set; }
        public PalLbBackendFlags? Written { get; set; }
    }

    /// <summary>A frontend as it is in the maps.</summary>
    private sealed class Programmed(ServiceFrontend frontend, ushort revNat, uint[] backendIds, PalLbFlags flags,
        List<ServiceBackend> active, List<ServiceBackend> terminating)
    {
        public ServiceFrontend Frontend { get; set; } = frontend;
        public ushort RevNat { get; } = revNat;
        public uint[] BackendIds { get; } = backendIds;
        public PalLbFlags Flags { get; } = flags;
        public ulong BaseTranslated { get; set; }
        public ulong BaseRefused { get; set; }

        public IEnumerable<(BackendKey, bool)> BackendKeys(L4Protocol protocol) =>
            active.Select(b => (new BackendKey(b.Address, b.Port, protocol), false))
                .Concat(terminating.Select(b => (new BackendKey(b.Address, b.Port, protocol), true)));

        /// <summary>True when writing <paramref name="f"/> would write nothing new.</summary>
        public bool Same(ServiceFrontend f, PalLbFlags newFlags, List<ServiceBackend> newActive, List<ServiceBackend> newTerminating) =>
            newFlags == Flags && f.AffinityTimeoutSeconds == Frontend.AffinityTimeoutSeconds && f.Protocol == Frontend.Protocol &&
            Equal(newActive, active, weights: (Flags & PalLbFlags.Maglev) != 0) && Equal(newTerminating, terminating, weights: false);

        private static bool Equal(List<ServiceBackend> a, List<ServiceBackend> b, bool weights) =>
            a.Count == b.Count && a.Zip(b).All(p => p.First.Address.Equals(p.Second.Address) && p.First.Port == p.Second.Port && (!weights || p.First.Weight == p.Second.Weight));
    }
}
