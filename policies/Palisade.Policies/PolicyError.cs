namespace Palisade.Policies;

/// <summary>One problem in a policy: the field path, what is wrong and how to fix it, and where in the file.</summary>
public sealed record PolicyError(string Path, string Message, int Line = 0, int Column = 0)
{
    public override string ToString()
    {
        var text = Path.Length > 0 ? $"{Path}: {Message}" : Message;
        return Line > 0 ? $"{text} (line {Line}, column {Column})" : text;
    }
}
