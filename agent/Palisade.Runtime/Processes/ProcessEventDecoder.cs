using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Palisade.Bpf;
using Palisade.Bpf.Abi;
using Palisade.Events;
using Palisade.Runtime.Abi;

namespace Palisade.Runtime.Processes;

/// <summary>Counters of the decoder.</summary>
public readonly record struct DecoderStats(long Exec, long Fork, long Exit, long Malformed, long ExitUnknown);

/// <summary>
/// Turns process-sensor records into cache entries and events. Runs on the ring-buffer
/// thread: it reads fixed layouts straight from the kernel-shared span and allocates only
/// what it keeps (a record, its strings, the event).
/// </summary>
public sealed unsafe class ProcessEventDecoder : IRingBufferConsumer
{
    private readonly ProcessCache _cache;
    private readonly Action<PalisadeEvent> _publish;
    private readonly BootClock _clock;
    private readonly uint[] _hostNamespaces;
    private readonly bool _ancestors;
    private readonly IPodResolver _pods;
    private readonly UserNames? _users;
    private readonly StringPool _strings = new();
    private Namespaces? _lastNamespaces;
    private long _exec, _fork, _exit, _malformed, _exitUnknown;

    public ProcessEventDecoder(string nodeName, ProcessCache cache, BootClock clock, uint[] hostNamespaces, bool ancestors, Action<PalisadeEvent> publish,
        IPodResolver? pods = null, UserNames? users = null)
    {
        _pods = pods ?? NoPodResolver.Instance;
        _users = users;
        NodeName = nodeName;
        _cache = cache;
        _clock = clock;
        _hostNamespaces = hostNamespaces;
        _ancestors = ancestors;
        _publish = publish;
    }

    public string NodeName { get; }

    public DecoderStats Stats => new(Interlocked.Read(ref _exec), Interlocked.Read(ref _fork), Interlocked.Read(ref _exit),
        Interlocked.Read(ref _malformed), Interlocked.Read(ref _exitUnknown));

    public void OnRecord(ReadOnlySpan<byte> record)
    {
        if (record.Length < sizeof(PalEventHeader))
        {
            Malformed();
            return;
        }
        var header = MemoryMarshal.Read<PalEventHeader>(record);
        switch ((PalEventType)header.Type)
        {
            case PalEventType.Exec when record.Length >= PalExecEvent.FixedSize:
                fixed (byte* p = record)
                {
                    OnExec((PalExecEvent*)p, record.Length);
                }
                break;
            case PalEventType.Fork when record.Length >= sizeof(PalForkEvent):
                OnFork(MemoryMarshal.Read<PalForkEvent>(record));
                break;
            case PalEventType.Exit when record.Length >= sizeof(PalExitEvent):
                OnExit(MemoryMarshal.Read<PalExitEvent>(record));
                break;
            default:
                Malformed();
                break;
        }
    }

    private void OnExec(PalExecEvent* e, int length)
    {
        var dataLength = length - PalExecEvent.FixedSize;
        var used = e->ExeLen + e->CwdLen + e->FilenameLen + e->ArgsLen;
        if (used > dataLength)
        {
            Malformed();
            return;
        }
        var data = new ReadOnlySpan<byte>(e->Data, dataLength);
        var flags = (ProcessFlags)e->Flags;
        var exe = PathFromComponents(data.Slice(0, e->ExeLen), _strings);
        var cwd = PathFromComponents(data.Slice(e->ExeLen, e->CwdLen), _strings);
        var offset = e->ExeLen + e->CwdLen;
        string binary = exe;
        string? interpreter = null;
        if ((flags & ProcessFlags.Script) != 0 && e->FilenameLen > 0)
        {
            binary = AbsolutePath(CString(data.Slice(offset, e->FilenameLen)), cwd);
            interpreter = exe;
        }
        offset += e->FilenameLen;
        var arguments = Arguments(data.Slice(offset, e->ArgsLen));

        var pid = e->Hdr.Pid;
        var key = new ProcessKey(pid, e->Hdr.KtimeNs);
        var parentKey = new ProcessKey(e->ParentPid, e->ParentKtime);
        ProcessRecord? parent = null;
        if (e->ParentKtime != 0)
        {
            TryResolve(parentKey, out parent);
        }
        var container = ContainerIds.FromCgroup(CString(e->CgroupName, PalExecEvent.CgroupNameSize), CString(e->CgroupParentName, PalExecEvent.CgroupNameSize));
        var time = _clock.ToWallClock(e->Hdr.KtimeNs);
        var namespaces = ReadNamespaces(e->Ns);
        var record = new ProcessRecord
        {
            ExecId = ExecId.Create(NodeName, key.Ktime, pid),
            Pid = pid,
            Tid = e->Hdr.Tid,
            Ktime = key.Ktime,
            StartTime = time,
            Binary = binary,
            Interpreter = interpreter,
            Arguments = arguments,
            Cwd = cwd,
            Flags = flags,
            Credentials = new Credentials(e->Uid, e->Gid, e->Euid, e->Egid, e->Suid, e->Sgid, e->Fsuid, e->Fsgid),
            Auid = e->Auid,
            UserName = _users?.For(e->Uid, namespaces),
            Capabilities = new CapabilitySets(e->CapPermitted, e->CapEffective, e->CapInheritable),
            Namespaces = namespaces,
            NamespacePid = e->Nspid,
            CgroupId = e->Hdr.CgroupId,
            ContainerId = container?.ContainerId,
            PodUid = container?.PodUid,
            Pod = container is null ? null : _pods.Resolve(new ContainerContext(container.ContainerId, container.PodUid, e->Hdr.CgroupId)),
            ExeInode = e->ExeInode,
            SetuidUid = (flags & ProcessFlags.Setuid) != 0 ? e->ExeUid : null,
            SetgidGid = (flags & ProcessFlags.Setgid) != 0 ? e->ExeGid : null,
            ParentExecId = e->ParentKtime != 0 ? parent?.ExecId ?? ExecId.Create(NodeName, e->ParentKtime, e->ParentPid) : null,
            Parent = parent,
        };
        _cache.Add(record);
        // The identity this exec replaces (the forked child's, or the previous image's) ends
        // here without an exit event of its own.
        if (e->PrevKtime != 0 && e->PrevKtime != key.Ktime)
        {
            var prevKey = new ProcessKey(pid, e->PrevKtime);
            if (_cache.TryTakeFork(prevKey, out var fork))
            {
                _cache.ReleaseFork(fork);
            }
            else if (_cache.TryGet(prevKey, out var replaced))
            {
                _cache.End(replaced, time);
            }
        }
        Interlocked.Increment(ref _exec);
        _publish(new ProcessExecEvent
        {
            Time = time,
            Process = record,
            Parent = parent,
            Ancestors = _ancestors ? record.Ancestors() : null,
        });
    }

    private void OnFork(in PalForkEvent e)
    {
        Interlocked.Increment(ref _fork);
        if (_cache.TryGet(new ProcessKey(e.ParentPid, e.ParentKtime), out var parent))
        {
            _cache.AddFork(new ProcessKey(e.Hdr.Pid, e.Hdr.KtimeNs), new PendingFork(parent, e.Hdr.Tid, e.Hdr.CgroupId));
        }
        // An unknown parent: the child's exec (or exit) says what little we know.
    }

    /// <summary>The record of <paramref name="key"/>: cached, or built from its pending fork (the child carries its parent's image until it execs).</summary>
    public bool TryResolve(ProcessKey key, out ProcessRecord record)
    {
        if (_cache.TryGet(key, out record))
        {
            return true;
        }
        if (!_cache.TryTakeFork(key, out var fork))
        {
            return false;
        }
        var parent = fork.Parent;
        record = new ProcessRecord
        {
            ExecId = ExecId.Create(NodeName, key.Ktime, key.Pid),
            Pid = key.Pid,
            Tid = fork.Tid,
            Ktime = key.Ktime,
            StartTime = _clock.ToWallClock(key.Ktime),
            Binary = parent.Binary,
            Interpreter = parent.Interpreter,
            Arguments = parent.Arguments,
            Cwd = parent.Cwd,
            Flags = (parent.Flags & ~(ProcessFlags.Exec | ProcessFlags.ProcFs | ProcessFlags.Replaced | ProcessFlags.ParentMiss)) | ProcessFlags.Clone,
            Credentials = parent.Credentials,
            Auid = parent.Auid,
            UserName = parent.UserName,
            Capabilities = parent.Capabilities,
            Namespaces = parent.Namespaces,
            NamespacePid = parent.NamespacePid,
            CgroupId = fork.CgroupId,
            ContainerId = parent.ContainerId,
            PodUid = parent.PodUid,
            Pod = parent.Pod,
            ExeInode = parent.ExeInode,
            ParentExecId = parent.ExecId,
            Parent = parent,
        };
        _cache.Add(record);          // the record now holds the parent...
        _cache.ReleaseFork(fork);    // ...so the fork's hold goes
        return true;
    }

    private void OnExit(in PalExitEvent e)
    {
        Interlocked.Increment(ref _exit);
        if (e.Ktime == 0 || !TryResolve(new ProcessKey(e.Hdr.Pid, e.Ktime), out var record))
        {
            Interlocked.Increment(ref _exitUnknown);
            return;
        }
        var time = _clock.ToWallClock(e.Hdr.KtimeNs);
        if ((e.Flags & (uint)ProcessFlags.Deleted) != 0)
        {
            record.DeletedAtExit = true;
        }
        var signal = (int)(e.ExitCode & 0x7f);
        _publish(new ProcessExitEvent
        {
            Time = time,
            Process = record,
            Parent = record.Parent,
            Signal = signal != 0 ? Signals.Name(signal) : null,
            Status = signal != 0 ? 0 : (e.ExitCode >> 8) & 0xff,
            Tid = e.Hdr.Tid,
            Ancestors = _ancestors ? record.Ancestors() : null,
        });
        _cache.End(record, time);
    }

    private Namespaces ReadNamespaces(uint* ns)
    {
        // Processes on a node share a handful of namespace sets: reuse the last one when equal.
        if (_lastNamespaces is { } last)
        {
            var same = true;
            for (var i = 0; i < last.Ids.Length && same; i++)
            {
                same = last.Ids[i].Inum == ns[i];
            }
            if (same)
            {
                return last;
            }
        }
        var ids = new NamespaceId[PalExecEvent.NamespaceCount];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = new NamespaceId(ns[i], ns[i] != 0 && ns[i] == _hostNamespaces[i]);
        }
        return _lastNamespaces = new Namespaces(ids);
    }

    /// <summary>"/" + components in reverse: the kernel writes them leaf-first, each NUL-terminated.</summary>
    internal static string PathFromComponents(ReadOnlySpan<byte> leafFirst, StringPool? pool = null)
    {
        if (leafFirst.IsEmpty)
        {
            return "/";
        }
        Span<Range> parts = stackalloc Range[72];
        var count = 0;
        var start = 0;
        for (var i = 0; i < leafFirst.Length && count < parts.Length; i++)
        {
            if (leafFirst[i] == 0)
            {
                parts[count++] = start..i;
                start = i + 1;
            }
        }
        var length = 0;
        for (var i = 0; i < count; i++)
        {
            length += 1 + (parts[i].End.Value - parts[i].Start.Value);
        }
        Span<byte> path = length <= 4352 ? stackalloc byte[4352] : new byte[length];
        var pos = 0;
        for (var i = count - 1; i >= 0; i--)
        {
            path[pos++] = (byte)'/';
            var part = leafFirst[parts[i]];
            part.CopyTo(path[pos..]);
            pos += part.Length;
        }
        return pos == 0 ? "/" : pool is not null ? pool.Get(path[..pos]) : Encoding.UTF8.GetString(path[..pos]);
    }

    /// <summary>argv[1..] in Tetragon's form: space-separated, an argument containing a space in double quotes.</summary>
    internal static string Arguments(ReadOnlySpan<byte> argv)
    {
        var first = argv.IndexOf((byte)0);
        if (first < 0 || first + 1 >= argv.Length)
        {
            return string.Empty;
        }
        var rest = argv[(first + 1)..];
        while (!rest.IsEmpty && rest[^1] == 0)
        {
            rest = rest[..^1];
        }
        if (rest.IsEmpty)
        {
            return string.Empty;
        }
        if (rest.IndexOf((byte)' ') < 0)
        {
            // Common case: no quoting needed, NULs become spaces.
            return string.Create(Encoding.UTF8.GetCharCount(rest), rest.ToArray(), static (chars, bytes) =>
            {
                Encoding.UTF8.GetChars(bytes, chars);
                chars.Replace('\0', ' ');
            });
        }
        var sb = new StringBuilder(rest.Length + 8);
        foreach (var range in rest.Split((byte)0))
        {
            var arg = Encoding.UTF8.GetString(rest[range]);
            if (sb.Length > 0)
            {
                sb.Append(' ');
            }
            if (arg.Contains(' ', StringComparison.Ordinal))
            {
                sb.Append('"').Append(arg).Append('"');
            }
            else
            {
                sb.Append(arg);
            }
        }
        return sb.ToString();
    }

    /// <summary>Makes <paramref name="path"/> absolute against <paramref name="cwd"/>, folding "." and "..".</summary>
    internal static string AbsolutePath(string path, string cwd)
    {
        var combined = path.StartsWith('/') ? path : (cwd.EndsWith('/') ? cwd : cwd + "/") + path;
        var stack = new List<string>();
        foreach (var part in combined.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }
            if (part == "..")
            {
                if (stack.Count > 0)
                {
                    stack.RemoveAt(stack.Count - 1);
                }
                continue;
            }
            stack.Add(part);
        }
        return "/" + string.Join('/', stack);
    }

    private static string CString(ReadOnlySpan<byte> bytes)
    {
        var end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end >= 0 ? bytes[..end] : bytes);
    }

    private static string? CString(byte* bytes, int max)
    {
        var span = new ReadOnlySpan<byte>(bytes, max);
        var end = span.IndexOf((byte)0);
        return end == 0 ? null : Encoding.UTF8.GetString(end > 0 ? span[..end] : span);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Malformed() => Interlocked.Increment(ref _malformed);
}
