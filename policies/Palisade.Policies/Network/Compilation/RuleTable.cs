namespace Palisade.Policies.Network.Compilation;

/// <summary>
/// The rules map entries point at (pal_netpol_value.rule): index 0 is "no rule" (a default),
/// 1.. are rule origins in the order first seen, so a verdict can name the policy, its file and
/// the rule's path. Pass one table to every endpoint's compilation to share the indexes.
/// </summary>
public sealed class RuleTable
{
    private readonly List<RuleOrigin> _rules = [];
    private readonly Dictionary<RuleOrigin, uint> _index = [];

    public int Count => _rules.Count;

    public uint Intern(RuleOrigin origin)
    {
        if (!_index.TryGetValue(origin, out var i))
        {
            _rules.Add(origin);
            i = (uint)_rules.Count;
            _index[origin] = i;
        }
        return i;
    }

    /// <summary>The rule at <paramref name="index"/>, or null for 0 and unknown indexes.</summary>
    public RuleOrigin? this[uint index] => index >= 1 && index <= _rules.Count ? _rules[(int)index - 1] : null;
}
