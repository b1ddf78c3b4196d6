using System.Runtime.InteropServices;
using System.Text;

namespace Palisade.Bpf;

/// <summary>Severity of a libbpf message.</summary>
public enum LibbpfLogLevel
{
    Warning = 0,
    Info = 1,
    Debug = 2,
}

/// <summary>
/// Routes libbpf's own messages to a managed sink and lets a load capture what libbpf said,
/// so the error a user sees carries libbpf's explanation rather than "see stderr".
/// </summary>
public static unsafe class LibbpfLog
{
    private static readonly Lock Gate = new();
    private static bool s_installed;
    private static Action<LibbpfLogLevel, string>? s_sink;

    [ThreadStatic] private static StringBuilder? t_capture;
    [ThreadStatic] private static int t_expectFailures;
    [ThreadStatic] private static byte[]? t_format;

    // A libbpf line is short; the verifier log goes to our own buffer, never through here.
    private const int FormatBufferSize = 16 * 1024;

    /// <summary>
    /// Sends libbpf's Warning and Info messages to <paramref name="sink"/>; libbpf's own Debug
    /// level is dropped (per-relocation noise). Warnings expected during probing arrive as Debug.
    /// </summary>
    public static void SetSink(Action<LibbpfLogLevel, string>? sink)
    {
        EnsureInstalled();
        s_sink = sink;
    }

    internal static void EnsureInstalled()
    {
        lock (Gate)
        {
            if (s_installed)
            {
                return;
            }
            // Only on x86-64 is a va_list argument a plain pointer we can hand to vsnprintf.
            // Elsewhere libbpf keeps printing to stderr, which is still visible, just unstructured.
            if (RuntimeInformation.ProcessArchitecture == Architecture.X64)
            {
                Interop.Libbpf.SetPrint(&OnPrint);
            }
            s_installed = true;
        }
    }

    /// <summary>Collects libbpf warnings on this thread until disposed.</summary>
    internal static CaptureScope Capture()
    {
        EnsureInstalled();
        var previous = t_capture;
        t_capture = new StringBuilder();
        return new CaptureScope(previous);
    }

    /// <summary>
    /// While disposed-not-yet, libbpf warnings on this thread are sent to the sink as Debug:
    /// for work such as feature probing, where failures are the expected answer and libbpf's
    /// advice ("try raising ulimit -l") would mislead.
    /// </summary>
    public static ExpectFailuresScope ExpectFailures()
    {
        t_expectFailures++;
        return default;
    }

    public readonly struct ExpectFailuresScope : IDisposable
    {
        public void Dispose() => t_expectFailures--;
    }

    internal readonly struct CaptureScope(StringBuilder? previous) : IDisposable
    {
        public string Text => t_capture?.ToString() ?? string.Empty;
        public void Dispose() => t_capture = previous;
    }

    [UnmanagedCallersOnly]
    private static int OnPrint(int level, byte* format, nint args)
    {
        try
        {
            if (level == Interop.Libbpf.LibbpfDebug)
            {
                return 0;
            }
            var buffer = t_format ??= new byte[FormatBufferSize];
            int written;
            fixed (byte* p = buffer)
            {
                written = Interop.Libc.Vsnprintf(p, (nuint)buffer.Length, format, args);
            }
            if (written <= 0)
            {
                return 0;
            }
            var text = Encoding.UTF8.GetString(buffer, 0, Math.Min(written, buffer.Length - 1)).TrimEnd('\n');
            if (level == Interop.Libbpf.LibbpfWarn)
            {
                t_capture?.AppendLine(text);
            }
            var reported = level == Interop.Libbpf.LibbpfWarn && t_expectFailures > 0 ? LibbpfLogLevel.Debug : (LibbpfLogLevel)level;
            s_sink?.Invoke(reported, text);
        }
        catch (Exception)
        {
            // Never let an exception cross into native code.
        }
        return 0;
    }

}
