namespace Palisade.Bpf;

/// <summary>A tc filter on a clsact qdisc; disposing it removes the filter (and the qdisc if we made it).</summary>
public sealed unsafe class TcAttachment : BpfAttachment
{
    private readonly int _ifindex;
    private readonly TcDirection _direction;
    private readonly string? _netnsPath;
    private readonly bool _createdQdisc;

    private TcAttachment(BpfObject owner, string description, int ifindex, TcDirection direction, string? netnsPath, uint handle, uint priority, bool createdQdisc)
        : base(owner, description)
    {
        _ifindex = ifindex;
        _direction = direction;
        _netnsPath = netnsPath;
        Handle = handle;
        Priority = priority;
        _createdQdisc = createdQdisc;
    }

    /// <summary>tc filter handle the kernel assigned.</summary>
    public uint Handle { get; }

    /// <summary>tc filter priority the kernel assigned.</summary>
    public uint Priority { get; }

    // Runs inside the target network namespace.
    internal static TcAttachment Create(BpfProgram program, int progFd, string interfaceName, TcDirection direction, string? netnsPath, uint priority, uint handle)
    {
        var ifindex = NetworkNamespace.InterfaceIndex(interfaceName, netnsPath);
        var target = $"{program.Describe()} -> {interfaceName} {direction.ToString().ToLowerInvariant()}";
        var hook = Hook(ifindex, direction);
        var rc = Interop.Libbpf.TcHookCreate(&hook);
        if (rc != 0 && rc != -Errnos.EEXIST)
        {
            throw new BpfException("create clsact qdisc", target, -rc);
        }
        var created = rc == 0;
        var opts = new Interop.Libbpf.BpfTcOpts
        {
            Sz = (nuint)sizeof(Interop.Libbpf.BpfTcOpts),
            ProgFd = progFd,
            Priority = priority,
            Handle = handle,
        };
        rc = Interop.Libbpf.TcAttach(&hook, &opts);
        if (rc != 0)
        {
            if (created)
            {
                Interop.Libbpf.TcHookDestroy(&hook);
            }
            throw new BpfException("attach tc", target, -rc);
        }
        return new TcAttachment(program.Object, $"{program.Name} -> {interfaceName} {direction.ToString().ToLowerInvariant()}",
            ifindex, direction, netnsPath, opts.Handle, opts.Priority, created);
    }

    private static Interop.Libbpf.BpfTcHook Hook(int ifindex, TcDirection direction) => new()
    {
        Sz = (nuint)sizeof(Interop.Libbpf.BpfTcHook),
        Ifindex = ifindex,
        AttachPoint = (int)direction,
    };

    private protected override void Detach()
    {
        try
        {
            NetworkNamespace.Run(_netnsPath, () =>
            {
                var hook = Hook(_ifindex, _direction);
                var opts = new Interop.Libbpf.BpfTcOpts
                {
                    Sz = (nuint)sizeof(Interop.Libbpf.BpfTcOpts),
                    Handle = Handle,
                    Priority = Priority,
                };
                // The device or namespace may already be gone, taking the filter with it.
                Interop.Libbpf.TcDetach(&hook, &opts);
                if (_createdQdisc)
                {
                    // Destroying the hook for both directions removes the clsact qdisc.
                    var both = Hook(_ifindex, TcDirection.Ingress);
                    both.AttachPoint = Interop.Libbpf.BpfTcIngress | Interop.Libbpf.BpfTcEgress;
                    Interop.Libbpf.TcHookDestroy(&both);
                }
                return 0;
            });
        }
        catch (BpfException)
        {
            // The namespace is gone: so is everything attached inside it.
        }
    }
}
