using Palisade.Events;

namespace Palisade.Datapath.Flows;

/// <summary>
/// A label selector over a flow endpoint's "source:key=value" labels, as `hubble observe -l`
/// takes it: <see cref="LabelTerm"/>s separated by commas, all of which must hold.
/// </summary>
public sealed class LabelSelector
{
    private readonly List<LabelTerm> _requirements;

    private LabelSelector(List<LabelTerm> requirements) => _requirements = requirements;

    public static LabelSelector Parse(string text, string at)
    {
        var requirements = new List<LabelTerm>();
        foreach (var raw in text.Split(','))
        {
            requirements.Add(LabelTerm.TryParse(raw, sources: true, out var error)
                ?? throw new FlowFilterException($"{at}: \"{text}\" has {error}, separated by commas."));
        }
        return new LabelSelector(requirements);
    }

    public bool Matches(FlowEndpoint? endpoint)
    {
        var labels = endpoint?.Labels;
        return _requirements.All(r => r.Matches(labels));
    }
}
