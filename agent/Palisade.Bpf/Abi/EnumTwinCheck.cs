using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using System.Text;
using Palisade.Abi;

namespace Palisade.Bpf.Abi;

/// <summary>Compares a C# enum marked [BpfEnum] with the enumerators of its C twin and lists every difference.</summary>
public static class EnumTwinCheck
{
    /// <summary>
    /// Differences between the C enumerators <paramref name="cEnum"/> (name to value, as BTF has them) and
    /// <paramref name="csType"/>; empty when they agree.
    /// </summary>
    public static IReadOnlyList<string> Compare(IReadOnlyDictionary<string, long> cEnum,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicFields)] Type csType)
    {
        var attr = csType.GetCustomAttribute<BpfEnumAttribute>()
            ?? throw new ArgumentException($"{csType.Name} is not marked [BpfEnum]", nameof(csType));
        var cs = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var field in csType.GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var value = Convert.ToInt64(field.GetRawConstantValue(), CultureInfo.InvariantCulture);
            var cName = CNameOf(field, attr.Prefix);
            // None = 0 is C#'s idiom for an empty flag set or "no value"; C need not name it.
            if (field.Name == "None" && value == 0 && !cEnum.ContainsKey(cName))
            {
                continue;
            }
            cs[cName] = value;
        }
        var problems = new List<string>();
        problems.AddRange(cEnum.Where(e => !cs.ContainsKey(e.Key))
            .Select(e => $"{e.Key} = {e.Value} of enum {attr.CName} is in C but not in {csType.Name}"));
        problems.AddRange(cs.Where(e => !cEnum.ContainsKey(e.Key))
            .Select(e => $"{csType.Name} has {e.Key} = {e.Value}, which enum {attr.CName} in C does not"));
        problems.AddRange(cs.Where(e => cEnum.TryGetValue(e.Key, out var v) && v != e.Value)
            .Select(e => $"{e.Key} is {cEnum[e.Key]} in C but {e.Value} in {csType.Name}"));
        return problems;
    }

    /// <summary>The C enumerator a member maps to: [BpfEnumerator] or prefix + UPPER_SNAKE_CASE of the C# name.</summary>
    public static string CNameOf(FieldInfo member, string prefix)
    {
        if (member.GetCustomAttribute<BpfEnumeratorAttribute>() is { } attribute)
        {
            return attribute.CName;
        }
        var name = member.Name;
        var sb = new StringBuilder(prefix, prefix.Length + name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]))
            {
                sb.Append('_');
            }
            sb.Append(char.ToUpperInvariant(name[i]));
        }
        return sb.ToString();
    }
}
