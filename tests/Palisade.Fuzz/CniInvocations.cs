using System.Text;
using Palisade.Cni;

namespace Palisade.Fuzz;

/// <summary>
/// What a runtime hands palisade-cni: the first byte picks CNI_COMMAND, the rest up to the
/// first newline is CNI_ARGS, the rest is the configuration on stdin. Contract: a call, or a
/// <see cref="CniException"/> with one of the spec's codes, a message and a fix; a parsed
/// call turns into its request, and its prevResult prints in every version.
/// </summary>
public static class CniInvocations
{
    private static readonly uint[] Codes = [1, 2, 4, 6, 7];

    public static void Run(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }
        var rest = input.AsSpan(1);
        var newline = rest.IndexOf((byte)'\n');
        var args = Encoding.UTF8.GetString(newline < 0 ? [] : rest[..newline]);
        var config = (newline < 0 ? rest : rest[(newline + 1)..]).ToArray();
        // VERSION reads no configuration: the other five commands are the ones that parse it.
        var command = CniEnvironment.Commands[input[0] % 5];
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = "1fb931d2f6e5",
            ["CNI_NETNS"] = "/run/netns/fuzz",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_ARGS"] = args,
            ["CNI_PATH"] = "/opt/cni/bin",
        };
        Judge(() => CniArgs.Parse(args));
        Judge(() =>
        {
            var call = CniCall.Parse(name => env.GetValueOrDefault(name), config);
            _ = call.ToRequest();
            if (call.Config.PrevResult is { } prev)
            {
                foreach (var version in CniVersion.Supported)
                {
                    _ = ResultFormat.Serialize(ResultFormat.ToJson(ResultFormat.Merge(prev, prev), version));
                }
            }
        });
    }

    private static void Judge(Action parse)
    {
        try
        {
            parse();
        }
        catch (CniException e) when (Array.IndexOf(Codes, e.Code) >= 0 && e.Message.Length > 0 && e.Details.Length > 0)
        {
        }
    }

    public static IEnumerable<(string, byte[])> Seeds()
    {
        static (string, byte[]) Seed(string name, int command, string args, string config) =>
            (name, [(byte)command, .. Encoding.UTF8.GetBytes(args + "\n" + config)]);
        const string basic = """{"cniVersion":"1.1.0","name":"palisade","type":"palisade-cni"}""";
        yield return Seed("add", 0, "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;PALISADE_LABELS=app=web,tier=front",
            """{"cniVersion":"1.0.0","name":"palisade","type":"palisade-cni","mtu":1400,"socket":"/run/palisade/endpoint.sock","delQueueDir":"/run/palisade/q","dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]},"args":{"cni":{"labels":[{"key":"team","value":"a"}]}},"runtimeConfig":{"portMappings":[]}}""");
        yield return Seed("del", 1, "", """{"cniVersion":"0.3.1","name":"palisade","type":"palisade-cni","prevResult":{"ips":[]}}""");
        yield return Seed("check", 2, "K8S_POD_UID=1234", """
            {"cniVersion":"0.4.0","name":"palisade","type":"palisade-cni","prevResult":{"cniVersion":"0.4.0",
             "interfaces":[{"name":"lxc1","mac":"aa:bb:cc:00:00:01"},{"name":"eth0","sandbox":"/run/netns/fuzz","mtu":1500}],
             "ips":[{"version":"4","address":"10.200.0.5/24","gateway":"10.200.0.1","interface":1},{"address":"fd00::5/64","interface":1}],
             "routes":[{"dst":"0.0.0.0/0","gw":"10.200.0.1"}],"dns":{"domain":"cluster.local","options":["ndots:5"]}}}
            """);
        yield return Seed("status", 3, "", basic);
        yield return Seed("gc", 4, "", """{"cniVersion":"1.1.0","name":"palisade","type":"palisade-cni","cni.dev/valid-attachments":[{"containerID":"a1","ifname":"eth0"}]}""");
        yield return Seed("ipam", 0, "", """{"cniVersion":"1.1.0","name":"palisade","type":"palisade-cni","ipam":{"type":"host-local","subnet":"10.1.0.0/16"}}""");
    }
}
