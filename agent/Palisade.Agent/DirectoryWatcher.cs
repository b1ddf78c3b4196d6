using System.Runtime.InteropServices;

namespace Palisade.Agent;

/// <summary>What happened to a directory's file, as far as its readers care.</summary>
internal enum DirectoryChange
{
    /// <summary>A file is whole now: its writer closed it, it was moved in or out, or it was deleted. Read it at once.</summary>
    Complete,

    /// <summary>A file was created or written and is still open: its writer may not be done. Read it when it goes quiet.</summary>
    Partial,
}

/// <summary>
/// Watches one directory (not its subdirectories) with inotify and says which changes leave a
/// file whole: IN_CLOSE_WRITE (the writer closed it), IN_MOVED_TO/IN_MOVED_FROM (moved into or
/// out of place, how editors, kubectl and ConfigMap volumes replace files) and IN_DELETE are
/// <see cref="DirectoryChange.Complete"/>; IN_CREATE and IN_MODIFY are
/// <see cref="DirectoryChange.Partial"/>. FileSystemWatcher cannot tell a file moved into the
/// directory from one just created and still being written, so a reader on it must wait for
/// every file to go quiet; with this one a reader applies a whole file without waiting and
/// never reads one half written. A queue overflow (IN_Q_OVERFLOW) is reported as Complete with
/// no name: read everything.
/// </summary>
internal sealed partial class DirectoryWatcher : IDisposable
{
    private const uint InModify = 0x002, InCloseWrite = 0x008, InMovedFrom = 0x040, InMovedTo = 0x080, InCreate = 0x100, InDelete = 0x200;
    private const uint InQOverflow = 0x4000, InIgnored = 0x8000, InOnlyDir = 0x0100_0000;
    private const int InCloexec = 0x80000, InNonblock = 0x800;
    private const short PollIn = 1;

    private readonly int _fd;
    private readonly Action<DirectoryChange, string?> _onChange;
    private readonly Thread _reader;
    private volatile bool _stopped;

    /// <summary>Starts watching <paramref name="dir"/>; <paramref name="onChange"/> runs on the watcher's own thread with the file's name (null: anything may have changed).</summary>
    /// <exception cref="IOException">The directory cannot be watched (it does not exist, or the inotify limits are reached); the message says which.</exception>
    public DirectoryWatcher(string dir, Action<DirectoryChange, string?> onChange)
    {
        _onChange = onChange;
        _fd = InotifyInit1(InCloexec | InNonblock);
        if (_fd < 0)
        {
            throw new IOException($"inotify_init1 failed: {Marshal.GetLastPInvokeErrorMessage()} (fs.inotify.max_user_instances may be reached)");
        }
        if (InotifyAddWatch(_fd, dir, InModify | InCloseWrite | InMovedFrom | InMovedTo | InCreate | InDelete | InOnlyDir) < 0)
        {
            var why = Marshal.GetLastPInvokeErrorMessage();
            Close(_fd);
            throw new IOException($"inotify_add_watch({dir}) failed: {why}");
        }
        _reader = new Thread(Run) { IsBackground = true, Name = "palisade-dirwatch" };
        _reader.Start();
    }

    private void Run()
    {
        var buffer = new byte[16 * 1024];
        var poll = new PollFd { Fd = _fd, Events = PollIn };
        while (!_stopped)
        {
            // A bounded wait so Dispose is seen: closing an fd does not wake a thread blocked on it.
            if (Poll(ref poll, 1, 250) <= 0)
            {
                continue;
            }
            var read = (int)Read(_fd, ref buffer[0], buffer.Length);
            if (read <= 0)
            {
                continue;
            }
            for (var at = 0; at + 16 <= read;)
            {
                var mask = BitConverter.ToUInt32(buffer, at + 4);
                var length = (int)BitConverter.ToUInt32(buffer, at + 12);
                var name = length == 0 ? null : ReadName(buffer.AsSpan(at + 16, Math.Min(length, read - at - 16)));
                at += 16 + length;
                if ((mask & InIgnored) != 0 || _stopped)
                {
                    continue; // the watch went away with the directory; the owner's rescan notices
                }
                var change = (mask & (InModify | InCreate)) != 0 && (mask & (InCloseWrite | InMovedTo | InMovedFrom | InDelete)) == 0
                    ? DirectoryChange.Partial
                    : DirectoryChange.Complete;
                try
                {
                    _onChange(change, (mask & InQOverflow) != 0 ? null : name);
                }
#pragma warning disable CA1031 // the owner logs its own failures; one must not end the watch
                catch (Exception)
#pragma warning restore CA1031
                {
                }
            }
        }
    }

    private static string ReadName(ReadOnlySpan<byte> raw)
    {
        var end = raw.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? raw : raw[..end]);
    }

    public void Dispose()
    {
        if (_stopped)
        {
            return;
        }
        _stopped = true;
        if (Thread.CurrentThread != _reader)
        {
            _reader.Join(TimeSpan.FromSeconds(2));
        }
        Close(_fd);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    private static partial int InotifyInit1(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int InotifyAddWatch(int fd, string path, uint mask);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(ref PollFd fds, ulong count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, ref byte buffer, nint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
