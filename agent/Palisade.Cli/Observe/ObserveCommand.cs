using System.CommandLine;
using System.Text.Json;
using Timestamp = Google.Protobuf.WellKnownTypes.Timestamp;
using Grpc.Core;
using Palisade.Agent.Api;
using Palisade.Api.V1;
using Palisade.Datapath.Flows;

namespace Palisade.Cli.Observe;

/// <summary>`palisade observe`: flows from the agent (GetFlows) or from an exported JSON-lines file, with `hubble observe`'s flags.</summary>
internal static class ObserveCommand
{
    /// <summary>What `hubble observe` shows without --last, --since or --follow.</summary>
    public const int DefaultLast = 20;

    /// <summary>What to read and how to print it, once the flags are parsed.</summary>
    internal sealed record Plan(GetFlowsRequest Request, FlowFilterSet Filter, string Output, bool Color);

    public static Command Create()
    {
        var command = new Command("observe", "Show network flows (like `hubble observe`), with the process that owns each socket. Reads from the running agent, or from exported JSON lines on stdin or --input-file (`cat events.json | palisade observe --verdict DROPPED`).");
        var server = ClientCommands.ServerOption();
        var input = new Option<string?>("--input-file") { Description = "Read flows from this JSON-lines file (- for stdin) instead of the agent. Default: stdin when it is not a terminal and --server-address is not given." };
        var output = new Option<string>("--output", "-o") { Description = "compact (one line per flow), json (Hubble's GetFlowsResponse per line) or table.", DefaultValueFactory = _ => "compact" };
        output.AcceptOnlyFromAmong("compact", "json", "table");
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep streaming new flows." };
        var last = new Option<int?>("--last") { Description = $"Only the last N flows (default {DefaultLast} from the agent without --follow or --since; a file: all)." };
        var first = new Option<int?>("--first") { Description = "Only the first N flows." };
        var since = new Option<string?>("--since") { Description = "Flows since this time (2026-12-02T05:00:00Z) or this long ago (5m, 1h30m)." };
        var until = new Option<string?>("--until") { Description = "Flows until this time or this long ago." };
        var color = new Option<string>("--color") { Description = "auto (when stdout is a terminal and NO_COLOR is unset), always or never.", DefaultValueFactory = _ => "auto" };
        color.AcceptOnlyFromAmong("auto", "always", "never");
        Option<string[]> Many(string name, string description, params string[] aliases)
        {
            var o = new Option<string[]>(name, aliases) { Description = description, AllowMultipleArgumentsPerToken = false };
            command.Options.Add(o);
            return o;
        }
        var pod = Many("--pod", "Flows from or to this pod ([NAMESPACE/]NAME-PREFIX).");
        var fromPod = Many("--from-pod", "Flows from this pod ([NAMESPACE/]NAME-PREFIX).");
        var toPod = Many("--to-pod", "Flows to this pod ([NAMESPACE/]NAME-PREFIX).");
        var ns = Many("--namespace", "Flows from or to pods of this namespace; also the namespace of --pod names without one.", "-n");
        var fromNs = Many("--from-namespace", "Flows from pods of this namespace.");
        var toNs = Many("--to-namespace", "Flows to pods of this namespace.");
        var label = Many("--label", "Flows from or to endpoints with these labels (app=web,tier=front; k8s:app=web; !key).", "-l");
        var fromLabel = Many("--from-label", "Flows from endpoints with these labels.");
        var toLabel = Many("--to-label", "Flows to endpoints with these labels.");
        var ip = Many("--ip", "Flows from or to this address or CIDR.");
        var fromIp = Many("--from-ip", "Flows from this address or CIDR.");
        var toIp = Many("--to-ip", "Flows to this address or CIDR.");
        var port = Many("--port", "Flows from or to this port.");
        var fromPort = Many("--from-port", "Flows from this port.");
        var toPort = Many("--to-port", "Flows to this port.");
        var protocol = Many("--protocol", "tcp, udp, icmp, icmpv4 or icmpv6.");
        var verdict = Many("--verdict", "FORWARDED, DROPPED, ERROR, AUDIT, ...");
        var type = Many("--type", "drop, trace or policy-verdict.", "-t");
        var direction = Many("--traffic-direction", "ingress or egress.");
        var uuid = Many("--uuid", "The flow with this uuid.");
        foreach (var o in new Option[] { server, input, output, follow, last, first, since, until, color })
        {
            command.Options.Add(o);
        }
        command.SetAction(async (parse, token) =>
        {
            var flags = new ObserveFlags
            {
                Pod = parse.GetValue(pod) ?? [], FromPod = parse.GetValue(fromPod) ?? [], ToPod = parse.GetValue(toPod) ?? [],
                Namespace = parse.GetValue(ns) ?? [], FromNamespace = parse.GetValue(fromNs) ?? [], ToNamespace = parse.GetValue(toNs) ?? [],
                Label = parse.GetValue(label) ?? [], FromLabel = parse.GetValue(fromLabel) ?? [], ToLabel = parse.GetValue(toLabel) ?? [],
                Ip = parse.GetValue(ip) ?? [], FromIp = parse.GetValue(fromIp) ?? [], ToIp = parse.GetValue(toIp) ?? [],
                Port = parse.GetValue(port) ?? [], FromPort = parse.GetValue(fromPort) ?? [], ToPort = parse.GetValue(toPort) ?? [],
                Protocol = parse.GetValue(protocol) ?? [], Verdict = parse.GetValue(verdict) ?? [], Type = parse.GetValue(type) ?? [],
                TrafficDirection = parse.GetValue(direction) ?? [], Uuid = parse.GetValue(uuid) ?? [],
            };
            var useColor = parse.GetValue(color) switch
            {
                "always" => true,
                "never" => false,
                _ => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null,
            };
            var serverAddress = parse.GetValue(server);
            var file = parse.GetValue(input) ?? (serverAddress is null && Console.IsInputRedirected ? "-" : null);
            Plan plan;
            try
            {
                plan = MakePlan(flags, parse.GetValue(output)!, useColor, parse.GetValue(follow), parse.GetValue(last), parse.GetValue(first),
                    parse.GetValue(since), parse.GetValue(until), fromAgent: file is null, DateTimeOffset.UtcNow);
            }
            catch (Exception e) when (e is ObserveUsageException or FlowFilterException)
            {
                await Console.Error.WriteLineAsync($"palisade observe: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            if (file is not null)
            {
                if (file != "-" && !File.Exists(file))
                {
                    await Console.Error.WriteLineAsync($"palisade observe: --input-file: {file}: no such file").ConfigureAwait(false);
                    return 2;
                }
                using var reader = file == "-" ? new StreamReader(Console.OpenStandardInput()) : new StreamReader(file);
                return await FromFile(reader, Console.Out, Console.Error, plan, token).ConfigureAwait(false);
            }
            return await FromAgent(ApiClient.Resolve(serverAddress), Console.Out, plan, token).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>The GetFlows request and the local filter of a set of flags; throws <see cref="ObserveUsageException"/> or <see cref="FlowFilterException"/> on a bad one.</summary>
    internal static Plan MakePlan(ObserveFlags flags, string output, bool color, bool follow, int? last, int? first, string? since, string? until,
        bool fromAgent, DateTimeOffset now)
    {
        if (last is < 0 || first is < 0)
        {
            throw new ObserveUsageException("--last/--first: a count of flows cannot be negative.");
        }
        if (last is not null && first is not null)
        {
            throw new ObserveUsageException("--last and --first cannot be used together: one takes flows from the end, the other from the start.");
        }
        var request = new GetFlowsRequest { Follow = follow };
        request.Whitelist.AddRange(ObserveFilters.Whitelist(flags));
        if (since is not null)
        {
            request.Since = Timestamp.FromDateTimeOffset(ObserveFilters.Time("--since", since, now));
        }
        if (until is not null)
        {
            request.Until = Timestamp.FromDateTimeOffset(ObserveFilters.Time("--until", until, now));
        }
        if (first is { } n)
        {
            request.Number = (ulong)n;
            request.First = true;
        }
        else if (last is { } l)
        {
            request.Number = (ulong)l;
        }
        else if (fromAgent && !follow && since is null)
        {
            request.Number = DefaultLast;
        }
        // The same filters, checked here: a bad value is reported before anything is read.
        return new Plan(request, FlowMessages.ToFilterSet(request), output, color);
    }

    /// <summary>Filters and prints the flows of JSON lines; lines of other events pass silently, unreadable ones are reported and skipped.</summary>
    internal static async Task<int> FromFile(TextReader reader, TextWriter output, TextWriter error, Plan plan, CancellationToken token)
    {
        var request = plan.Request;
        var since = request.Since?.ToDateTimeOffset();
        var until = request.Until?.ToDateTimeOffset();
        var tail = request.Number > 0 && !request.First ? new Queue<(string, ObservedFlow)>() : null;
        ulong printed = 0;
        var lineNumber = 0;
        var bad = 0;
        var header = false;
        while (await reader.ReadLineAsync(token).ConfigureAwait(false) is { } line)
        {
            lineNumber++;
            if (line.Length == 0)
            {
                continue;
            }
            ObservedFlow? o;
            try
            {
                o = FlowJsonReader.Read(line);
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or OverflowException)
            {
                if (bad++ < 10)
                {
                    await error.WriteLineAsync($"palisade observe: line {lineNumber}: not a JSON event line ({e.Message}); skipped").ConfigureAwait(false);
                }
                continue;
            }
            if (o is null || (since is { } s && o.Flow.Time < s) || (until is { } u && o.Flow.Time > u) || !plan.Filter.Passes(o.Flow, o.NodeName))
            {
                continue;
            }
            if (tail is not null)
            {
                tail.Enqueue((line, o));
                if ((ulong)tail.Count > request.Number)
                {
                    tail.Dequeue();
                }
                continue;
            }
            header = await Print(output, plan, line, o, header).ConfigureAwait(false);
            if (request.First && ++printed >= request.Number)
            {
                break;
            }
        }
        foreach (var (line, o) in tail ?? [])
        {
            header = await Print(output, plan, line, o, header).ConfigureAwait(false);
        }
        if (bad > 10)
        {
            await error.WriteLineAsync($"palisade observe: {bad} lines in all were not JSON event lines").ConfigureAwait(false);
        }
        return bad > 0 ? 1 : 0;
    }

    private static async Task<bool> Print(TextWriter output, Plan plan, string json, ObservedFlow o, bool headerDone)
    {
        switch (plan.Output)
        {
            case "json":
                await output.WriteLineAsync(json).ConfigureAwait(false);
                return headerDone;
            case "table":
                if (!headerDone)
                {
                    await output.WriteLineAsync(FlowText.TableHeader).ConfigureAwait(false);
                }
                await output.WriteLineAsync(FlowText.TableRow(o)).ConfigureAwait(false);
                return true;
            default:
                await output.WriteLineAsync(FlowText.Compact(o, plan.Color)).ConfigureAwait(false);
                return headerDone;
        }
    }

    /// <summary>Streams GetFlows; with --follow it reconnects when the agent restarts (asking only for new flows then).</summary>
    private static async Task<int> FromAgent(string address, TextWriter output, Plan plan, CancellationToken token)
    {
        var request = plan.Request;
        var header = false;
        var delay = TimeSpan.FromMilliseconds(250);
        var announced = false;
        while (!token.IsCancellationRequested)
        {
            try
            {
                using var call = ApiClient.Connect(address).GetFlows(request, cancellationToken: token);
                await foreach (var message in call.ResponseStream.ReadAllAsync(token).ConfigureAwait(false))
                {
                    if (message.ResponseTypesCase == GetFlowsResponse.ResponseTypesOneofCase.LostEvents)
                    {
                        await Console.Error.WriteLineAsync($"palisade observe: {message.LostEvents.NumEventsLost} flows lost: this stream read too slowly for the agent's queue").ConfigureAwait(false);
                        continue;
                    }
                    var json = EventMessages.ToJson(message);
                    if (FlowJsonReader.Read(json) is { } o)
                    {
                        header = await Print(output, plan, json, o, header).ConfigureAwait(false);
                        await output.FlushAsync(token).ConfigureAwait(false);
                    }
                    delay = TimeSpan.FromMilliseconds(250);
                    announced = false;
                }
                if (!request.Follow)
                {
                    return 0;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument)
            {
                await Console.Error.WriteLineAsync($"palisade observe: {e.Status.Detail}").ConfigureAwait(false);
                return 2;
            }
            catch (RpcException e) when (!token.IsCancellationRequested && e.StatusCode != StatusCode.Cancelled)
            {
                if (!request.Follow)
                {
                    await Console.Error.WriteLineAsync($"palisade observe: {ApiClient.Explain(e, address)}").ConfigureAwait(false);
                    return 2;
                }
                if (!announced)
                {
                    await Console.Error.WriteLineAsync($"palisade observe: {ApiClient.Explain(e, address)} Reconnecting...").ConfigureAwait(false);
                    announced = true;
                }
            }
            catch (Exception) when (token.IsCancellationRequested)
            {
                break;
            }
            // After a reconnect only new flows: the history was shown already.
            request = request.Clone();
            request.Number = 0;
            request.Since = null;
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
    }
}
