using System.Text.Json;
using Palisade.Events;

namespace Palisade.Exporters.Elasticsearch;

/// <summary>
/// Writes an event as an Elastic Common Schema document: the ECS fields Kibana and Elastic
/// Security rules read (event.*, process.* with parent, user.id, container.*, orchestrator.*,
/// kubernetes.pod.*, host.name, rule.name, file.path, destination.*), and the full
/// Tetragon-shaped event under "palisade" for fidelity.
/// </summary>
public static class EcsDocument
{
    public static void Write(Utf8JsonWriter w, PalisadeEvent e, ReadOnlySpan<byte> tetragonJson, string nodeName, TetragonJsonOptions options)
    {
        if (e is FlowEvent flow)
        {
            EcsFlow.Write(w, flow, tetragonJson, nodeName, options);
            return;
        }
        if (e.Process is not { } p)
        {
            throw new NotSupportedException($"No ECS encoding for {e.GetType().Name} without a process.");
        }
        w.WriteStartObject();
        TetragonJson.WriteTime(w, "@timestamp", e.Time);
        w.WriteStartObject("ecs");
        w.WriteString("version", "8.11.0");
        w.WriteEndObject();

        WriteEventSection(w, e);
        w.WriteStartObject("process");
        WriteProcessFields(w, p, options);
        if (e is ProcessExitEvent exit)
        {
            if (exit.Signal is null)
            {
                w.WriteNumber("exit_code", exit.Status);
            }
            TetragonJson.WriteTime(w, "end", exit.Time);
        }
        if ((e.Parent ?? p.Parent) is { } parent)
        {
            w.WriteStartObject("parent");
            WriteProcessFields(w, parent, options);
            w.WriteEndObject();
        }
        w.WriteEndObject();

        w.WriteStartObject("user");
        w.WriteString("id", p.Credentials.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteEndObject();
        WriteHost(w, nodeName);
        WritePodContext(w, p);

        if (e is ProcessPolicyEvent pe)
        {
            WritePolicyFields(w, pe);
        }

        w.WritePropertyName("palisade");
        w.WriteRawValue(tetragonJson, skipInputValidation: true);
        w.WriteEndObject();
    }

    internal static void WriteHost(Utf8JsonWriter w, string nodeName)
    {
        w.WriteStartObject("host");
        w.WriteString("name", nodeName);
        w.WriteString("hostname", nodeName);
        w.WriteEndObject();
    }

    /// <summary>container.*, orchestrator.* and kubernetes.pod.* of a process.</summary>
    internal static void WritePodContext(Utf8JsonWriter w, ProcessRecord p)
    {
        if (p.Pod is { } pod)
        {
            if (pod.Container is { } c)
            {
                w.WriteStartObject("container");
                w.WriteString("id", c.Id);
                if (c.Name is not null)
                {
                    w.WriteString("name", c.Name);
                }
                if (c.ImageName is not null)
                {
                    w.WriteStartObject("image");
                    w.WriteString("name", c.ImageName);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteStartObject("orchestrator");
            w.WriteString("type", "kubernetes");
            w.WriteString("namespace", pod.Namespace);
            w.WriteStartObject("resource");
            w.WriteString("type", "pod");
            w.WriteString("name", pod.Name);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("kubernetes");
            w.WriteString("namespace", pod.Namespace);
            w.WriteStartObject("pod");
            w.WriteString("name", pod.Name);
            if (pod.Uid is not null)
            {
                w.WriteString("uid", pod.Uid);
            }
            if (pod.Labels is { Count: > 0 } labels)
            {
                w.WriteStartObject("labels");
                foreach (var (k, v) in labels)
                {
                    w.WriteString(k, v);
                }
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        else if (p.ContainerId is { } containerId)
        {
            w.WriteStartObject("container");
            w.WriteString("id", containerId);
            w.WriteEndObject();
        }
    }

    internal static void WriteEventSection(Utf8JsonWriter w, PalisadeEvent e)
    {
        w.WriteStartObject("event");
        var (kind, category, type, action, outcome) = e switch
        {
            ProcessExecEvent => ("event", "process", "start", "process_exec", "success"),
            ProcessExitEvent x => ("event", "process", "end", "process_exit", x.Signal is null && x.Status == 0 ? "success" : "failure"),
            ProcessPolicyEvent pe => (pe.Action is "KPROBE_ACTION_SIGKILL" or "KPROBE_ACTION_SIGNAL" or "KPROBE_ACTION_OVERRIDE" && !pe.Monitored ? "alert" : "event",
                PolicyCategory(pe), pe.Action == "KPROBE_ACTION_SIGKILL" && !pe.Monitored ? "denied" : "info",
                pe.HookKind switch
                {
                    EventKind.ProcessTracepoint => "process_tracepoint",
                    EventKind.ProcessUprobe => "process_uprobe",
                    EventKind.ProcessLsm => "process_lsm",
                    _ => "process_kprobe",
                },
                pe.Action is "KPROBE_ACTION_SIGKILL" or "KPROBE_ACTION_OVERRIDE" && !pe.Monitored ? "failure" : "success"),
            _ => ("event", "process", "info", e.Kind.ToString(), "unknown"),
        };
        w.WriteString("kind", kind);
        w.WriteStartArray("category");
        w.WriteStringValue(category);
        w.WriteEndArray();
        w.WriteStartArray("type");
        w.WriteStringValue(type);
        w.WriteEndArray();
        w.WriteString("action", action);
        w.WriteString("outcome", outcome);
        w.WriteString("module", "palisade");
        w.WriteString("dataset", "palisade.events");
        TetragonJson.WriteTime(w, "created", DateTimeOffset.UtcNow);
        w.WriteEndObject();
    }

    // ECS categories by what the hook watches, so SIEM rules for file/network/process apply.
    private static string PolicyCategory(ProcessPolicyEvent e)
    {
        if (e.Args.Any(a => a.Sock is not null))
        {
            return "network";
        }
        if (e.Args.Any(a => a.Type is "file_arg" or "path_arg"))
        {
            return "file";
        }
        return e.FunctionName.Contains("cred", StringComparison.Ordinal) || e.FunctionName.Contains("setuid", StringComparison.Ordinal) ? "iam" : "process";
    }

    private static void WritePolicyFields(Utf8JsonWriter w, ProcessPolicyEvent e)
    {
        w.WriteStartObject("rule");
        w.WriteString("name", e.PolicyName);
        if (e.Message is not null)
        {
            w.WriteString("description", e.Message);
        }
        w.WriteString("ruleset", "TracingPolicy");
        w.WriteEndObject();
        if (e.Message is not null)
        {
            w.WriteString("message", e.Message);
        }
        if (e.Tags.Count > 0)
        {
            w.WriteStartArray("tags");
            foreach (var t in e.Tags)
            {
                w.WriteStringValue(t);
            }
            w.WriteEndArray();
        }
        if (e.Args.FirstOrDefault(a => a.Type is "file_arg" or "path_arg" or "linux_binprm_arg" && a.Text is not null) is { } file)
        {
            w.WriteStartObject("file");
            w.WriteString("path", file.Text);
            w.WriteString("name", Path.GetFileName(file.Text));
            w.WriteEndObject();
        }
        if (e.Args.FirstOrDefault(a => a.Sock is not null)?.Sock is { } s)
        {
            w.WriteStartObject("source");
            w.WriteString("ip", s.SAddr);
            w.WriteNumber("port", s.SPort);
            w.WriteEndObject();
            w.WriteStartObject("destination");
            w.WriteString("ip", s.DAddr);
            w.WriteNumber("port", s.DPort);
            w.WriteEndObject();
            w.WriteStartObject("network");
            w.WriteString("transport", s.Protocol.Replace("IPPROTO_", "", StringComparison.Ordinal).ToLowerInvariant());
            w.WriteString("type", s.Family == "AF_INET6" ? "ipv6" : "ipv4");
            w.WriteEndObject();
        }
    }

    internal static void WriteProcessFields(Utf8JsonWriter w, ProcessRecord p, TetragonJsonOptions options)
    {
        var args = options.Redactor is { } r ? r.Arguments(p) : p.Arguments;
        w.WriteString("entity_id", p.ExecId);
        w.WriteNumber("pid", p.Pid);
        w.WriteString("executable", p.Binary);
        w.WriteString("name", Path.GetFileName(p.Binary));
        var argv = SplitArguments(args);
        w.WriteStartArray("args");
        w.WriteStringValue(p.Binary);
        foreach (var a in argv)
        {
            w.WriteStringValue(a);
        }
        w.WriteEndArray();
        w.WriteNumber("args_count", argv.Count + 1);
        w.WriteString("command_line", args.Length > 0 ? $"{p.Binary} {args}" : p.Binary);
        if (p.Cwd.Length > 0)
        {
            w.WriteString("working_directory", p.Cwd);
        }
        TetragonJson.WriteTime(w, "start", p.StartTime);
        w.WriteStartObject("user");
        w.WriteString("id", p.Credentials.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteEndObject();
        w.WriteStartObject("group");
        w.WriteString("id", p.Credentials.Gid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteEndObject();
    }

    /// <summary>Splits Tetragon's joined argument string back into argv (arguments with spaces are in double quotes).</summary>
    public static List<string> SplitArguments(string args)
    {
        var result = new List<string>();
        var sb = new System.Text.StringBuilder();
        var quoted = false;
        var any = false;
        foreach (var c in args)
        {
            if (c == '"')
            {
                quoted = !quoted;
                any = true;
            }
            else if (c == ' ' && !quoted)
            {
                if (any || sb.Length > 0)
                {
                    result.Add(sb.ToString());
                }
                sb.Clear();
                any = false;
            }
            else
            {
                sb.Append(c);
            }
        }
        if (any || sb.Length > 0)
        {
            result.Add(sb.ToString());
        }
        return result;
    }

    /// <summary>The index template: ECS fields typed, the Tetragon event as a flattened field (searchable, no mapping explosion).</summary>
    public static string IndexTemplate(string index, bool dataStream) => $$"""
    {
      "index_patterns": ["{{index}}{{(dataStream ? "" : "-")}}*"],
      "priority": 200,
      {{(dataStream ? "\"data_stream\": {}," : "")}}
      "template": {
        "settings": { "index.mapping.total_fields.limit": 2000 },
        "mappings": {
          "dynamic_templates": [ { "strings_as_keyword": { "match_mapping_type": "string", "mapping": { "type": "keyword", "ignore_above": 1024 } } } ],
          "properties": {
            "@timestamp": { "type": "date_nanos" },
            "event": { "properties": { "created": { "type": "date_nanos" } } },
            "process": { "properties": {
              "pid": { "type": "long" }, "args_count": { "type": "long" }, "exit_code": { "type": "long" },
              "start": { "type": "date_nanos" }, "end": { "type": "date_nanos" },
              "command_line": { "type": "wildcard" },
              "parent": { "properties": { "pid": { "type": "long" }, "start": { "type": "date_nanos" }, "command_line": { "type": "wildcard" } } } } },
            "source": { "properties": { "ip": { "type": "ip" }, "port": { "type": "long" } } },
            "destination": { "properties": { "ip": { "type": "ip" }, "port": { "type": "long" } } },
            "message": { "type": "match_only_text" },
            "palisade": { "type": "flattened", "depth_limit": 30 }
          }
        }
      },
      "_meta": { "description": "Palisade events (ECS); installed by the agent" }
    }
    """;
}
