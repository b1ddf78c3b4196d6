using System.Globalization;
using System.Net;

namespace Palisade.Policies.Tracing.Compilation;

/// <summary>Socket operators (ports, addresses, protocol, family, state) as tests on the fields of a socket value.</summary>
internal static class SocketMatchCompiler
{
    internal static IntMatch CompileSock(ValueRef vref, string op, IReadOnlyList<string> values, string path, List<PolicyError> errors)
    {
        var negate = op.StartsWith("Not", StringComparison.Ordinal);
        var baseOp = negate ? op[3..] : op;
        var tests = new List<IntTest>();
        SockField field;
        switch (baseOp)
        {
            case "SPort" or "DPort":
                field = baseOp == "SPort" ? SockField.SPort : SockField.DPort;
                foreach (var v in values)
                {
                    var parts = v.Split(':');
                    if (parts.All(p => ushort.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)) && parts.Length <= 2)
                    {
                        var lo = ulong.Parse(parts[0], CultureInfo.InvariantCulture);
                        tests.Add(new IntTest(FilterOp.URange, lo, parts.Length == 2 ? ulong.Parse(parts[1], CultureInfo.InvariantCulture) : lo));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not a port (0-65535) or a range \"low:high\"", 0, 0));
                    }
                }
                break;
            case "SPortPriv" or "DPortPriv":
                field = baseOp == "SPortPriv" ? SockField.SPort : SockField.DPort;
                tests.Add(new IntTest(FilterOp.URange, 0, 1023));
                break;
            case "SAddr" or "DAddr":
                field = baseOp == "SAddr" ? SockField.SAddr : SockField.DAddr;
                foreach (var v in values)
                {
                    if (Cidr(v) is { } test)
                    {
                        tests.Add(test);
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not an IP address or CIDR (10.0.0.0/8, fd00::/8)", 0, 0));
                    }
                }
                break;
            case "Protocol" or "Family" or "State":
                field = baseOp switch { "Protocol" => SockField.Protocol, "Family" => SockField.Family, _ => SockField.State };
                foreach (var v in values)
                {
                    var n = SocketNames.Value(baseOp, v);
                    if (n >= 0)
                    {
                        tests.Add(new IntTest(FilterOp.Equal, (ulong)n));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{path}.values", $"\"{v}\" is not a {baseOp.ToLowerInvariant()} name or number", 0, 0));
                    }
                }
                break;
            default:
                throw new UnsupportedHookException($"{path}.operator {op} on a socket argument is not implemented by this version of Palisade");
        }
        return new IntMatch(vref, field, negate, tests);
    }

    /// <summary>An address test: a /n of IPv4 or IPv6 in the byte order the kernel keeps.</summary>
    internal static IntTest? Cidr(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addrText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addrText, out var addr))
        {
            return null;
        }
        var bytes = addr.GetAddressBytes();
        var bits = bytes.Length * 8;
        var prefix = bits;
        if (slash >= 0 && (!int.TryParse(text[(slash + 1)..], NumberStyles.Integer, CultureInfo.InvariantCulture, out prefix) || prefix < 0 || prefix > bits))
        {
            return null;
        }
        var mask = new byte[bytes.Length];
        for (var b = 0; b < prefix; b++)
        {
            mask[b / 8] |= (byte)(0x80 >> (b % 8));
        }
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] &= mask[i];
        }
        if (bytes.Length == 4)
        {
            return new IntTest(FilterOp.Addr4, BitConverter.ToUInt32(bytes), 0, BitConverter.ToUInt32(mask));
        }
        return new IntTest(FilterOp.Addr6, BitConverter.ToUInt64(bytes, 0), BitConverter.ToUInt64(bytes, 8), BitConverter.ToUInt64(mask, 0), BitConverter.ToUInt64(mask, 8));
    }
}
