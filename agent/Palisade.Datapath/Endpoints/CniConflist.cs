using System.Text.Json;

namespace Palisade.Datapath.Endpoints;

/// <summary>
/// The CNI network configuration the agent installs for runtimes: written only once the
/// endpoint API answers (a runtime that sees it may call ADD at once), removed on a clean stop.
/// </summary>
public static class CniConflist
{
    public const string FileName = "05-palisade.conflist";
    public const string NetworkName = "palisade";
    public const string PluginType = "palisade-cni";

    /// <summary>
    /// 1.0.0 by default: the newest version the runtimes in use read (podman 4's and containerd
    /// 1.6's libcni refuse a 1.1.0 result); 1.1.0 (STATUS, GC) is a setting away.
    /// </summary>
    public const string DefaultVersion = "1.0.0";

    /// <summary>The versions the conflist may name (all of them palisade-cni speaks).</summary>
    public static readonly IReadOnlyList<string> Versions = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    /// <summary>The conflist: the plugin is told where the endpoint socket and the DEL queue are.</summary>
    public static string Render(string socketPath, string delQueueDirectory, string cniVersion = DefaultVersion)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", cniVersion);
            w.WriteString("name", NetworkName);
            w.WriteStartArray("plugins");
            w.WriteStartObject();
            w.WriteString("type", PluginType);
            w.WriteString("socket", socketPath);
            w.WriteString("delQueueDir", delQueueDirectory);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>Writes the conflist into <paramref name="directory"/> atomically (a runtime never reads half a file); returns its path.</summary>
    public static string Write(string directory, string socketPath, string delQueueDirectory, string cniVersion = DefaultVersion)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        StateFile.Write(path, System.Text.Encoding.UTF8.GetBytes(Render(socketPath, delQueueDirectory, cniVersion)));
        return path;
    }

    public static void Remove(string directory) => StateFile.Delete(Path.Combine(directory, FileName));
}
