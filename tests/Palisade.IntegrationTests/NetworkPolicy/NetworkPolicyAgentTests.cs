using System.Text.Json;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.NetworkPolicy;

/// <summary>
/// The real agent with --network-policy-dir: files are loaded and reloaded live, a bad file is a
/// status and not a crash, and `palisade policy explain` answers from the live policies. It
/// checks the agent's view only: kernel enforcement is tested with the datapath.
/// </summary>
public sealed class NetworkPolicyAgentTests : IDisposable
{
    private readonly string _dir;

    public NetworkPolicyAgentTests()
    {
        Kernel.Require();
        _dir = Directory.CreateTempSubdirectory("pal-netpol-").FullName;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string ClientEgress(int port) => $$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: client-egress
          namespace: shop
        spec:
          endpointSelector:
            matchLabels:
              app: client
          egress:
          - toCIDR:
            - 192.0.2.0/24
            toPorts:
            - ports:
              - port: "{{port}}"
                protocol: TCP
        """;

    private static JsonElement NetworkPolicy(JsonDocument status) => status.RootElement.GetProperty("network_policy");

    private static bool PolicyAllows(AgentProcess agent, int port)
    {
        var explain = agent.Cli("policy", "explain", "--from-labels", "app=client", "--labels-namespace", "shop", "--to-ip", "192.0.2.10", "--port", $"{port}/TCP");
        Assert.True(explain.ExitCode is 0 or 3, explain.Stderr + explain.Stdout + agent.Log);
        return explain.ExitCode == 0;
    }

    [Fact]
    public void FilesInTheNetworkPolicyDirApplyLiveABadOneIsAStatusAndExplainAnswers()
    {
        var file = Path.Combine(_dir, "client.yaml");
        File.WriteAllText(file, ClientEgress(80));
        using var agent = AgentProcess.Start("--network-policy-dir", _dir);
        agent.WaitReady();

        using (var status = agent.Status())
        {
            var policy = Assert.Single(NetworkPolicy(status).GetProperty("policies").EnumerateArray());
            Assert.Equal("client-egress", policy.GetProperty("name").GetString());
            Assert.Equal("validated", policy.GetProperty("state").GetString());
            Assert.Equal(file, policy.GetProperty("source").GetString());
        }
        var explain = agent.Cli("policy", "explain", "--from-labels", "app=client", "--labels-namespace", "shop", "--to-ip", "192.0.2.10", "--port", "80/TCP");
        Assert.True(explain.ExitCode == 0, explain.Stderr + explain.Stdout + agent.Log);
        Assert.StartsWith("FORWARDED", explain.Stdout, StringComparison.Ordinal);
        Assert.Contains("client-egress", explain.Stdout, StringComparison.Ordinal);
        Assert.Contains(file, explain.Stdout, StringComparison.Ordinal);
        var dropped = agent.Cli("policy", "explain", "--from-labels", "app=client", "--labels-namespace", "shop", "--to-ip", "192.0.2.10", "--port", "81/TCP", "-o", "json");
        Assert.Equal(3, dropped.ExitCode);
        using (var doc = JsonDocument.Parse(dropped.Stdout))
        {
            Assert.Equal("DROPPED", doc.RootElement.GetProperty("verdict").GetString());
            Assert.Equal("POLICY_DENIED", doc.RootElement.GetProperty("drop_reason").GetString());
        }

        // An edit applies live.
        File.WriteAllText(file, ClientEgress(81));
        Assert.True(Command.WaitUntil(() => PolicyAllows(agent, 81), TimeSpan.FromSeconds(30)), "the edit did not apply:\n" + agent.Log);
        Assert.False(PolicyAllows(agent, 80));

        // A broken file is a status naming the field; the good one stays in force; the agent lives.
        var bad = Path.Combine(_dir, "bad.yaml");
        File.WriteAllText(bad, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: bad\nspec:\n  podSelector: {}\n  policyTypes: [Sideways]\n");
        Assert.True(Command.WaitUntil(() =>
        {
            using var s = agent.Status();
            return NetworkPolicy(s).GetProperty("invalid_sources").GetInt32() == 1;
        }, TimeSpan.FromSeconds(30)), "the bad file never showed in the status:\n" + agent.Log);
        var list = agent.Cli("policy", "list", "--network");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains($"error: {bad}: spec.policyTypes[0]", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("Sideways", list.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"CiliumNetworkPolicy\s+shop/client-egress\s+validated", list.Stdout);
        Assert.True(PolicyAllows(agent, 81));

        // Audit mode switched live: what was dropped is AUDIT.
        var audit = agent.Cli("policy", "audit", "--namespaces", "shop");
        Assert.True(audit.ExitCode == 0, audit.Stderr);
        var audited = agent.Cli("policy", "explain", "--from-labels", "app=client", "--labels-namespace", "shop", "--to-ip", "192.0.2.10", "--port", "80/TCP");
        Assert.Equal(0, audited.ExitCode);
        Assert.StartsWith("AUDIT", audited.Stdout, StringComparison.Ordinal);

        // Removing the file removes its policy.
        File.Delete(file);
        Assert.True(Command.WaitUntil(() =>
        {
            using var s = agent.Status();
            return NetworkPolicy(s).GetProperty("policies").GetArrayLength() == 0;
        }, TimeSpan.FromSeconds(30)), "the removed file's policy stayed:\n" + agent.Log);
        Assert.False(agent.Process.HasExited);
    }
}
