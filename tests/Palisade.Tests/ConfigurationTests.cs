using System.Net;
using Palisade.Agent.Configuration;

namespace Palisade.Tests;

public sealed class ConfigurationTests
{
    private static SettingsLayer Layer(string source, params (string Key, string Value)[] values) =>
        new(source, values.ToDictionary(v => v.Key, v => v.Value));

    [Fact]
    public void DefaultsApplyWhenNothingIsSet()
    {
        var options = AgentConfiguration.Resolve([]);

        Assert.Equal("info", options.LogLevel);
        Assert.Equal("text", options.LogFormat);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 6789), options.HealthServerEndpoint);
        Assert.All(options.Sources.Values, s => Assert.Equal("default", s));
    }

    [Fact]
    public void LaterLayersWinAndTheSourceIsRecorded()
    {
        var options = AgentConfiguration.Resolve(
        [
            Layer("file", ("log-level", "debug"), ("log-format", "json")),
            Layer("environment", ("log-level", "warn")),
            Layer("command line", ("log-level", "error")),
        ]);

        Assert.Equal("error", options.LogLevel);
        Assert.Equal("command line", options.Sources["log-level"]);
        Assert.Equal("json", options.LogFormat);
        Assert.Equal("file", options.Sources["log-format"]);
    }

    [Fact]
    public void AnUnknownKeyIsRejectedWithASuggestion()
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("/etc/palisade/palisade.yaml", ("log-levl", "debug"))]));

        Assert.Equal("log-levl: unknown setting in /etc/palisade/palisade.yaml. Did you mean \"log-level\"?", Assert.Single(e.Errors));
    }

    [Fact]
    public void AValueOutsideTheAllowedSetNamesFieldValueSourceAndChoices()
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("command line", ("log-level", "verbose"))]));

        Assert.Equal("log-level: \"verbose\" (from command line) is not one of trace, debug, info, warn, error.", Assert.Single(e.Errors));
    }

    [Fact]
    public void ValuesAreCaseInsensitiveForChoices()
    {
        Assert.Equal("debug", AgentConfiguration.Resolve([Layer("env", ("log-level", "DEBUG"))]).LogLevel);
    }

    [Theory]
    [InlineData(":6789", "[::]:6789")]
    [InlineData("localhost:7000", "127.0.0.1:7000")]
    [InlineData("[::1]:6789", "[::1]:6789")]
    [InlineData("0.0.0.0:80", "0.0.0.0:80")]
    public void HealthAddressesParse(string value, string expected)
    {
        var options = AgentConfiguration.Resolve([Layer("flags", ("health-server-address", value))]);

        Assert.Equal(expected, options.HealthServerEndpoint!.ToString());
    }

    [Fact]
    public void AnEmptyHealthAddressTurnsTheServerOff()
    {
        Assert.Null(AgentConfiguration.Resolve([Layer("flags", ("health-server-address", ""))]).HealthServerEndpoint);
    }

    [Theory]
    [InlineData("127.0.0.1", "has no valid port")]
    [InlineData("127.0.0.1:99999", "has no valid port")]
    [InlineData("myhost:80", "\"myhost\" is not an IP address")]
    public void BadHealthAddressesAreExplained(string value, string expected)
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("flags", ("health-server-address", value))]));

        Assert.Contains(expected, Assert.Single(e.Errors), StringComparison.Ordinal);
        Assert.StartsWith("health-server-address: ", e.Errors[0], StringComparison.Ordinal);
    }

    [Fact]
    public void YamlFileIsAFlatMapping()
    {
        var errors = new List<string>();
        var layer = AgentConfiguration.ParseYaml("log-level: debug\nlog-format: json\n", "f.yaml", errors);

        Assert.Empty(errors);
        Assert.Equal("debug", layer.Values["log-level"]);
        Assert.Equal("json", layer.Values["log-format"]);
    }

    [Fact]
    public void YamlSyntaxErrorsNameTheLine()
    {
        var errors = new List<string>();
        AgentConfiguration.ParseYaml("log-level: debug\n  bad: [\n", "f.yaml", errors);

        var error = Assert.Single(errors);
        Assert.StartsWith("f.yaml: not valid YAML: ", error, StringComparison.Ordinal);
        Assert.Contains("(line 2, column", error, StringComparison.Ordinal);
    }

    [Fact]
    public void YamlNestedValuesAreRejected()
    {
        var errors = new List<string>();
        AgentConfiguration.ParseYaml("log-level:\n  - debug\n", "f.yaml", errors);

        Assert.Equal("f.yaml: log-level (line 1) must be a single value, not a list or mapping.", Assert.Single(errors));
    }

    [Fact]
    public void EnvironmentVariablesMapToKeys()
    {
        var layer = AgentConfiguration.FromEnvironment(new Dictionary<string, string>
        {
            ["PALISADE_LOG_FORMAT"] = "json",
            ["HOME"] = "/root",
        });

        Assert.Equal(new Dictionary<string, string> { ["log-format"] = "json" }, layer.Values);
    }

    [Theory]
    [InlineData("server-address", "0.0.0.0:54321", "off loopback without TLS")]
    [InlineData("server-tls-cert-file", "/x.pem", "give both or neither")]
    [InlineData("elasticsearch-url", "ftp://es:9200", "is not an http:// or https:// URL")]
    [InlineData("elasticsearch-url", "https://elastic:secret@es:9200", "credentials in the URL would be logged")]
    [InlineData("elasticsearch-spool-max-size", "lots", "\"lots\" (from flags) is not a size")]
    [InlineData("metrics-label-filter", "namespace,container", "\"container\" is not a metrics label")]
    [InlineData("elasticsearch-logs", "true", "elasticsearch-logs: true needs elasticsearch-url")]
    [InlineData("elasticsearch-logs-index", "palisade-events", "logs and events need data streams of their own")]
    [InlineData("export-rate-limit", "0", "must be a whole number from 1 to 100000000")]
    [InlineData("export-allowlist", "{\"event_sets\":[\"PROCESS_EXEC\"]}", "export-allowlist (from flags) line 1: event_sets: unknown filter field. Did you mean \"event_set\"?")]
    [InlineData("redaction-filters", "{\"redact\":[\"--password=\\\\S+\"]}", "has no capture group")]
    public void BadExportAndApiSettingsNameTheSettingAndTheFix(string key, string value, string expected)
    {
        (string, string)[] values = key == "elasticsearch-logs" ? [(key, value)]
            : key == "elasticsearch-logs-index" ? [("elasticsearch-url", "http://127.0.0.1:9200"), ("elasticsearch-logs", "true"), (key, value)]
            : key.StartsWith("elasticsearch-", StringComparison.Ordinal) && key != "elasticsearch-url"
            ? [("elasticsearch-url", "http://127.0.0.1:9200"), (key, value)]
            : key == "server-tls-cert-file" ? [("server-address", "127.0.0.1:54321"), (key, value)] : [(key, value)];
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("flags", values)]));
        Assert.Contains(e.Errors, error => error.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Palisade-Events")]
    [InlineData("_events")]
    [InlineData("events,all")]
    public void BadElasticsearchIndexNamesAreRefused(string index)
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("flags",
            ("elasticsearch-url", "http://127.0.0.1:9200"), ("elasticsearch-index", index))]));
        Assert.Contains(e.Errors, error => error.Contains($"\"{index}\" is not a valid index name", StringComparison.Ordinal));
    }

    [Fact]
    public void ApiAndElasticsearchSettingsResolve()
    {
        var options = AgentConfiguration.Resolve([Layer("flags", ("server-address", "localhost:54321"), ("elasticsearch-url", "https://es:9200"),
            ("elasticsearch-spool-max-size", "2G"), ("export-rate-limit", "600"))]);
        Assert.Equal("127.0.0.1:54321", options.ServerEndpoint!.ToString());
        Assert.Equal(2L << 30, options.Elasticsearch!.SpoolMaxBytes);
        Assert.Equal(600, options.ExportPipeline.RateLimitPerMinute);
        Assert.Null(AgentConfiguration.Resolve([]).ServerEndpoint); // the default is the unix socket
    }

    [Fact]
    public void KeepSensorsOnExitIsOffByDefaultAndComesFromEveryLayer()
    {
        var defaults = AgentConfiguration.Resolve([]);
        Assert.False(defaults.KeepSensorsOnExit);
        Assert.Equal("/sys/fs/bpf/palisade", defaults.BpfDir);

        var fromEnv = AgentConfiguration.Load(new Dictionary<string, string>(),
            new Dictionary<string, string> { ["PALISADE_KEEP_SENSORS_ON_EXIT"] = "true", ["PALISADE_BPF_DIR"] = "/sys/fs/bpf/other" });
        Assert.True(fromEnv.KeepSensorsOnExit);
        Assert.Equal("/sys/fs/bpf/other", fromEnv.BpfDir);
        Assert.Equal("environment (PALISADE_*)", fromEnv.Sources["keep-sensors-on-exit"]);

        var flag = AgentConfiguration.Resolve([Layer("environment", ("keep-sensors-on-exit", "true")), Layer("command line", ("keep-sensors-on-exit", "false"))]);
        Assert.False(flag.KeepSensorsOnExit);
    }

    [Theory]
    [InlineData("keep-sensors-on-exit", "yes", "is not one of true, false")]
    [InlineData("bpf-dir", "palisade", "must be an absolute directory of its own on a bpffs")]
    [InlineData("bpf-dir", "/sys/fs/bpf", "must be an absolute directory of its own on a bpffs")]
    [InlineData("bpf-dir", "/sys/fs/bpf/", "must be an absolute directory of its own on a bpffs")]
    public void BadKeepSensorSettingsAreRefused(string key, string value, string expected)
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("flags", (key, value))]));
        Assert.Contains(e.Errors, error => error.StartsWith(key + ":", StringComparison.Ordinal) && error.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void FlowRecordsAreOnWithAFiveSecondReportIntervalByDefault()
    {
        var defaults = AgentConfiguration.Resolve([]);
        Assert.True(defaults.EnableFlows);
        Assert.Equal(TimeSpan.FromSeconds(5), defaults.FlowReportInterval);

        var set = AgentConfiguration.Resolve([Layer("flags", ("enable-flows", "false"), ("flow-report-interval", "0"))]);
        Assert.False(set.EnableFlows);
        Assert.Equal(TimeSpan.Zero, set.FlowReportInterval);
    }

    [Theory]
    [InlineData("enable-flows", "off", "is not one of true, false")]
    [InlineData("flow-report-interval", "5 seconds", "flow-report-interval")]
    public void BadFlowSettingsAreRefusedNamingTheKey(string key, string value, string expected)
    {
        var e = Assert.Throws<AgentConfigurationException>(() => AgentConfiguration.Resolve([Layer("flags", (key, value))]));
        Assert.Contains(e.Errors, error => error.StartsWith(key + ":", StringComparison.Ordinal) && error.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void AnExplicitMissingConfigFileIsAnError()
    {
        var e = Assert.Throws<AgentConfigurationException>(() =>
            AgentConfiguration.Load(new Dictionary<string, string> { ["config-file"] = "/nonexistent/palisade.yaml" }, new Dictionary<string, string>()));

        Assert.Contains("config-file: \"/nonexistent/palisade.yaml\" does not exist", e.Errors[0], StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigDirFilesAreSettings()
    {
        var dir = Directory.CreateTempSubdirectory("palisade-config-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "log-level"), "debug\n");
            File.WriteAllText(Path.Combine(dir.FullName, "..data"), "ignored");

            var options = AgentConfiguration.Load(new Dictionary<string, string> { ["config-dir"] = dir.FullName }, new Dictionary<string, string>());

            Assert.Equal("debug", options.LogLevel);
            Assert.Equal($"config-dir {dir.FullName}", options.Sources["log-level"]);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void EverySettingIsDocumented()
    {
        var doc = File.ReadAllText(RepoPaths.File("docs", "configuration.md"));

        Assert.All(AgentSettings.All, s =>
        {
            Assert.Contains($"`{s.Flag}`", doc, StringComparison.Ordinal);
            Assert.Contains($"`{s.EnvironmentVariable}`", doc, StringComparison.Ordinal);
        });
    }
}
