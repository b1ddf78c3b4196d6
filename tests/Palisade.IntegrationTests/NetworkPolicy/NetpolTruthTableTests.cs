using System.Diagnostics;
using Palisade.IntegrationTests.Infrastructure;
using Palisade.Testing;

namespace Palisade.IntegrationTests.NetworkPolicy;

/// <summary>
/// Issue 17's truth-table acceptance, in the style of Kubernetes' test/e2e/network/netpol:
/// namespaces x, y, z with pods a, b, c on one node, a policy set per case written into the
/// agent's --network-policy-dir, the whole matrix (every source, pod, port 80 and 81, TCP and
/// UDP) probed with real packets and compared with the case's expectation, printed as grids
/// when it differs. The cases are tests/Shared/NetpolCases.cs, which Palisade.Tests'
/// NetpolSuiteExplainerTests also runs through the compiler and PolicyExplainer: the explainer
/// and the kernel answer to one table.
/// </summary>
public sealed class NetpolTruthTableTests
{
    /// <summary>Pod networking alone, no policy directory: the harness itself (pods, servers, prober) gives an all-reachable matrix.</summary>
    [Fact]
    public void WithoutPoliciesEveryPodReachesEveryPortOfEveryPod()
    {
        using var cluster = new NetpolCluster(withPolicyDir: false);

        cluster.Validate(NetpolCases.NoPolicies);
        Assert.Equal(9, cluster.Pods.Count);
    }

    public static TheoryData<string> Cases() => [.. NetpolCases.Cases.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheKernelGivesTheCasesMatrix(string name)
    {
        var c = NetpolCases.ByName(name);
        using var cluster = new NetpolCluster(enforcement: c.Enforcement, auditNamespaces: c.AuditNamespaces);

        cluster.Apply(c);

        cluster.Validate(c);
        if (c.AuditNamespaces.Count > 0)
        {
            // Nothing dropped, and what the policy would have dropped is reported as AUDIT.
            var x = cluster.Address("x/a");
            cluster.Network.WaitForFlow(f => (string?)f["verdict"] == "AUDIT" && (string?)f["IP"]?["destination"] == x, $"AUDIT flow to x/a ({x})");
            Assert.DoesNotContain(cluster.Network.Flows(), f => (string?)f["verdict"] == "DROPPED");
        }
    }

    /// <summary>
    /// A connection open before a policy arrives keeps working (conntrack); new connections
    /// obey the new policy; removing the policy opens the matrix again.
    /// </summary>
    [Fact]
    public void APolicyChangedWhileAConnectionIsOpenKeepsItAndGovernsNewOnes()
    {
        using var cluster = new NetpolCluster();
        cluster.Validate(NetpolCases.NoPolicies, " (before)");
        using var held = Hold(cluster, "y/a", "x/a", 80);
        try
        {
            HeldConnection(cluster, held);
        }
        finally
        {
            if (!held.HasExited)
            {
                held.Kill();
                held.WaitForExit(5000);
            }
        }
    }

    private static void HeldConnection(NetpolCluster cluster, Process held)
    {
        Assert.Equal("x/a", held.StandardOutput.ReadLine());
        Assert.Equal("one", Echo(held, "one"));

        var deny = NetpolCases.DefaultDenyIngress;
        cluster.Apply(deny);
        cluster.Validate(deny, " (policy added)");
        Assert.Equal("two", Echo(held, "two"));

        // Changed in place: the same file, now denying egress of x as well.
        var all = NetpolCases.DefaultDenyAll;
        cluster.WritePolicy("case.yaml", cluster.Render(all), all.PolicyNames);
        cluster.Validate(all, " (policy changed)");
        Assert.Equal("three", Echo(held, "three"));

        cluster.RemovePolicy("case.yaml", all.PolicyNames);
        cluster.Validate(NetpolCases.NoPolicies, " (policy removed)");
        held.StandardInput.Close();
    }

    /// <summary>
    /// Without any policy a connection is tracked all the same (so a later policy keeps it),
    /// and once it has closed and expired the agent's collector removes its entry; the status
    /// shows both.
    /// </summary>
    [Fact]
    public void ConnectionsAreTrackedWithoutPolicyAndTheCollectorRemovesExpiredOnes()
    {
        using var cluster = new NetpolCluster(withPolicyDir: false, pods: ["x/a", "y/a"], agentArgs: ["--conntrack-gc-interval", "1s"]);
        var probe = new NetpolProbe(80, "TCP");

        var answer = cluster.ProbeTargets("y/a", [("x/a", cluster.Address("x/a"), probe, "x/a")]);

        Assert.Equal("ok", answer["x/a"]);
        System.Text.Json.Nodes.JsonNode? Conntrack() => System.Text.Json.Nodes.JsonNode.Parse(cluster.Agent.Get("/v1/status"))?["conntrack"];
        var first = Conntrack();
        Assert.NotNull(first);
        Assert.True((int)first["entries"]! >= 1, $"the connection was not tracked: {first}");
        Assert.True((int)first["capacity"]! > 0);
        // A closed connection expires after PAL_CT_TCP_CLOSING_S (10 s); the bound is a safety net.
        Assert.True(Command.WaitUntil(() => (long)Conntrack()!["gc_removed"]! >= 1, TimeSpan.FromSeconds(60)),
            $"no expired entry was collected: {Conntrack()}");
        Assert.Equal(0L, (long)Conntrack()!["gc_failures"]!);
    }

    /// <summary>The datapath keeps enforcing while the agent is stopped, and after it starts again with the same directory.</summary>
    [Fact]
    public void TheAgentRestartedWithPoliciesInPlaceKeepsEnforcing()
    {
        var c = NetpolCases.PodAndNamespaceSelector;
        using var cluster = new NetpolCluster();
        cluster.Apply(c);
        cluster.Validate(c, " (applied)");

        cluster.StopAgent();
        cluster.Validate(c, " (agent stopped)");

        cluster.StartAgent();
        cluster.WaitForPolicies(c.PolicyNames);
        cluster.Validate(c, " (agent restarted)");

        // And it still applies changes after the restart.
        cluster.WritePolicy("more.yaml", cluster.Render(NetpolCases.DefaultDenyEgress), NetpolCases.DefaultDenyEgress.PolicyNames);
        var both = new NetpolCase("both after restart", "", p => c.Expect(p).ExpectPeer(new Peer("x"), new Peer(), false));
        cluster.Validate(both, " (changed after restart)");
    }

    private static Process Hold(NetpolCluster cluster, string from, string to, int port)
    {
        var process = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", cluster.Netns(from).Name, "python3", "-c", NetpolScripts.HeldClient, cluster.Address(to), port.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        return process;
    }

    private static string? Echo(Process held, string line)
    {
        held.StandardInput.WriteLine(line);
        held.StandardInput.Flush();
        var reply = held.StandardOutput.ReadLineAsync();
        // Bounds a connection that went silent (a drop); a safety net, not a timing assertion.
        return reply.Wait(TimeSpan.FromSeconds(20)) ? reply.Result : $"no echo of {line} (held connection silent); stderr: {(held.HasExited ? held.StandardError.ReadToEnd() : "")}";
    }
}
