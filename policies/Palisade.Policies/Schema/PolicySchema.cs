namespace Palisade.Policies.Schema;

/// <summary>
/// The TracingPolicy format as data: every object, field, type and allowed value the parser
/// accepts. One source for three consumers: the parser takes its field names from here (an
/// unknown field is an error with a suggestion), the CRD manifests are generated from it
/// (<see cref="CrdGenerator"/>), and tests validate Tetragon's published policies against it,
/// so what `kubectl apply` admits and what the agent parses cannot drift apart.
/// </summary>
public abstract record SchemaType(string Description);

/// <summary>A string, optionally one of <see cref="Enum"/> (exact spelling, as the API server checks it).</summary>
public sealed record StringType(string Description, IReadOnlyList<string>? Enum = null) : SchemaType(Description);

/// <summary>An integer; <see cref="Format"/> is int32 or int64.</summary>
public sealed record IntegerType(string Description, string Format = "int32", long? Minimum = null) : SchemaType(Description);

public sealed record BooleanType(string Description) : SchemaType(Description);

public sealed record ArrayType(string Description, SchemaType Items, int? MaxItems = null) : SchemaType(Description);

/// <summary>A string-to-string map (labels).</summary>
public sealed record StringMapType(string Description) : SchemaType(Description);

/// <summary>
/// A field Tetragon defines whose content we accept without checking its shape (features
/// this agent reports as unsupported): the API server keeps it as given.
/// </summary>
public sealed record AnyType(string Description) : SchemaType(Description);

/// <summary>An object with named fields; unknown fields are refused.</summary>
public sealed record ObjectType(string Description, IReadOnlyList<Field> Fields) : SchemaType(Description)
{
    /// <summary>The field names, in order.</summary>
    public string[] Names { get; } = [.. Fields.Select(f => f.Name)];
}

public sealed record Field(string Name, SchemaType Type, bool Required = false);
