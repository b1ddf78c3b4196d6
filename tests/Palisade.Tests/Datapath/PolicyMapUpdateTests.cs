using Palisade.Datapath.Abi;
using Palisade.Datapath.Bpf;

namespace Palisade.Tests.Datapath;

/// <summary>
/// The in-place policy map update: after every prefix of the planned writes, no packet passes
/// that neither the old nor the new policy passes (pal_netpol.h's two lookups; a direction becoming ENFORCE switches first, others after).
/// </summary>
public sealed class PolicyMapUpdateTests
{
    private const byte Deny = 1, Audit = 2, Enforce = 1;
    private static readonly uint[] Identities = [0, 100, 200];
    private static readonly ushort[] Ports = [80, 81, 443];

    private static Dictionary<PalNetpolKey, PalNetpolValue> Random(Random rng)
    {
        var map = new Dictionary<PalNetpolKey, PalNetpolValue>(PolicyMapUpdate.KeyComparer);
        foreach (var id in Identities)
        {
            foreach (var port in Ports)
            {
                if (rng.Next(3) != 0)
                {
                    continue;
                }
                var wholeProtocol = rng.Next(4) == 0;
                var flags = (byte)(rng.Next(3) switch { 0 => 0, 1 => Deny, _ => Deny | Audit });
                var (key, value) = NetpolKeys.Entry(id, 0, 6, port, wholeProtocol ? (byte)8 : (byte)24, flags, (uint)rng.Next(1, 50));
                map[key] = value;
            }
        }
        return map;
    }

    private static PalNetpolValue? Lookup(Dictionary<PalNetpolKey, PalNetpolValue> map, uint identity, ushort port)
    {
        PalNetpolValue? best = null;
        var bestLength = -1;
        foreach (var (key, value) in map)
        {
            if (key.Identity != identity || key.Direction != 0)
            {
                continue;
            }
            var full = NetpolKeys.Entry(identity, 0, 6, port, value.L4Prefix, 0, 0).Key;
            if (full.Protocol == key.Protocol && full.Dport == key.Dport && value.L4Prefix > bestLength)
            {
                best = value;
                bestLength = value.L4Prefix;
            }
        }
        return best;
    }

    private static bool Passes(Dictionary<PalNetpolKey, PalNetpolValue> map, byte mode, uint identity, ushort port)
    {
        var a = Lookup(map, identity, port);
        var b = Lookup(map, 0, port);
        if ((a is { } x && PolicyMapUpdate.Drops(x)) || (b is { } y && PolicyMapUpdate.Drops(y)))
        {
            return false;
        }
        return a is not null || b is not null || mode != Enforce;
    }

    [Fact]
    public void NoStateOnTheWayPassesWhatNeitherPolicyPasses()
    {
        var rng = new Random(20261203);
        for (var round = 0; round < 400; round++)
        {
            var old = Random(rng);
            var wanted = Random(rng);
            var oldMode = (byte)rng.Next(3);
            var newMode = (byte)rng.Next(3);
            // The datapath switches a direction becoming ENFORCE before the writes, others after.
            var duringMode = newMode == Enforce ? Enforce : oldMode;
            var live = new Dictionary<PalNetpolKey, PalNetpolValue>(old, PolicyMapUpdate.KeyComparer);
            var plan = PolicyMapUpdate.Plan(old, wanted);
            for (var step = 0; step <= plan.Count; step++)
            {
                foreach (var id in Identities.Where(i => i != 0).Append(300u))
                {
                    foreach (var port in Ports.Append((ushort)8080))
                    {
                        if (Passes(live, duringMode, id, port))
                        {
                            Assert.True(Passes(old, oldMode, id, port) || Passes(wanted, newMode, id, port),
                                $"round {round}, after {step} of {plan.Count} writes: identity {id} port {port} passes, neither policy passes it");
                        }
                    }
                }
                if (step < plan.Count)
                {
                    var op = plan[step];
                    if (op.Delete)
                    {
                        live.Remove(op.Key);
                    }
                    else
                    {
                        live[op.Key] = op.Value;
                    }
                }
            }
            Assert.Equal(wanted.Count, live.Count);
            Assert.All(wanted, kv => Assert.Equal(kv.Value, live[kv.Key]));
        }
    }

    [Fact]
    public void AnUnchangedEntryIsNotWrittenAndOneChangedRuleIsOneWrite()
    {
        var rng = new Random(7);
        var old = Random(rng);
        while (old.Count == 0)
        {
            old = Random(rng);
        }
        Assert.Empty(PolicyMapUpdate.Plan(old, old));
        var wanted = new Dictionary<PalNetpolKey, PalNetpolValue>(old, PolicyMapUpdate.KeyComparer);
        var first = wanted.Keys.First();
        wanted[first] = wanted[first] with { Rule = 999 };
        var op = Assert.Single(PolicyMapUpdate.Plan(old, wanted));
        Assert.False(op.Delete);
        Assert.Equal(999u, op.Value.Rule);
    }
}
