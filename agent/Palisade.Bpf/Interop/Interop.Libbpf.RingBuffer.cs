using System.Runtime.InteropServices;

namespace Palisade.Bpf;

internal static partial class Interop
{
    internal static unsafe partial class Libbpf
    {
        [LibraryImport(Libraries.Libbpf, EntryPoint = "ring_buffer__new", SetLastError = true)]
        internal static partial SafeRingBufferHandle RingBufferNew(int mapFd, delegate* unmanaged<void*, void*, nuint, int> sampleCb, void* ctx, void* opts);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "ring_buffer__add", SetLastError = true)]
        internal static partial int RingBufferAdd(SafeRingBufferHandle rb, int mapFd, delegate* unmanaged<void*, void*, nuint, int> sampleCb, void* ctx);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "ring_buffer__poll", SetLastError = true)]
        internal static partial int RingBufferPoll(SafeRingBufferHandle rb, int timeoutMs);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "ring_buffer__consume", SetLastError = true)]
        internal static partial int RingBufferConsume(SafeRingBufferHandle rb);

        [LibraryImport(Libraries.Libbpf, EntryPoint = "ring_buffer__free")]
        internal static partial void RingBufferFree(nint rb);
    }
}
