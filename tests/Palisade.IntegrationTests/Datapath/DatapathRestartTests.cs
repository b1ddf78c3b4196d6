using Palisade.Bpf.Probe;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Bpf;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>An agent restart with pinned maps: pods keep talking while it is stopped, and the next instance takes over without a gap.</summary>
public sealed class DatapathRestartTests
{
    [Fact]
    public async Task PodsKeepTalkingWhileTheAgentIsStoppedAndTheNextInstanceAdoptsThePinsWithoutAGap()
    {
        Kernel.Require(KernelFeature.Tc);
        var root = $"/sys/fs/bpf/palisade-test-{Guid.NewGuid():N}";
        var options = new EndpointDatapathOptions { PinDirectory = Path.Combine(root, "net") };
        EndpointDatapath? first = null;
        EndpointDatapath? second = null;
        var pods = new TestPods(2);
        try
        {
            var (a, b) = (pods.Pods[0], pods.Pods[1]);
            first = EndpointDatapath.Open(options);
            first.Install(a);
            first.Install(b);
            var oldProgram = first.Object.Program("pal_from_endpoint").Id;
            // 400 echoes 10 ms apart run across the stop and the restart: any gap loses some.
            var flood = Task.Run(() => TestPods.Ping(a, b.IPv4!, count: 400, interval: "0.01"));
            Assert.True(Command.WaitUntil(() => first.Counters()[DatapathCounter.Redirected] > 20, TimeSpan.FromSeconds(10)), "the flood did not start");
            var redirectedBefore = first.Counters()[DatapathCounter.Redirected];

            first.Dispose();
            first = null;
            var whileStopped = TestPods.Ping(a, b.IPv6!, count: 3);
            var filterWhileStopped = Command.Check("tc", "filter", "show", "dev", a.HostIfName, "ingress");
            second = EndpointDatapath.Open(options);
            var flooded = await flood;

            Assert.True(whileStopped.ExitCode == 0, "pods could not talk while the agent was stopped: " + whileStopped.Stdout + whileStopped.Stderr);
            Assert.Contains("pal_from_endpoi", filterWhileStopped, StringComparison.Ordinal); // tc shows the kernel's 15-byte program name
            Assert.Contains($"id {oldProgram} ", filterWhileStopped, StringComparison.Ordinal);
            Assert.True(flooded.ExitCode == 0 && flooded.Stdout.Contains(" 0% packet loss", StringComparison.Ordinal),
                "echoes were lost across the stop and restart: " + flooded.Stdout + flooded.Stderr);
            Assert.Equal([a.HostIfIndex, b.HostIfIndex], second.Adopted.Order());
            Assert.Null(second.Check(a));
            Assert.Null(second.Check(b));
            Assert.NotEqual(oldProgram, second.Object.Program("pal_from_endpoint").Id);
            // The pinned counters saw the packets forwarded while no agent ran.
            Assert.True(second.Counters()[DatapathCounter.Redirected] >= redirectedBefore + 6,
                $"redirected {second.Counters()[DatapathCounter.Redirected]}, {redirectedBefore} before the stop");
            var tcp = SocketExchange.Send(b, a, a.IPv4!, 7074, udp: false, "after-restart");
            Assert.Contains("after-restart", tcp, StringComparison.Ordinal);
        }
        finally
        {
            second?.Dispose();
            first?.Dispose();
            pods.Dispose();
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }
}
