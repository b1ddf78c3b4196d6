using System.Globalization;
using System.Net;
using Palisade.Policies;
using Palisade.Policies.Tracing;
using Palisade.Runtime;
using YamlDotNet.RepresentationModel;

namespace Palisade.Agent.Configuration;

/// <summary>One layer of settings: its name (for messages) and key -> value.</summary>
public sealed record SettingsLayer(string Source, IReadOnlyDictionary<string, string> Values);

/// <summary>
/// Resolves settings from layers in increasing precedence: defaults, the YAML file,
/// --config-dir, PALISADE_* environment variables, flags. Pure: file reading is done by
/// <see cref="Load"/>, everything else is testable without a file system.
/// </summary>
public static class AgentConfiguration
{
    /// <summary>Reads the file-based layers named by the flags/environment and resolves everything.</summary>
    public static AgentOptions Load(IReadOnlyDictionary<string, string> flags, IReadOnlyDictionary<string, string> environment)
    {
        var env = FromEnvironment(environment);
        var errors = new List<string>();
        var layers = new List<SettingsLayer>();

        var configFile = Pick(AgentSettings.ConfigFile, flags, env.Values, out var fileExplicit);
        if (File.Exists(configFile))
        {
            try
            {
                layers.Add(ParseYaml(File.ReadAllText(configFile), configFile, errors));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors.Add($"config-file: \"{configFile}\" cannot be read ({e.Message}). Fix: give the path of a readable YAML settings file.");
            }
        }
        else if (fileExplicit)
        {
            errors.Add($"config-file: \"{configFile}\" does not exist. Fix: give the path of a YAML settings file, or drop the setting.");
        }

        var configDir = Pick(AgentSettings.ConfigDir, flags, env.Values, out _);
        if (configDir.Length > 0)
        {
            if (Directory.Exists(configDir))
            {
                layers.Add(ReadConfigDir(configDir, errors));
            }
            else
            {
                errors.Add($"config-dir: \"{configDir}\" is not a directory. Fix: point it at a directory of one-file-per-setting, or drop the setting.");
            }
        }

        layers.Add(env);
        layers.Add(new SettingsLayer("command line", flags));
        if (errors.Count > 0)
        {
            throw new AgentConfigurationException(errors);
        }
        return Resolve(layers);
    }

    /// <summary>Merges <paramref name="layers"/> (later wins) over the defaults and validates every value.</summary>
    public static AgentOptions Resolve(IEnumerable<SettingsLayer> layers)
    {
        var values = AgentSettings.All.ToDictionary(s => s.Key, s => (Value: s.Default, Source: "default"));
        var errors = new List<string>();
        var warnings = new List<string>();
        foreach (var layer in layers)
        {
            foreach (var (key, value) in layer.Values)
            {
                if (AgentSettings.Find(key) is not { } known)
                {
                    if (TetragonSettings.Warning(key, layer.Source) is { } warning)
                    {
                        warnings.Add(warning);
                    }
                    else
                    {
                        errors.Add($"{key}: unknown setting in {layer.Source}. {Suggest(key)}");
                    }
                    continue;
                }
                // An alias sets its setting; the later layer wins as for the key itself.
                values[known.Key] = (value.Trim(), key == known.Key ? layer.Source : $"{layer.Source} as {key}");
            }
        }

        string Checked(AgentSetting setting)
        {
            var (value, source) = values[setting.Key];
            if (setting.Allowed is { } allowed && !allowed.Contains(value, StringComparer.Ordinal))
            {
                var lower = value.ToLowerInvariant();
                if (allowed.Contains(lower, StringComparer.Ordinal))
                {
                    return lower;
                }
                errors.Add($"{setting.Key}: \"{value}\" (from {source}) is not one of {string.Join(", ", allowed)}.");
                return setting.Default;
            }
            return value;
        }

        var logLevel = Checked(AgentSettings.LogLevel);
        if (Checked(AgentSettings.Debug) == "true" && values[AgentSettings.LogLevel.Key].Source == "default")
        {
            logLevel = "debug";
        }
        var ancestorTypes = ParseAncestors(values[AgentSettings.EnableAncestors.Key], errors, warnings);
        var metricsServer = ParseEndpoint(AgentSettings.MetricsServer, values[AgentSettings.MetricsServer.Key], errors);
        var gcInterval = ParseDuration(AgentSettings.ProcessCacheGcInterval, values[AgentSettings.ProcessCacheGcInterval.Key], errors);
        if (gcInterval <= TimeSpan.Zero && !errors.Any(e => e.StartsWith(AgentSettings.ProcessCacheGcInterval.Key, StringComparison.Ordinal)))
        {
            errors.Add($"{AgentSettings.ProcessCacheGcInterval.Key}: \"{values[AgentSettings.ProcessCacheGcInterval.Key].Value}\" must be longer than 0. Fix: e.g. 1s.");
        }
        var logFormat = Checked(AgentSettings.LogFormat);
        var health = ParseEndpoint(AgentSettings.HealthServerAddress, values[AgentSettings.HealthServerAddress.Key], errors);
        var exportStdout = Checked(AgentSettings.ExportStdout);
        var ancestors = ancestorTypes.Contains("base");
        var processCred = Checked(AgentSettings.EnableProcessCred) == "true";
        var processNs = Checked(AgentSettings.EnableProcessNs) == "true";
        var keepSensors = Checked(AgentSettings.KeepSensorsOnExit) == "true";
        var bpfDir = values[AgentSettings.BpfDir.Key].Value;
        if (!Path.IsPathFullyQualified(bpfDir) || Path.GetFullPath(bpfDir).TrimEnd('/') is "" or "/sys/fs/bpf")
        {
            errors.Add($"{AgentSettings.BpfDir.Key}: \"{bpfDir}\" (from {values[AgentSettings.BpfDir.Key].Source}) must be an absolute directory of its own on a bpffs, such as {AgentSettings.BpfDir.Default} (its contents are removed at start without --keep-sensors-on-exit).");
        }
        int Integer(AgentSetting setting, int min, int max) => ParseInteger(setting, values[setting.Key], min, max, errors);
        // A duration where "0" (or "0s") means off.
        TimeSpan DurationOrOff(AgentSetting setting) =>
            values[setting.Key].Value is "0" or "0s" ? TimeSpan.Zero : ParseDuration(setting, values[setting.Key], errors);
        var queue = Integer(AgentSettings.EventQueueSize, 1, 10_000_000);
        var cacheSize = Integer(AgentSettings.ProcessCacheSize, 1024, 16_777_216);
        var argsMax = Integer(AgentSettings.ProcessArgsMax, ProcessSensorOptions.MinArgsMax, ProcessSensorOptions.MaxArgsMax);
        var grace = ParseDuration(AgentSettings.ProcessCacheGrace, values[AgentSettings.ProcessCacheGrace.Key], errors);
        var rbSize = ParseSize(AgentSettings.RingBufferSize, values[AgentSettings.RingBufferSize.Key], errors, warnings);
        var nodeName = values[AgentSettings.NodeName.Key].Value is { Length: > 0 } configured
            ? configured
            : Environment.GetEnvironmentVariable("NODE_NAME") is { Length: > 0 } fromEnv ? fromEnv : Environment.MachineName;
        var rotation = new Palisade.Exporters.FileRotation(
            Integer(AgentSettings.ExportFileMaxSizeMb, 1, 1_000_000) * 1024L * 1024,
            Integer(AgentSettings.ExportFileMaxBackups, 0, 10_000),
            Checked(AgentSettings.ExportFileCompress) == "true",
            ParsePermissions(AgentSettings.ExportFilePerm, values[AgentSettings.ExportFilePerm.Key], errors),
            DurationOrOff(AgentSettings.ExportFileRotationInterval));
        var selector = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var term in values[AgentSettings.TracingPolicySelector.Key].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = term.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                errors.Add($"{AgentSettings.TracingPolicySelector.Key}: \"{term}\" is not key=value; write e.g. palisade.io/default=true");
                continue;
            }
            selector[term[..eq]] = term[(eq + 1)..];
        }
        var pipeline = ParsePipeline(values, errors, out var redactor);
        var elasticsearch = ParseElasticsearch(values, errors);
        string? logsIndex = null;
        if (values[AgentSettings.ElasticsearchLogs.Key].Value == "true")
        {
            logsIndex = values[AgentSettings.ElasticsearchLogsIndex.Key].Value;
            if (elasticsearch is null)
            {
                errors.Add($"{AgentSettings.ElasticsearchLogs.Key}: true needs {AgentSettings.ElasticsearchUrl.Key} or {AgentSettings.ElasticsearchCloudId.Key}. Fix: set one of them, or drop {AgentSettings.ElasticsearchLogs.Key}.");
            }
            else if (!ValidIndexName(logsIndex))
            {
                errors.Add($"{AgentSettings.ElasticsearchLogsIndex.Key}: \"{logsIndex}\" is not a valid data stream name. Fix: lower case, no spaces or \\/*?\"<>|,#:, not starting with -, _ or +.");
            }
            else if (logsIndex == elasticsearch.Index)
            {
                errors.Add($"{AgentSettings.ElasticsearchLogsIndex.Key}: \"{logsIndex}\" is also {AgentSettings.ElasticsearchIndex.Key}; logs and events need data streams of their own. Fix: keep the default palisade-logs.");
            }
        }
        var serverAddress = values[AgentSettings.ServerAddress.Key].Value;
        var requireClientCert = Checked(AgentSettings.ServerTlsRequireClientCert) == "true";
        IPEndPoint? serverEndpoint = null;
        if (serverAddress.Length > 0 && !serverAddress.StartsWith("unix://", StringComparison.Ordinal))
        {
            var endpoint = serverEndpoint = ParseEndpoint(AgentSettings.ServerAddress, values[AgentSettings.ServerAddress.Key], errors);
            var tls = values[AgentSettings.ServerTlsCertFile.Key].Value.Length > 0;
            if (endpoint is not null && !tls && !IPAddress.IsLoopback(endpoint.Address))
            {
                errors.Add($"{AgentSettings.ServerAddress.Key}: \"{serverAddress}\" is a TCP address off loopback without TLS; anyone on the network could add policies. Fix: set server-tls-cert-file and server-tls-key-file, or use unix:///var/run/palisade/palisade.sock.");
            }
            if (tls != (values[AgentSettings.ServerTlsKeyFile.Key].Value.Length > 0))
            {
                errors.Add($"{AgentSettings.ServerTlsCertFile.Key}/{AgentSettings.ServerTlsKeyFile.Key}: give both or neither.");
            }
            Api.ServerTls.Check(values[AgentSettings.ServerTlsClientCaFiles.Key].Value, requireClientCert, tls, errors);
        }
        var metricLabels = values[AgentSettings.MetricsLabelFilter.Key].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var label in metricLabels.Where(l => l is not ("namespace" or "workload" or "pod" or "binary")))
        {
            errors.Add($"{AgentSettings.MetricsLabelFilter.Key}: \"{label}\" is not a metrics label. Allowed: namespace, workload, pod, binary.");
        }
        var maxSeries = Integer(AgentSettings.MetricsMaxSeries, 1, 1_000_000);
        var kubeconfig = NullIfEmpty(values[AgentSettings.Kubeconfig.Key].Value);
        var kubernetes = Checked(AgentSettings.Kubernetes) switch
        {
            "true" => true,
            "false" => false,
            _ => kubeconfig is not null || Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST") is { Length: > 0 },
        };
        if (kubeconfig is not null && !File.Exists(kubeconfig))
        {
            errors.Add($"{AgentSettings.Kubeconfig.Key}: \"{kubeconfig}\" does not exist. Fix: give the path of a kubeconfig file, or leave it empty to use the pod's service account.");
        }
        var podWait = ParseDuration(AgentSettings.KubernetesPodWait, values[AgentSettings.KubernetesPodWait.Key], errors);
        var resync = DurationOrOff(AgentSettings.KubernetesResync);
        var datapath = DatapathSettings.Resolve(values, kubernetes, errors);
        var services = ServiceSettings.Resolve(values, kubernetes, errors);
        var flowReports = DurationOrOff(AgentSettings.FlowReportInterval);
        var enableFlows = Checked(AgentSettings.EnableFlows) == "true";
        var enforcement = Checked(AgentSettings.PolicyEnforcement) switch
        {
            "always" => Palisade.Policies.Network.Compilation.EnforcementMode.Always,
            "never" => Palisade.Policies.Network.Compilation.EnforcementMode.Never,
            _ => Palisade.Policies.Network.Compilation.EnforcementMode.Default,
        };
        var auditNamespaces = global::Palisade.Agent.NetworkPolicy.AuditNamespaces.Parse(values[AgentSettings.PolicyAuditNamespaces.Key].Value, AgentSettings.PolicyAuditNamespaces.Key, errors);
        var networkPolicy = new global::Palisade.Agent.NetworkPolicy.NetworkPolicySettings(enforcement, Checked(AgentSettings.PolicyAuditMode) == "true", auditNamespaces);
        if (errors.Count > 0)
        {
            throw new AgentConfigurationException(errors);
        }
        return new AgentOptions
        {
            ExportPipeline = pipeline,
            Redactor = redactor,
            Elasticsearch = elasticsearch,
            ElasticsearchLogsIndex = elasticsearch is null ? null : logsIndex,
            ServerAddress = serverAddress.Length > 0 ? serverAddress : null,
            ServerEndpoint = serverEndpoint,
            ServerTlsCertFile = NullIfEmpty(values[AgentSettings.ServerTlsCertFile.Key].Value),
            ServerTlsKeyFile = NullIfEmpty(values[AgentSettings.ServerTlsKeyFile.Key].Value),
            ServerTlsClientCaFiles = Api.ServerTls.Files(values[AgentSettings.ServerTlsClientCaFiles.Key].Value),
            ServerTlsRequireClientCert = requireClientCert,
            MetricsLabels = metricLabels,
            MetricsMaxSeries = maxSeries,
            LogLevel = logLevel,
            LogFormat = logFormat,
            HealthServerEndpoint = health,
            NodeName = nodeName,
            ExportFilename = values[AgentSettings.ExportFilename.Key].Value is { Length: > 0 } file ? file : null,
            ExportStdout = exportStdout,
            ExportFileRotation = rotation,
            EventQueueSize = queue,
            EnableAncestors = ancestors,
            AncestorEventTypes = ancestorTypes,
            ClusterName = NullIfEmpty(values[AgentSettings.ClusterName.Key].Value),
            MetricsServerEndpoint = metricsServer,
            EnablePodAnnotations = Checked(AgentSettings.EnablePodAnnotations) == "true",
            UsernameMetadata = Checked(AgentSettings.UsernameMetadata) == "unix",
            ProcessCacheGcInterval = gcInterval,
            LogFile = NullIfEmpty(values[AgentSettings.LogFile.Key].Value),
            TracingPolicyFile = NullIfEmpty(values[AgentSettings.TracingPolicy.Key].Value),
            Warnings = warnings,
            EnableProcessCred = processCred,
            EnableProcessNs = processNs,
            ProcessCacheSize = cacheSize,
            ProcessCacheGrace = grace,
            ProcessArgsMax = argsMax,
            RingBufferSize = rbSize,
            ProcFs = values[AgentSettings.ProcFs.Key].Value,
            KeepSensorsOnExit = keepSensors,
            EnableFlows = enableFlows,
            FlowReportInterval = flowReports,
            BpfDir = bpfDir,
            TracingPolicyDir = values[AgentSettings.TracingPolicyDir.Key].Value is { Length: > 0 } dir ? dir : null,
            TracingPolicySelector = selector,
            NetworkPolicyDir = NullIfEmpty(values[AgentSettings.NetworkPolicyDir.Key].Value),
            NetworkPolicy = networkPolicy,
            Kubernetes = kubernetes,
            Kubeconfig = kubeconfig,
            KubernetesPodWait = podWait,
            KubernetesResync = resync,
            Datapath = datapath,
            Services = services,
            Sources = values.ToDictionary(kv => kv.Key, kv => kv.Value.Source),
        };
    }

    /// <summary>Parses the YAML settings file: a flat mapping of setting keys to scalar values.</summary>
    public static SettingsLayer ParseYaml(string yaml, string source, List<string> errors)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (YamlText.Load(yaml, out var stream) is { } problem)
        {
            errors.Add($"{source}: {problem.Message} (line {problem.Line}, column {problem.Column})");
            return new SettingsLayer(source, values);
        }
        if (stream!.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            return new SettingsLayer(source, values);
        }
        if (stream.Documents[0].RootNode is not YamlMappingNode mapping)
        {
            errors.Add($"{source}: the file must be a mapping of setting keys to values, like \"log-level: debug\".");
            return new SettingsLayer(source, values);
        }
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                errors.Add($"{source}: line {keyNode.Start.Line}: a setting's name must be a plain word such as log-level, not a list or mapping.");
                continue;
            }
            if (valueNode is YamlScalarNode scalar)
            {
                values[key] = scalar.Value ?? string.Empty;
            }
            else
            {
                errors.Add($"{source}: {key} (line {keyNode.Start.Line}) must be a single value, not a list or mapping.");
            }
        }
        return new SettingsLayer(source, values);
    }

    /// <summary>Reads PALISADE_* variables; unknown ones are reported like unknown keys.</summary>
    public static SettingsLayer FromEnvironment(IReadOnlyDictionary<string, string> environment)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in environment)
        {
            if (name.StartsWith("PALISADE_", StringComparison.Ordinal))
            {
                values[name["PALISADE_".Length..].ToLowerInvariant().Replace('_', '-')] = value;
            }
        }
        return new SettingsLayer("environment (PALISADE_*)", values);
    }

    private static SettingsLayer ReadConfigDir(string directory, List<string> errors)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(directory))
        {
            var name = Path.GetFileName(file);
            // Kubernetes projects ConfigMaps through ..data symlinks and dot-files; only plain keys count.
            if (!name.StartsWith('.'))
            {
                try
                {
                    values[name] = File.ReadAllText(file).Trim();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    errors.Add($"config-dir {directory}: {name} cannot be read ({e.Message}). Fix: make it a readable file, or remove it.");
                }
            }
        }
        return new SettingsLayer($"config-dir {directory}", values);
    }

    private static string Pick(AgentSetting setting, IReadOnlyDictionary<string, string> flags, IReadOnlyDictionary<string, string> env, out bool isExplicit)
    {
        if (flags.TryGetValue(setting.Key, out var flag))
        {
            isExplicit = true;
            return flag;
        }
        if (env.TryGetValue(setting.Key, out var fromEnv))
        {
            isExplicit = true;
            return fromEnv;
        }
        isExplicit = false;
        return setting.Default;
    }

    private static IPEndPoint? ParseEndpoint(AgentSetting setting, (string Value, string Source) entry, List<string> errors)
    {
        var (value, source) = entry;
        if (value.Length == 0)
        {
            return null;
        }
        var colon = value.LastIndexOf(':');
        var hostPart = colon >= 0 ? value[..colon].Trim('[', ']') : string.Empty;
        var portPart = colon >= 0 ? value[(colon + 1)..] : value;
        if (!int.TryParse(portPart, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            errors.Add($"{setting.Key}: \"{value}\" (from {source}) has no valid port. Fix: use host:port such as 127.0.0.1:6789, or :6789 for every address.");
            return null;
        }
        if (hostPart.Length == 0)
        {
            return new IPEndPoint(IPAddress.IPv6Any, port);
        }
        if (hostPart == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }
        if (!IPAddress.TryParse(hostPart, out var address))
        {
            errors.Add($"{setting.Key}: \"{value}\" (from {source}): \"{hostPart}\" is not an IP address. Fix: use an address such as 127.0.0.1 or ::1, or localhost.");
            return null;
        }
        return new IPEndPoint(address, port);
    }

    private static int ParseInteger(AgentSetting setting, (string Value, string Source) entry, int min, int max, List<string> errors)
    {
        if (int.TryParse(entry.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max)
        {
            return n;
        }
        errors.Add($"{setting.Key}: \"{entry.Value}\" (from {entry.Source}) must be a whole number from {min} to {max}.");
        return min;
    }

    /// <summary>Octal file permissions such as "600" or "0640" (no set-id or sticky bits).</summary>
    internal static UnixFileMode ParsePermissions(AgentSetting setting, (string Value, string Source) entry, List<string> errors)
    {
        var v = entry.Value.TrimStart('0');
        try
        {
            var mode = v.Length == 0 ? 0 : Convert.ToInt32(v, 8);
            if (v.Length <= 3 && mode is >= 0 and <= 0x1ff && (mode & 0x180) == 0x180)
            {
                return (UnixFileMode)mode;
            }
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
        }
        errors.Add($"{setting.Key}: \"{entry.Value}\" (from {entry.Source}) is not octal permissions the agent can write to. Fix: three octal digits with the owner's read and write, e.g. 600 or 640.");
        return Palisade.Exporters.FileRotation.DefaultMode;
    }

    /// <summary>Durations as "500ms", "10s", "2m", "1h" (Go's style, as Tetragon's flags take them).</summary>
    internal static TimeSpan ParseDuration(AgentSetting setting, (string Value, string Source) entry, List<string> errors)
    {
        var v = entry.Value;
        var unitStart = v.AsSpan().IndexOfAnyExcept("0123456789.");
        if (unitStart > 0 && double.TryParse(v.AsSpan(0, unitStart), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
        {
            double? ms = v[unitStart..] switch
            {
                "ms" => amount,
                "s" => amount * 1e3,
                "m" => amount * 60e3,
                "h" => amount * 3600e3,
                _ => null,
            };
            // A year bounds every duration the agent waits for; far beyond it TimeSpan overflows.
            if (ms is { } r && r <= TimeSpan.FromDays(366).TotalMilliseconds)
            {
                return TimeSpan.FromMilliseconds(r);
            }
        }
        errors.Add($"{setting.Key}: \"{v}\" (from {entry.Source}) is not a duration of at most a year. Fix: a number and a unit, e.g. 500ms, 10s, 2m or 1h.");
        return TimeSpan.FromSeconds(10);
    }

    /// <summary>
    /// A ring buffer size, e.g. "8M", "512K", "1G", "4096". As Tetragon takes rb-size: 0 means the
    /// default (8M); a size that is not a power of two (the BPF ring buffer needs one) is rounded up
    /// to the next, with a warning. From 4K to 1G.
    /// </summary>
    internal static int ParseSize(AgentSetting setting, (string Value, string Source) entry, List<string> errors, List<string>? warnings = null)
    {
        const int Default = 8 * 1024 * 1024;
        var v = entry.Value.Trim().ToUpperInvariant();
        long multiplier = v.EndsWith('K') ? 1024 : v.EndsWith('M') ? 1024 * 1024 : v.EndsWith('G') ? 1024 * 1024 * 1024 : 1;
        var digits = multiplier == 1 ? v : v[..^1];
        if (long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= (1L << 30) / multiplier)
        {
            var bytes = n * multiplier;
            if (bytes == 0)
            {
                return Default;
            }
            if (bytes >= ProcessSensorOptions.MinRingBufferBytes && bytes <= 1L << 30)
            {
                if ((bytes & (bytes - 1)) == 0)
                {
                    return (int)bytes;
                }
                var rounded = 1L << (64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)bytes));
                if (rounded <= 1L << 30)
                {
                    warnings?.Add($"{setting.Key}: \"{entry.Value}\" (from {entry.Source}) is not a power of two, which the BPF ring buffer needs: {rounded / 1024}K is used.");
                    return (int)rounded;
                }
            }
        }
        errors.Add($"{setting.Key}: \"{entry.Value}\" (from {entry.Source}) must be a size from 4K to 1G (0: the default, 8M), e.g. 8M; a size that is not a power of two is rounded up to one.");
        return Default;
    }

    private static string? NullIfEmpty(string value) => value.Length > 0 ? value : null;

    /// <summary>Event types Tetragon's enable-ancestors lists; the old true/false still work (true: base).</summary>
    internal static IReadOnlySet<string> ParseAncestors((string Value, string Source) entry, List<string> errors, List<string> warnings)
    {
        var key = AgentSettings.EnableAncestors.Key;
        var set = new HashSet<string>(StringComparer.Ordinal);
        var value = entry.Value.Trim().Trim('[', ']');
        if (value.Length == 0 || value.Equals("false", StringComparison.OrdinalIgnoreCase))
        {
            return set;
        }
        if (value.Equals("true", StringComparison.OrdinalIgnoreCase))
        {
            set.Add("base");
            return set;
        }
        foreach (var raw in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var type = raw.Trim('"', '\'').ToLowerInvariant();
            switch (type)
            {
                case "base" or "kprobe" or "tracepoint" or "uprobe" or "lsm":
                    set.Add(type);
                    break;
                case "usdt":
                    warnings.Add($"{key}: \"usdt\" (from {entry.Source}) is ignored: there are no USDT hooks.");
                    break;
                default:
                    // Tetragon ignores a type it does not know; so do we, aloud.
                    warnings.Add($"{key}: \"{raw}\" (from {entry.Source}) is not an event type and is ignored, as Tetragon ignores it. Types: base, kprobe, tracepoint, uprobe, lsm (comma-separated, base first).");
                    break;
            }
        }
        if (set.Count > 0 && !set.Contains("base"))
        {
            // Tetragon enables nothing without base; the same here, with the fix named.
            warnings.Add($"{key}: \"{entry.Value}\" (from {entry.Source}) lacks base, which every other type needs, so no ancestors are added (as in Tetragon). Fix: base,{string.Join(',', set.Order(StringComparer.Ordinal))}.");
            set.Clear();
        }
        return set;
    }

    private static Palisade.Exporters.SinkPipeline ParsePipeline(Dictionary<string, (string Value, string Source)> values, List<string> errors,
        out Palisade.Exporters.Filters.Redactor? redactor)
    {
        T Try<T>(AgentSetting setting, Func<string, string, T> parse, T fallback)
        {
            try
            {
                return parse(values[setting.Key].Value, $"{setting.Key} (from {values[setting.Key].Source})");
            }
            catch (Palisade.Exporters.Filters.FilterException e)
            {
                errors.Add(e.Message);
                return fallback;
            }
            catch (System.Text.Json.JsonException e)
            {
                errors.Add($"{setting.Key}: not valid JSON ({e.Message}).");
                return fallback;
            }
        }
        var allow = Try(AgentSettings.ExportAllowlist, Palisade.Exporters.Filters.EventFilter.ParseList, []);
        var deny = Try(AgentSettings.ExportDenylist, Palisade.Exporters.Filters.EventFilter.ParseList, []);
        var fields = Try(AgentSettings.FieldFilters, Palisade.Exporters.Filters.FieldFilter.ParseList, []);
        var redact = Try(AgentSettings.RedactionFilters, Palisade.Exporters.Filters.Redactor.Parse, null);
        redactor = redact is { Count: > 0 } ? redact : null;
        var limitText = values[AgentSettings.ExportRateLimit.Key];
        var limit = limitText.Value == "-1" ? 0 : ParseInteger(AgentSettings.ExportRateLimit, limitText, 1, 100_000_000, errors);
        return new Palisade.Exporters.SinkPipeline(new Palisade.Exporters.Filters.ExportFilter(allow, deny), fields, limit);
    }

    private static Palisade.Exporters.Elasticsearch.ElasticsearchOptions? ParseElasticsearch(Dictionary<string, (string Value, string Source)> values, List<string> errors)
    {
        var urlText = values[AgentSettings.ElasticsearchUrl.Key].Value;
        var cloudId = values[AgentSettings.ElasticsearchCloudId.Key].Value.Trim();
        if (urlText.Length == 0 && cloudId.Length == 0)
        {
            return null;
        }
        var nodes = new List<Uri>();
        if (urlText.Length > 0 && cloudId.Length > 0)
        {
            errors.Add($"{AgentSettings.ElasticsearchUrl.Key}/{AgentSettings.ElasticsearchCloudId.Key}: both are set; a Cloud ID names its own URL. Fix: set one of them.");
            return null;
        }
        if (cloudId.Length > 0)
        {
            try
            {
                nodes.Add(Palisade.Exporters.Elasticsearch.CloudId.Decode(cloudId));
            }
            catch (FormatException e)
            {
                errors.Add($"{AgentSettings.ElasticsearchCloudId.Key}: {e.Message}");
                return null;
            }
        }
        foreach (var part in urlText.Split(',', StringSplitOptions.TrimEntries))
        {
            if (cloudId.Length > 0)
            {
                break;
            }
            if (part.Length == 0)
            {
                errors.Add($"{AgentSettings.ElasticsearchUrl.Key}: \"{urlText}\" has an empty entry. Fix: node URLs separated by single commas, e.g. https://es-0:9200,https://es-1:9200.");
                return null;
            }
            if (!Uri.TryCreate(part, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            {
                errors.Add($"{AgentSettings.ElasticsearchUrl.Key}: \"{part}\" is not an http:// or https:// URL. Fix: e.g. https://elasticsearch.logging:9200 (several: comma-separated).");
                return null;
            }
            if (!string.IsNullOrEmpty(url.UserInfo))
            {
                errors.Add($"{AgentSettings.ElasticsearchUrl.Key}: credentials in the URL would be logged. Fix: use elasticsearch-username and elasticsearch-password-file.");
            }
            if (nodes.Contains(url))
            {
                errors.Add($"{AgentSettings.ElasticsearchUrl.Key}: \"{part}\" is listed twice. Fix: name each node once.");
            }
            nodes.Add(url);
        }
        var index = values[AgentSettings.ElasticsearchIndex.Key].Value;
        if (!ValidIndexName(index))
        {
            errors.Add($"{AgentSettings.ElasticsearchIndex.Key}: \"{index}\" is not a valid index name. Fix: lower case, no spaces or \\/*?\"<>|,#:, not starting with -, _ or +.");
        }
        int Integer(AgentSetting setting, int min, int max) => ParseInteger(setting, values[setting.Key], min, max, errors);
        return new Palisade.Exporters.Elasticsearch.ElasticsearchOptions
        {
            Nodes = nodes,
            Index = index,
            DailyIndices = values[AgentSettings.ElasticsearchIndexMode.Key].Value == "daily",
            SpoolDir = values[AgentSettings.ElasticsearchSpoolDir.Key].Value,
            SpoolMaxBytes = ParseBytes(AgentSettings.ElasticsearchSpoolMaxSize, values[AgentSettings.ElasticsearchSpoolMaxSize.Key], errors),
            BatchSize = Integer(AgentSettings.ElasticsearchBatchSize, 1, 100_000),
            BatchBytes = (int)Math.Min(int.MaxValue, ParseBytes(AgentSettings.ElasticsearchBatchBytes, values[AgentSettings.ElasticsearchBatchBytes.Key], errors)),
            FlushInterval = ParseDuration(AgentSettings.ElasticsearchFlushInterval, values[AgentSettings.ElasticsearchFlushInterval.Key], errors),
            Compress = values[AgentSettings.ElasticsearchCompress.Key].Value != "false",
            Username = NullIfEmpty(values[AgentSettings.ElasticsearchUsername.Key].Value),
            PasswordFile = NullIfEmpty(values[AgentSettings.ElasticsearchPasswordFile.Key].Value),
            ApiKeyFile = NullIfEmpty(values[AgentSettings.ElasticsearchApiKeyFile.Key].Value),
            BearerTokenFile = NullIfEmpty(values[AgentSettings.ElasticsearchBearerTokenFile.Key].Value),
            CaFile = NullIfEmpty(values[AgentSettings.ElasticsearchCaFile.Key].Value),
        };
    }

    private static bool ValidIndexName(string index) =>
        index.Length > 0 && index == index.ToLowerInvariant() && index.IndexOfAny(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) < 0 && index[0] is not ('-' or '_' or '+');

    /// <summary>A byte count such as "512K", "64M", "1G" or "4096".</summary>
    internal static long ParseBytes(AgentSetting setting, (string Value, string Source) entry, List<string> errors)
    {
        var v = entry.Value.ToUpperInvariant().TrimEnd('B', 'I');
        long multiplier = v.EndsWith('K') ? 1L << 10 : v.EndsWith('M') ? 1L << 20 : v.EndsWith('G') ? 1L << 30 : 1;
        var digits = multiplier == 1 ? v : v[..^1];
        if (long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 && n <= (1L << 50) / multiplier)
        {
            return n * multiplier;
        }
        errors.Add($"{setting.Key}: \"{entry.Value}\" (from {entry.Source}) is not a size. Fix: a number with K, M or G, e.g. 512M.");
        return 1L << 20;
    }

    private static string Suggest(string key) =>
        Suggestions.For(key, AgentSettings.All.Select(s => s.Key)).TrimStart();
}
