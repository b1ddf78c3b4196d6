using Palisade.Bpf;
using Palisade.Datapath.Abi;

namespace Palisade.Datapath.Sockets;

/// <summary>The local side of a socket as the socket-owner table keys it.</summary>
/// <param name="Netns">Inode of the socket's network namespace.</param>
/// <param name="Port">Local port.</param>
/// <param name="Protocol">IPPROTO_TCP (6) or IPPROTO_UDP (17).</param>
/// <summary>
/// A key of the socket-owner table: the local side's network namespace, port, protocol and
/// the socket's family (2 IPv4, 10 IPv6; a dual-stack IPv6 socket also serves IPv4 peers).
/// </summary>
public readonly record struct SocketKey(uint Netns, ushort Port, byte Protocol, byte Family = 2)
{
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte Inet = 2;
    public const byte Inet6 = 10;
}

/// <summary>The process that owns a socket: its tgid and exec identity (pal_proc.ktime), and the socket cookie.</summary>
public readonly record struct SocketOwner(uint Tgid, ulong Ktime, ulong Cookie);

/// <summary>Counters of the socket-owner programs; every loss of a name is in here.</summary>
public sealed record SocketOwnerStats(ulong Owned, ulong Released, ulong TableFull, ulong ProcessMiss, int Entries, int Capacity);

/// <summary>Settings of the socket-owner table.</summary>
public sealed record SocketOwnerOptions
{
    /// <summary>cgroup v2 directory the cgroup programs attach to; null: the hierarchy's root, so every socket of the node is seen.</summary>
    public string? CgroupRoot { get; init; }

    /// <summary>Capacity of the table: local TCP listeners and clients, and UDP sockets, of the whole node.</summary>
    public int TableEntries { get; init; } = 65536;

    /// <summary>
    /// bpffs directory where the table is pinned (as <c>DIR/pal_sock_owners</c>) so the tc programs
    /// of a restarted agent keep naming processes; a table pinned there is adopted. Null: not pinned.
    /// </summary>
    public string? PinDirectory { get; init; }
}

/// <summary>
/// Loads bpf/net/sock.bpf.c, which fills the socket-owner table (netns, local port, protocol
/// -> tgid, exec ktime, cookie) from the process that connects, listens, binds or sends, so
/// the datapath's tc programs can name the process of a flow. Shares the process table of the
/// process sensor (ReuseFrom) for the exec identity, and exposes its own table for the
/// datapath object to reuse in turn.
/// </summary>
public sealed class SocketOwnerSensor : IDisposable
{
    /// <summary>Programs attached to the cgroup root; pal_sock_state attaches to its tracepoint by its section.</summary>
    private static readonly string[] CgroupPrograms =
        ["pal_sock_connect", "pal_sock_sendmsg4", "pal_sock_sendmsg6", "pal_sock_bind4", "pal_sock_bind6", "pal_sock_egress", "pal_sock_release"];

    private readonly SocketOwnerOptions _options;
    private readonly List<BpfLink> _links = [];
    private readonly Lock _gate = new();
    private BpfObject? _object;

    public SocketOwnerSensor(SocketOwnerOptions? options = null)
    {
        _options = options ?? new SocketOwnerOptions();
        if (_options.TableEntries is < 1024 or > 1 << 22)
        {
            throw new ArgumentException($"socket-owner table entries: {_options.TableEntries} is outside 1024..{1 << 22}; the default 65536 fits a busy node.");
        }
    }

    /// <summary>The cgroup the programs were attached to (after <see cref="Start"/>).</summary>
    public string? CgroupRoot { get; private set; }

    private BpfObject Object => _object ?? throw new InvalidOperationException("The socket-owner sensor is not started.");

    /// <summary>The table (struct pal_sock_key -> struct pal_sock_owner), for the datapath object's ReuseFrom.</summary>
    public BpfMap OwnerMap => Object.Map("pal_sock_owners");

    /// <summary>
    /// Loads the programs with <paramref name="processMap"/> (the process sensor's pal_procs) as
    /// their process table, and attaches them. Throws <see cref="BpfException"/> with the
    /// verifier's log when the kernel refuses a program.
    /// </summary>
    public void Start(BpfMap processMap)
    {
        ArgumentNullException.ThrowIfNull(processMap);
        var root = _options.CgroupRoot ?? KernelEnvironment.Cgroup2Root()
            ?? throw new InvalidOperationException("No cgroup v2 hierarchy is mounted (looked for cgroup2 in /proc/self/mountinfo); the socket-owner programs attach to its root. Mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`.");
        BpfObject obj;
        try
        {
            obj = Load(processMap);
        }
        catch (BpfException) when (PinPath is { } pin && File.Exists(pin))
        {
            // A table an earlier run pinned that does not fit this one (another size, another
            // build): start with a fresh one; the sockets it named are named again as they act.
            File.Delete(pin);
            StaleRemoved = true;
            obj = Load(processMap);
        }
        try
        {
            _links.Add(obj.Program("pal_sock_state").Attach());
            foreach (var name in CgroupPrograms)
            {
                _links.Add(obj.Program(name).AttachCgroup(root));
            }
            CgroupRoot = root;
            _object = obj;
        }
        catch
        {
            DisposeLinks();
            obj.Dispose();
            throw;
        }
    }

    /// <summary>True when a pinned table of an earlier run did not fit and was replaced at start.</summary>
    public bool StaleRemoved { get; private set; }

    private string? PinPath => _options.PinDirectory is { } pins ? Path.Combine(pins, "pal_sock_owners") : null;

    private BpfObject Load(BpfMap processMap)
    {
        var obj = BpfObject.OpenEmbedded(typeof(SocketOwnerSensor).Assembly, "sock.bpf.o");
        try
        {
            obj.Map("pal_procs").ReuseFrom(processMap);
            var owners = obj.Map("pal_sock_owners");
            owners.MaxEntries = _options.TableEntries;
            if (PinPath is { } pin)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(pin)!);
                owners.SetPinPath(pin);
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
    /// The owner of <paramref name="key"/>, if the table has one; for an IPv4 key, as the
    /// datapath does, the IPv6 entry of the same port when there is no IPv4 one (a dual-stack socket).
    /// </summary>
    public bool TryGetOwner(SocketKey key, out SocketOwner owner)
    {
        var table = OwnerMap.Typed<PalSockKey, PalSockOwner>();
        var k = new PalSockKey { Netns = key.Netns, Port = key.Port, Proto = key.Protocol, Family = key.Family };
        if (table.TryLookup(k, out var v) || (key.Family == SocketKey.Inet && table.TryLookup(k with { Family = SocketKey.Inet6 }, out v)))
        {
            owner = new SocketOwner(v.Tgid, v.Ktime, v.Cookie);
            return true;
        }
        owner = default;
        return false;
    }

    /// <summary>Every entry of the table (a snapshot: sockets come and go while it is read).</summary>
    public IReadOnlyList<KeyValuePair<SocketKey, SocketOwner>> Entries() =>
        [.. OwnerMap.Typed<PalSockKey, PalSockOwner>().ReadAll().Select(e => KeyValuePair.Create(
            new SocketKey(e.Key.Netns, e.Key.Port, e.Key.Proto, e.Key.Family), new SocketOwner(e.Value.Tgid, e.Value.Ktime, e.Value.Cookie)))];

    public SocketOwnerStats Stats()
    {
        lock (_gate)
        {
            var obj = Object;
            var stats = obj.Map("pal_sock_stats").PerCpu<uint, ulong>();
            ulong Sum(PalSockStat s) => stats.TryLookup((uint)s, out var v) ? v.Aggregate(0UL, (a, b) => a + b) : 0;
            var owners = obj.Map("pal_sock_owners");
            return new SocketOwnerStats(Sum(PalSockStat.Owned), Sum(PalSockStat.Released), Sum(PalSockStat.TableFull), Sum(PalSockStat.ProcMiss),
                owners.CountEntries(), owners.MaxEntries);
        }
    }

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
        }
    }
}
