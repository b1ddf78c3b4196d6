using System.CommandLine;
using System.Text.Json;
using Grpc.Core;
using Palisade.Agent.Api;
using Palisade.Api.V1;
using Palisade.Exporters;

namespace Palisade.Cli;

/// <summary>The verbs that talk to a running agent: getevents, policy add/delete/list/enable/disable/set-mode, status.</summary>
internal static class ClientCommands
{
    public static Option<string?> ServerOption() => new("--server-address")
    {
        Description = $"The agent's API: unix:///path or host:port. Default: PALISADE_SERVER_ADDRESS, else {ApiClient.DefaultAddress}.",
    };

    private static async Task<int> Call(string address, Func<FineGuidanceSensors.FineGuidanceSensorsClient, Task<int>> action)
    {
        try
        {
            return await action(ApiClient.Connect(address)).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            await Console.Error.WriteLineAsync($"palisade: {ApiClient.Explain(e, address)}").ConfigureAwait(false);
            return e.StatusCode is StatusCode.InvalidArgument or StatusCode.NotFound ? 1 : 2;
        }
    }

    public static Command GetEvents()
    {
        var command = new Command("getevents", "Stream events from the agent as they happen (like `tetra getevents`). Reconnects when the agent restarts. With a file or pipe on stdin (`cat events.json | palisade getevents -o compact`) it reads exported events from there instead, with the same filters.");
        var server = ServerOption();
        var output = new Option<string>("--output", "-o") { Description = "compact (one readable line per event) or json (one Tetragon-shaped object per line).", DefaultValueFactory = _ => "json" };
        output.AcceptOnlyFromAmong("compact", "json");
        var namespaces = new Option<string[]>("--namespaces", "--namespace", "-n") { Description = "Only events of pods in these namespaces (\"\" for host processes).", AllowMultipleArgumentsPerToken = true };
        var pods = new Option<string[]>("--pod", "--pods") { Description = "Only events of pods whose name matches these regexes.", AllowMultipleArgumentsPerToken = true };
        var binaries = new Option<string[]>("--processes", "--process", "--binary") { Description = "Only events of binaries matching these regexes.", AllowMultipleArgumentsPerToken = true };
        var policies = new Option<string[]>("--policy-names") { Description = "Only policy events of these policies.", AllowMultipleArgumentsPerToken = true };
        var types = new Option<string[]>("--event-types", "-e") { Description = "Only these types: PROCESS_EXEC, PROCESS_EXIT, PROCESS_KPROBE, PROCESS_TRACEPOINT, PROCESS_UPROBE, PROCESS_LSM.", AllowMultipleArgumentsPerToken = true };
        var color = new Option<string>("--color") { Description = "auto (when stdout is a terminal and NO_COLOR is unset), always or never.", DefaultValueFactory = _ => "auto" };
        color.AcceptOnlyFromAmong("auto", "always", "never");
        var host = new Option<bool>("--host") { Description = "Only events of host processes (no pod)." };
        var timestamps = new Option<bool>("--timestamps") { Description = "Start each compact line with the event's time." };
        var include = new Option<string[]>("--include-fields", "-f") { Description = "Only these fields of each event body (dotted paths, e.g. process.binary,parent.pid).", AllowMultipleArgumentsPerToken = true };
        var exclude = new Option<string[]>("--exclude-fields", "-F") { Description = "Leave these fields of each event body out.", AllowMultipleArgumentsPerToken = true };
        var input = new Option<string>("--input") { Description = "Read exported events (JSON lines) from this file, - for stdin, instead of the agent. Without it a pipe or file on stdin is read, unless --server-address is given." };
        foreach (var o in new Option[] { server, output, namespaces, pods, binaries, policies, types, color, host, timestamps, include, exclude, input })
        {
            command.Options.Add(o);
        }
        command.SetAction(async (parse, token) =>
        {
            var address = ApiClient.Resolve(parse.GetValue(server));
            var filter = new Filter();
            filter.Namespace.AddRange(parse.GetValue(namespaces) ?? []);
            if (parse.GetValue(host))
            {
                filter.Namespace.Add("");
            }
            filter.PodRegex.AddRange(parse.GetValue(pods) ?? []);
            filter.BinaryRegex.AddRange(parse.GetValue(binaries) ?? []);
            filter.PolicyNames.AddRange(parse.GetValue(policies) ?? []);
            foreach (var t in parse.GetValue(types) ?? [])
            {
                if (!Enum.TryParse<EventType>(t.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var type) || type == EventType.Undef)
                {
                    await Console.Error.WriteLineAsync($"palisade getevents: --event-types: unknown type \"{t}\"; use PROCESS_EXEC, PROCESS_EXIT, PROCESS_KPROBE, PROCESS_TRACEPOINT, PROCESS_UPROBE or PROCESS_LSM.").ConfigureAwait(false);
                    return 2;
                }
                filter.EventSet.Add(type);
            }
            var request = new GetEventsRequest();
            if (!filter.Equals(new Filter()))
            {
                request.AllowList.Add(filter);
            }
            var includeFields = parse.GetValue(include) ?? [];
            var excludeFields = parse.GetValue(exclude) ?? [];
            if (includeFields.Length > 0)
            {
                request.FieldFilters.Add(new FieldFilter { Fields = string.Join(',', includeFields), Action = FieldFilterAction.Include });
            }
            if (excludeFields.Length > 0)
            {
                request.FieldFilters.Add(new FieldFilter { Fields = string.Join(',', excludeFields), Action = FieldFilterAction.Exclude });
            }
            var compact = parse.GetValue(output) == "compact";
            var withTime = parse.GetValue(timestamps);
            var useColor = parse.GetValue(color) switch
            {
                "always" => true,
                "never" => false,
                _ => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null,
            };
            var stdout = Console.Out;
            string Render(JsonElement root) =>
                (withTime && root.TryGetProperty("time", out var t) ? t.GetString() + " " : "") + CompactFormat.Format(root, useColor);
            var inputPath = parse.GetValue(input) ?? (parse.GetValue(server) is null && StdinHasData() ? "-" : null);
            if (inputPath is not null)
            {
                // tetra's habit: events on stdin (an exported file) are read from there, not from the agent.
                TextReader reader;
                try
                {
                    reader = inputPath == "-" ? Console.In : new StreamReader(inputPath);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    await Console.Error.WriteLineAsync($"palisade getevents: --input {inputPath}: {e.Message}").ConfigureAwait(false);
                    return 2;
                }
                using var owned = inputPath == "-" ? null : reader;
                EventFileFilter local;
                try
                {
                    local = new EventFileFilter(filter.EventSet.Select(t => EventTypeName(t)), filter.Namespace, filter.PodRegex, filter.BinaryRegex, filter.PolicyNames, includeFields, excludeFields);
                }
                catch (ArgumentException e)
                {
                    await Console.Error.WriteLineAsync($"palisade getevents: bad regex: {e.Message}").ConfigureAwait(false);
                    return 2;
                }
                var lineNumber = 0;
                while (await reader.ReadLineAsync(token).ConfigureAwait(false) is { } line)
                {
                    lineNumber++;
                    if (string.IsNullOrWhiteSpace(line))
                    {
                        continue;
                    }
                    System.Text.Json.Nodes.JsonObject? kept;
                    try
                    {
                        kept = local.Apply(line);
                    }
                    catch (JsonException e)
                    {
                        await Console.Error.WriteLineAsync($"palisade getevents: stdin line {lineNumber} is not an exported event ({e.Message}); skipped.").ConfigureAwait(false);
                        continue;
                    }
                    if (kept is null)
                    {
                        continue;
                    }
                    if (compact)
                    {
                        using var doc = JsonDocument.Parse(kept.ToJsonString());
                        await stdout.WriteLineAsync(Render(doc.RootElement)).ConfigureAwait(false);
                    }
                    else
                    {
                        await stdout.WriteLineAsync(kept.ToJsonString()).ConfigureAwait(false);
                    }
                }
                await stdout.FlushAsync(token).ConfigureAwait(false);
                return 0;
            }
            var announced = false;
            var delay = TimeSpan.FromMilliseconds(250);
            while (!token.IsCancellationRequested)
            {
                try
                {
                    using var call = ApiClient.Connect(address).GetEvents(request, cancellationToken: token);
                    await foreach (var message in call.ResponseStream.ReadAllAsync(token).ConfigureAwait(false))
                    {
                        var json = EventMessages.ToJson(message);
                        if (compact)
                        {
                            using var doc = JsonDocument.Parse(json);
                            await stdout.WriteLineAsync(Render(doc.RootElement)).ConfigureAwait(false);
                        }
                        else
                        {
                            await stdout.WriteLineAsync(json).ConfigureAwait(false);
                        }
                        await stdout.FlushAsync(token).ConfigureAwait(false);
                        delay = TimeSpan.FromMilliseconds(250);
                        announced = false;
                    }
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument)
                {
                    await Console.Error.WriteLineAsync($"palisade getevents: {e.Status.Detail}").ConfigureAwait(false);
                    return 2;
                }
                catch (RpcException e) when (!token.IsCancellationRequested && e.StatusCode != StatusCode.Cancelled)
                {
                    if (!announced)
                    {
                        await Console.Error.WriteLineAsync($"palisade getevents: {ApiClient.Explain(e, address)} Reconnecting...").ConfigureAwait(false);
                        announced = true;
                    }
                }
                catch (Exception) when (token.IsCancellationRequested)
                {
                    break;
                }
                try
                {
                    await Task.Delay(delay, token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                delay = TimeSpan.FromMilliseconds(Math.Min(5000, delay.TotalMilliseconds * 2));
            }
            return 0;
        });
        return command;
    }

    public static void AddPolicyVerbs(Command policy)
    {
        var add = new Command("add", "Load TracingPolicy YAML files into the running agent (replacing policies of the same name).");
        var addFiles = new Argument<FileInfo[]>("FILE") { Arity = ArgumentArity.OneOrMore, Description = "Policy files." };
        var addServer = ServerOption();
        add.Arguments.Add(addFiles);
        add.Options.Add(addServer);
        add.SetAction((parse, token) => Call(ApiClient.Resolve(parse.GetValue(addServer)), async client =>
        {
            var failed = false;
            foreach (var file in parse.GetValue(addFiles) ?? [])
            {
                if (!file.Exists)
                {
                    await Console.Error.WriteLineAsync($"{file.FullName}: no such file").ConfigureAwait(false);
                    failed = true;
                    continue;
                }
                try
                {
                    var response = await client.AddTracingPolicyAsync(new AddTracingPolicyRequest { Yaml = await File.ReadAllTextAsync(file.FullName, token).ConfigureAwait(false) }, cancellationToken: token).ConfigureAwait(false);
                    foreach (var p in response.Policies)
                    {
                        Console.WriteLine($"{file.Name}: {p.Name} {StateName(p.State)} ({ModeName(p.Mode)})" + (p.Error.Length > 0 ? $": {p.Error}" : ""));
                    }
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument)
                {
                    foreach (var line in e.Status.Detail.Split('\n'))
                    {
                        await Console.Error.WriteLineAsync($"{file.Name}: {line}").ConfigureAwait(false);
                    }
                    failed = true;
                }
            }
            return failed ? 1 : 0;
        }));
        policy.Subcommands.Add(add);

        var delete = NameVerb("delete", "Unload a policy: its enforcement stops at once.", (client, name, token) =>
            client.DeleteTracingPolicyAsync(new DeleteTracingPolicyRequest { Name = name }, cancellationToken: token).ResponseAsync, "deleted");
        policy.Subcommands.Add(delete);
        policy.Subcommands.Add(NameVerb("enable", "Enable a loaded policy.", (client, name, token) =>
            client.ConfigureTracingPolicyAsync(new ConfigureTracingPolicyRequest { Name = name, Enable = true }, cancellationToken: token).ResponseAsync, "enabled"));
        policy.Subcommands.Add(NameVerb("disable", "Disable a loaded policy (it stays loaded; enable brings it back).", (client, name, token) =>
            client.ConfigureTracingPolicyAsync(new ConfigureTracingPolicyRequest { Name = name, Enable = false }, cancellationToken: token).ResponseAsync, "disabled"));

        var setMode = new Command("set-mode", "Switch a policy between enforce (kill, signal, override) and monitor (report what it would have done).");
        var setName = new Argument<string>("NAME") { Description = "Policy name." };
        var mode = new Argument<string>("MODE") { Description = "enforce or monitor." };
        mode.AcceptOnlyFromAmong("enforce", "monitor");
        var setServer = ServerOption();
        setMode.Arguments.Add(setName);
        setMode.Arguments.Add(mode);
        setMode.Options.Add(setServer);
        setMode.SetAction((parse, token) => Call(ApiClient.Resolve(parse.GetValue(setServer)), async client =>
        {
            var name = parse.GetValue(setName)!;
            var m = parse.GetValue(mode) == "monitor" ? TracingPolicyMode.TpModeMonitor : TracingPolicyMode.TpModeEnforce;
            await client.ConfigureTracingPolicyAsync(new ConfigureTracingPolicyRequest { Name = name, Mode = m }, cancellationToken: token).ConfigureAwait(false);
            Console.WriteLine($"{name}: mode {ModeName(m)}");
            return 0;
        }));
        policy.Subcommands.Add(setMode);

        var list = new Command("list", "Loaded policies with state, mode, per-hook status and counters.");
        var listOutput = new Option<string>("--output", "-o") { Description = "table (or text, as tetra names it) or json.", DefaultValueFactory = _ => "table" };
        listOutput.AcceptOnlyFromAmong("table", "text", "json");
        var listServer = ServerOption();
        var listNetwork = new Option<bool>("--network") { Description = "Only the network policies (NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy): state, map entries, endpoints, errors." };
        list.Options.Add(listNetwork);
        list.Options.Add(listOutput);
        list.Options.Add(listServer);
        list.SetAction((parse, token) => Call(ApiClient.Resolve(parse.GetValue(listServer)), async client =>
        {
            if (parse.GetValue(listNetwork))
            {
                var network = await client.ListNetworkPoliciesAsync(new ListNetworkPoliciesRequest(), cancellationToken: token).ConfigureAwait(false);
                Console.WriteLine(parse.GetValue(listOutput) == "json" ? network.StatusJson : string.Join("\n", NetworkPolicyCommands.Table(network.StatusJson)).TrimStart('\n'));
                return 0;
            }
            var response = await client.ListTracingPoliciesAsync(new ListTracingPoliciesRequest(), cancellationToken: token).ConfigureAwait(false);
            if (parse.GetValue(listOutput) == "json")
            {
                Console.WriteLine(EventMessages.ToJson(response));
                return 0;
            }
            Console.WriteLine($"{"NAME",-32} {"STATE",-18} {"MODE",-8} {"MATCHED",8} {"POSTED",8} {"KILLED",8}  SOURCE");
            foreach (var p in response.Policies)
            {
                var c = p.Counters;
                Console.WriteLine($"{p.Name,-32} {StateName(p.State),-18} {ModeName(p.Mode),-8} {c.Matched,8} {c.Posted,8} {c.Killed,8}  {p.Source}");
                foreach (var h in p.Hooks)
                {
                    Console.WriteLine($"    {h.Type} {h.Name}: {h.Mode} - {h.Detail}");
                }
                if (p.Error.Length > 0)
                {
                    Console.WriteLine($"    error: {p.Error}");
                }
            }
            var networkPolicies = await client.ListNetworkPoliciesAsync(new ListNetworkPoliciesRequest(), cancellationToken: token).ConfigureAwait(false);
            foreach (var line in NetworkPolicyCommands.Table(networkPolicies.StatusJson))
            {
                Console.WriteLine(line);
            }
            return 0;
        }));
        policy.Subcommands.Add(list);
        NetworkPolicyCommands.AddTo(policy);
    }

    private static Command NameVerb(string verb, string description, Func<FineGuidanceSensors.FineGuidanceSensorsClient, string, CancellationToken, Task> call, string done)
    {
        var command = new Command(verb, description);
        var names = new Argument<string[]>("NAME") { Arity = ArgumentArity.OneOrMore, Description = "Policy names." };
        var server = ServerOption();
        command.Arguments.Add(names);
        command.Options.Add(server);
        command.SetAction((parse, token) => Call(ApiClient.Resolve(parse.GetValue(server)), async client =>
        {
            foreach (var name in parse.GetValue(names) ?? [])
            {
                await call(client, name, token).ConfigureAwait(false);
                Console.WriteLine($"{name}: {done}");
            }
            return 0;
        }));
        return command;
    }

    public static Command Status()
    {
        var command = new Command("status", "Health, version, kernel and counters of the running agent.");
        var server = ServerOption();
        command.Options.Add(server);
        command.SetAction((parse, token) => Call(ApiClient.Resolve(parse.GetValue(server)), async client =>
        {
            var health = await client.GetHealthAsync(new GetHealthStatusRequest(), cancellationToken: token).ConfigureAwait(false);
            var info = await client.GetInfoAsync(new GetInfoRequest(), cancellationToken: token).ConfigureAwait(false);
            var h = health.HealthStatus.FirstOrDefault();
            Console.WriteLine($"agent:   palisade {info.Version}, {(h?.Status == HealthStatusResult.HealthStatusRunning ? "running" : h?.Details ?? "unknown")}");
            Console.WriteLine($"kernel:  {info.KernelRelease}; {info.Probes.Count(p => p.Enabled)}/{info.Probes.Count} probed features available");
            if (FlowsLine(info.StatusJson) is { } flows)
            {
                Console.WriteLine(flows);
            }
            Console.WriteLine(info.StatusJson);
            return h?.Status == HealthStatusResult.HealthStatusRunning ? 0 : 1;
        }));
        return command;
    }

    /// <summary>
    /// One line on the flow path from the status document: what was reported, aggregated and
    /// lost, and what the agent could not decode; null when the agent runs no flows.
    /// </summary>
    internal static string? FlowsLine(string statusJson)
    {
        using var doc = JsonDocument.Parse(statusJson);
        if (!doc.RootElement.TryGetProperty("flows", out var f) || f.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        static long N(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.TryGetInt64(out var n) ? n : 0;
        var parts = new List<string>();
        if (f.TryGetProperty("records_reported", out _))
        {
            parts.Add($"{N(f, "records_reported")} records reported, {N(f, "packets_aggregated")} packets aggregated, {N(f, "records_lost_ringbuf_full")} lost (ring buffer full)");
            if (N(f, "table_full") is > 0 and var full)
            {
                parts.Add($"{full} not tracked (table full)");
            }
        }
        if (f.TryGetProperty("table", out var table))
        {
            parts.Add($"table {N(table, "entries")}/{N(table, "capacity")} ({N(table, "evicted")} evicted)");
        }
        if (f.TryGetProperty("decoder", out var d))
        {
            parts.Add($"{N(d, "decoded")} decoded, {N(d, "malformed")} malformed, {N(d, "process_misses")} without their process");
        }
        return parts.Count == 0 ? null : $"flows:   {string.Join("; ", parts)}";
    }

    public static Command Completion()
    {
        var command = new Command("completion", "Print a shell completion script: `source <(palisade completion bash)` (or zsh).");
        var shell = new Argument<string>("SHELL") { Description = "bash or zsh." };
        shell.AcceptOnlyFromAmong("bash", "zsh");
        command.Arguments.Add(shell);
        command.SetAction(parse =>
        {
            var bash = """
                _palisade_complete() {
                  local IFS=$'\n'
                  COMPREPLY=( $(palisade "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null) )
                }
                complete -o default -F _palisade_complete palisade
                """;
            Console.WriteLine(parse.GetValue(shell) == "zsh" ? "autoload -U +X bashcompinit && bashcompinit\n" + bash : bash);
            return 0;
        });
        return command;
    }

    /// <summary>Whether stdin is a pipe or a regular file (what tetra reads events from), not a terminal or /dev/null.</summary>
    internal static bool StdinHasData()
    {
        if (!Console.IsInputRedirected)
        {
            return false;
        }
        try
        {
            var target = new FileInfo("/proc/self/fd/0").LinkTarget;
            return target is not null && (target.StartsWith("pipe:", StringComparison.Ordinal) || (!target.StartsWith("/dev/", StringComparison.Ordinal) && File.Exists(target)));
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The JSON body key of an event type: ProcessExec -> process_exec.</summary>
    internal static string EventTypeName(EventType t) =>
        string.Concat(t.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));

    private static string StateName(TracingPolicyState s) => s switch
    {
        TracingPolicyState.TpStateEnabled => "enabled",
        TracingPolicyState.TpStateDisabled => "disabled",
        TracingPolicyState.TpStatePartiallyEnabled => "partially_enabled",
        TracingPolicyState.TpStateLoadError or TracingPolicyState.TpStateError => "error",
        _ => "unknown",
    };

    private static string ModeName(TracingPolicyMode m) => m == TracingPolicyMode.TpModeMonitor ? "monitor" : "enforce";
}
