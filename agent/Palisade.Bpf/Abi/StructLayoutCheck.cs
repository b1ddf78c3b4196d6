using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Palisade.Bpf.Abi;

/// <summary>Compares a C# struct with the BTF layout of its C twin and lists every difference.</summary>
public static class StructLayoutCheck
{
    /// <summary>Differences between <paramref name="cStruct"/> and <paramref name="csType"/>; empty when they agree.</summary>
    public static IReadOnlyList<string> Compare(BtfStruct cStruct,
        [System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicFields | System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.NonPublicFields)] Type csType)
    {
        var problems = new List<string>();
        var csSize = RuntimeHelpers.SizeOf(csType.TypeHandle);
        if (csSize != cStruct.Size)
        {
            problems.Add($"struct {cStruct.Name} is {cStruct.Size} bytes in C but {csType.Name} is {csSize} bytes in C#");
        }
        var fields = csType.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            .Select(f => (Field: f, CName: CNameOf(f), Offset: (int)Marshal.OffsetOf(csType, f.Name), Size: SizeOf(f)))
            .OrderBy(f => f.Offset)
            .ToList();
        foreach (var member in cStruct.Members)
        {
            if (member.BitfieldSize != 0)
            {
                problems.Add($"{cStruct.Name}.{member.Name} is a bitfield; shared structs must not use bitfields");
                continue;
            }
            var match = fields.FirstOrDefault(f => f.CName == member.Name);
            if (match.Field is null)
            {
                problems.Add($"{cStruct.Name}.{member.Name} (offset {member.Offset}, {member.Size} bytes) has no field in {csType.Name}; add {ToPascal(member.Name)}");
                continue;
            }
            if (match.Offset != member.Offset)
            {
                problems.Add($"{cStruct.Name}.{member.Name} is at offset {member.Offset} in C but {csType.Name}.{match.Field.Name} is at {match.Offset}");
            }
            if (match.Size != member.Size)
            {
                problems.Add($"{cStruct.Name}.{member.Name} is {member.Size} bytes in C but {csType.Name}.{match.Field.Name} is {match.Size}");
            }
        }
        foreach (var field in fields.Where(f => cStruct.Members.All(m => m.Name != f.CName)))
        {
            problems.Add($"{csType.Name}.{field.Field.Name} has no field '{field.CName}' in C struct {cStruct.Name}");
        }
        return problems;
    }

    /// <summary>The C name a field maps to: [BpfField] or snake_case of the C# name.</summary>
    public static string CNameOf(FieldInfo field)
    {
        if (field.GetCustomAttribute<BpfFieldAttribute>() is { } attribute)
        {
            return attribute.CName;
        }
        var name = field.Name;
        var sb = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                sb.Append('_');
            }
            sb.Append(char.ToLowerInvariant(name[i]));
        }
        return sb.ToString();
    }

    private static int SizeOf(FieldInfo field)
    {
        if (field.GetCustomAttribute<FixedBufferAttribute>() is { } fixedBuffer)
        {
            return fixedBuffer.Length * RuntimeHelpers.SizeOf(fixedBuffer.ElementType.TypeHandle);
        }
        return RuntimeHelpers.SizeOf(field.FieldType.TypeHandle);
    }

    private static string ToPascal(string cName) =>
        string.Concat(cName.Split('_', StringSplitOptions.RemoveEmptyEntries).Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
}
