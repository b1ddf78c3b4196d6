namespace Palisade.Policies.Tracing;

/// <summary>Linux capability names, by bit number (include/uapi/linux/capability.h).</summary>
public static class Capabilities
{
    public static readonly string[] Names =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
        "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>Bit of a capability name (or number), -1 if unknown.</summary>
    public static int Bit(string name)
    {
        var i = Array.IndexOf(Names, name);
        if (i >= 0)
        {
            return i;
        }
        return int.TryParse(name, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 0 && n < 64 ? n : -1;
    }
}

/// <summary>Socket family, protocol and TCP state names as Tetragon spells them.</summary>
public static class SocketNames
{
    public static readonly IReadOnlyDictionary<string, int> Families = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["AF_UNSPEC"] = 0, ["AF_UNIX"] = 1, ["AF_INET"] = 2, ["AF_INET6"] = 10, ["AF_NETLINK"] = 16, ["AF_PACKET"] = 17,
    };

    public static readonly IReadOnlyDictionary<string, int> Protocols = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["IPPROTO_IP"] = 0, ["IPPROTO_ICMP"] = 1, ["IPPROTO_TCP"] = 6, ["IPPROTO_UDP"] = 17, ["IPPROTO_ICMPV6"] = 58, ["IPPROTO_SCTP"] = 132, ["IPPROTO_RAW"] = 255,
    };

    public static readonly IReadOnlyDictionary<string, int> States = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["TCP_ESTABLISHED"] = 1, ["TCP_SYN_SENT"] = 2, ["TCP_SYN_RECV"] = 3, ["TCP_FIN_WAIT1"] = 4, ["TCP_FIN_WAIT2"] = 5, ["TCP_TIME_WAIT"] = 6,
        ["TCP_CLOSE"] = 7, ["TCP_CLOSE_WAIT"] = 8, ["TCP_LAST_ACK"] = 9, ["TCP_LISTEN"] = 10, ["TCP_CLOSING"] = 11, ["TCP_NEW_SYN_RECV"] = 12,
    };

    public static readonly IReadOnlyDictionary<int, string> SocketTypes = new Dictionary<int, string>
    {
        [1] = "SOCK_STREAM", [2] = "SOCK_DGRAM", [3] = "SOCK_RAW", [5] = "SOCK_SEQPACKET",
    };

    /// <summary>Number of a Protocol/Family/State value (name or number), -1 if unknown.</summary>
    public static int Value(string kind, string text)
    {
        var table = kind switch { "Protocol" => Protocols, "Family" => Families, _ => States };
        if (table.TryGetValue(text, out var v))
        {
            return v;
        }
        return int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 0 ? n : -1;
    }

    public static string Name(IReadOnlyDictionary<string, int> table, int value) =>
        table.FirstOrDefault(kv => kv.Value == value).Key ?? value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
