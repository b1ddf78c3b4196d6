using System.Globalization;

namespace Palisade.Policies.Tracing.Compilation;

/// <summary>One matchArgs or matchReturnArgs entry: a string dimension, or integer or socket tests.</summary>
internal static class ArgumentMatchCompiler
{
    internal static void CompileArg(TracingPolicy policy, ArgSelector m, IReadOnlyList<PolicyArg> args, string path, List<StringMatch> strings, List<IntMatch> ints,
        List<PolicyError> errors, bool tracepoint, bool isReturn)
    {
        ValueRef vref;
        string type;
        if (isReturn)
        {
            vref = ValueRef.Of(Pseudo.Return);
            type = "int";
        }
        else
        {
            var arg = m.Args.Count > 0 && m.Args[0] < args.Count ? args[(int)m.Args[0]]
                : args.FirstOrDefault(a => a.Index == m.Index) ?? (tracepoint && m.Index < args.Count ? args[(int)m.Index] : null);
            if (arg is null)
            {
                errors.Add(new PolicyError($"{path}.index", $"no argument with index {m.Index} in args; add it to args or fix the index", 0, 0));
                return;
            }
            vref = ValueRef.Arg(arg.Index);
            type = arg.Type;
        }
        var family = ValueFamilies.OfType(type);
        var op = m.Operator;
        var values = ExpandLists(policy, m.Values);
        if (family == ValueFamily.String)
        {
            var so = SelectorCompiler.StringOp(op) ?? throw new UnsupportedHookException($"{path}.operator {op} on a {type} argument is not implemented in the kernel by this version of Palisade");
            SelectorCompiler.CheckStrings(values, $"{path}.values", errors);
            strings.Add(new StringMatch(vref, so.Item1, so.Item2, false, values));
            return;
        }
        if (family == ValueFamily.Sock)
        {
            ints.Add(SocketMatchCompiler.CompileSock(vref, op, values, path, errors));
            return;
        }
        if (family != ValueFamily.Int)
        {
            throw new UnsupportedHookException($"{path}: matching a {type} argument is not implemented by this version of Palisade");
        }
        var negate = op is "NotEqual" or "NotIn" or "NotInRange" or "NotInMap";
        var tests = new List<IntTest>();
        foreach (var v in values)
        {
            switch (op)
            {
                case "Equal" or "NotEqual" or "In" or "NotIn" or "InMap" or "NotInMap" or "InRange" or "NotInRange":
                    if (v.Contains(':', StringComparison.Ordinal))
                    {
                        var parts = v.Split(':');
                        if (parts.Length == 2 && TryInt(parts[0], out var lo) && TryInt(parts[1], out var hi))
                        {
                            tests.Add(new IntTest(FilterOp.Range, (ulong)lo, (ulong)hi));
                        }
                        else
                        {
                            errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not a range \"low:high\"", 0, 0));
                        }
                    }
                    else if (TryInt(v, out var n))
                    {
                        tests.Add(op is "InRange" or "NotInRange" ? new IntTest(FilterOp.Range, (ulong)n, (ulong)n) : new IntTest(FilterOp.Equal, (ulong)n));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not an integer (decimal or 0x hex) for a {type} argument", 0, 0));
                    }
                    break;
                case "GreaterThan" or "LessThan" or "Mask":
                    if (TryInt(v, out var x))
                    {
                        tests.Add(new IntTest(op switch { "GreaterThan" => FilterOp.GreaterThan, "LessThan" => FilterOp.LessThan, _ => FilterOp.Mask }, (ulong)x));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not an integer (decimal or 0x hex)", 0, 0));
                    }
                    break;
                default:
                    throw new UnsupportedHookException($"{path}.operator {op} on a {type} argument is not implemented by this version of Palisade");
            }
        }
        ints.Add(new IntMatch(vref, SockField.Value, negate, tests));
    }

    private static IReadOnlyList<string> ExpandLists(TracingPolicy policy, IReadOnlyList<string> values)
    {
        if (!values.Any(v => v.StartsWith("list:", StringComparison.Ordinal)))
        {
            return values;
        }
        var result = new List<string>();
        foreach (var v in values)
        {
            if (!v.StartsWith("list:", StringComparison.Ordinal))
            {
                result.Add(v);
                continue;
            }
            var list = policy.Spec.Lists.FirstOrDefault(l => l.Name == v[5..]) ?? throw new UnsupportedHookException($"list \"{v[5..]}\" is not defined");
            foreach (var item in list.Values)
            {
                var sc = HookCatalog.SyscallName(item, true);
                if (sc is not null)
                {
                    result.Add(SyscallTable.X64[sc].ToString(CultureInfo.InvariantCulture));
                }
            }
        }
        return result;
    }

    private static bool TryInt(string s, out long value)
    {
        s = s.Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            var ok = ulong.TryParse(s[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var u);
            value = (long)u;
            return ok;
        }
        if (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out value))
        {
            return true;
        }
        var okU = ulong.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var big);
        value = (long)big;
        return okU;
    }
}
