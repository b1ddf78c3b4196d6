using System.Text;
using Palisade.Agent.NetworkPolicy;

namespace Palisade.Fuzz;

/// <summary>
/// `palisade policy explain` requests as the API receives them: the input's lines are from,
/// from_labels, from_ip, to, to_labels, to_ip, port, protocol. A request is read or refused with
/// an ArgumentException that says why; one that is read is explained against a node with a
/// policy. Any other exception, or an empty refusal, breaks the contract.
/// </summary>
public static class ExplainRequests
{
    private static readonly NetworkPolicyEngine Engine = CreateEngine();

    private static NetworkPolicyEngine CreateEngine()
    {
        var engine = new NetworkPolicyEngine(NetworkPolicySettings.Default, "node-1");
        engine.SetSource("fuzz.yaml", "file", """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: client, namespace: shop}
            spec:
              endpointSelector: {matchLabels: {app: client}}
              egress:
              - toCIDRSet: [{cidr: 192.0.2.0/24, except: [192.0.2.128/25]}]
                toPorts: [{ports: [{port: "80", protocol: TCP}]}]
            """);
        return engine;
    }

    public static void Run(byte[] input)
    {
        var f = Encoding.UTF8.GetString(input).Split('\n');
        string? F(int i) => i < f.Length ? f[i] : null;
        try
        {
            var (from, to, protocol, port) = NetworkPolicyJson.ParseRequest(F(0), F(1), F(2), F(3), F(4), F(5), F(6), F(7));
            var x = Engine.Explain(from, to, protocol, port);
            _ = NetworkPolicyJson.Explanation(x) + NetworkPolicyJson.Text(x);
        }
        catch (ArgumentException e) when (!string.IsNullOrWhiteSpace(e.Message))
        {
        }
    }

    public static IEnumerable<(string, byte[])> Seeds()
    {
        yield return ("pods", Encoding.UTF8.GetBytes("shop/client\n\n\nshop/web\n\n\n80/TCP\n"));
        yield return ("labels-ip", Encoding.UTF8.GetBytes("\napp=client,tier=front\n\n\n\n192.0.2.10\n80\ntcp"));
        yield return ("ipv6-icmp", Encoding.UTF8.GetBytes("\n\nfd00::1\n\n\n2001:db8::1\n\nICMPv6"));
        yield return ("bad", Encoding.UTF8.GetBytes("shop\napp\n10.0.0.300\n/\n=\n::g\n70000/TPC\nUDP"));
    }
}
