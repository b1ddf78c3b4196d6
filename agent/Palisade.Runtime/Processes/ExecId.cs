using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace Palisade.Runtime.Processes;

/// <summary>Tetragon's process identity: base64 of "node:ktime:pid", unique across a cluster and stable for the process's life.</summary>
public static class ExecId
{
    public static string Create(string node, ulong ktime, uint pid)
    {
        Span<byte> raw = stackalloc byte[Encoding.UTF8.GetMaxByteCount(node.Length) + 2 + 20 + 10];
        var n = Encoding.UTF8.GetBytes(node, raw);
        raw[n++] = (byte)':';
        ktime.TryFormat(raw[n..], out var w, provider: CultureInfo.InvariantCulture);
        n += w;
        raw[n++] = (byte)':';
        pid.TryFormat(raw[n..], out w, provider: CultureInfo.InvariantCulture);
        n += w;
        Span<byte> encoded = stackalloc byte[Base64.GetMaxEncodedToUtf8Length(n)];
        Base64.EncodeToUtf8(raw[..n], encoded, out _, out var written);
        return Encoding.ASCII.GetString(encoded[..written]);
    }

    /// <summary>Splits an exec id back into its parts; null when it is not one of ours.</summary>
    public static (string Node, ulong Ktime, uint Pid)? Parse(string execId)
    {
        try
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(execId));
            var last = text.LastIndexOf(':');
            var middle = last > 0 ? text.LastIndexOf(':', last - 1) : -1;
            if (middle < 0)
            {
                return null;
            }
            return (text[..middle], ulong.Parse(text.AsSpan(middle + 1, last - middle - 1), CultureInfo.InvariantCulture),
                uint.Parse(text.AsSpan(last + 1), CultureInfo.InvariantCulture));
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
