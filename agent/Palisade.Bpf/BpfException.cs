using System.Runtime.InteropServices;

namespace Palisade.Bpf;

/// <summary>A libbpf or bpf(2) call failed; names the operation, the object and the errno.</summary>
public class BpfException : Exception
{
    public BpfException(string operation, string target, int errno, string? detail = null)
        : base(Format(operation, target, errno, detail))
    {
        Operation = operation;
        Target = target;
        Errno = errno;
    }

    /// <summary>What was attempted, e.g. "attach tracepoint".</summary>
    public string Operation { get; }

    /// <summary>What it was attempted on, e.g. "program probe_tp (syscalls/sys_enter_getppid)".</summary>
    public string Target { get; }

    /// <summary>The positive errno value reported by the kernel or libbpf.</summary>
    public int Errno { get; }

    /// <summary>The symbolic errno name, e.g. "EPERM".</summary>
    public string ErrnoName => Errnos.Name(Errno);

    private static string Format(string operation, string target, int errno, string? detail)
    {
        var message = $"{operation} failed for {target}: {Errnos.Describe(errno)}";
        return string.IsNullOrEmpty(detail) ? message : message + ". " + detail;
    }

    internal static int LastErrno()
    {
        var errno = Marshal.GetLastPInvokeError();
        return errno == 0 ? Errnos.EINVAL : Math.Abs(errno);
    }
}

/// <summary>A program or object failed to load; carries the verifier log.</summary>
public sealed class BpfLoadException : BpfException
{
    public BpfLoadException(string objectName, string? programName, int errno, string verifierLog, string libbpfLog)
        : base("load", programName is null ? $"object {objectName}" : $"program {programName} in object {objectName}", errno,
               BuildDetail(verifierLog, libbpfLog))
    {
        ObjectName = objectName;
        ProgramName = programName;
        VerifierLog = verifierLog;
        LibbpfLog = libbpfLog;
    }

    public string ObjectName { get; }

    /// <summary>The program the kernel rejected, when libbpf said which.</summary>
    public string? ProgramName { get; }

    /// <summary>The kernel verifier's log for the rejected program (may be empty when the failure was not the verifier's).</summary>
    public string VerifierLog { get; }

    /// <summary>What libbpf reported while loading.</summary>
    public string LibbpfLog { get; }

    // The tail of the verifier log holds the reason; keep the message readable and the whole log in VerifierLog.
    private const int MessageLogTail = 4000;

    private static string BuildDetail(string verifierLog, string libbpfLog)
    {
        var parts = new List<string>();
        if (!string.IsNullOrWhiteSpace(libbpfLog))
        {
            parts.Add("libbpf: " + libbpfLog.Trim());
        }
        if (!string.IsNullOrWhiteSpace(verifierLog))
        {
            var log = verifierLog.TrimEnd();
            if (log.Length > MessageLogTail)
            {
                log = "..." + log[^MessageLogTail..];
            }
            parts.Add("verifier log:\n" + log);
        }
        return string.Join("\n", parts);
    }
}

/// <summary>errno names and messages.</summary>
public static class Errnos
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EBADF = 9, EAGAIN = 11, ENOMEM = 12,
        EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOSPC = 28,
        E2BIG = 7, ENOSYS = 38, EOPNOTSUPP = 95, ENOTSUPP = 524;

    public static string Name(int errno) => errno switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", ESRCH => "ESRCH", EINTR => "EINTR", EBADF => "EBADF",
        EAGAIN => "EAGAIN", ENOMEM => "ENOMEM", EACCES => "EACCES", EFAULT => "EFAULT", EBUSY => "EBUSY",
        EEXIST => "EEXIST", ENODEV => "ENODEV", EINVAL => "EINVAL", ENOSPC => "ENOSPC", E2BIG => "E2BIG",
        ENOSYS => "ENOSYS", EOPNOTSUPP => "EOPNOTSUPP", ENOTSUPP => "ENOTSUPP",
        _ => "errno " + errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static unsafe string Describe(int errno)
    {
        // ENOTSUPP (524) is kernel-internal; libc has no text for it.
        if (errno == ENOTSUPP)
        {
            return "ENOTSUPP (operation not supported by this kernel)";
        }
        var text = Marshal.PtrToStringUTF8((nint)Interop.Libc.StrError(errno)) ?? "unknown error";
        return $"{Name(errno)} ({text})";
    }
}
