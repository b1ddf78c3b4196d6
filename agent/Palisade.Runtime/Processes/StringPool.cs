using System.Text;

namespace Palisade.Runtime.Processes;

/// <summary>
/// Hands out one string instance per distinct value (paths repeat: thousands of execs of
/// /usr/bin/true share one "/usr/bin/true"), looked up from UTF-8 bytes without
/// allocating on a hit. Bounded: cleared when full. Single-threaded (the ring-buffer thread).
/// </summary>
internal sealed class StringPool(int capacity = 8192)
{
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > 512)
        {
            return Encoding.UTF8.GetString(utf8); // long values rarely repeat; not worth pooling
        }
        Span<char> chars = stackalloc char[utf8.Length];
        var n = Encoding.UTF8.GetChars(utf8, chars);
        var lookup = _strings.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(chars[..n], out var existing))
        {
            return existing;
        }
        if (_strings.Count >= capacity)
        {
            _strings.Clear();
        }
        var s = new string(chars[..n]);
        _strings[s] = s;
        return s;
    }

    public int Count => _strings.Count;
}
