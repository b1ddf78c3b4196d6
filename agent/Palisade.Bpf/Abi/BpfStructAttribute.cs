namespace Palisade.Bpf.Abi;

/// <summary>
/// Marks a C# struct as the twin of a C struct in bpf/include. The layout test compares
/// both with the compiled object's BTF: size, and every field's name, offset and size.
/// </summary>
[AttributeUsage(AttributeTargets.Struct, Inherited = false)]
public sealed class BpfStructAttribute(string cName) : Attribute
{
    public string CName { get; } = cName;
}

/// <summary>Names the C field when it is not the snake_case of the C# field name.</summary>
[AttributeUsage(AttributeTargets.Field, Inherited = false)]
public sealed class BpfFieldAttribute(string cName) : Attribute
{
    public string CName { get; } = cName;
}
