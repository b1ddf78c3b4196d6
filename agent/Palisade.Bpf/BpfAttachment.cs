namespace Palisade.Bpf;

/// <summary>A program attached somewhere; disposing it detaches the program.</summary>
public abstract class BpfAttachment : IDisposable
{
    private readonly BpfObject _owner;
    private int _disposed;

    private protected BpfAttachment(BpfObject owner, string description)
    {
        _owner = owner;
        Description = description;
    }

    /// <summary>Program and target, e.g. "probe_tc -> lo ingress".</summary>
    public string Description { get; }

    public bool IsAttached => Volatile.Read(ref _disposed) == 0;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _owner.Untrack(this);
        Detach();
        GC.SuppressFinalize(this);
    }

    private protected abstract void Detach();

    public override string ToString() => Description;
}

/// <summary>A kernel bpf_link (tracepoint, kprobe, uprobe, cgroup, xdp, ...).</summary>
public sealed class BpfLink : BpfAttachment
{
    private readonly SafeBpfLinkHandle _handle;

    internal BpfLink(BpfObject owner, SafeBpfLinkHandle handle, string description) : base(owner, description)
    {
        _handle = handle;
    }

    /// <summary>The link's fd (-1 for links libbpf emulates without a kernel link).</summary>
    public int Fd => Interop.Libbpf.LinkFd(_handle);

    /// <summary>Pins the link to bpffs so it outlives this process.</summary>
    public void Pin(string path)
    {
        if (Interop.Libbpf.LinkPin(_handle, path) != 0)
        {
            throw new BpfException("pin link", $"{Description} at {path}", BpfException.LastErrno(), "The path must be on a mounted bpffs (/sys/fs/bpf).");
        }
    }

    /// <summary>Removes the link's pin.</summary>
    public void Unpin()
    {
        if (Interop.Libbpf.LinkUnpin(_handle) != 0)
        {
            throw new BpfException("unpin link", Description, BpfException.LastErrno());
        }
    }

    private protected override void Detach() => _handle.Dispose();
}
