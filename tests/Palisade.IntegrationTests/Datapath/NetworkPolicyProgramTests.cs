using System.Net;
using Palisade.Bpf;
using Palisade.Bpf.Probe;
using Palisade.Datapath;
using Palisade.Datapath.Abi;
using Palisade.Datapath.Bpf;
using Palisade.IntegrationTests.Infrastructure;

namespace Palisade.IntegrationTests.Datapath;

/// <summary>
/// Network policy in the tc programs, by BPF_PROG_RUN on hand-built frames: pal_netpol.h's
/// lookup algorithm, the direction modes and the conntrack. Endpoint A sits on a made-up
/// ifindex (pal_from_endpoint only reads ingress_ifindex); B on lo's ifindex 1, which a test run
/// accepts as the device of pal_to_endpoint (nothing is attached to lo: the datapath is not pinned).
/// </summary>
public sealed unsafe class NetworkPolicyProgramTests : IDisposable
{
    private const uint TcActOk = 0, TcActShot = 2, TcActRedirect = 7;
    private const int IfA = 900021, IfB = 1;
    private const byte In = 0, Eg = 1, Allow = 0, Deny = 1, AuditDeny = 3;
    private const byte Off = 0, Enforce = 1, AuditMode = 2;
    private const uint IdA = 1001, IdB = 1002, World = 2;

    private static readonly byte[] PodMacA = [0x02, 0, 0, 0, 0x1a, 0x02], HostMacA = [0x02, 0, 0, 0, 0x1a, 0x01];
    private static readonly byte[] PodMacB = [0x02, 0, 0, 0, 0x1b, 0x02], HostMacB = [0x02, 0, 0, 0, 0x1b, 0x01];
    private static readonly IPAddress WorldV4 = IPAddress.Parse("192.0.2.53"), WorldV6 = IPAddress.Parse("2001:db8::53");

    private readonly EndpointDatapath _datapath;
    private readonly FlowRecords _flows;
    private readonly Endpoint _a;
    private readonly Endpoint _b;

    public NetworkPolicyProgramTests()
    {
        Kernel.Require(KernelFeature.Tc);
        _datapath = EndpointDatapath.Open(new EndpointDatapathOptions { PinDirectory = null });
        _flows = new FlowRecords(_datapath.EventRing, background: false);
        _a = Pod(21, "a", IfA, PodMacA, HostMacA, "10.213.9.2", "fd00:213::9:2", IdA);
        _b = Pod(22, "b", IfB, PodMacB, HostMacB, "10.213.9.3", "fd00:213::9:3", IdB);
        _datapath.WriteEntries(_a, IfA);
        _datapath.WriteEntries(_b, IfB);
    }

    public void Dispose()
    {
        _flows.Dispose();
        _datapath.Dispose();
    }

    private static Endpoint Pod(uint id, string name, int ifindex, byte[] podMac, byte[] hostMac, string v4, string v6, uint identity) => new()
    {
        Id = id,
        ContainerId = "netpol-" + name,
        IfName = "eth0",
        Netns = "/var/run/netns/none",
        NetnsInode = 4026531000 + id,
        HostIfName = "palpol" + name,
        HostIfIndex = ifindex,
        HostMac = hostMac,
        PodMac = podMac,
        IPv4 = IPAddress.Parse(v4),
        IPv6 = IPAddress.Parse(v6),
        Identity = identity,
    };

    private static IPAddress Addr(Endpoint ep, bool v6) => v6 ? ep.IPv6! : ep.IPv4!;

    private static KeyValuePair<PalNetpolKey, PalNetpolValue> E(uint identity, byte dir, byte proto, ushort port, byte l4Prefix, byte flags, uint rule) =>
        NetpolKeys.Entry(identity, dir, proto, port, l4Prefix, flags, rule);

    private void Policy(Endpoint ep, byte ingress, byte egress, params KeyValuePair<PalNetpolKey, PalNetpolValue>[] entries) =>
        _datapath.SetPolicy(ep, new EndpointPolicyMap(ingress, egress, entries));

    private uint FromA(byte[] frame) => _datapath.Object.Program("pal_from_endpoint").TestRun(frame, Frames.SkbContext(IfA), outputSize: frame.Length + 64).ReturnValue;

    private uint FromB(byte[] frame) => _datapath.Object.Program("pal_from_endpoint").TestRun(frame, Frames.SkbContext(IfB), outputSize: frame.Length + 64).ReturnValue;

    private uint ToB(byte[] frame) => _datapath.Object.Program("pal_to_endpoint").TestRun(frame, Frames.SkbEgressContext(IfB), outputSize: frame.Length + 64).ReturnValue;

    private byte[] TcpAB(ushort sport, ushort dport, byte flags = Frames.Syn, bool v6 = false) =>
        Frames.TcpFrame(PodMacA, HostMacA, Addr(_a, v6), Addr(_b, v6), sport, dport, flags);

    private byte[] TcpWorldB(IPAddress world, ushort sport, ushort dport, byte flags) =>
        Frames.TcpFrame(HostMacB, PodMacB, world, Addr(_b, world.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6), sport, dport, flags);

    private ulong Counter(DatapathCounter counter) => _datapath.Counters()[counter];

    /// <summary>The record B's side wrote for the last packet (entering B).</summary>
    private PalFlowEvent AtB(List<PalFlowEvent> records) => Assert.Single(records, r => r.ObsPoint == (byte)PalFlowObs.ToEndpoint && r.DstEp == _b.Id);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnIdentitySpecificAllowPassesItsPortAndDefaultDenyDropsTheRestWithPolicyDeniedAndRuleZero(bool v6)
    {
        Policy(_b, Enforce, Off, E(IdA, In, Frames.Tcp, 80, 24, Allow, 7));

        var allowed = FromA(TcpAB(40000, 80, v6: v6));
        var allowedRecords = _flows.Take();
        var denied = FromA(TcpAB(40001, 81, v6: v6));
        var deniedRecords = _flows.Take();

        Assert.Equal(TcActRedirect, allowed);
        var pass = AtB(allowedRecords);
        Assert.Equal((byte)PalFlowVerdict.Forwarded, pass.Verdict);
        Assert.Equal(7u, pass.PolicyRule);
        Assert.Equal((byte)PalFlowDirection.Ingress, pass.PolicyDir);
        Assert.Equal((byte)PalFlowPolicyMatch.Rule, pass.PolicyMatch);
        // A has no policy: its side says so.
        var atA = Assert.Single(allowedRecords, r => r.ObsPoint == (byte)PalFlowObs.FromEndpoint);
        Assert.Equal((byte)PalFlowPolicyMatch.None, atA.PolicyMatch);

        Assert.Equal(TcActShot, denied);
        var drop = Assert.Single(deniedRecords);
        Assert.Equal((byte)PalFlowVerdict.Dropped, drop.Verdict);
        Assert.Equal((uint)NetDropReason.PolicyDenied, drop.DropReason);
        Assert.Equal(133u, drop.DropReason);
        Assert.Equal(0u, drop.PolicyRule);
        Assert.Equal((byte)PalFlowPolicyMatch.Default, drop.PolicyMatch);
        Assert.Equal((byte)PalFlowDirection.Ingress, drop.PolicyDir);
        Assert.Equal((byte)PalFlowObs.ToEndpoint, drop.ObsPoint);
        Assert.Equal((uint)IfB, drop.Ifindex);
        Assert.Equal(_b.Id, drop.DstEp);
        Assert.Equal(IdA, drop.SrcIdentity);
        Assert.Equal(1UL, Counter(DatapathCounter.PolicyDenied));
        Assert.Equal(1UL, Counter(DatapathCounter.PolicyAllowed));
    }

    [Fact]
    public void TheWildcardIdentityAllowsEveryRemoteAndTheIdentitySpecificOnlyItsOwn()
    {
        Policy(_b, Enforce, Off, E(0, In, Frames.Tcp, 81, 24, Allow, 8), E(IdA + 1, In, Frames.Tcp, 80, 24, Allow, 9));

        Assert.Equal(TcActRedirect, FromA(TcpAB(40010, 81)));
        Assert.Equal(8u, AtB(_flows.Take()).PolicyRule);
        Assert.Equal(TcActShot, FromA(TcpAB(40011, 80)));
        Assert.Equal((uint)NetDropReason.PolicyDenied, Assert.Single(_flows.Take()).DropReason);
    }

    [Fact]
    public void ADenyBeatsAnAllowAndNamesItsRuleWithPolicyDeny()
    {
        // A deny of every TCP port from anyone over an allow of port 80 for A.
        Policy(_b, Enforce, Off, E(IdA, In, Frames.Tcp, 80, 24, Allow, 1), E(0, In, Frames.Tcp, 0, 8, Deny, 2));

        var verdict = FromA(TcpAB(40020, 80));

        Assert.Equal(TcActShot, verdict);
        var drop = Assert.Single(_flows.Take());
        Assert.Equal((uint)NetDropReason.PolicyDeny, drop.DropReason);
        Assert.Equal(181u, drop.DropReason);
        Assert.Equal(2u, drop.PolicyRule);
        Assert.Equal((byte)PalFlowPolicyMatch.Rule, drop.PolicyMatch);
        Assert.Equal(1UL, Counter(DatapathCounter.PolicyDeny));

        // Both lookups deny: the identity-specific one names the rule.
        Policy(_b, Enforce, Off, E(IdA, In, Frames.Tcp, 80, 24, Deny, 3), E(0, In, Frames.Tcp, 0, 8, Deny, 4));
        Assert.Equal(TcActShot, FromA(TcpAB(40021, 80)));
        Assert.Equal(3u, Assert.Single(_flows.Take()).PolicyRule);
    }

    [Fact]
    public void AnAuditDenyPassesAsAudit()
    {
        Policy(_b, Enforce, Off, E(0, In, Frames.Tcp, 80, 24, AuditDeny, 5));

        var verdict = FromA(TcpAB(40030, 80));

        Assert.Equal(TcActRedirect, verdict);
        var atB = AtB(_flows.Take());
        Assert.Equal((byte)PalFlowVerdict.Audit, atB.Verdict);
        Assert.Equal(5u, atB.PolicyRule);
        Assert.Equal(1UL, Counter(DatapathCounter.PolicyAudit));
        Assert.Equal(0UL, Counter(DatapathCounter.PolicyDeny));
    }

    [Fact]
    public void TheLongerL4PrefixWinsBetweenTheTwoLookupsAndTheIdentitySpecificOnATie()
    {
        // A: any protocol (prefix 0); anyone: TCP 80 (prefix 24): the wildcard's is longer.
        Policy(_b, Enforce, Off, E(IdA, In, 0, 0, 0, Allow, 10), E(0, In, Frames.Tcp, 80, 24, Allow, 11));
        Assert.Equal(TcActRedirect, FromA(TcpAB(40040, 80)));
        Assert.Equal(11u, AtB(_flows.Take()).PolicyRule);
        Assert.Equal(TcActRedirect, FromA(TcpAB(40041, 443)));
        Assert.Equal(10u, AtB(_flows.Take()).PolicyRule);

        Policy(_b, Enforce, Off, E(IdA, In, Frames.Tcp, 80, 24, Allow, 12), E(0, In, Frames.Tcp, 80, 24, Allow, 13));
        Assert.Equal(TcActRedirect, FromA(TcpAB(40042, 80)));
        Assert.Equal(12u, AtB(_flows.Take()).PolicyRule);
    }

    [Fact]
    public void APortRangePrefixCoversItsPortsOnly()
    {
        // 8000..8003: 8 protocol bits + 14 port bits.
        Policy(_b, Enforce, Off, E(IdA, In, Frames.Tcp, 8000, 22, Allow, 20));

        var results = new[] { 7999, 8000, 8001, 8003, 8004 }.Select(port => (port, verdict: FromA(TcpAB(40050, (ushort)port)))).ToList();

        Assert.Equal(new[] { TcActShot, TcActRedirect, TcActRedirect, TcActRedirect, TcActShot }, results.Select(r => r.verdict));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnIcmpEntryMatchesItsTypeAsThePort(bool v6)
    {
        var icmp = v6 ? Frames.Icmpv6 : Frames.Icmp;
        Policy(_b, Enforce, Off, E(IdA, In, icmp, v6 ? (ushort)128 : (ushort)8, 24, Allow, 30));

        var echo = FromA(Frames.EchoRequest(PodMacA, HostMacA, Addr(_a, v6), Addr(_b, v6), 77));
        var echoRecord = AtB(_flows.Take());
        var udp = FromA(Frames.UdpFrame(PodMacA, HostMacA, Addr(_a, v6), Addr(_b, v6), 5000, 8));

        Assert.Equal(TcActRedirect, echo);
        Assert.Equal(30u, echoRecord.PolicyRule);
        Assert.Equal(TcActShot, udp);
    }

    /// <summary>
    /// Mode off: no policy lookup (the deny entry is not read), but the connection is tracked,
    /// so a policy that arrives later keeps it open (Cilium tracks every connection too).
    /// </summary>
    [Fact]
    public void ModeOffPassesWithoutLookupButTracksTheConnection()
    {
        Policy(_b, Off, Off, E(0, In, Frames.Tcp, 0, 8, Deny, 40));

        Assert.Equal(TcActRedirect, FromA(TcpAB(40060, 80)));
        Assert.Equal((byte)PalFlowPolicyMatch.None, AtB(_flows.Take()).PolicyMatch);
        Assert.Equal(1, _datapath.ConntrackTable.CountEntries());
        Assert.Equal(0UL, Counter(DatapathCounter.PolicyDeny));

        // The policy arrives (allowing nothing): the tracked connection's next packet passes
        // as established, a new connection does not.
        Policy(_b, Enforce, Off);
        _flows.Take();
        Assert.Equal(TcActRedirect, FromA(TcpAB(40060, 80, Frames.Ack)));
        Assert.Equal(TcActShot, FromA(TcpAB(40061, 80)));
        Assert.Equal(1UL, Counter(DatapathCounter.CtEstablished));
    }

    [Fact]
    public void AuditModePassesWhatNoEntryAllowsAsAudit()
    {
        Policy(_b, AuditMode, Off);

        Assert.Equal(TcActRedirect, FromA(TcpAB(40070, 80)));
        var atB = AtB(_flows.Take());
        Assert.Equal((byte)PalFlowVerdict.Audit, atB.Verdict);
        Assert.Equal((byte)PalFlowPolicyMatch.Default, atB.PolicyMatch);
        Assert.Equal(0u, atB.PolicyRule);
    }

    [Fact]
    public void AnEgressPolicyDecidesAtTheSenderAndTheWorldIsIdentityTwo()
    {
        Policy(_a, Off, Enforce, E(IdB, Eg, Frames.Tcp, 80, 24, Allow, 50), E(World, Eg, Frames.Udp, 53, 24, Allow, 51));

        var toB = FromA(TcpAB(40080, 80));
        var toBRecords = _flows.Take();
        var dns = FromA(Frames.UdpFrame(PodMacA, HostMacA, _a.IPv4!, WorldV4, 5353, 53));
        var dnsRecord = Assert.Single(_flows.Take());
        var web = FromA(Frames.TcpFrame(PodMacA, HostMacA, _a.IPv4!, WorldV4, 40081, 443, Frames.Syn));
        var webRecord = Assert.Single(_flows.Take());

        Assert.Equal(TcActRedirect, toB);
        var atA = Assert.Single(toBRecords, r => r.ObsPoint == (byte)PalFlowObs.FromEndpoint);
        Assert.Equal(50u, atA.PolicyRule);
        Assert.Equal((byte)PalFlowDirection.Egress, atA.PolicyDir);
        Assert.Equal(TcActOk, dns);
        Assert.Equal(51u, dnsRecord.PolicyRule);
        Assert.Equal(TcActShot, web);
        Assert.Equal((uint)NetDropReason.PolicyDenied, webRecord.DropReason);
        Assert.Equal((byte)PalFlowDirection.Egress, webRecord.PolicyDir);
        Assert.Equal((byte)PalFlowObs.FromEndpoint, webRecord.ObsPoint);
        Assert.Equal(World, webRecord.DstIdentity);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UnderAnIngressOnlyDefaultDenyTheRepliesOfTheEndpointsOwnConnectionsPass(bool v6)
    {
        var world = v6 ? WorldV6 : WorldV4;
        Policy(_b, Enforce, Off);

        var syn = FromB(Frames.TcpFrame(PodMacB, HostMacB, Addr(_b, v6), world, 41000, 443, Frames.Syn));
        var synAck = ToB(TcpWorldB(world, 443, 41000, (byte)(Frames.Syn | Frames.Ack)));
        _flows.Take();
        var stranger = ToB(TcpWorldB(world, 443, 41001, Frames.Syn));
        var strangerRecord = Assert.Single(_flows.Take());

        Assert.Equal(TcActOk, syn);
        Assert.Equal(TcActOk, synAck);
        Assert.Equal(1UL, Counter(DatapathCounter.CtReply));
        Assert.Equal(TcActShot, stranger);
        Assert.Equal((uint)NetDropReason.PolicyDenied, strangerRecord.DropReason);
        Assert.Equal(World, strangerRecord.SrcIdentity);
    }

    [Fact]
    public void AnEstablishedConnectionSurvivesAPolicyChangeToDenyAndANewOneDoesNot()
    {
        Policy(_b, Enforce, Off, E(IdA, In, Frames.Tcp, 80, 24, Allow, 60));
        Assert.Equal(TcActRedirect, FromA(TcpAB(42000, 80)));
        Assert.Equal(TcActRedirect, FromB(Frames.TcpFrame(PodMacB, HostMacB, _b.IPv4!, _a.IPv4!, 80, 42000, (byte)(Frames.Syn | Frames.Ack))));

        Policy(_b, Enforce, Off);
        _flows.Take();
        var established = FromA(TcpAB(42000, 80, Frames.Ack));
        var fresh = FromA(TcpAB(42001, 80));

        Assert.Equal(TcActRedirect, established);
        Assert.Equal(TcActShot, fresh);
        var records = _flows.Take();
        Assert.Contains(records, r => r.Dport == 80 && r.Sport == 42001 && r.DropReason == (uint)NetDropReason.PolicyDenied);
        Assert.True(Counter(DatapathCounter.CtEstablished) >= 1);
    }

    [Fact]
    public void AnExpiredEntryIsCheckedAgainAndTheCollectorRemovesIt()
    {
        Policy(_b, Enforce, Off, E(IdA, In, Frames.Tcp, 80, 24, Allow, 70));
        Assert.Equal(TcActRedirect, FromA(TcpAB(43000, 80)));
        Policy(_b, Enforce, Off);
        var ct = _datapath.ConntrackTable.Typed<PalCtKey, PalCtEntry>();
        var (key, entry) = Assert.Single(ct.ReadAll());
        Assert.Equal((ushort)43000, key.Sport);
        Assert.Equal((ushort)80, key.Dport);
        Assert.Equal((byte)Frames.Tcp, key.Proto);
        // Not yet answered: the SYN timeout (60 s), in the programs' clock.
        var now = EndpointDatapath.BootTimeNs();
        Assert.InRange(entry.ExpiresNs, now, now + 61UL * 1_000_000_000);

        entry.ExpiresNs = 1;
        ct.Update(key, entry);
        var again = FromA(TcpAB(43000, 80, Frames.Ack));

        Assert.Equal(TcActShot, again);
        Assert.Equal(1, _datapath.CollectConntrack(EndpointDatapath.BootTimeNs()));
        Assert.Equal(0, _datapath.ConntrackTable.CountEntries());
        Assert.Equal(1UL, Counter(DatapathCounter.CtGcRemoved));
        Assert.Equal(0, _datapath.CollectConntrack(EndpointDatapath.BootTimeNs()));
    }

    [Fact]
    public void ALiveEntryIsKeptByTheCollectorAndGoesOnceItsTimeIsPast()
    {
        Policy(_b, Enforce, Off, E(IdA, In, Frames.Udp, 53, 24, Allow, 71));
        Assert.Equal(TcActRedirect, FromA(Frames.UdpFrame(PodMacA, HostMacA, _a.IPv4!, _b.IPv4!, 5000, 53)));

        Assert.Equal(0, _datapath.CollectConntrack(EndpointDatapath.BootTimeNs()));
        Assert.Equal(1, _datapath.CollectConntrack(EndpointDatapath.BootTimeNs() + 61UL * 1_000_000_000));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnIcmpErrorAboutATrackedConnectionPassesAndOneAboutNoneIsDropped(bool v6)
    {
        var world = v6 ? WorldV6 : WorldV4;
        var router = IPAddress.Parse(v6 ? "2001:db8::fe" : "192.0.2.254");
        Policy(_b, Enforce, Enforce, E(World, Eg, Frames.Udp, 53, 24, Allow, 80));
        var query = Frames.UdpFrame(PodMacB, HostMacB, Addr(_b, v6), world, 5300, 53);
        Assert.Equal(TcActOk, FromB(query));
        var untracked = Frames.UdpFrame(PodMacB, HostMacB, Addr(_b, v6), world, 5301, 53);

        var related = ToB(Frames.IcmpError(HostMacB, PodMacB, router, Addr(_b, v6), query));
        var unrelated = ToB(Frames.IcmpError(HostMacB, PodMacB, router, Addr(_b, v6), untracked));

        Assert.Equal(TcActOk, related);
        Assert.Equal(1UL, Counter(DatapathCounter.CtRelated));
        Assert.Equal(TcActShot, unrelated);
    }

    [Fact]
    public void APolicyAndItsModesSurviveARewriteOfTheEndpointAndGoWithIt()
    {
        Policy(_b, Enforce, AuditMode, E(IdA, In, Frames.Tcp, 80, 24, Allow, 90), E(0, In, Frames.Udp, 53, 24, Allow, 91));

        _datapath.WriteEntries(_b, IfB);

        Assert.Equal(((byte)Enforce, (byte)AuditMode), _datapath.PolicyModes(_b));
        Assert.Equal(new PolicyMapUsage(2, 2 * EndpointDatapath.PolicyEntryBytes), _datapath.Usage(_b));
        Assert.Equal(new[] { 90u, 91u }, _datapath.PolicyEntries(_b).Select(e => e.Value.Rule).Order());
        Assert.Equal(TcActShot, FromA(TcpAB(44000, 81)));

        Policy(_b, Off, Off);
        Assert.Null(_datapath.Usage(_b));
        Assert.Equal(TcActRedirect, FromA(TcpAB(44001, 81)));
    }

    [Fact]
    public void BadPoliciesAreRefusedNamingTheField()
    {
        var tooMany = Enumerable.Range(0, NetpolKeys.MaxEntries + 1).Select(i => E((uint)(i + 300), In, Frames.Tcp, 80, 24, Allow, 1)).ToArray();
        var badKey = new KeyValuePair<PalNetpolKey, PalNetpolValue>(new PalNetpolKey { Prefixlen = 70 }, default);

        var mode = Assert.Throws<ArgumentException>(() => _datapath.SetPolicy(_b, new EndpointPolicyMap(3, 0, [])));
        var size = Assert.Throws<ArgumentException>(() => _datapath.SetPolicy(_b, new EndpointPolicyMap(1, 0, tooMany)));
        var key = Assert.Throws<ArgumentException>(() => _datapath.SetPolicy(_b, new EndpointPolicyMap(1, 0, [badKey])));

        Assert.Contains("IngressMode", mode.Message, StringComparison.Ordinal);
        Assert.Contains("16384", size.Message, StringComparison.Ordinal);
        Assert.Contains("prefixlen 70", key.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CidrIdentitiesGoIntoTheIpcacheAndOnlyTheyAreRemoved()
    {
        var cidr = IPNetwork.Parse("198.51.100.0/24");
        var gateway = IPAddress.Parse("10.213.0.1");
        _datapath.SetHostAddresses([gateway]);
        Policy(_a, Off, Enforce, E(16777217, Eg, Frames.Tcp, 443, 24, Allow, 100));

        _datapath.SetCidrIdentities([new(cidr, 16777217u), new(IPNetwork.Parse("10.213.0.1/32"), 16777218u)]);
        var toCidr = FromA(Frames.TcpFrame(PodMacA, HostMacA, _a.IPv4!, IPAddress.Parse("198.51.100.7"), 45000, 443, Frames.Syn));
        var record = Assert.Single(_flows.Take());
        _datapath.SetCidrIdentities([]);
        var afterRemoval = FromA(Frames.TcpFrame(PodMacA, HostMacA, _a.IPv4!, IPAddress.Parse("198.51.100.8"), 45001, 443, Frames.Syn));
        var gatewayRecord = FromA(Frames.TcpFrame(PodMacA, HostMacA, _a.IPv4!, gateway, 45002, 443, Frames.Syn));
        var records = _flows.Take();

        Assert.Equal(TcActOk, toCidr);
        Assert.Equal(16777217u, record.DstIdentity);
        Assert.Equal(TcActShot, afterRemoval);
        Assert.Equal(TcActShot, gatewayRecord);
        // The host entry stayed the host's: neither overwritten nor removed by the CIDR set.
        Assert.Equal((uint)ReservedIdentity.Host, records.Single(r => r.Sport == 45002).DstIdentity);
        Assert.Equal(World, records.Single(r => r.Sport == 45001).DstIdentity);
    }
}
