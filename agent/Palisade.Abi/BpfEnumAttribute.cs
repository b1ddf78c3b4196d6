namespace Palisade.Abi;

/// <summary>
/// Marks a C# enum as the twin of a C enum in bpf/include whose enumerators are
/// <paramref name="prefix"/> + the UPPER_SNAKE_CASE of the C# member names (or the name a
/// member's <see cref="BpfEnumeratorAttribute"/> gives). The layout test compares both with
/// the compiled object's BTF: the same names, the same values.
/// </summary>
/// <remarks>A C# member <c>None = 0</c> needs no C enumerator: flag sets and "no value" sentinels are C#'s.</remarks>
[AttributeUsage(AttributeTargets.Enum, Inherited = false)]
public sealed class BpfEnumAttribute(string cName, string prefix) : Attribute
{
    public string CName { get; } = cName;

    public string Prefix { get; } = prefix;
}

/// <summary>Names the C enumerator of a member whose C# name says it better than the C abbreviation does.</summary>
[AttributeUsage(AttributeTargets.Field, Inherited = false)]
public sealed class BpfEnumeratorAttribute(string cName) : Attribute
{
    public string CName { get; } = cName;
}
