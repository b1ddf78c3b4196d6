using System.Globalization;
using System.Text.Json;
using Palisade.Events;

namespace Palisade.Exporters;

/// <summary>Which optional process fields to write (Tetragon's --enable-process-cred / --enable-process-ns).</summary>
public sealed record TetragonJsonOptions(bool ProcessCredentials = false, bool ProcessNamespaces = false)
{
    public static readonly TetragonJsonOptions Default = new();

    /// <summary>Masks secrets in process arguments (--redaction-filters); null: none.</summary>
    public Filters.Redactor? Redactor { get; init; }

    /// <summary>cluster_name of every event (--cluster-name); null: none.</summary>
    public string? ClusterName { get; init; }

    /// <summary>node_labels of every event (the Kubernetes Node's labels); null or empty: none.</summary>
    public NodeLabels? NodeLabels { get; init; }

    /// <summary>Names the policy rule of a flow's PolicyRule (policy_match); null: flows carry no policy_match.</summary>
    public IFlowPolicyResolver? PolicyRules { get; init; }
}

/// <summary>
/// Writes events in Tetragon's JSON export shape (protojson of GetEventsResponse): one
/// object per event, snake_case names, zero values and empty strings omitted, wrapper
/// integers (pid, uid, ...) always present, 64-bit integers as strings, RFC 3339 times.
/// </summary>
public static class TetragonJson
{
    /// <summary>How every sink writes Tetragon lines: non-ASCII and HTML characters as they are, like Tetragon's export.</summary>
    public static readonly JsonWriterOptions WriterOptions = new()
    {
        SkipValidation = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The bit of a capability by Tetragon's CapabilitiesType name (CAP_CHOWN is 0, DAC_OVERRIDE 1, ...); -1 when unknown.</summary>
    public static int CapabilityBit(string name) => Array.IndexOf(CapabilityNames, name);

    /// <summary>
    /// A capability mask as Tetragon writes kernel_cap_t_arg and cap_{effective,inheritable,permitted}_arg:
    /// 16 lower-case hex digits (its caps.GetCapabilitiesHex, "%016x"), e.g. 0000000000200001 for CAP_CHOWN and CAP_SYS_ADMIN.
    /// </summary>
    public static string CapabilitiesHex(ulong mask) => mask.ToString("x16", CultureInfo.InvariantCulture);

    private static readonly string[] CapabilityNames =
    [
        "CAP_CHOWN", "DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>
    /// Writes one event as a JSON object: its body under the type key (a flow in Hubble's
    /// shape, see <see cref="HubbleJson"/>), then node_name and time. <paramref name="fields"/>
    /// (from the field filters) leaves fields of the body out as it is written.
    /// </summary>
    public static void Write(Utf8JsonWriter w, PalisadeEvent e, string nodeName, TetragonJsonOptions? options = null, Filters.FieldMask? fields = null)
    {
        options ??= TetragonJsonOptions.Default;
        var key = BodyKey(e);
        w.WriteStartObject();
        w.WriteStartObject(key);
        var body = new BodyWriter(w, fields);
        switch (e)
        {
            case ProcessExecEvent exec:
                WriteProcess(body, "process", exec.Process, options);
                WriteOptionalProcess(body, "parent", exec.Parent, options);
                WriteAncestors(body, exec.Ancestors, options);
                break;
            case ProcessExitEvent exit:
                WriteProcess(body, "process", exit.Process, options);
                WriteOptionalProcess(body, "parent", exit.Parent, options);
                if (!string.IsNullOrEmpty(exit.Signal))
                {
                    body.WriteString("signal", exit.Signal);
                }
                if (exit.Status != 0)
                {
                    body.WriteNumber("status", exit.Status);
                }
                WriteTime(body, "time", exit.Time);
                WriteAncestors(body, exit.Ancestors, options);
                break;
            case ProcessPolicyEvent pe:
                WritePolicyEvent(body, pe, options);
                break;
            case FlowEvent flow:
                HubbleJson.WriteFlow(body, flow, nodeName, options);
                break;
        }
        w.WriteEndObject();
        w.WriteString("node_name", nodeName);
        WriteTime(w, "time", e.Time);
        if (!string.IsNullOrEmpty(options.ClusterName))
        {
            w.WriteString("cluster_name", options.ClusterName);
        }
        if (options.NodeLabels?.Current is { Count: > 0 } labels)
        {
            // A proto map: keys in order, as protojson writes them (NodeLabels keeps them so).
            w.WriteStartObject("node_labels");
            foreach (var (label, value) in labels)
            {
                w.WriteString(label, value);
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    /// <summary>The JSON key of an event's body: process_exec, process_kprobe, ..., flow.</summary>
    public static string BodyKey(PalisadeEvent e) => e switch
    {
        ProcessExecEvent => "process_exec",
        ProcessExitEvent => "process_exit",
        ProcessPolicyEvent pe => EventKey(pe.HookKind),
        FlowEvent => "flow",
        _ => throw new NotSupportedException($"No JSON encoding for {e.GetType().Name}."),
    };

    /// <summary>The JSON key of a policy event's body.</summary>
    public static string EventKey(EventKind hookKind) => hookKind switch
    {
        EventKind.ProcessTracepoint => "process_tracepoint",
        EventKind.ProcessUprobe => "process_uprobe",
        EventKind.ProcessLsm => "process_lsm",
        _ => "process_kprobe",
    };

    /// <summary>Writes the event with field filters applied to its body, as it is written.</summary>
    public static void WriteFiltered(Utf8JsonWriter w, PalisadeEvent e, string nodeName, TetragonJsonOptions options, Filters.FieldMasks fields) =>
        Write(w, e, nodeName, options, fields.For(e.Kind));

    /// <summary>Writes the event with field filters applied to its body (builds their masks each call: for tests and one-offs).</summary>
    public static void WriteFiltered(Utf8JsonWriter w, PalisadeEvent e, string nodeName, TetragonJsonOptions options, IReadOnlyList<Filters.FieldFilter> filters) =>
        Write(w, e, nodeName, options, Filters.FieldMask.For(filters, e.Kind));

    /// <summary>Tetragon's rate_limit_info event.</summary>
    public static void WriteRateLimitInfo(Utf8JsonWriter w, long dropped, string nodeName, DateTimeOffset time)
    {
        w.WriteStartObject();
        w.WriteStartObject("rate_limit_info");
        w.WriteString("number_of_dropped_process_events", dropped.ToString(CultureInfo.InvariantCulture));
        w.WriteEndObject();
        w.WriteString("node_name", nodeName);
        WriteTime(w, "time", time);
        w.WriteEndObject();
    }

    private static void WritePolicyEvent(BodyWriter w, ProcessPolicyEvent e, TetragonJsonOptions options)
    {
        WriteProcess(w, "process", e.Process, options);
        WriteOptionalProcess(w, "parent", e.Parent, options);
        if (e.HookKind == EventKind.ProcessTracepoint)
        {
            WriteNonEmpty(w, "subsys", e.Subsystem);
            WriteNonEmpty(w, "event", e.EventName);
        }
        else if (e.HookKind == EventKind.ProcessUprobe)
        {
            WriteNonEmpty(w, "path", e.Subsystem);
            w.WriteString("symbol", e.FunctionName);
        }
        else
        {
            w.WriteString("function_name", e.FunctionName);
        }
        if (e.Args.Count > 0)
        {
            w.WriteStartArray("args");
            foreach (var a in e.Args)
            {
                WriteArg(w, null, a);
            }
            w.WriteEndArray();
        }
        if (e.Return is { } ret)
        {
            WriteArg(w, "return", ret);
        }
        if (e.HookKind != EventKind.ProcessUprobe)
        {
            w.WriteString("action", e.Action);
        }
        w.WriteString("policy_name", e.PolicyName);
        WriteNonEmpty(w, "message", e.Message);
        if (e.Tags.Count > 0)
        {
            w.WriteStartArray("tags");
            foreach (var t in e.Tags)
            {
                w.WriteStringValue(t);
            }
            w.WriteEndArray();
        }
        WriteAncestors(w, e.Ancestors, options);
    }

    /// <summary>One argument in Tetragon's KprobeArgument shape: a single typed field plus the label (under <paramref name="name"/>, or as an array element).</summary>
    private static void WriteArg(BodyWriter w, string? name, PolicyArgValue a)
    {
        if (name is null)
        {
            w.WriteStartObject();
        }
        else
        {
            w.WriteStartObject(name);
        }
        switch (a.Type)
        {
            case "int_arg" or "uint_arg":
                w.WriteNumber(a.Type, a.Int);
                break;
            case "long_arg" or "size_arg":
                // 64-bit integers are strings in protobuf's JSON mapping, as Tetragon emits them.
                w.WriteString(a.Type, a.Type == "size_arg" ? ((ulong)a.Int).ToString(System.Globalization.CultureInfo.InvariantCulture) : a.Int.ToString(System.Globalization.CultureInfo.InvariantCulture));
                break;
            case "string_arg":
                w.WriteString(a.Type, a.Text);
                break;
            case "bytes_arg":
                w.WriteBase64String(a.Type, a.Bytes ?? []);
                break;
            case "file_arg" or "path_arg" or "linux_binprm_arg":
                w.WriteStartObject(a.Type);
                w.WriteString("path", a.Text);
                WriteNonEmpty(w, "flags", FileArgText.Flags(a.Truncated));
                WriteNonEmpty(w, "permission", FileArgText.Permission(a.Mode));
                w.WriteEndObject();
                break;
            case "sock_arg" when a.Sock is { } s:
                w.WriteStartObject(a.Type);
                w.WriteString("family", s.Family);
                w.WriteString("type", s.Type);
                w.WriteString("protocol", s.Protocol);
                WriteNonEmpty(w, "saddr", s.SAddr);
                WriteNonEmpty(w, "daddr", s.DAddr);
                WriteNonZero(w, "sport", s.SPort);
                WriteNonZero(w, "dport", s.DPort);
                if (s.Cookie != 0)
                {
                    // uint64: a string in protojson, as Tetragon writes it.
                    w.WriteString("cookie", s.Cookie.ToString(CultureInfo.InvariantCulture));
                }
                WriteNonEmpty(w, "state", s.State);
                w.WriteEndObject();
                break;
            case "sockaddr_arg" when a.Sock is { } sa:
                w.WriteStartObject(a.Type);
                w.WriteString("family", sa.Family);
                WriteNonEmpty(w, "addr", sa.DAddr);
                WriteNonZero(w, "port", sa.DPort);
                w.WriteEndObject();
                break;
            case "process_credentials_arg" when a.Cred is { } c:
                w.WriteStartObject(a.Type);
                WriteCredentialIds(w, c.Ids);
                WriteCapabilities(w, "caps", c.Caps);
                w.WriteEndObject();
                break;
            case "cap_effective_arg" or "cap_inheritable_arg" or "cap_permitted_arg" or "kernel_cap_t_arg":
                w.WriteString(a.Type, CapabilitiesHex((ulong)a.Int));
                break;
            case not ("int_arg" or "uint_arg") when a.Object is { } fields:
                // Struct-like arguments: bpf_attr_arg, bpf_map_arg, perf_event_arg, skb_arg, net_dev_arg, user_ns_arg, capability_arg.
                WriteFields(w, a.Type, fields);
                break;
            case "syscall_id":
                w.WriteStartObject(a.Type);
                w.WriteNumber("id", a.Int);
                w.WriteString("abi", "x64");
                w.WriteEndObject();
                break;
            default:
                w.WriteNumber("int_arg", a.Int);
                break;
        }
        WriteNonEmpty(w, "label", a.Label);
        w.WriteEndObject();
    }

    internal static void WriteFields(BodyWriter w, string name, IReadOnlyList<KeyValuePair<string, object>> fields)
    {
        w.WriteStartObject(name);
        foreach (var (field, value) in fields)
        {
            switch (value)
            {
                case string text:
                    WriteNonEmpty(w, field, text);
                    break;
                case ulong big:
                    w.WriteString(field, big.ToString(System.Globalization.CultureInfo.InvariantCulture)); // uint64: a string in protojson
                    break;
                case uint small:
                    WriteNonZero(w, field, small);
                    break;
                case int number:
                    w.WriteNumber(field, number);
                    break;
                case bool flag:
                    if (flag)
                    {
                        w.WriteBoolean(field, flag);
                    }
                    break;
                case IReadOnlyList<KeyValuePair<string, object>> nested:
                    WriteFields(w, field, nested);
                    break;
            }
        }
        w.WriteEndObject();
    }

    internal static void WriteNonZero(BodyWriter w, string name, uint value)
    {
        if (value != 0)
        {
            w.WriteNumber(name, value);
        }
    }

    internal static void WriteOptionalProcess(BodyWriter w, string name, ProcessRecord? p, TetragonJsonOptions o)
    {
        if (p is not null)
        {
            WriteProcess(w, name, p, o);
        }
    }

    internal static void WriteAncestors(BodyWriter w, IReadOnlyList<ProcessRecord>? ancestors, TetragonJsonOptions o)
    {
        if (ancestors is not { Count: > 0 })
        {
            return;
        }
        w.WriteStartArray("ancestors");
        foreach (var a in ancestors)
        {
            WriteProcessBody(w, a, o);
        }
        w.WriteEndArray();
    }

    private static void WriteProcess(BodyWriter w, string name, ProcessRecord p, TetragonJsonOptions o)
    {
        w.WriteStartObject(name);
        WriteProcessFields(w, p, o);
        w.WriteEndObject();
    }

    private static void WriteProcessBody(BodyWriter w, ProcessRecord p, TetragonJsonOptions o)
    {
        w.WriteStartObject();
        WriteProcessFields(w, p, o);
        w.WriteEndObject();
    }

    private static void WriteProcessFields(BodyWriter w, ProcessRecord p, TetragonJsonOptions o)
    {
        w.WriteString("exec_id", p.ExecId);
        w.WriteNumber("pid", p.Pid);
        w.WriteNumber("uid", p.Credentials.Uid);
        WriteNonEmpty(w, "cwd", p.Cwd);
        WriteNonEmpty(w, "binary", p.Binary);
        WriteNonEmpty(w, "arguments", o.Redactor is { } redactor ? redactor.Arguments(p) : p.Arguments);
        WriteNonEmpty(w, "flags", p.FlagsText);
        WriteTime(w, "start_time", p.StartTime);
        w.WriteNumber("auid", p.Auid);
        if (p.Pod is { } pod)
        {
            WritePod(w, pod, ExecProbes.MaybeProbe(p));
        }
        if (p.ContainerId is { } container)
        {
            w.WriteString("docker", container.Length > 31 ? container[..31] : container);
        }
        WriteNonEmpty(w, "parent_exec_id", p.ParentExecId);
        var refs = Volatile.Read(ref p.RefCount);
        if (refs > 0)
        {
            w.WriteNumber("refcnt", refs);
        }
        if (o.ProcessCredentials)
        {
            WriteCapabilities(w, "cap", p.Capabilities);
        }
        if (o.ProcessNamespaces)
        {
            WriteNamespaces(w, p.Namespaces);
        }
        w.WriteNumber("tid", p.Tid != 0 ? p.Tid : p.Pid);
        if (o.ProcessCredentials)
        {
            WriteCredentials(w, p.Credentials);
        }
        var deleted = (p.Flags & ProcessFlags.Deleted) != 0 || p.DeletedAtExit;
        if (p.SetuidUid is not null || p.SetgidGid is not null || deleted)
        {
            w.WriteStartObject("binary_properties");
            if (p.SetuidUid is { } su)
            {
                w.WriteNumber("setuid", su);
            }
            if (p.SetgidGid is { } sg)
            {
                w.WriteNumber("setgid", sg);
            }
            if (deleted)
            {
                // Tetragon's way to say "the file had no link": inode.links = 0.
                w.WriteStartObject("file");
                w.WriteStartObject("inode");
                w.WriteString("number", p.ExeInode.ToString(CultureInfo.InvariantCulture));
                w.WriteNumber("links", 0);
                w.WriteEndObject();
                w.WriteString("path", p.Binary);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        if (p.UserName is { } user)
        {
            // Tetragon's user.name (username-metadata=unix).
            w.WriteStartObject("user");
            w.WriteString("name", user);
            w.WriteEndObject();
        }
        if (p.ContainerId is not null)
        {
            // Tetragon's in_init_tree (a BoolValue: written for container processes, false too).
            w.WriteBoolean("in_init_tree", InitTree.Contains(p));
        }
        // Palisade extension: the program that runs a #! script named in "binary".
        WriteNonEmpty(w, "interpreter", p.Interpreter);
    }

    internal static void WriteCredentials(BodyWriter w, Credentials c)
    {
        w.WriteStartObject("process_credentials");
        WriteCredentialIds(w, c);
        w.WriteEndObject();
    }

    internal static void WriteCredentialIds(BodyWriter w, Credentials c)
    {
        w.WriteNumber("uid", c.Uid);
        w.WriteNumber("gid", c.Gid);
        w.WriteNumber("euid", c.Euid);
        w.WriteNumber("egid", c.Egid);
        w.WriteNumber("suid", c.Suid);
        w.WriteNumber("sgid", c.Sgid);
        w.WriteNumber("fsuid", c.Fsuid);
        w.WriteNumber("fsgid", c.Fsgid);
    }

    internal static void WritePod(BodyWriter w, PodInfo pod, bool maybeExecProbe = false)
    {
        w.WriteStartObject("pod");
        WriteNonEmpty(w, "namespace", pod.Namespace);
        WriteNonEmpty(w, "name", pod.Name);
        WriteNonEmpty(w, "uid", pod.Uid);
        if (pod.Container is { } c)
        {
            w.WriteStartObject("container");
            WriteNonEmpty(w, "id", c.Id);
            WriteNonEmpty(w, "name", c.Name);
            if (c.ImageId is not null || c.ImageName is not null)
            {
                w.WriteStartObject("image");
                WriteNonEmpty(w, "id", c.ImageId);
                WriteNonEmpty(w, "name", c.ImageName);
                w.WriteEndObject();
            }
            if (c.StartTime is { } start)
            {
                WriteTime(w, "start_time", start);
            }
            if (c.Pid is { } pid)
            {
                w.WriteNumber("pid", pid);
            }
            if (maybeExecProbe)
            {
                // Tetragon's: binary and arguments are one of the container's exec probe commands.
                w.WriteBoolean("maybe_exec_probe", true);
            }
            w.WriteEndObject();
        }
        if (pod.Labels is { Count: > 0 } labels)
        {
            w.WriteStartObject("pod_labels");
            foreach (var (k, v) in labels)
            {
                w.WriteString(k, v);
            }
            w.WriteEndObject();
        }
        WriteNonEmpty(w, "workload", pod.Workload);
        WriteNonEmpty(w, "workload_kind", pod.WorkloadKind);
        if (pod.Annotations is { Count: > 0 } annotations)
        {
            w.WriteStartObject("pod_annotations");
            foreach (var (k, v) in annotations)
            {
                w.WriteString(k, v);
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    internal static void WriteCapabilities(BodyWriter w, string name, CapabilitySets caps)
    {
        if (caps.Permitted == 0 && caps.Effective == 0 && caps.Inheritable == 0)
        {
            return;
        }
        w.WriteStartObject(name);
        WriteCapabilitySet(w, "permitted", caps.Permitted);
        WriteCapabilitySet(w, "effective", caps.Effective);
        WriteCapabilitySet(w, "inheritable", caps.Inheritable);
        w.WriteEndObject();
    }

    internal static void WriteCapabilitySet(BodyWriter w, string name, ulong mask)
    {
        if (mask == 0)
        {
            return;
        }
        w.WriteStartArray(name);
        for (var bit = 0; bit < 64; bit++)
        {
            if ((mask & (1UL << bit)) != 0)
            {
                w.WriteStringValue(CapabilityName(bit));
            }
        }
        w.WriteEndArray();
    }

    /// <summary>Tetragon's CapabilitiesType names (which spell bit 1 "DAC_OVERRIDE").</summary>
    public static string CapabilityName(int bit) =>
        bit < CapabilityNames.Length ? CapabilityNames[bit] : "CAP_" + bit.ToString(CultureInfo.InvariantCulture);

    internal static void WriteNamespaces(BodyWriter w, Namespaces? ns)
    {
        if (ns is null)
        {
            return;
        }
        w.WriteStartObject("ns");
        for (var i = 0; i < ns.Ids.Length && i < NamespaceKinds.Names.Length; i++)
        {
            var id = ns.Ids[i];
            if (id.Inum == 0)
            {
                continue;
            }
            w.WriteStartObject(NamespaceKinds.Names[i]);
            w.WriteNumber("inum", id.Inum);
            if (id.IsHost)
            {
                w.WriteBoolean("is_host", true);
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    internal static void WriteNonEmpty(BodyWriter w, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            w.WriteString(name, value);
        }
    }

    /// <summary>protojson's Timestamp form: UTC, "Z", and 0, 3, 6 or 9 fractional digits.</summary>
    public static void WriteTime(Utf8JsonWriter w, string name, DateTimeOffset time)
    {
        Span<byte> buffer = stackalloc byte[40];
        w.WriteString(name, buffer[..FormatTime(time, buffer)]);
    }

    internal static void WriteTime(BodyWriter w, string name, DateTimeOffset time)
    {
        Span<byte> buffer = stackalloc byte[40];
        w.WriteString(name, buffer[..FormatTime(time, buffer)]);
    }

    public static int FormatTime(DateTimeOffset time, Span<byte> buffer)
    {
        var utc = time.UtcDateTime;
        utc.TryFormat(buffer, out var n, "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        var nanos = (utc.Ticks % TimeSpan.TicksPerSecond) * 100;
        if (nanos != 0)
        {
            int digits;
            long value;
            if (nanos % 1_000_000 == 0)
            {
                digits = 3;
                value = nanos / 1_000_000;
            }
            else if (nanos % 1000 == 0)
            {
                digits = 6;
                value = nanos / 1000;
            }
            else
            {
                digits = 9;
                value = nanos;
            }
            buffer[n++] = (byte)'.';
            value.TryFormat(buffer.Slice(n, digits), out _, digits == 3 ? "D3" : digits == 6 ? "D6" : "D9", CultureInfo.InvariantCulture);
            n += digits;
        }
        buffer[n++] = (byte)'Z';
        return n;
    }
}
