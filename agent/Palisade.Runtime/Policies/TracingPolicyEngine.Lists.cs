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

// Where live points are listed for the kernel (per syscall, per other place) and which
// programs are attached because some point needs them.
public sealed unsafe partial class TracingPolicyEngine
{
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

    // Links an earlier run left pinned, by group, until a point needs them again or the restore is complete.
    private readonly Dictionary<string, List<BpfLink>> _adopted = new(StringComparer.Ordinal);

    private static IEnumerable<string> Groups => ["sys_exit", "sys_enter", "connect", .. OtherPlaces.Keys];

    // bpffs refuses '.' in names (EPERM), so GROUP-N with '/' as '-'.
    private string LinkPin(string group, int index) => Path.Combine(SensorPins.Links(_pins!, SensorName), $"{group.Replace('/', '-')}-{index}");

    /// <summary>Takes over the group links an earlier run pinned: they keep running until the policies are re-applied.</summary>
    private void AdoptLinks()
    {
        if (_pins is null)
        {
            return;
        }
        foreach (var group in Groups)
        {
            var links = new List<BpfLink>();
            for (var i = 0; File.Exists(LinkPin(group, i)); i++)
            {
                links.Add(Obj.AdoptPinnedLink(LinkPin(group, i), group));
            }
            if (links.Count > 0)
            {
                _adopted[group] = links;
            }
        }
    }

    /// <summary>Group links taken over from an earlier run and not yet needed again or dropped.</summary>
    public int AdoptedLinks
    {
        get
        {
            lock (_gate)
            {
                return _adopted.Values.Sum(l => l.Count) + _reused;
            }
        }
    }

    private int _reused;

    /// <summary>
    /// Ends a restart over pinned maps, once every policy the agent has was re-applied: links
    /// of groups no policy needs any more are detached, and entries of the earlier run that no
    /// current policy wrote (policies deleted while the agent was down) are removed. Until
    /// then they keep enforcing, so a restart never opens a window. No-op without pins.
    /// </summary>
    public void CompleteRestore()
    {
        lock (_gate)
        {
            foreach (var (group, links) in _adopted)
            {
                DropLinks(group, links);
            }
            _adopted.Clear();
            if (_pins is null)
            {
                return;
            }
            var liveIds = _policies.Values.Select(p => p.Id).ToHashSet();
            var states = Obj.Map("pal_pol_states").Typed<uint, PalPolState>();
            foreach (var id in states.Keys().Where(id => !liveIds.Contains(id)))
            {
                states.Delete(id);
            }
            var scope = Obj.Map("pal_pol_scope").Typed<PalPolScopeKey, byte>();
            foreach (var key in scope.Keys().Where(k => !_policies.Values.Any(p => p.Id == k.PolicyId && p.Scope.Contains(k.CgroupId))))
            {
                scope.Delete(key);
            }
            // Lists before points, so the kernel never reaches a point that is being cleared.
            foreach (var (name, size) in (ReadOnlySpan<(string, int)>)[("pal_pol_sys_exit", PolAbi.Syscalls), ("pal_pol_sys_enter", PolAbi.Syscalls), ("pal_pol_other", PolAbi.OtherCount)])
            {
                var map = Obj.Map(name).Typed<uint, PalPolSysent>();
                for (var nr = 0; nr < size; nr++)
                {
                    if (!_writtenLists.Contains((name, nr)))
                    {
                        map.Update((uint)nr, default);
                    }
                }
            }
            var sels = Obj.Map("pal_pol_sels").Typed<uint, PalPolSelector>();
            var liveSels = _points.Values.SelectMany(p => p.SelectorKeys).ToHashSet();
            foreach (var key in sels.Keys().Where(k => !liveSels.Contains(k)))
            {
                sels.Delete(key);
            }
            var strings = Obj.Map("pal_pol_strings").Typed<PalPolStrkey, PalPolMask>();
            var liveStrings = _points.Values.SelectMany(p => p.StringKeys.Values).Select(StrkeyBytes).ToHashSet(StringComparer.Ordinal);
            foreach (var key in strings.Keys().Where(k => !liveStrings.Contains(StrkeyBytes(k))))
            {
                strings.Delete(key);
            }
            var points = Obj.Map("pal_pol_points").Typed<uint, PalPolPoint>();
            for (var id = 0; id < PolAbi.Points; id++)
            {
                if (!_pointsById.ContainsKey((ushort)id))
                {
                    points.Update((uint)id, default);
                }
            }
        }
    }

    private static string StrkeyBytes(PalPolStrkey key) =>
        Convert.ToHexString(MemoryMarshal.AsBytes(new ReadOnlySpan<PalPolStrkey>(in key)));

    /// <summary>Attaches a group of programs while <paramref name="needed"/>, detaches it after.</summary>
    private void Attach(string group, bool needed, Func<List<BpfLink>> attach)
    {
        if (needed && !_lazy.ContainsKey(group))
        {
            if (_adopted.Remove(group, out var adopted))
            {
                _lazy[group] = adopted; // the earlier run's links: the programs stay attached once
                _reused += adopted.Count;
                return;
            }
            var links = attach();
            if (_pins is not null)
            {
                try
                {
                    for (var i = 0; i < links.Count; i++)
                    {
                        links[i].Pin(LinkPin(group, i));
                    }
                }
                catch
                {
                    DropLinks(group, links);
                    throw;
                }
            }
            _lazy[group] = links;
        }
        else if (!needed && _lazy.Remove(group, out var links))
        {
            DropLinks(group, links);
        }
    }

    /// <summary>Detaches <paramref name="links"/>: their pins go first, else they would stay attached.</summary>
    private void DropLinks(string group, List<BpfLink> links)
    {
        if (_pins is not null)
        {
            for (var i = 0; i < links.Count; i++)
            {
                if (File.Exists(LinkPin(group, i)))
                {
                    File.Delete(LinkPin(group, i));
                }
            }
        }
        foreach (var l in links)
        {
            l.Dispose();
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
}
