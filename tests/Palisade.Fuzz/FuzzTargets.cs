using System.Text;
using Palisade.Agent.Configuration;
using Palisade.Exporters.Filters;
using Palisade.Policies;
using Palisade.Policies.Tracing;

namespace Palisade.Fuzz;

/// <summary>
/// One fuzz target: <see cref="Run"/> feeds one input to a parser and throws when the parser
/// breaks its contract (an exception other than its documented verdict, or an empty verdict).
/// </summary>
public sealed record FuzzTarget(string Name, Action<byte[]> Run, Func<IEnumerable<(string Name, byte[] Bytes)>> Seeds);

/// <summary>The parsers of every input the agent reads from outside.</summary>
public static class FuzzTargets
{
    public static readonly IReadOnlyDictionary<string, FuzzTarget> All = new Dictionary<string, FuzzTarget>(StringComparer.Ordinal)
    {
        ["policy"] = new("policy", Policy, PolicySeeds),
        ["settings"] = new("settings", Settings, SettingsSeeds),
        ["filters"] = new("filters", Filters, FilterSeeds),
        ["events"] = new("events", ProcessEvents.Run, ProcessEvents.Seeds),
        ["cni"] = new("cni", CniInvocations.Run, CniInvocations.Seeds),
        ["network-policy"] = new("network-policy", NetworkPolicies.Run, NetworkPolicies.Seeds),
        ["node"] = new("node", NodeObjects.Run, NodeObjects.Seeds),
        ["identity"] = new("identity", IdentityObjects.Run, IdentityObjects.Seeds),
        ["flows"] = new("flows", FlowRingRecords.Run, FlowRingRecords.Seeds),
        ["observe"] = new("observe", ObservedFlowLines.Run, ObservedFlowLines.Seeds),
        ["getevents"] = new("getevents", ExportedEventLines.Run, ExportedEventLines.Seeds),
        ["explain"] = new("explain", ExplainRequests.Run, ExplainRequests.Seeds),
        ["services"] = new("services", ServiceManifests.Run, ServiceManifests.Seeds),
    };

    /// <summary>TracingPolicy YAML: policies or errors, each error with a message; an (internal) error is a bug.</summary>
    public static void Policy(byte[] input)
    {
        var result = TracingPolicyParser.Parse(Encoding.UTF8.GetString(input), "fuzz.yaml");
        foreach (var e in result.Errors)
        {
            if (e.Path.EndsWith(TracingPolicyParser.InternalErrorPath, StringComparison.Ordinal) || string.IsNullOrWhiteSpace(e.Message))
            {
                throw new InvalidOperationException($"the parser failed instead of judging the input: {e}");
            }
        }
    }

    /// <summary>The settings file, then every setting resolved: options or an <see cref="AgentConfigurationException"/> with errors.</summary>
    public static void Settings(byte[] input)
    {
        var errors = new List<string>();
        var layer = AgentConfiguration.ParseYaml(Encoding.UTF8.GetString(input), "fuzz.yaml", errors);
        try
        {
            AgentConfiguration.Resolve([layer]);
        }
        catch (AgentConfigurationException e) when (e.Errors.Count > 0 && e.Errors.All(m => m.Length > 0))
        {
        }
    }

    /// <summary>Export allow/deny lists, field filters and redaction rules; the first byte picks the kind.</summary>
    public static void Filters(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }
        var text = Encoding.UTF8.GetString(input, 1, input.Length - 1);
        try
        {
            switch (input[0] % 3)
            {
                case 0:
                    _ = EventFilter.ParseList(text, "export-allowlist");
                    break;
                case 1:
                    _ = FieldFilter.ParseList(text, "field-filters");
                    break;
                default:
                    _ = Redactor.Parse(text, "redaction-filters").Redact("/usr/bin/mysql", "--user root --password=hunter2 -p secret");
                    break;
            }
        }
        catch (FilterException e) when (e.Message.Length > 0)
        {
        }
    }

    private static string CompatDir() =>
        Path.Combine(Environment.GetEnvironmentVariable("PALISADE_SHARED_DIR") ?? Path.Combine(RepoRoot(), "..", "shared"), "compat");

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Palisade.sln")))
            {
                return dir.FullName;
            }
        }
        return Directory.GetCurrentDirectory();
    }

    // The published policies (read in place from the shared corpus, never copied into the repo).
    private static IEnumerable<(string, byte[])> PolicySeeds()
    {
        var dir = CompatDir();
        foreach (var file in Directory.EnumerateFiles(dir, "*.y*ml", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            yield return (Path.GetRelativePath(dir, file).Replace('/', '_'), File.ReadAllBytes(file));
        }
    }

    private static IEnumerable<(string, byte[])> SettingsSeeds()
    {
        yield return ("flat.yaml", Encoding.UTF8.GetBytes("log-level: debug\nlog-format: json\nexport-filename: /var/log/palisade/events.json\nevent-queue-size: 10000\n"));
        yield return ("durations.yaml", Encoding.UTF8.GetBytes("process-cache-grace: 30s\nkubernetes-pod-wait: 500ms\nexport-file-rotation-interval: 1h\nring-buffer-size: 8M\n"));
        yield return ("export.yaml", Encoding.UTF8.GetBytes("export-allowlist: '{\"event_set\":[\"PROCESS_EXEC\"]}'\nfield-filters: '{\"fields\":\"process.binary\",\"action\":\"INCLUDE\"}'\nexport-file-perm: \"600\"\n"));
        yield return ("server.yaml", Encoding.UTF8.GetBytes("server-address: 127.0.0.1:54321\nhealth-server-address: :6789\ntracing-policy-selector: palisade.io/default=true\nmetrics-label-filter: namespace,pod\n"));
        yield return ("elasticsearch.yaml", Encoding.UTF8.GetBytes("elasticsearch-url: https://es.logging:9200\nelasticsearch-index: palisade-events\nelasticsearch-spool-max-size: 512M\nelasticsearch-flush-interval: 5s\n"));
        yield return ("elasticsearch-nodes.yaml", Encoding.UTF8.GetBytes("elasticsearch-url: https://es-0:9200,https://es-1:9200, http://10.0.0.7:9200\nelasticsearch-compress: \"false\"\n"));
        yield return ("elasticsearch-cloud.yaml", Encoding.UTF8.GetBytes("elasticsearch-cloud-id: prod:ZXUuY2xvdWQuZXMuaW86OTI0MyRhYmMxMjMka2I=\nelasticsearch-logs: \"true\"\n"));
    }

    private static IEnumerable<(string, byte[])> FilterSeeds()
    {
        static (string, byte[]) Seed(string name, byte kind, string text) => (name, [kind, .. Encoding.UTF8.GetBytes(text)]);
        yield return Seed("allow-lines", 0, "{\"event_set\":[\"PROCESS_EXEC\",\"PROCESS_EXIT\"],\"namespace\":[\"default\"]}\n{\"binary_regex\":[\"^/usr/bin/(curl|wget)$\"],\"pid\":[1,2]}\n");
        yield return Seed("allow-array", 0, "[{\"labels\":[\"app=web\",\"!canary\"],\"pod_regex\":[\"^web-\"]},{\"health_check\":false,\"pid_set\":[1]}]");
        yield return Seed("fields", 1, "{\"event_set\":[\"PROCESS_EXEC\"],\"fields\":\"process.binary,process.pid\",\"action\":\"INCLUDE\"}\n{\"fields\":\"parent\",\"action\":\"EXCLUDE\",\"invert_event_set\":true}\n");
        yield return Seed("redaction", 2, "{\"redact\":[\"(?:--password|-p)[\\\\s=]+(\\\\S+)\"],\"binary_regex\":[\"mysql\"]}\n");
    }
}
