using System.Runtime.InteropServices;

namespace Palisade.Bpf;

/// <summary>Owns a libbpf <c>struct bpf_object*</c>; closing it unloads its programs and maps.</summary>
internal sealed class SafeBpfObjectHandle : SafeHandle
{
    public SafeBpfObjectHandle() : base(0, ownsHandle: true) { }
    public override bool IsInvalid => handle == 0;
    protected override bool ReleaseHandle()
    {
        Interop.Libbpf.ObjectClose(handle);
        return true;
    }
}

/// <summary>Owns a libbpf <c>struct bpf_link*</c>; destroying it detaches the program.</summary>
internal sealed class SafeBpfLinkHandle : SafeHandle
{
    public SafeBpfLinkHandle() : base(0, ownsHandle: true) { }
    public override bool IsInvalid => handle == 0;
    protected override bool ReleaseHandle() => Interop.Libbpf.LinkDestroy(handle) == 0;
}

/// <summary>Owns a libbpf <c>struct ring_buffer*</c>.</summary>
internal sealed class SafeRingBufferHandle : SafeHandle
{
    public SafeRingBufferHandle() : base(0, ownsHandle: true) { }
    public override bool IsInvalid => handle == 0;
    protected override bool ReleaseHandle()
    {
        Interop.Libbpf.RingBufferFree(handle);
        return true;
    }
}

/// <summary>Owns a raw file descriptor (a cgroup directory, a netns, a BPF map made with bpf_map_create).</summary>
public sealed class SafeFdHandle : SafeHandle
{
    public SafeFdHandle() : base(-1, ownsHandle: true) { }
    internal SafeFdHandle(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);
    public override bool IsInvalid => handle.ToInt64() < 0;
    public int Fd => (int)handle;
    protected override bool ReleaseHandle() => Interop.Libc.Close((int)handle) == 0;
}
