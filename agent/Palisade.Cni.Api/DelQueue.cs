using Google.Protobuf;

namespace Palisade.Cni.Api;

/// <summary>
/// DELs the plugin could not deliver because the agent was down: one file per attachment
/// (the DelRequest, protobuf), written atomically by the plugin, replayed and removed by the
/// agent when it starts. DEL must succeed when the agent is down (CNI spec), so this is
/// how nothing is lost.
/// </summary>
public static class DelQueue
{
    /// <summary>Default queue directory (beside the endpoint socket).</summary>
    public const string DefaultDirectory = "/var/run/palisade/cni-del-queue";

    /// <summary>Writes the request to the queue; a second DEL of the same attachment replaces the first.</summary>
    public static string Enqueue(string directory, DelRequest request)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName(request.Attachment));
        var temporary = path + ".tmp." + Environment.ProcessId;
        File.WriteAllBytes(temporary, request.ToByteArray());
        File.Move(temporary, path, overwrite: true);
        return path;
    }

    /// <summary>Queued requests, oldest first. Files that do not parse are returned with a null request so the caller can report and remove them.</summary>
    public static IEnumerable<(string Path, DelRequest? Request)> Pending(string directory)
    {
        if (!Directory.Exists(directory))
        {
            yield break;
        }
        var files = new DirectoryInfo(directory).GetFiles("*.del").OrderBy(f => f.LastWriteTimeUtc).ToList();
        foreach (var file in files)
        {
            DelRequest? request;
            try
            {
                request = DelRequest.Parser.ParseFrom(File.ReadAllBytes(file.FullName));
            }
            catch (Exception e) when (e is InvalidProtocolBufferException or IOException)
            {
                request = null;
            }
            yield return (file.FullName, request);
        }
    }

    /// <summary>Removes a replayed request.</summary>
    public static void Complete(string path) => File.Delete(path);

    /// <summary>File name of an attachment: the container id and ifname, made safe for a path.</summary>
    public static string FileName(Attachment attachment)
    {
        static string Safe(string s) => string.Concat(s.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        return $"{Safe(attachment.ContainerId)}__{Safe(attachment.Ifname)}.del";
    }
}
