using System.Runtime.InteropServices;
using Palisade.Datapath.Netlink;

namespace Palisade.Datapath;

/// <summary>
/// Durable writes of the agent's small state files (IPAM, identities, the endpoint registry):
/// a file is written beside its final name, fsynced, renamed over it and the directory fsynced,
/// so a crash leaves the old content or the new one, never a torn file or a lost rename.
/// </summary>
internal static class StateFile
{
    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> atomically and durably.</summary>
    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        WriteUnsynced(path, content);
        SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>
    /// <see cref="Write"/> without the directory sync, for several files of one directory in a row:
    /// the caller ends with <see cref="SyncDirectory"/> once (each fsync costs milliseconds on ADD's path).
    /// </summary>
    public static void WriteUnsynced(string path, ReadOnlySpan<byte> content)
    {
        var directory = Path.GetDirectoryName(path)!;
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Environment.CurrentManagedThreadId}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>Removes <paramref name="path"/> durably; false when it was not there.</summary>
    public static bool Delete(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }
        File.Delete(path);
        SyncDirectory(Path.GetDirectoryName(path)!);
        return true;
    }

    /// <summary>Creates the directory (mode 0700: it names every pod of the node) when missing.</summary>
    public static void EnsureDirectory(string directory)
    {
        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>Removes temporary files a crash in the middle of <see cref="Write"/> left behind.</summary>
    public static void RemoveLeftovers(string directory)
    {
        foreach (var file in Directory.EnumerateFiles(directory, ".*.tmp"))
        {
            File.Delete(file);
        }
    }

    /// <summary>Makes the renames and deletions in <paramref name="directory"/> durable.</summary>
    public static void SyncDirectory(string directory)
    {
        var fd = Interop.Libc.Open(directory, Interop.Libc.O_RDONLY | Interop.Libc.O_DIRECTORY | Interop.Libc.O_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"open {directory} to sync it: {Errno.Name(Marshal.GetLastPInvokeError())}");
        }
        using var handle = new SafeDescriptor(fd);
        if (Interop.Libc.Fsync(fd) != 0)
        {
            throw new IOException($"fsync {directory}: {Errno.Name(Marshal.GetLastPInvokeError())}");
        }
    }
}
