namespace Palisade.Policies.Compilation;

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
        new(PointKind.SyscallExit, SyscallTable.X64[syscall], fn, flags) { Args = args.ToDictionary(a => a.Index, a => a.Source) };

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
