namespace Palisade.Policies.Tracing.Compilation;

/// <summary>
/// The emulation table: for each kernel function policies hook, the tracepoints and cgroup
/// hooks that see the same event with the same arguments, on kernels without kprobes.
/// docs/policies.md renders this table (a unit test keeps them in step).
/// </summary>
public static class HookCatalog
{
    /// <summary>One emulated function: where it runs and what it prevents or only contains.</summary>
    public sealed record Emulation(string Function, string How, string Effect, IReadOnlyList<HookTarget> Targets);

    private const byte None = 0xff;
    private const uint MayRead = 4, MayWrite = 2;
    private const ulong CloneNewUser = 0x10000000;

    private static SlotSource Ret => new(SlotKind.Ret);
    private static SlotSource RetFdPath => new(SlotKind.RetFdPath);
    private static SlotSource FdPath(byte reg) => new(SlotKind.FdPath, reg);
    private static SlotSource Int(byte reg) => new(SlotKind.Int, reg);
    private static SlotSource Str(byte reg) => new(SlotKind.UserString, reg);
    private static SlotSource Const(uint v) => new(SlotKind.Const, Const: v);
    private static SlotSource Cred => new(SlotKind.Cred);

    private static HookTarget Exit(string fn, string syscall, PointFlags flags, params (uint Index, SlotSource Source)[] args) =>
        new(PointKind.SyscallExit, SyscallTable.X64[syscall], fn, flags) { Args = Regs(args) };

    private static IEnumerable<HookTarget> Exits(string fn, string[] syscalls, PointFlags flags, params (uint, SlotSource)[] args) =>
        syscalls.Select(s => Exit(fn, s, flags, args));

    private static readonly string[] Opens = ["open", "openat", "openat2", "creat"];
    private static readonly string[] Reads = ["read", "pread64", "readv", "preadv", "preadv2"];
    private static readonly string[] Writes = ["write", "pwrite64", "writev", "pwritev", "pwritev2"];

    private static readonly string[] CredSyscalls =
        ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups", "capset"];

    /// <summary>Every emulated function by name.</summary>
    public static readonly IReadOnlyDictionary<string, Emulation> Table = Build();

    private static Dictionary<string, Emulation> Build()
    {
        var list = new List<Emulation>
        {
            new("fd_install", "exit of open, openat, openat2, creat: arg 0 = the returned fd, arg 1 = its file, path resolved in the kernel",
                "contained: the process dies before it returns from open, so it never reads or writes the file",
                Exits("fd_install", Opens, PointFlags.ReturnOk, (0, Ret), (1, RetFdPath)).ToList()),
            new("security_file_open", "exit of open, openat, openat2, creat: arg 0 = the opened file",
                "contained: the process dies before it returns from open",
                Exits("security_file_open", Opens, PointFlags.ReturnOk, (0, RetFdPath)).ToList()),
            new("security_file_permission", "exit of read/pread64/readv/preadv(2) (arg 1 = MAY_READ 4) and write/pwrite64/writev/pwritev(2) (arg 1 = MAY_WRITE 2): arg 0 = the file at the fd",
                "reads: contained (the data is in the buffer but the process dies before it returns); writes: not prevented (the data is written), the writer is killed",
                Exits("security_file_permission", Reads, PointFlags.None, (0, FdPath(0)), (1, Const(MayRead)))
                    .Concat(Exits("security_file_permission", Writes, PointFlags.None, (0, FdPath(0)), (1, Const(MayWrite)))).ToList()),
            new("security_mmap_file", "exit of mmap: arg 0 = the file at the fd (anonymous maps never match), arg 1 = prot, arg 2 = flags",
                "contained: the process dies before it uses the mapping",
                [Exit("security_mmap_file", "mmap", PointFlags.ReturnOk, (0, FdPath(4)), (1, Int(2)), (2, Int(3)))]),
            new("security_path_truncate", "exit of ftruncate (arg 0 = the file at the fd) and truncate (arg 0 = the path as the caller passed it)",
                "not prevented: the file is truncated, the process is killed",
                [Exit("security_path_truncate", "ftruncate", PointFlags.None, (0, FdPath(0))),
                 Exit("security_path_truncate", "truncate", PointFlags.None, (0, Str(0)))]),
            new("security_bprm_check", "sched_process_exec: arg 0 = the executed file (linux_binprm path); the return value is 0 (an exec the check refused never reaches this point)",
                "prevented: the new program never runs an instruction",
                [new HookTarget(PointKind.Exec, -1, "security_bprm_check")
                    { Args = new Dictionary<uint, SlotSource> { [0] = new(SlotKind.ExecPath) }, Return = new SlotSource(SlotKind.Const, Const: 0) }]),
            new("security_bprm_creds_from_file", "sched_process_exec: arg 0 = linux_binprm, arg 1 = the executed file",
                "prevented: the new program never runs an instruction",
                [new HookTarget(PointKind.Exec, -1, "security_bprm_creds_from_file")
                    { Args = new Dictionary<uint, SlotSource> { [0] = new(SlotKind.ExecPath), [1] = new(SlotKind.ExecPath) } }]),
            new("tcp_connect", "cgroup connect4/connect6 of TCP sockets: arg 0 = the socket (family, protocol, destination address and port)",
                "prevented: Sigkill also refuses the connect (EPERM) and the process dies at the syscall's exit; no SYN is sent",
                [new HookTarget(PointKind.Connect, -1, "tcp_connect", PointFlags.TcpOnly) { Args = new Dictionary<uint, SlotSource> { [0] = new(SlotKind.CtxSock) } }]),
            new("security_socket_connect", "cgroup connect4/connect6: arg 0 = the socket, arg 1 = the address, arg 2 = the address length",
                "prevented: Sigkill and Override refuse the connect (EPERM)",
                [new HookTarget(PointKind.Connect, -1, "security_socket_connect")
                    { Args = new Dictionary<uint, SlotSource> { [0] = new(SlotKind.CtxSock), [1] = new(SlotKind.CtxSock), [2] = Const(16) } }]),
            new("tcp_sendmsg", "exit of sendto, sendmsg on TCP sockets: arg 0 = the socket, arg 2 = bytes sent (write(2) on a socket is not seen)",
                "not prevented: the data is sent, the sender is killed",
                Exits("tcp_sendmsg", ["sendto", "sendmsg"], PointFlags.ReturnOk | PointFlags.TcpOnly, (0, new SlotSource(SlotKind.FdSock, 0)), (2, Ret)).ToList()),
            new("tcp_close", "entry of close on TCP sockets: arg 0 = the socket (a socket shared by dup'd fds is seen at each close)",
                "not prevented",
                [new HookTarget(PointKind.SyscallEnter, SyscallTable.X64["close"], "tcp_close", PointFlags.TcpOnly)
                    { Args = new Dictionary<uint, SlotSource> { [0] = new(SlotKind.FdSock, 0) } }]),
            new("inet_csk_accept", "exit of accept, accept4: return value = the accepted socket",
                "contained: the process dies before it uses the connection",
                Exits("inet_csk_accept", ["accept", "accept4"], PointFlags.ReturnOk)
                    .Select(t => t with { Return = new SlotSource(SlotKind.RetFdSock), Args = new Dictionary<uint, SlotSource> { [0] = new(SlotKind.RetFdSock) } }).ToList()),
            new("commit_creds", "exit of set*uid/set*gid, setgroups, capset: arg 0 = the new credentials (not seen: credential changes by exec of set-user-ID files)",
                "not prevented: the credentials are installed, the process dies before it returns",
                Exits("commit_creds", CredSyscalls, PointFlags.ReturnOk, (0, Cred)).ToList()),
            new("security_capset", "exit of capset: arg 1 = the new credentials, args 2-4 = effective, inheritable, permitted capabilities",
                "not prevented: the capabilities are set, the process dies before it returns",
                [Exit("security_capset", "capset", PointFlags.ReturnOk, (0, Cred), (1, Cred), (2, new SlotSource(SlotKind.TaskCap, 0)),
                    (3, new SlotSource(SlotKind.TaskCap, 1)), (4, new SlotSource(SlotKind.TaskCap, 2)))]),
            new("create_user_ns", "exit of unshare and clone with CLONE_NEWUSER: arg 0 = the credentials (clone3 is not seen)",
                "contained: the process dies before it runs in the new namespace",
                [new HookTarget(PointKind.SyscallExit, SyscallTable.X64["unshare"], "create_user_ns", PointFlags.Gate | PointFlags.ReturnOk, 0, CloneNewUser)
                    { Args = new Dictionary<uint, SlotSource> { [0] = Cred } },
                 new HookTarget(PointKind.SyscallExit, SyscallTable.X64["clone"], "create_user_ns", PointFlags.Gate | PointFlags.ReturnOk, 0, CloneNewUser)
                    { Args = new Dictionary<uint, SlotSource> { [0] = Cred } }]),
            new("security_kernel_read_file", "exit of finit_module: arg 0 = the module file, arg 1 = READING_MODULE (2)",
                "not prevented: the module is loaded, the loader is killed",
                [Exit("security_kernel_read_file", "finit_module", PointFlags.None, (0, FdPath(0)), (1, Const(2)))]),
            new("security_kernel_load_data", "exit of init_module: arg 0 = LOADING_MODULE (2)",
                "not prevented: the module is loaded, the loader is killed",
                [Exit("security_kernel_load_data", "init_module", PointFlags.None, (0, Const(2)))]),
        };
        list.AddRange(NetworkEmulations());
        // BPF and perf: the attribute structs as the caller passed them, read at the syscall's exit.
        var attr = new SlotSource(SlotKind.UserBuffer, 1, 2);
        HookTarget BpfCmd(string fn, ulong cmd, uint index) =>
            new(PointKind.SyscallExit, SyscallTable.X64["bpf"], fn, PointFlags.GateEqual | PointFlags.ReturnOk, 0, cmd) { Args = new Dictionary<uint, SlotSource> { [index] = attr } };
        list.Add(new("bpf_check", "exit of bpf(BPF_PROG_LOAD) that succeeded: arg 1 = the bpf_attr (program type, instruction count, name)",
            "not prevented: the program is loaded, the loader is killed", [BpfCmd("bpf_check", 5, 1)]));
        list.Add(new("security_bpf_map_create", "exit of bpf(BPF_MAP_CREATE) that succeeded: arg 0 = the map's attributes (type, key and value size, entries, name)",
            "not prevented: the map exists, the creator is killed", [BpfCmd("security_bpf_map_create", 0, 0)]));
        list.Add(new("security_bpf_map_alloc", "exit of bpf(BPF_MAP_CREATE) that succeeded (the pre-6.9 name of the hook): arg 0 = the map's attributes",
            "not prevented: the map exists, the creator is killed", [BpfCmd("security_bpf_map_alloc", 0, 0)]));
        list.Add(new("security_perf_event_alloc", "exit of perf_event_open that succeeded: arg 0 = the perf_event_attr (type, config)",
            "not prevented: the event exists, the caller is killed",
            [Exit("security_perf_event_alloc", "perf_event_open", PointFlags.ReturnOk, (0, new SlotSource(SlotKind.UserBuffer, 0, 0xff, 64)))]));
        // Kernel entry points of the set*id syscalls take the syscall's arguments unchanged.
        foreach (var name in new[] { "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid" })
        {
            list.Add(new($"__sys_{name}", $"exit of {name}: the syscall's arguments",
                "not prevented: the ids change, the process dies before it returns",
                [Exit($"__sys_{name}", name, PointFlags.None, (0, Int(0)), (1, Int(1)), (2, Int(2)))]));
        }
        var table = list.ToDictionary(e => e.Function, StringComparer.Ordinal);
        // BPF-LSM hook names for the same places.
        table["lsm:file_open"] = table["security_file_open"] with { Function = "file_open" };
        table["lsm:bprm_check_security"] = table["security_bprm_check"] with { Function = "bprm_check_security" };
        table["lsm:bprm_creds_from_file"] = table["security_bprm_creds_from_file"] with { Function = "bprm_creds_from_file" };
        table["lsm:file_permission"] = table["security_file_permission"] with { Function = "file_permission" };
        table["lsm:mmap_file"] = table["security_mmap_file"] with { Function = "mmap_file" };
        table["lsm:socket_connect"] = table["security_socket_connect"] with { Function = "socket_connect" };
        return table;
    }

    // Which kernel function a shared tracepoint or hook stands for.
    private const ulong StateListen = (ulong)SockStateFunction.Listen, StateChild = (ulong)SockStateFunction.Child, StateTcpSet = (ulong)SockStateFunction.TcpSet;
    private const ulong SkbIp = (ulong)SkbOutput.Ip, SkbIpMc = (ulong)SkbOutput.IpMc, SkbIp6 = (ulong)SkbOutput.Ip6;

    private static Dictionary<uint, SlotSource> Regs(params (uint Index, SlotSource Source)[] args) => args.ToDictionary(a => a.Index, a => a.Source);

    private static HookTarget Tracepoint(string fn, string tracepoint, params (uint, SlotSource)[] args) =>
        new(PointKind.Tracepoint, -1, fn) { Place = tracepoint, Args = Regs(args) };

    private static HookTarget SockState(string fn, ulong which, params (uint, SlotSource)[] args) =>
        new(PointKind.Tracepoint, -1, fn, PointFlags.Gate, 5, which) { Place = "inet_sock_set_state", Args = Regs(args) };

    private static HookTarget Skb(string fn, string direction, ulong which, params (uint, SlotSource)[] args) =>
        new(PointKind.CgroupSkb, -1, fn, which == 0 ? PointFlags.None : PointFlags.Gate, 5, which) { Place = "cgroup_skb/" + direction, Args = Regs(args) };

    /// <summary>Socket, capability and packet functions, on kernel tracepoints and cgroup skb hooks.</summary>
    private static IEnumerable<Emulation> NetworkEmulations()
    {
        var sk = new SlotSource(SlotKind.KSock, 0);
        var skb0 = new SlotSource(SlotKind.KSkb, 0);
        var skb1 = new SlotSource(SlotKind.KSkb, 1);
        const string Softirq = "; in interrupt context (packets arriving) nobody is signalled";
        yield return new("tcp_set_state", "tracepoint sock/inet_sock_set_state of TCP sockets, except the listen and accept transitions (inet_csk_listen_start, tcp_create_openreq_child): arg 0 = the socket, still in its old state, arg 1 = the new state",
            "not prevented: the state changes" + Softirq,
            [SockState("tcp_set_state", StateTcpSet, (0, sk), (1, Int(1)))]);
        yield return new("inet_csk_listen_start", "tracepoint sock/inet_sock_set_state, TCP CLOSE -> LISTEN: arg 0 = the socket (bound address and port)",
            "contained: the process dies before listen(2) returns, and its socket closes with it",
            [SockState("inet_csk_listen_start", StateListen, (0, sk))]);
        yield return new("tcp_create_openreq_child", "tracepoint sock/inet_sock_set_state, TCP LISTEN -> SYN_RECV of the socket a handshake creates: return value = the new socket; arg 0 = the same new socket, whose local address and port are the listener's (the listening socket itself is not at hand)",
            "not prevented: the connection is set up" + Softirq,
            [SockState("tcp_create_openreq_child", StateChild, (0, sk)) with { Return = sk }]);
        yield return new("sk_alloc", "exit of socket that succeeded: arg 1 = the family, return value = the new socket (sockets the kernel creates for itself and the sockets accept clones are not seen)",
            "contained: the process dies before it uses the socket",
            [Exit("sk_alloc", "socket", PointFlags.ReturnOk, (1, Int(0))) with { Return = new SlotSource(SlotKind.RetFdSock) }]);
        foreach (var free in new[] { "__sk_free", "sk_free" })
        {
            yield return new(free, "entry of close of a socket: arg 0 = the socket. The kernel frees it once its last reference is gone (TCP: after the connection is closed); a socket with other open descriptors is seen at each close",
                "not prevented",
                [new HookTarget(PointKind.SyscallEnter, SyscallTable.X64["close"], free, PointFlags.SockOnly) { Args = Regs((0, new SlotSource(SlotKind.FdSock, 0))) }]);
        }
        yield return new("cap_capable", "tracepoint capability/cap_capable, at the function's end: arg 0 = the credentials, arg 1 = the target user namespace, arg 2 = the capability, return value = the result (0 or -EPERM); arg 3 (opts) is not available",
            "contained: the check's result stands, the caller dies before it returns to user space",
            [Tracepoint("cap_capable", "cap_capable", (0, new SlotSource(SlotKind.KCred, 0)), (1, new SlotSource(SlotKind.KUserNs, 1)), (2, Int(2))) with { Return = Ret }]);
        yield return new("dev_queue_xmit", "tracepoint net/net_dev_queue in __dev_queue_xmit: arg 0 = the packet",
            "not prevented: the packet is queued; the sender dies if it sent in its own call", [Tracepoint("dev_queue_xmit", "net_dev_queue", (0, skb0))]);
        yield return new("dev_hard_start_xmit", "tracepoint net/net_dev_start_xmit, once per packet handed to the driver: arg 0 = the packet, arg 1 = the device",
            "not prevented: the packet is sent; the sender dies if it sent in its own call",
            [Tracepoint("dev_hard_start_xmit", "net_dev_start_xmit", (0, skb0), (1, new SlotSource(SlotKind.KNetDev, 1)))]);
        yield return new("kfree_skb_reason", "tracepoint skb/kfree_skb: arg 0 = the packet, arg 1 = the drop reason",
            "not prevented: the packet was dropped anyway" + Softirq, [Tracepoint("kfree_skb_reason", "kfree_skb", (0, skb0), (1, Int(1)))]);
        yield return new("__cgroup_bpf_run_filter_skb", "cgroup skb hooks (ingress and egress) on the root cgroup: arg 0 = the socket, arg 1 = the packet, arg 2 = the direction (0 ingress, 1 egress). Packets of local sockets only",
            "prevented: Sigkill and Override drop the packet; a sender is also killed when the packet leaves in its own call" + Softirq,
            [Skb("__cgroup_bpf_run_filter_skb", "ingress", 0, (0, sk), (1, skb1), (2, Int(2))), Skb("__cgroup_bpf_run_filter_skb", "egress", 0, (0, sk), (1, skb1), (2, Int(2)))]);
        yield return new("sk_filter_trim_cap", "cgroup skb ingress hook (run by sk_filter_trim_cap): arg 0 = the receiving socket, arg 1 = the packet",
            "prevented: Sigkill and Override drop the packet before the socket sees it; nobody is signalled (packets arrive in interrupt context)",
            [Skb("sk_filter_trim_cap", "ingress", 0, (0, sk), (1, skb1))]);
        foreach (var (fn, which, what) in new[] { ("ip_output", SkbIp, "IPv4 unicast"), ("ip_mc_output", SkbIpMc, "IPv4 multicast and broadcast"), ("ip6_output", SkbIp6, "IPv6") })
        {
            yield return new(fn, $"cgroup skb egress hook (run under {fn}), {what} packets of local sockets: arg 1 = the socket, arg 2 = the packet (forwarded packets are not seen)",
                "prevented: Sigkill and Override drop the packet; the sender is also killed when the packet leaves in its own call",
                [Skb(fn, "egress", which, (1, sk), (2, skb1))]);
        }
    }

    /// <summary>Syscalls whose arguments are not in registers at exit and must be evaluated at entry.</summary>
    public static readonly IReadOnlySet<string> EntrySyscalls = new HashSet<string>(StringComparer.Ordinal)
        { "execve", "execveat", "exit", "exit_group", "rt_sigreturn" };

    /// <summary>The syscall a kprobe name refers to (sys_openat, __x64_sys_openat, __se_sys_openat, ksys_...), or null.</summary>
    public static string? SyscallName(string call, bool syscallFlag)
    {
        foreach (var prefix in new[] { "__x64_sys_", "__se_sys_", "__do_sys_", "__ia32_sys_", "__arm64_sys_", "sys_" })
        {
            if (call.StartsWith(prefix, StringComparison.Ordinal))
            {
                var name = call[prefix.Length..];
                return SyscallTable.X64.ContainsKey(name) ? name : null;
            }
        }
        return syscallFlag && SyscallTable.X64.ContainsKey(call) ? call : null;
    }
}
