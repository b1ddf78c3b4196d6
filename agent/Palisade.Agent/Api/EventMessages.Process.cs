using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Palisade.Api.V1;
using Palisade.Events;
using Palisade.Exporters;

namespace Palisade.Agent.Api;

// Process events as messages: each field set exactly when TetragonJson writes it (protobuf
// leaves out empty strings and zeros as the JSON does; wrappers and messages are set only
// when the JSON has them).
public static partial class EventMessages
{
    private static ProcessExec Exec(ProcessExecEvent e, TetragonJsonOptions o)
    {
        var m = new ProcessExec { Process = Process(e.Process, o), Parent = OptionalProcess(e.Parent, o) };
        AddAncestors(m.Ancestors, e.Ancestors, o);
        return m;
    }

    private static ProcessExit Exit(ProcessExitEvent e, TetragonJsonOptions o)
    {
        var m = new ProcessExit
        {
            Process = Process(e.Process, o),
            Parent = OptionalProcess(e.Parent, o),
            Signal = e.Signal ?? "",
            Status = e.Status,
            Time = Time(e.Time),
        };
        AddAncestors(m.Ancestors, e.Ancestors, o);
        return m;
    }

    private static IMessage Policy(GetEventsResponse response, ProcessPolicyEvent e, TetragonJsonOptions o)
    {
        var process = Process(e.Process, o);
        var parent = OptionalProcess(e.Parent, o);
        switch (e.HookKind)
        {
            case EventKind.ProcessTracepoint:
                var tp = response.ProcessTracepoint = new ProcessTracepoint
                {
                    Process = process, Parent = parent, Subsys = e.Subsystem ?? "", Event = e.EventName ?? "",
                    PolicyName = e.PolicyName, Action = e.Action, Message = e.Message ?? "",
                };
                AddArgs(tp.Args, e.Args);
                tp.Tags.AddRange(e.Tags);
                AddAncestors(tp.Ancestors, e.Ancestors, o);
                return tp;
            case EventKind.ProcessUprobe:
                var up = response.ProcessUprobe = new ProcessUprobe
                {
                    Process = process, Parent = parent, Path = e.Subsystem ?? "", Symbol = e.FunctionName,
                    PolicyName = e.PolicyName, Message = e.Message ?? "",
                };
                AddArgs(up.Args, e.Args);
                up.Tags.AddRange(e.Tags);
                AddAncestors(up.Ancestors, e.Ancestors, o);
                return up;
            case EventKind.ProcessLsm:
                var lsm = response.ProcessLsm = new ProcessLsm
                {
                    Process = process, Parent = parent, FunctionName = e.FunctionName,
                    PolicyName = e.PolicyName, Action = e.Action, Message = e.Message ?? "",
                };
                AddArgs(lsm.Args, e.Args);
                lsm.Tags.AddRange(e.Tags);
                AddAncestors(lsm.Ancestors, e.Ancestors, o);
                return lsm;
            default:
                var k = response.ProcessKprobe = new ProcessKprobe
                {
                    Process = process, Parent = parent, FunctionName = e.FunctionName,
                    PolicyName = e.PolicyName, Action = e.Action, Message = e.Message ?? "",
                };
                AddArgs(k.Args, e.Args);
                if (e.Return is { } ret)
                {
                    k.Return = Arg(ret);
                }
                k.Tags.AddRange(e.Tags);
                AddAncestors(k.Ancestors, e.Ancestors, o);
                return k;
        }
    }

    private static void AddArgs(Google.Protobuf.Collections.RepeatedField<KprobeArgument> list, IReadOnlyList<PolicyArgValue> args)
    {
        foreach (var a in args)
        {
            list.Add(Arg(a));
        }
    }

    /// <summary>One argument, the same typed field TetragonJson writes for it.</summary>
    private static KprobeArgument Arg(PolicyArgValue a)
    {
        var m = new KprobeArgument { Label = a.Label ?? "" };
        switch (a.Type)
        {
            case "int_arg":
                m.IntArg = (int)a.Int;
                break;
            case "uint_arg":
                m.UintArg = (uint)a.Int;
                break;
            case "long_arg":
                m.LongArg = a.Int;
                break;
            case "size_arg":
                m.SizeArg = (ulong)a.Int;
                break;
            case "string_arg":
                m.StringArg = a.Text ?? "";
                break;
            case "bytes_arg":
                m.BytesArg = ByteString.CopyFrom(a.Bytes ?? []);
                break;
            case "file_arg":
                m.FileArg = PathOf(a);
                break;
            case "path_arg":
                m.PathArg = PathOf(a);
                break;
            case "linux_binprm_arg":
                m.LinuxBinprmArg = PathOf(a);
                break;
            case "sock_arg" when a.Sock is { } s:
                m.SockArg = new KprobeSock
                {
                    Family = s.Family, Type = s.Type, Protocol = s.Protocol, Saddr = s.SAddr, Daddr = s.DAddr,
                    Sport = s.SPort, Dport = s.DPort, Cookie = s.Cookie, State = s.State,
                };
                break;
            case "sockaddr_arg" when a.Sock is { } sa:
                m.SockaddrArg = new KprobeSockaddr { Family = sa.Family, Addr = sa.DAddr, Port = sa.DPort };
                break;
            case "process_credentials_arg" when a.Cred is { } c:
                m.ProcessCredentialsArg = Credentials(c.Ids);
                m.ProcessCredentialsArg.Caps = Capabilities(c.Caps);
                break;
            case "cap_effective_arg":
                m.CapEffectiveArg = TetragonJson.CapabilitiesHex((ulong)a.Int);
                break;
            case "kernel_cap_t_arg":
                m.KernelCapTArg = TetragonJson.CapabilitiesHex((ulong)a.Int);
                break;
            case "cap_inheritable_arg":
                m.CapInheritableArg = TetragonJson.CapabilitiesHex((ulong)a.Int);
                break;
            case "cap_permitted_arg":
                m.CapPermittedArg = TetragonJson.CapabilitiesHex((ulong)a.Int);
                break;
            case "bpf_attr_arg" when a.Object is { } fields:
                m.BpfAttrArg = Struct(fields);
                break;
            case "bpf_map_arg" when a.Object is { } fields:
                m.BpfMapArg = Struct(fields);
                break;
            case "perf_event_arg" when a.Object is { } fields:
                m.PerfEventArg = Struct(fields);
                break;
            case not ("int_arg" or "uint_arg") when a.Object is not null:
                // skb_arg, net_dev_arg, user_ns_arg, capability_arg: in the JSON export, not yet in the API's KprobeArgument.
                throw new NotSupportedException($"The API has no field for {a.Type} yet.");
            case "syscall_id":
                m.SyscallId = new SyscallId { Id = (uint)a.Int, Abi = "x64" };
                break;
            default:
                m.IntArg = (int)a.Int;
                break;
        }
        return m;
    }

    // file_arg, path_arg and linux_binprm_arg share one shape (Tetragon's KprobeFile, KprobePath, KprobeLinuxBinprm).
    private static KprobePath PathOf(PolicyArgValue a) =>
        new() { Path = a.Text ?? "", Flags = FileArgText.Flags(a.Truncated), Permission = FileArgText.Permission(a.Mode) };

    private static Struct Struct(IReadOnlyList<KeyValuePair<string, object>> fields)
    {
        var s = new Struct();
        foreach (var (name, value) in fields)
        {
            Value? v = value switch
            {
                string text when text.Length > 0 => Value.ForString(text),
                ulong big => Value.ForString(big.ToString(CultureInfo.InvariantCulture)), // uint64: a string in protojson
                uint small when small != 0 => Value.ForNumber(small),
                int number => Value.ForNumber(number),
                true => Value.ForBool(true),
                IReadOnlyList<KeyValuePair<string, object>> nested => Value.ForStruct(Struct(nested)),
                _ => null,
            };
            if (v is not null)
            {
                s.Fields[name] = v;
            }
        }
        return s;
    }

    private static void AddAncestors(Google.Protobuf.Collections.RepeatedField<Process> list, IReadOnlyList<ProcessRecord>? ancestors, TetragonJsonOptions o)
    {
        foreach (var a in ancestors ?? [])
        {
            list.Add(Process(a, o));
        }
    }

    private static Process? OptionalProcess(ProcessRecord? p, TetragonJsonOptions o) => p is null ? null : Process(p, o);

    private static Process Process(ProcessRecord p, TetragonJsonOptions o)
    {
        var m = new Process
        {
            ExecId = p.ExecId,
            Pid = p.Pid,
            Uid = p.Credentials.Uid,
            Cwd = p.Cwd,
            Binary = p.Binary,
            Arguments = o.Redactor is { } redactor ? redactor.Arguments(p) : p.Arguments,
            Flags = p.FlagsText,
            StartTime = Time(p.StartTime),
            Auid = p.Auid,
            ParentExecId = p.ParentExecId ?? "",
            Refcnt = (uint)Math.Max(0, Volatile.Read(ref p.RefCount)),
            Tid = p.Tid != 0 ? p.Tid : p.Pid,
            Interpreter = p.Interpreter ?? "",
        };
        if (p.Pod is { } pod)
        {
            m.Pod = Pod(pod);
            if (m.Pod.Container is { } c && ExecProbes.MaybeProbe(p))
            {
                c.MaybeExecProbe = true;
            }
        }
        if (p.ContainerId is { } container)
        {
            m.Docker = container.Length > 31 ? container[..31] : container;
        }
        if (o.ProcessCredentials)
        {
            m.Cap = Capabilities(p.Capabilities);
            m.ProcessCredentials = Credentials(p.Credentials);
        }
        if (o.ProcessNamespaces && p.Namespaces is { } ns)
        {
            m.Ns = Namespaces(ns);
        }
        var deleted = (p.Flags & ProcessFlags.Deleted) != 0 || p.DeletedAtExit;
        if (p.SetuidUid is not null || p.SetgidGid is not null || deleted)
        {
            m.BinaryProperties = new BinaryProperties { Setuid = p.SetuidUid, Setgid = p.SetgidGid };
            if (deleted)
            {
                m.BinaryProperties.File = new FileProperties { Inode = new InodeProperties { Number = p.ExeInode, Links = 0 }, Path = p.Binary };
            }
        }
        if (p.UserName is { } user)
        {
            m.User = new UserRecord { Name = user };
        }
        if (p.ContainerId is not null)
        {
            m.InInitTree = InitTree.Contains(p);
        }
        return m;
    }

    private static Pod Pod(PodInfo pod)
    {
        var m = new Pod { Namespace = pod.Namespace, Name = pod.Name, Uid = pod.Uid ?? "", Workload = pod.Workload ?? "", WorkloadKind = pod.WorkloadKind ?? "" };
        if (pod.Container is { } c)
        {
            m.Container = new Container { Id = c.Id, Name = c.Name ?? "", Pid = c.Pid };
            if (c.ImageId is not null || c.ImageName is not null)
            {
                m.Container.Image = new Image { Id = c.ImageId ?? "", Name = c.ImageName ?? "" };
            }
            if (c.StartTime is { } start)
            {
                m.Container.StartTime = Time(start);
            }
        }
        foreach (var (key, value) in pod.Labels ?? new Dictionary<string, string>())
        {
            m.PodLabels[key] = value;
        }
        foreach (var (key, value) in pod.Annotations ?? new Dictionary<string, string>())
        {
            m.PodAnnotations[key] = value;
        }
        return m;
    }

    private static ProcessCredentials Credentials(Palisade.Events.Credentials c) => new()
    {
        Uid = c.Uid, Gid = c.Gid, Euid = c.Euid, Egid = c.Egid, Suid = c.Suid, Sgid = c.Sgid, Fsuid = c.Fsuid, Fsgid = c.Fsgid,
    };

    // TetragonJson writes no capability object when every set is empty.
    private static Capabilities? Capabilities(CapabilitySets caps)
    {
        if (caps.Permitted == 0 && caps.Effective == 0 && caps.Inheritable == 0)
        {
            return null;
        }
        var m = new Capabilities();
        m.Permitted.AddRange(CapabilityNames(caps.Permitted));
        m.Effective.AddRange(CapabilityNames(caps.Effective));
        m.Inheritable.AddRange(CapabilityNames(caps.Inheritable));
        return m;
    }

    private static IEnumerable<string> CapabilityNames(ulong mask) =>
        Enumerable.Range(0, 64).Where(b => (mask & (1UL << b)) != 0).Select(TetragonJson.CapabilityName);

    private static Palisade.Api.V1.Namespaces Namespaces(Palisade.Events.Namespaces ns)
    {
        var m = new Palisade.Api.V1.Namespaces();
        for (var i = 0; i < ns.Ids.Length && i < NamespaceKinds.Names.Length; i++)
        {
            if (ns.Ids[i] is { Inum: not 0 } id)
            {
                Palisade.Api.V1.Namespaces.Descriptor.FindFieldByName(NamespaceKinds.Names[i]).Accessor.SetValue(m, new Namespace { Inum = id.Inum, IsHost = id.IsHost });
            }
        }
        return m;
    }
}
