namespace Palisade.Datapath.Netlink;

/// <summary>
/// A netlink request the kernel refused, or a socket call that failed: names the operation,
/// the object, the errno by name and, when the kernel sent one, its extended-ack message.
/// </summary>
public sealed class NetlinkException : Exception
{
    public NetlinkException(string operation, string target, int errno, string? kernelMessage = null)
        : base($"{operation} {target}: {Netlink.Errno.Name(errno)} ({Netlink.Errno.Describe(errno)})" + (string.IsNullOrEmpty(kernelMessage) ? "" : $": kernel says \"{kernelMessage}\""))
    {
        Operation = operation;
        Target = target;
        Errno = errno;
        KernelMessage = kernelMessage;
    }

    public NetlinkException()
    {
        Operation = Target = "";
    }

    public NetlinkException(string message) : base(message)
    {
        Operation = Target = "";
    }

    public NetlinkException(string message, Exception innerException) : base(message, innerException)
    {
        Operation = Target = "";
    }

    /// <summary>What was asked, e.g. "RTM_NEWLINK create veth".</summary>
    public string Operation { get; }

    /// <summary>What it was asked of, e.g. the interface name and namespace.</summary>
    public string Target { get; }

    /// <summary>The positive errno.</summary>
    public int Errno { get; }

    /// <summary>The kernel's extended-ack text, when it sent one.</summary>
    public string? KernelMessage { get; }
}

/// <summary>errno numbers by their Linux names, for messages people can search for.</summary>
public static class Errno
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOSPC = 28, ERANGE = 34, ENAMETOOLONG = 36, EMSGSIZE = 90,
        EPROTONOSUPPORT = 93, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98, EADDRNOTAVAIL = 99, ENETDOWN = 100,
        ENETUNREACH = 101, ENOBUFS = 105, ETIMEDOUT = 110, EHOSTUNREACH = 113;

    private static readonly Dictionary<int, (string Name, string Text)> s_known = new()
    {
        [EPERM] = ("EPERM", "operation not permitted; the agent needs CAP_NET_ADMIN"),
        [ENOENT] = ("ENOENT", "no such entry"),
        [ESRCH] = ("ESRCH", "no such entry"),
        [EINTR] = ("EINTR", "interrupted"),
        [EIO] = ("EIO", "I/O error"),
        [EBADF] = ("EBADF", "bad file descriptor"),
        [EAGAIN] = ("EAGAIN", "try again"),
        [ENOMEM] = ("ENOMEM", "out of memory"),
        [EACCES] = ("EACCES", "permission denied"),
        [EBUSY] = ("EBUSY", "device or resource busy"),
        [EEXIST] = ("EEXIST", "already exists"),
        [ENODEV] = ("ENODEV", "no such device"),
        [EINVAL] = ("EINVAL", "invalid argument"),
        [ENOSPC] = ("ENOSPC", "no space left"),
        [ERANGE] = ("ERANGE", "out of range"),
        [ENAMETOOLONG] = ("ENAMETOOLONG", "name too long"),
        [EMSGSIZE] = ("EMSGSIZE", "message too long"),
        [EPROTONOSUPPORT] = ("EPROTONOSUPPORT", "protocol not supported"),
        [EOPNOTSUPP] = ("EOPNOTSUPP", "operation not supported"),
        [EAFNOSUPPORT] = ("EAFNOSUPPORT", "address family not supported (is IPv6 disabled?)"),
        [EADDRINUSE] = ("EADDRINUSE", "address in use"),
        [EADDRNOTAVAIL] = ("EADDRNOTAVAIL", "address not available"),
        [ENETDOWN] = ("ENETDOWN", "network is down"),
        [ENETUNREACH] = ("ENETUNREACH", "network unreachable"),
        [ENOBUFS] = ("ENOBUFS", "no buffer space"),
        [ETIMEDOUT] = ("ETIMEDOUT", "timed out"),
        [EHOSTUNREACH] = ("EHOSTUNREACH", "no route to host"),
    };

    /// <summary>"EEXIST" for 17; "errno 200" for one we do not name.</summary>
    public static string Name(int errno) => s_known.TryGetValue(errno, out var k) ? k.Name : $"errno {errno}";

    public static string Describe(int errno) => s_known.TryGetValue(errno, out var k) ? k.Text : "unknown error";
}
