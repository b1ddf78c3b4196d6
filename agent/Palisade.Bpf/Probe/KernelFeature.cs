namespace Palisade.Bpf.Probe;

/// <summary>Names of the kernel features the probe reports, as they appear in `palisade probe` and its JSON.</summary>
public static class KernelFeature
{
    public const string Tracepoint = "tracepoint";
    public const string RawTracepoint = "raw_tp";
    public const string TpBtf = "tp_btf";
    public const string Kprobe = "kprobe";
    public const string Kretprobe = "kretprobe";
    public const string Fentry = "fentry";
    public const string Fexit = "fexit";
    public const string Lsm = "lsm";
    public const string Uprobe = "uprobe";
    public const string Uretprobe = "uretprobe";
    public const string Tc = "tc";
    public const string Xdp = "xdp";
    public const string CgroupConnect4 = "cgroup/connect4";
    public const string CgroupConnect6 = "cgroup/connect6";
    public const string CgroupSendmsg4 = "cgroup/sendmsg4";
    public const string CgroupSendmsg6 = "cgroup/sendmsg6";
    public const string CgroupRecvmsg4 = "cgroup/recvmsg4";
    public const string CgroupRecvmsg6 = "cgroup/recvmsg6";
    public const string CgroupGetpeername4 = "cgroup/getpeername4";
    public const string CgroupGetpeername6 = "cgroup/getpeername6";
    public const string CgroupGetsockname4 = "cgroup/getsockname4";
    public const string CgroupGetsockname6 = "cgroup/getsockname6";
    public const string CgroupBind4 = "cgroup/bind4";
    public const string CgroupBind6 = "cgroup/bind6";
    public const string CgroupSkb = "cgroup_skb";
    public const string CgroupSock = "cgroup/sock_create";
    public const string Sockops = "sockops";
    public const string Ringbuf = "ringbuf";
    public const string SendSignal = "bpf_send_signal";
    public const string RdonlyCast = "bpf_rdonly_cast";
    public const string OverrideReturn = "bpf_override_return";
    public const string BpfLsmActive = "bpf_lsm_active";
    public const string Btf = "btf";

    /// <summary>The cgroup sock_addr hooks, in the order they are reported.</summary>
    public static readonly IReadOnlyList<string> SockAddrHooks =
    [
        CgroupConnect4, CgroupConnect6, CgroupSendmsg4, CgroupSendmsg6, CgroupRecvmsg4, CgroupRecvmsg6,
        CgroupGetpeername4, CgroupGetpeername6, CgroupGetsockname4, CgroupGetsockname6, CgroupBind4, CgroupBind6,
    ];
}
