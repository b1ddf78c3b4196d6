using System.Text;
using Palisade.Cli.Observe;

namespace Palisade.Fuzz;

/// <summary>
/// An exported flow file piped into `palisade observe`: the first byte picks the output
/// (compact, json, table) and whether a filter and --last apply; the rest is the JSON lines.
/// Contract: the command ends with 0 or 1 (never an exception), and every complaint names
/// its line number.
/// </summary>
public static class ObservedFlowLines
{
    private static readonly string[] Outputs = ["compact", "json", "table"];
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 6, 0, 0, TimeSpan.Zero);

    public static void Run(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }
        var mode = input[0];
        var flags = (mode & 0x4) != 0
            ? new ObserveFlags { Namespace = ["shop"], Label = ["app=web"], Ip = ["10.244.0.0/16"], Protocol = ["tcp"] }
            : new ObserveFlags();
        var plan = ObserveCommand.MakePlan(flags, Outputs[mode % 3], color: (mode & 0x8) != 0, follow: false, last: (mode & 0x10) != 0 ? 2 : null, first: null,
            since: null, until: null, fromAgent: false, Now);
        var output = new StringWriter();
        var error = new StringWriter();
        var code = ObserveCommand.FromFile(new StringReader(Encoding.UTF8.GetString(input, 1, input.Length - 1)), output, error, plan, CancellationToken.None)
            .GetAwaiter().GetResult();
        if (code is not (0 or 1))
        {
            throw new InvalidOperationException($"observe ended with {code}");
        }
        foreach (var line in error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!line.StartsWith("palisade observe: line ", StringComparison.Ordinal) && !line.EndsWith("were not JSON event lines", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"a complaint without its line number: {line}");
            }
        }
    }

    public static IEnumerable<(string, byte[])> Seeds()
    {
        const string tcp = """{"flow":{"time":"2026-12-02T05:00:01.123456789Z","uuid":"6b2a1c1e-0d5e-4d3a-9a51-0f0c8f1e2a01","verdict":"FORWARDED","IP":{"source":"10.244.0.7","destination":"10.244.0.9","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":40000,"destination_port":80,"flags":{"SYN":true}}},"source":{"ID":7,"identity":40001,"namespace":"shop","labels":["k8s:app=web","k8s:io.kubernetes.pod.namespace=shop"],"pod_name":"web-1"},"destination":{"identity":2,"labels":["reserved:world"]},"Type":"L3_L4","node_name":"node-a","event_type":{"type":5},"traffic_direction":"EGRESS","trace_observation_point":"FROM_ENDPOINT","interface":{"index":3,"name":"lxc7"},"is_reply":false,"Summary":"TCP Flags: SYN","process":{"exec_id":"bm9kZS1hOjk5OjQyNDI=","pid":4242,"binary":"/usr/bin/curl","arguments":"http://10.244.0.9/"}},"node_name":"node-a","time":"2026-12-02T05:00:01.123456789Z"}""";
        const string drop = """{"flow":{"time":"2026-12-02T05:00:02Z","uuid":"u2","verdict":"DROPPED","drop_reason_desc":"POLICY_DENIED","IP":{"source":"fd00::1","destination":"fd00::7","ipVersion":"IPv6"},"l4":{"UDP":{"source_port":"5353","destination_port":53}},"destination":{"ID":"7","namespace":"shop","pod_name":"web-1"},"Type":"L3_L4","event_type":{"type":1,"sub_type":133},"traffic_direction":"INGRESS"},"node_name":"node-a","time":"2026-12-02T05:00:02Z"}""";
        const string icmp = """{"flow":{"time":"2026-12-02T05:00:03Z","verdict":"FORWARDED","IP":{"source":"10.244.0.7","destination":"10.244.0.1"},"l4":{"ICMPv4":{"type":8}},"traffic_direction":"EGRESS"},"node_name":"node-a"}""";
        const string exec = """{"process_exec":{"process":{"exec_id":"x","pid":1,"binary":"/bin/sh"}},"node_name":"node-a","time":"2026-12-02T05:00:00Z"}""";
        static (string, byte[]) Seed(string name, byte mode, params string[] lines) => (name, [mode, .. Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n")]);
        yield return Seed("compact", 0, exec, tcp, drop, icmp);
        yield return Seed("json-filtered", 1 | 0x4, tcp, drop, "not json", icmp);
        yield return Seed("table-last-color", 2 | 0x8 | 0x10, tcp, "", drop, "{\"flow\":1}", icmp);
    }
}
