using Palisade.Events;

namespace Palisade.Exporters.Filters;

/// <summary>
/// What the field filters of one event type keep, as a tree over the event body's field
/// names: at each field, keep it whole, drop it, or look inside. Encoders consult it while
/// they write (JSON) or build (gRPC), so a filtered event is encoded once, never parsed back.
/// </summary>
/// <remarks>
/// The filters apply one after another as Tetragon's do, which comes to: a field stays when
/// every filter lets it stay. An INCLUDE keeps its paths, the objects on the way to them and
/// nothing else; an EXCLUDE drops its paths. Arrays are values: a path cannot reach inside one.
/// </remarks>
public sealed class FieldMask
{
    /// <summary>Everything below is kept.</summary>
    public static readonly FieldMask All = new(null, null, includePartial: false);

    /// <summary>Everything below is dropped.</summary>
    public static readonly FieldMask None = new(null, null, includePartial: false);

    private readonly Dictionary<string, FieldMask>? _children;
    private readonly FieldMask? _other;
    // Some INCLUDE filter names fields further down, so a value that is not an object (it
    // cannot hold them) goes; under EXCLUDE filters alone it stays.
    private readonly bool _includePartial;

    private FieldMask(Dictionary<string, FieldMask>? children, FieldMask? other, bool includePartial)
    {
        _children = children;
        _other = other;
        _includePartial = includePartial;
    }

    /// <summary>The mask of a field of this object.</summary>
    public FieldMask Child(string name)
    {
        if (_children is not null && _children.TryGetValue(name, out var child))
        {
            return child;
        }
        return _other ?? this; // All and None are their own children
    }

    /// <summary>Whether a value here that is not an object (a string, a number, an array) is written.</summary>
    public bool KeepsValue => !ReferenceEquals(this, None) && !_includePartial;

    /// <summary>The mask inside an array here: all of it or none.</summary>
    public FieldMask ForArray => KeepsValue ? All : None;

    /// <summary>The mask the filters that apply to <paramref name="kind"/> make; null when none applies (write everything).</summary>
    public static FieldMask? For(IReadOnlyList<FieldFilter> filters, EventKind kind)
    {
        List<(bool Include, PathNode? Node)>? states = null;
        foreach (var f in filters)
        {
            if (f.AppliesTo(kind))
            {
                (states ??= []).Add((f.Include, f.Paths));
            }
        }
        return states is null ? null : Build(states);
    }

    /// <summary>The mask of one filter, whatever the event type.</summary>
    public static FieldMask Of(FieldFilter filter) => Build([(filter.Include, filter.Paths)]);

    // Node null: this place is at or under one of the filter's paths; else it leads to some.
    private static FieldMask Build(List<(bool Include, PathNode? Node)> states)
    {
        var partial = false;
        var includePartial = false;
        foreach (var (include, node) in states)
        {
            if (node is null && !include)
            {
                return None;
            }
            partial |= node is not null;
            includePartial |= node is not null && include;
        }
        if (!partial)
        {
            return All;
        }
        var children = new Dictionary<string, FieldMask>(StringComparer.Ordinal);
        foreach (var (_, node) in states)
        {
            foreach (var name in node?.Children.Keys ?? Enumerable.Empty<string>())
            {
                if (!children.ContainsKey(name))
                {
                    children[name] = BuildChild(states, name);
                }
            }
        }
        return new FieldMask(children, includePartial ? None : All, includePartial);
    }

    private static FieldMask BuildChild(List<(bool Include, PathNode? Node)> states, string name)
    {
        var next = new List<(bool, PathNode?)>(states.Count);
        foreach (var (include, node) in states)
        {
            if (node is null)
            {
                next.Add((include, null));
            }
            else if (node.Children.TryGetValue(name, out var child))
            {
                next.Add((include, child.Terminal ? null : child));
            }
            else if (include)
            {
                return None; // off every path this INCLUDE names
            }
            // Off an EXCLUDE's paths: that filter keeps it, so it has no say.
        }
        return Build(next);
    }

    /// <summary>Filters a parsed event body in place (for bodies that exist only as JSON).</summary>
    public void Apply(System.Text.Json.Nodes.JsonObject body)
    {
        foreach (var (name, value) in body.ToList())
        {
            var child = Child(name);
            if (value is System.Text.Json.Nodes.JsonObject inner && !ReferenceEquals(child, None))
            {
                child.Apply(inner);
            }
            else if (value is not System.Text.Json.Nodes.JsonObject && !child.KeepsValue || ReferenceEquals(child, None))
            {
                body.Remove(name);
            }
        }
    }
}

/// <summary>The dotted paths of one field filter as a tree of names.</summary>
public sealed class PathNode
{
    public Dictionary<string, PathNode> Children { get; } = new(StringComparer.Ordinal);

    /// <summary>A path ends here: this field and all below it.</summary>
    public bool Terminal { get; private set; }

    public static PathNode From(IEnumerable<string[]> paths)
    {
        var root = new PathNode();
        foreach (var path in paths)
        {
            var node = root;
            foreach (var name in path)
            {
                if (!node.Children.TryGetValue(name, out var next))
                {
                    node.Children[name] = next = new PathNode();
                }
                node = next;
            }
            node.Terminal = true;
        }
        return root;
    }
}

/// <summary>The field masks of a list of field filters, one per event type, built once per sink or stream.</summary>
public sealed class FieldMasks
{
    public static readonly FieldMasks Empty = new([]);

    private readonly FieldMask?[] _byKind;

    public FieldMasks(IReadOnlyList<FieldFilter> filters)
    {
        Filters = filters;
        var kinds = Enum.GetValues<EventKind>();
        _byKind = new FieldMask?[kinds.Max(k => (int)k) + 1];
        foreach (var kind in kinds)
        {
            _byKind[(int)kind] = FieldMask.For(filters, kind);
        }
    }

    public IReadOnlyList<FieldFilter> Filters { get; }

    /// <summary>The mask for an event of this type; null: no filter applies, write everything.</summary>
    public FieldMask? For(EventKind kind) => (uint)kind < (uint)_byKind.Length ? _byKind[(int)kind] : null;
}
