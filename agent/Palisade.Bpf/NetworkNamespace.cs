namespace Palisade.Bpf;

/// <summary>Runs netlink-based work (tc, xdp, interface lookup) inside another network namespace.</summary>
public static class NetworkNamespace
{
    /// <summary>
    /// Runs <paramref name="action"/> on a short-lived thread that has joined the network
    /// namespace at <paramref name="netnsPath"/> (e.g. /var/run/netns/x); inline when null.
    /// setns changes only the calling thread, so the rest of the process stays where it is.
    /// </summary>
    public static T Run<T>(string? netnsPath, Func<T> action)
    {
        if (netnsPath is null)
        {
            return action();
        }
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                var fd = Interop.Libc.Open(netnsPath, Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC);
                if (fd < 0)
                {
                    throw new BpfException("open network namespace", netnsPath, BpfException.LastErrno());
                }
                using (new SafeFdHandle(fd))
                {
                    if (Interop.Libc.Setns(fd, Interop.Libc.CLONE_NEWNET) != 0)
                    {
                        throw new BpfException("enter network namespace", netnsPath, BpfException.LastErrno());
                    }
                }
                result = action();
            }
            catch (Exception e)
            {
                error = e;
            }
        })
        {
            IsBackground = true,
            Name = "palisade-netns",
        };
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
        return result!;
    }

    /// <summary>Runs <paramref name="action"/> on a thread inside a fresh, empty network namespace that vanishes afterwards.</summary>
    public static T RunInScratch<T>(Func<T> action)
    {
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (Interop.Libc.Unshare(Interop.Libc.CLONE_NEWNET) != 0)
                {
                    throw new BpfException("create network namespace", "scratch namespace", BpfException.LastErrno());
                }
                result = action();
            }
            catch (Exception e)
            {
                error = e;
            }
        })
        {
            IsBackground = true,
            Name = "palisade-netns-scratch",
        };
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
        return result!;
    }

    /// <summary>The ifindex of <paramref name="interfaceName"/> in the calling thread's namespace.</summary>
    public static int InterfaceIndex(string interfaceName, string? netnsPath = null)
    {
        var index = Interop.Libc.IfNameToIndex(interfaceName);
        if (index == 0)
        {
            throw new BpfException("find interface", netnsPath is null ? interfaceName : $"{interfaceName} in {netnsPath}", BpfException.LastErrno());
        }
        return (int)index;
    }
}
