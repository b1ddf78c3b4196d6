using System.Text;
using System.Text.Json;
using Palisade.Cli;
using Palisade.Exporters;

namespace Palisade.Fuzz;

/// <summary>
/// An exported events file piped into `palisade getevents`: the first byte picks the filters
/// and field lists; each further line goes through <see cref="EventFileFilter"/> and, when
/// kept, through the compact renderer. Contract: a line is kept, dropped or refused with a
/// <see cref="JsonException"/>; nothing else escapes.
/// </summary>
public static class ExportedEventLines
{
    public static void Run(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }
        var mode = input[0];
        var filter = new EventFileFilter(
            (mode & 1) != 0 ? ["process_exec", "process_kprobe"] : [],
            (mode & 2) != 0 ? ["", "shop"] : [],
            (mode & 4) != 0 ? ["^web-"] : [],
            (mode & 8) != 0 ? ["sh$"] : [],
            (mode & 16) != 0 ? ["protect-shadow"] : [],
            (mode & 32) != 0 ? ["process.binary,process.pod.name,parent"] : [],
            (mode & 64) != 0 ? ["process.arguments", "args"] : []);
        foreach (var line in Encoding.UTF8.GetString(input, 1, input.Length - 1).Split('\n'))
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            System.Text.Json.Nodes.JsonObject? kept;
            try
            {
                kept = filter.Apply(line);
            }
            catch (JsonException)
            {
                continue;
            }
            if (kept is not null)
            {
                using var doc = JsonDocument.Parse(kept.ToJsonString());
                _ = CompactFormat.Format(doc.RootElement, color: (mode & 128) != 0);
            }
        }
    }

    public static IEnumerable<(string, byte[])> Seeds()
    {
        const string exec = """{"process_exec":{"process":{"exec_id":"x","pid":1,"binary":"/bin/sh","arguments":"-c true","pod":{"namespace":"shop","name":"web-1"}},"parent":{"binary":"/bin/bash"}},"node_name":"node-a","time":"2026-12-02T05:00:00Z"}""";
        const string kprobe = """{"process_kprobe":{"process":{"exec_id":"y","pid":2,"binary":"/bin/cat"},"function_name":"fd_install","args":[{"int_arg":3},{"file_arg":{"path":"/etc/shadow"}}],"action":"KPROBE_ACTION_SIGKILL","policy_name":"protect-shadow"},"node_name":"node-a","time":"2026-12-02T05:00:01Z"}""";
        static (string, byte[]) Seed(string name, byte mode, params string[] lines) => (name, [mode, .. Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n")]);
        yield return Seed("plain", 0, exec, kprobe);
        yield return Seed("filtered", 1 | 2 | 4 | 8, exec, "{ no", kprobe, "[]");
        yield return Seed("fields", 16 | 32 | 64 | 128, kprobe, exec, "{\"process_exec\":1}", "{\"x\":{\"process\":[1]}}");
    }
}
