using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Palisade.Agent.Configuration;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Palisade.Tests;

/// <summary>
/// What can be checked of helm/palisade without a helm binary: the values against their
/// schema, every .Values path the templates use exists, agent settings are real settings,
/// template actions are balanced, the plain YAML files parse. (The CRDs: CrdTests.)
/// </summary>
public sealed partial class HelmChartTests
{
    private static string Chart => Path.Combine(RepoPaths.Root, "helm", "palisade");

    private static JsonNode Values() => ToJson(LoadYaml(Path.Combine(Chart, "values.yaml")))!;

    private static YamlNode LoadYaml(string path) => ParseYaml(File.ReadAllText(path));

    private static YamlNode ParseYaml(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return stream.Documents.Single().RootNode;
    }

    // YAML as Helm reads it into .Values (plain scalars typed, quoted ones strings).
    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(kv.Key.ToString(), ToJson(kv.Value)))),
        YamlSequenceNode s => new JsonArray([.. s.Children.Select(ToJson)]),
        YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" } => null,
        YamlScalarNode { Style: ScalarStyle.Plain } p when YamlScalars.Integer().IsMatch(p.Value!) => JsonValue.Create(long.Parse(p.Value!, CultureInfo.InvariantCulture)),
        YamlScalarNode { Style: ScalarStyle.Plain } p when YamlScalars.Boolean().IsMatch(p.Value!) => JsonValue.Create(YamlScalars.IsTrue(p.Value!)),
        YamlScalarNode s => JsonValue.Create(s.Value),
        _ => throw new InvalidOperationException($"unexpected YAML node {node.NodeType}"),
    };

    [Fact]
    public void ValuesMatchTheirSchema()
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(Chart, "values.schema.json")));
        var errors = new List<string>();
        Validate(Values(), schema.RootElement, "values", errors);
        Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors));
    }

    [Theory]
    [InlineData("image: {pullPolicy: Sometimes}", "values.image.pullPolicy: \"Sometimes\" is not one of")]
    [InlineData("metrics: {port: 70000}", "values.metrics.port: above 65535")]
    [InlineData("elasticsearch: {url: es:9200}", "values.elasticsearch.url: \"es:9200\" does not match")]
    [InlineData("agnet: {}", "values.agnet: not allowed here")]
    public void TheSchemaRefusesBadValues(string overrides, string expected)
    {
        var values = Values().AsObject();
        foreach (var (key, value) in ToJson(ParseYaml(overrides))!.AsObject())
        {
            if (values[key] is JsonObject target && value is JsonObject patch)
            {
                foreach (var (k, v) in patch)
                {
                    target[k] = v?.DeepClone();
                }
            }
            else
            {
                values[key] = value?.DeepClone();
            }
        }
        using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(Chart, "values.schema.json")));
        var errors = new List<string>();
        Validate(values, schema.RootElement, "values", errors);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [GeneratedRegex(@"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")]
    private static partial Regex ValuesPath();

    public static TheoryData<string> Templates() =>
        [.. Directory.GetFiles(Path.Combine(Chart, "templates")).Select(f => Path.GetFileName(f)).Order()];

    [Theory]
    [MemberData(nameof(Templates))]
    public void EveryValuesPathATemplateUsesIsInValuesYaml(string template)
    {
        var values = Values();
        foreach (Match m in ValuesPath().Matches(File.ReadAllText(Path.Combine(Chart, "templates", template))))
        {
            JsonNode? node = values;
            foreach (var part in m.Groups[1].Value.Split('.', StringSplitOptions.RemoveEmptyEntries))
            {
                Assert.True(node is JsonObject o && o.ContainsKey(part), $"{template}: .Values{m.Groups[1].Value} is not in values.yaml (at \"{part}\")");
                node = node![part];
            }
        }
    }

    [GeneratedRegex(@"\{\{-?\s*(if|with|range|define|end)\b")]
    private static partial Regex BlockAction();

    [Theory]
    [MemberData(nameof(Templates))]
    public void TemplateBlocksAreBalanced(string template)
    {
        var text = File.ReadAllText(Path.Combine(Chart, "templates", template));
        Assert.Equal(text.Split("{{").Length, text.Split("}}").Length);
        var depth = 0;
        foreach (Match m in BlockAction().Matches(text))
        {
            depth += m.Groups[1].Value == "end" ? -1 : 1;
            Assert.True(depth >= 0, $"{template}: an end without a block at offset {m.Index}");
        }
        Assert.Equal(0, depth);
    }

    [Fact]
    public void AgentSettingsInValuesAreRealSettings()
    {
        foreach (var (key, value) in Values()["agent"]!["config"]!.AsObject())
        {
            Assert.True(AgentSettings.Find(key) is not null, $"values.yaml agent.config.{key} is not an agent setting (docs/configuration.md)");
            Assert.Equal(JsonValueKind.String, value!.GetValueKind()); // ConfigMap data are strings
        }
        // The settings the templates write themselves are real too.
        foreach (Match m in SettingKey().Matches(File.ReadAllText(Path.Combine(Chart, "templates", "configmap.yaml"))))
        {
            Assert.True(AgentSettings.Find(m.Groups[1].Value) is not null, $"configmap.yaml writes unknown setting {m.Groups[1].Value}");
        }
    }

    [GeneratedRegex(@"^\s+([a-z][a-z-]+):\s+""", RegexOptions.Multiline)]
    private static partial Regex SettingKey();

    [Fact]
    public void ChartMetadataAndPlainYamlParse()
    {
        var chart = ToJson(LoadYaml(Path.Combine(Chart, "Chart.yaml")))!;
        Assert.Equal("v2", (string?)chart["apiVersion"]);
        Assert.Equal("palisade", (string?)chart["name"]);
        Assert.Matches(@"^\d+\.\d+\.\d+$", (string?)chart["version"]);
        Assert.True(File.Exists(Path.Combine(Chart, "templates", "NOTES.txt")));
        Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "Dockerfile")), "the agent's container image build file");
    }

    [Fact]
    public void TetragonLikeValuesValidate()
    {
        var values = Values().AsObject();
        var overrides = ToJson(ParseYaml("""
            clusterName: prod-eu
            export:
              directory: /var/log/palisade
              allowList: '{"event_set":["PROCESS_EXEC","PROCESS_KPROBE"]}'
              denyList: |-
                {"health_check":true}
                {"namespace":["","kube-system"]}
              stdout: {enabled: true}
            grpc:
              address: localhost:54321
              tls: {enabled: true, secretName: palisade-grpc, requireClientCert: true}
            affinity:
              nodeAffinity:
                requiredDuringSchedulingIgnoredDuringExecution:
                  nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/os, operator: In, values: [linux]}]}]
            podSecurityContext: {seccompProfile: {type: Unconfined}}
            extraVolumes: [{name: extra, hostPath: {path: /var/lib/extra}}]
            extraVolumeMounts: [{name: extra, mountPath: /extra}]
            grafana: {dashboards: {enabled: true}}
            """))!.AsObject();
        foreach (var (key, value) in overrides)
        {
            values[key] = value!.DeepClone();
        }
        using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(Chart, "values.schema.json")));
        var errors = new List<string>();
        Validate(values, schema.RootElement, "values", errors);
        Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors));
    }

    [Fact]
    public void TheDefaultExportFiltersAreValidFilters()
    {
        var export = Values()["export"]!;
        var allow = Palisade.Exporters.Filters.EventFilter.ParseList((string)export["allowList"]!, "export.allowList");
        var deny = Palisade.Exporters.Filters.EventFilter.ParseList((string)export["denyList"]!, "export.denyList");
        Assert.Single(allow);
        Assert.Equal(2, deny.Count);
    }

    [Fact]
    public void CrdsAreTemplatesSoTheyUpgradeWithTheChart()
    {
        // Helm would install a crds/ directory once and never upgrade it, and a CRD in both
        // places fails the install: the generated files live under files/crds, rendered by crds.yaml.
        Assert.False(Directory.Exists(Path.Combine(Chart, "crds")), "helm/palisade/crds must not exist: CRDs are rendered from files/crds by templates/crds.yaml");
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(Chart, "files", "crds"), "*.yaml"));
        var template = File.ReadAllText(Path.Combine(Chart, "templates", "crds.yaml"));
        Assert.Contains(".Files.Glob \"files/crds/*.yaml\"", template, StringComparison.Ordinal);
        Assert.Contains("helm.sh/resource-policy", template, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\b(palisade_[a-z0-9_]+)")]
    private static partial Regex MetricName();

    [Fact]
    public void EveryMetricOnTheDashboardIsADocumentedMetric()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(Chart, "files", "dashboards", "palisade.json")));
        var docs = File.ReadAllText(RepoPaths.File("docs", "metrics.md"));
        var exprs = dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray()).Select(t => t.GetProperty("expr").GetString()!).ToList();
        Assert.NotEmpty(exprs);
        foreach (Match m in exprs.SelectMany(e => MetricName().Matches(e)))
        {
            Assert.Contains($"`{m.Groups[1].Value}`", docs, StringComparison.Ordinal);
        }
    }

    // The subset of JSON Schema (draft 7) values.schema.json uses.
    private static void Validate(JsonNode? value, JsonElement schema, string path, List<string> errors)
    {
        if (schema.TryGetProperty("type", out var type))
        {
            var types = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToArray() : [type.GetString()!];
            var actual = value switch
            {
                null => "null",
                JsonObject => "object",
                JsonArray => "array",
                _ => value.GetValueKind() switch
                {
                    JsonValueKind.String => "string",
                    JsonValueKind.Number => "integer",
                    JsonValueKind.True or JsonValueKind.False => "boolean",
                    _ => "?",
                },
            };
            if (!types.Contains(actual) && !(actual == "integer" && types.Contains("number")))
            {
                errors.Add($"{path}: is {actual}, must be {string.Join(" or ", types)}");
                return;
            }
        }
        if (schema.TryGetProperty("enum", out var allowed) && !allowed.EnumerateArray().Any(a => a.ToString() == value?.ToString()))
        {
            errors.Add($"{path}: \"{value}\" is not one of {string.Join(", ", allowed.EnumerateArray())}");
        }
        if (value is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            var s = v.GetValue<string>();
            if (schema.TryGetProperty("pattern", out var pattern) && !Regex.IsMatch(s, pattern.GetString()!))
            {
                errors.Add($"{path}: \"{s}\" does not match {pattern.GetString()}");
            }
            if (schema.TryGetProperty("minLength", out var min) && s.Length < min.GetInt32())
            {
                errors.Add($"{path}: shorter than {min.GetInt32()}");
            }
        }
        if (value is JsonValue n && n.GetValueKind() == JsonValueKind.Number)
        {
            var x = n.GetValue<long>();
            if (schema.TryGetProperty("minimum", out var lo) && x < lo.GetInt64())
            {
                errors.Add($"{path}: below {lo.GetInt64()}");
            }
            if (schema.TryGetProperty("maximum", out var hi) && x > hi.GetInt64())
            {
                errors.Add($"{path}: above {hi.GetInt64()}");
            }
        }
        if (value is JsonArray array && schema.TryGetProperty("items", out var items))
        {
            for (var i = 0; i < array.Count; i++)
            {
                Validate(array[i], items, $"{path}[{i}]", errors);
            }
        }
        if (value is JsonObject obj)
        {
            var properties = schema.TryGetProperty("properties", out var p) ? p : default;
            foreach (var (key, child) in obj)
            {
                if (properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(key, out var childSchema))
                {
                    Validate(child, childSchema, $"{path}.{key}", errors);
                }
                else if (schema.TryGetProperty("additionalProperties", out var extra))
                {
                    if (extra.ValueKind == JsonValueKind.False)
                    {
                        errors.Add($"{path}.{key}: not allowed here");
                    }
                    else if (extra.ValueKind == JsonValueKind.Object)
                    {
                        Validate(child, extra, $"{path}.{key}", errors);
                    }
                }
            }
            if (schema.TryGetProperty("required", out var required))
            {
                foreach (var r in required.EnumerateArray().Select(r => r.GetString()!).Where(r => !obj.ContainsKey(r)))
                {
                    errors.Add($"{path}.{r}: required");
                }
            }
        }
    }

    [Fact]
    public void NoEnvironmentVariableOfTheImageOrThePodOverridesAKeyTheChartsConfigMapSets()
    {
        // Environment variables beat --config-dir: a PALISADE_* variable for a key the ConfigMap
        // writes would silently win over the chart's values (grpc.address, TLS, ...).
        var configMap = File.ReadAllLines(Path.Combine(Chart, "templates", "configmap.yaml"));
        var keys = configMap.Select(l => System.Text.RegularExpressions.Regex.Match(l, @"^\s{2}([a-z][a-z0-9-]+):")).Where(m => m.Success)
            .Select(m => "PALISADE_" + m.Groups[1].Value.Replace('-', '_').ToUpperInvariant()).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("PALISADE_SERVER_ADDRESS", keys);
        var dockerfile = File.ReadAllText(Path.Combine(RepoPaths.Root, "Dockerfile"));
        var daemonset = File.ReadAllText(Path.Combine(Chart, "templates", "daemonset.yaml"));
        foreach (var key in keys)
        {
            Assert.DoesNotMatch($@"ENV\s+{key}\b", dockerfile);
            Assert.DoesNotContain($"name: {key}", daemonset, StringComparison.Ordinal);
        }
    }
}
