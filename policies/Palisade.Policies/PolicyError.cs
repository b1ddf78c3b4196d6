namespace Palisade.Policies;

/// <summary>One problem in a policy: the field path, what is wrong and how to fix it, and where in the file.</summary>
public sealed record PolicyError(string Path, string Message, int Line = 0, int Column = 0)
{
    public override string ToString() => Line > 0 ? $"{Path}: {Message} (line {Line}, column {Column})" : $"{Path}: {Message}";
}
