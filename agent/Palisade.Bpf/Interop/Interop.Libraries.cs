namespace Palisade.Bpf;

internal static partial class Interop
{
    /// <summary>Names of the native libraries we bind to.</summary>
    internal static class Libraries
    {
        // Debian's libbpf1 package; the ABI of the 1.x series is stable.
        internal const string Libbpf = "libbpf.so.1";
        internal const string Libc = "libc";
    }
}
