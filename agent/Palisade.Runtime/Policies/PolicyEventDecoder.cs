using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Palisade.Events;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Policies.Tracing.Compilation;
using Palisade.Runtime.Processes;

namespace Palisade.Runtime.Policies;

/// <summary>
/// Turns a kernel policy record (struct pal_pol_event) into a <see cref="ProcessPolicyEvent"/>:
/// its values by the slot layout of the point the kernel evaluated, its action by
/// enum pal_pol_action. Pure: the engine hands it the hook, the target and the layout.
/// </summary>
internal sealed unsafe class PolicyEventDecoder(string procRoot)
{
    private static readonly int ValuesOffset = (int)Marshal.OffsetOf<PalPolEvent>(nameof(PalPolEvent.Values));

    /// <summary>Decodes one record of <paramref name="hook"/> at a point with <paramref name="slots"/>.</summary>
    public ProcessPolicyEvent Decode(ReadOnlySpan<byte> record, CompiledHook hook, string policyName, HookTarget? target, SlotSource[] slots, ProcessRecord process, IReadOnlySet<EventKind>? ancestors = null)
    {
        var e = MemoryMarshal.Read<PalPolEvent>(record);
        var values = MemoryMarshal.Cast<byte, PalPolValue>(record.Slice(ValuesOffset, PolAbi.Slots * sizeof(PalPolValue)));
        var args = new List<PolicyArgValue>(hook.Args.Count);
        foreach (var a in hook.Args)
        {
            if (a.Type == "nop" || target is null || !target.Args.TryGetValue(a.Index, out var src))
            {
                continue;
            }
            var slot = Array.IndexOf(slots, src);
            // A point rebuilt while the event was in flight may have moved its slots: the kind
            // the kernel recorded must be the one we expect, or the argument is left out.
            if (slot >= 0 && slot < values.Length && values[slot].Kind == (byte)src.Kind)
            {
                args.Add(ToArg(a.Type, a.Label, values[slot], src));
            }
        }
        PolicyArgValue? ret = null;
        if (hook.ReturnArg is { } ra && target?.Return is { } rsrc && Array.IndexOf(slots, rsrc) is var rs and >= 0 && rs < values.Length)
        {
            ret = ToArg(ra.Type, ra.Label, values[rs], rsrc);
        }
        var action = (PalPolAction)e.Action;
        var kind = hook.HookType switch { "tracepoint" => EventKind.ProcessTracepoint, "lsm" => EventKind.ProcessLsm, "uprobe" => EventKind.ProcessUprobe, _ => EventKind.ProcessKprobe };
        return new ProcessPolicyEvent
        {
            Ancestors = ancestors is not null && ancestors.Contains(kind) ? process.Ancestors() : null,
            Time = DateTimeOffset.UtcNow,
            Process = process,
            HookKind = kind,
            FunctionName = hook.HookType == "uprobe" && target is not null ? target.Function : hook.Name,
            Subsystem = hook.Subsystem,
            EventName = hook.Event,
            Args = args,
            Return = ret,
            Action = action switch
            {
                PalPolAction.Sigkill => "KPROBE_ACTION_SIGKILL",
                PalPolAction.Signal => "KPROBE_ACTION_SIGNAL",
                PalPolAction.Override => "KPROBE_ACTION_OVERRIDE",
                _ => "KPROBE_ACTION_POST",
            },
            Monitored = action == PalPolAction.Monitor,
            PolicyName = policyName,
            Message = hook.Message,
            Tags = hook.Tags,
        };
    }

    public ProcessRecord MinimalProcess(uint pid, uint tid) => new()
    {
        Pid = pid, Tid = tid, Ktime = 0, ExecId = "", Binary = ProcFs.ReadExe(Path.Combine(procRoot, pid.ToString(System.Globalization.CultureInfo.InvariantCulture))), StartTime = DateTimeOffset.UtcNow,
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
                return new PolicyArgValue(src.Kind == SlotKind.KFile ? "file_arg" : "path_arg", label) { Text = Text(v), Truncated = truncated, Mode = v.Mode };
            case SlotKind.KBinprm:
                return new PolicyArgValue("linux_binprm_arg", label) { Text = Text(v), Truncated = truncated, Mode = v.Mode };
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
                    : new PolicyArgValue(type == "path" ? "path_arg" : "file_arg", label) { Text = Text(v), Truncated = truncated, Mode = v.Mode };
            case SlotKind.ExecPath:
                return new PolicyArgValue(type == "file" ? "file_arg" : "linux_binprm_arg", label) { Text = Text(v), Truncated = truncated, Mode = v.Mode };
            case SlotKind.UserSockaddr:
                return new PolicyArgValue("sockaddr_arg", label) { Sock = Sock(v.Sock) };
            case SlotKind.CtxSock or SlotKind.FdSock or SlotKind.RetFdSock:
                return new PolicyArgValue(type == "sockaddr" ? "sockaddr_arg" : "sock_arg", label) { Sock = Sock(v.Sock) };
            case SlotKind.Cred or SlotKind.KCred:
            {
                PalTaskCreds c;
                fixed (byte* cp = v.S)
                {
                    c = MemoryMarshal.Read<PalTaskCreds>(new ReadOnlySpan<byte>(cp, sizeof(PalTaskCreds)));
                }
                return new PolicyArgValue("process_credentials_arg", label)
                {
                    Cred = new CredValue(new Credentials(c.Uid, c.Gid, c.Euid, c.Egid, c.Suid, c.Sgid, c.Fsuid, c.Fsgid), c.Securebits,
                        new CapabilitySets(c.CapPermitted, c.CapEffective, c.CapInheritable), c.UserNs),
                };
            }
            case SlotKind.SyscallNr:
                return new PolicyArgValue(type == "syscall64" ? "syscall_id" : "long_arg", label) { Int = (long)v.Ival };
            case SlotKind.TaskCap:
                return new PolicyArgValue(type is "cap_effective" or "cap_inheritable" or "cap_permitted" or "kernel_cap_t" ? type + "_arg" : "size_arg", label) { Int = (long)v.Ival };
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
            "cap_effective" or "cap_inheritable" or "cap_permitted" or "kernel_cap_t" => new PolicyArgValue(type + "_arg", label) { Int = (long)v.Ival },
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
            s.State == 0 ? "" : SocketNames.Name(SocketNames.States, s.State), s.Cookie);
    }
}
