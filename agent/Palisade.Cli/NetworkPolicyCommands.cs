using System.CommandLine;
using System.Text.Json;
using Grpc.Core;
using Palisade.Agent.NetworkPolicy;
using Palisade.Api.V1;

namespace Palisade.Cli;

/// <summary>`palisade policy explain`, `policy audit` and the network section of `policy list`: network policy in the running agent.</summary>
internal static class NetworkPolicyCommands
{
    public static void AddTo(Command policy)
    {
        policy.Subcommands.Add(Explain());
        policy.Subcommands.Add(Audit());
    }

    /// <summary>The explain request a command line makes; throws <see cref="ArgumentException"/> naming what is wrong (checked before the agent is called).</summary>
    internal static ExplainNetworkPolicyRequest Request(ParseResult parse, ExplainOptions o)
    {
        var request = new ExplainNetworkPolicyRequest
        {
            From = parse.GetValue(o.From) ?? "",
            FromLabels = parse.GetValue(o.FromLabels) ?? "",
            FromIp = parse.GetValue(o.FromIp) ?? "",
            To = parse.GetValue(o.To) ?? "",
            ToLabels = parse.GetValue(o.ToLabels) ?? "",
            ToIp = parse.GetValue(o.ToIp) ?? "",
            Port = parse.GetValue(o.Port) ?? "",
            Protocol = parse.GetValue(o.Protocol) ?? "",
            LabelsNamespace = parse.GetValue(o.LabelsNamespace) ?? "",
        };
        NetworkPolicyJson.ParseRequest(request.From, request.FromLabels, request.FromIp, request.To, request.ToLabels, request.ToIp, request.Port, request.Protocol,
            request.LabelsNamespace.Length > 0 ? request.LabelsNamespace : null);
        return request;
    }

    internal sealed class ExplainOptions
    {
        public Option<string?> From { get; } = new("--from") { Description = "Source pod of this node: NAMESPACE/POD." };
        public Option<string?> FromLabels { get; } = new("--from-labels") { Description = "Source by pod labels: key=value[,key=value] (any pod with them, existing or not)." };
        public Option<string?> FromIp { get; } = new("--from-ip") { Description = "Source address (a local pod's, or outside: CIDR identity or world)." };
        public Option<string?> To { get; } = new("--to") { Description = "Destination pod of this node: NAMESPACE/POD." };
        public Option<string?> ToLabels { get; } = new("--to-labels") { Description = "Destination by pod labels: key=value[,key=value]." };
        public Option<string?> ToIp { get; } = new("--to-ip") { Description = "Destination address." };
        public Option<string?> Port { get; } = new("--port") { Description = "Destination port and protocol: 80/TCP, 53/UDP (ICMP: the type, default 8)." };
        public Option<string?> Protocol { get; } = new("--protocol") { Description = "TCP (default), UDP, SCTP, ICMP or ICMPv6, when --port gives none." };
        public Option<string?> LabelsNamespace { get; } = new("--labels-namespace") { Description = "Namespace of the --from-labels/--to-labels side (default: default)." };
        public Option<string> Output { get; } = new("--output", "-o") { Description = "text or json.", DefaultValueFactory = _ => "text" };
    }

    private static Command Explain()
    {
        var command = new Command("explain", "The verdict the datapath gives a connection under the network policies in force (FORWARDED, DROPPED, AUDIT), and the rules, in which files, that decide it. Exit code 0 forwarded or audit, 3 dropped.");
        var o = new ExplainOptions();
        o.Output.AcceptOnlyFromAmong("text", "json");
        var server = ClientCommands.ServerOption();
        foreach (var option in new Option[] { o.From, o.FromLabels, o.FromIp, o.To, o.ToLabels, o.ToIp, o.Port, o.Protocol, o.LabelsNamespace, o.Output, server })
        {
            command.Options.Add(option);
        }
        command.SetAction(async (parse, token) =>
        {
            ExplainNetworkPolicyRequest request;
            try
            {
                request = Request(parse, o);
            }
            catch (ArgumentException e)
            {
                await Console.Error.WriteLineAsync($"palisade policy explain: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            var address = ApiClient.Resolve(parse.GetValue(server));
            try
            {
                var response = await ApiClient.Connect(address).ExplainNetworkPolicyAsync(request, cancellationToken: token).ConfigureAwait(false);
                Console.Write(parse.GetValue(o.Output) == "json" ? response.Json + "\n" : response.Text);
                return response.Verdict == "DROPPED" ? 3 : 0;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument)
            {
                await Console.Error.WriteLineAsync($"palisade policy explain: {e.Status.Detail}").ConfigureAwait(false);
                return 1;
            }
            catch (RpcException e)
            {
                await Console.Error.WriteLineAsync($"palisade: {ApiClient.Explain(e, address)}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }

    private static Command Audit()
    {
        var command = new Command("audit", "Switch network policy audit mode live (verdicts reported as AUDIT, nothing dropped): for every endpoint (--all on|off) or for namespaces (--namespaces ns1,ns2; \"\" for none). Without options: show the current setting.");
        var all = new Option<string?>("--all") { Description = "on or off." };
        all.AcceptOnlyFromAmong("on", "off");
        var namespaces = new Option<string?>("--namespaces") { Description = "Comma-separated namespaces in audit mode (replaces the list)." };
        var server = ClientCommands.ServerOption();
        command.Options.Add(all);
        command.Options.Add(namespaces);
        command.Options.Add(server);
        command.SetAction(async (parse, token) =>
        {
            var request = new SetNetworkPolicyAuditRequest();
            if (parse.GetValue(all) is { } a)
            {
                request.SetAll = true;
                request.All = a == "on";
            }
            if (parse.GetValue(namespaces) is { } ns)
            {
                request.SetNamespaces = true;
                request.Namespaces.AddRange(ns.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            }
            var address = ApiClient.Resolve(parse.GetValue(server));
            try
            {
                var response = await ApiClient.Connect(address).SetNetworkPolicyAuditAsync(request, cancellationToken: token).ConfigureAwait(false);
                Console.WriteLine($"audit mode: all endpoints {(response.All ? "on" : "off")}; namespaces: {(response.Namespaces.Count == 0 ? "(none)" : string.Join(",", response.Namespaces))}");
                return 0;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument)
            {
                await Console.Error.WriteLineAsync($"palisade policy audit: {e.Status.Detail}").ConfigureAwait(false);
                return 1;
            }
            catch (RpcException e)
            {
                await Console.Error.WriteLineAsync($"palisade: {ApiClient.Explain(e, address)}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }

    /// <summary>The network section of `policy list`: one line per policy, its sources' errors below; nothing when the agent has none.</summary>
    internal static IEnumerable<string> Table(string statusJson)
    {
        using var doc = JsonDocument.Parse(statusJson);
        var np = doc.RootElement.GetProperty("network_policy");
        var policies = np.GetProperty("policies");
        var sources = np.GetProperty("sources");
        if (policies.GetArrayLength() == 0 && sources.GetArrayLength() == 0)
        {
            yield break;
        }
        yield return "";
        yield return $"NETWORK POLICIES (enforcement {np.GetProperty("enforcement").GetString()}{(np.GetProperty("audit_all").GetBoolean() ? ", audit mode for all" : "")})";
        yield return $"{"KIND",-32} {"NAMESPACE/NAME",-40} {"STATE",-20} {"ENTRIES",7} {"ENDPOINTS",9}  SOURCE";
        foreach (var p in policies.EnumerateArray())
        {
            var name = p.TryGetProperty("namespace", out var ns) ? $"{ns.GetString()}/{p.GetProperty("name").GetString()}" : p.GetProperty("name").GetString();
            var state = p.GetProperty("state").GetString() + (p.GetProperty("audit").GetBoolean() ? " audit" : "");
            yield return $"{p.GetProperty("kind").GetString(),-32} {name,-40} {state,-20} {p.GetProperty("map_entries").GetInt32(),7} {p.GetProperty("endpoints").GetArrayLength(),9}  {p.GetProperty("source").GetString()}";
            foreach (var u in p.GetProperty("unsupported").EnumerateArray())
            {
                yield return $"    {u.GetProperty("path").GetString()}: not supported yet: {u.GetProperty("message").GetString()}";
            }
        }
        foreach (var s in sources.EnumerateArray())
        {
            foreach (var e in s.GetProperty("errors").EnumerateArray())
            {
                var line = e.TryGetProperty("line", out var l) ? $" (line {l.GetInt32()})" : "";
                var field = e.GetProperty("field").GetString();
                yield return $"    error: {s.GetProperty("source").GetString()}: {(string.IsNullOrEmpty(field) ? "" : field + ": ")}{e.GetProperty("message").GetString()}{line}";
            }
        }
    }
}
