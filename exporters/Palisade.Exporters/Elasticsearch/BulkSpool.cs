using System.Globalization;

namespace Palisade.Exporters.Elasticsearch;

/// <summary>
/// A write-ahead queue of _bulk items on disk: every item (action line + document line) is
/// appended to numbered segment files before it is sent, and a cursor file records what
/// Elasticsearch has acknowledged. So an outage, a crash or a restart loses nothing that
/// reached the spool, and replay is in the original order. Bounded: past the limit the
/// oldest segment is dropped (counted), never the newest events.
/// </summary>
public sealed class BulkSpool : IDisposable
{
    private const string Prefix = "seg-";
    private const string Suffix = ".ndjson";

    private readonly Lock _gate = new();
    private readonly string _dir;
    private readonly long _maxBytes;
    private readonly long _segmentBytes;
    // Segment number -> readable length (whole items only). The last one is being written.
    private readonly SortedDictionary<long, long> _segments = [];
    private FileStream _writer;
    private long _writing;
    private long _cursorSeg;
    private long _cursorOff;
    private long _dropped;
    private long _pendingItems;

    public BulkSpool(string directory, long maxBytes)
    {
        _dir = Path.GetFullPath(directory);
        _maxBytes = Math.Max(maxBytes, 64 * 1024);
        _segmentBytes = Math.Clamp(_maxBytes / 8, 16 * 1024, 64L * 1024 * 1024);
        Directory.CreateDirectory(_dir);
        File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var items = new Dictionary<long, long>();
        foreach (var file in Directory.EnumerateFiles(_dir, Prefix + "*" + Suffix))
        {
            var name = Path.GetFileName(file);
            if (long.TryParse(name.AsSpan(Prefix.Length, name.Length - Prefix.Length - Suffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                (_segments[n], items[n]) = WholeItems(file);
            }
        }
        ReadCursor();
        foreach (var old in _segments.Keys.Where(n => n < _cursorSeg).ToList())
        {
            File.Delete(SegmentPath(old));
            _segments.Remove(old);
        }
        if (_segments.Count > 0 && _cursorSeg < _segments.Keys.First())
        {
            (_cursorSeg, _cursorOff) = (_segments.Keys.First(), 0);
        }
        RecoveredBytes = PendingBytes;
        // Each segment was read once above; only the acknowledged head of the cursor's segment is read again.
        _pendingItems = _segments.Keys.Sum(n => items[n]) - (_segments.ContainsKey(_cursorSeg) ? CountItems(SegmentPath(_cursorSeg), 0, _cursorOff) : 0);
        _writer = OpenSegment(_segments.Count == 0 ? Math.Max(1, _cursorSeg) : _segments.Keys.Last() + 1);
    }

    /// <summary>Bytes found waiting from an earlier run.</summary>
    public long RecoveredBytes { get; }

    /// <summary>Items dropped because the spool was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Items written but not yet acknowledged.</summary>
    public long PendingItems => Interlocked.Read(ref _pendingItems);

    /// <summary>Bytes written but not yet acknowledged.</summary>
    public long PendingBytes
    {
        get
        {
            lock (_gate)
            {
                return PendingBytesLocked();
            }
        }
    }

    private string SegmentPath(long n) => Path.Combine(_dir, $"{Prefix}{n:D12}{Suffix}");

    private string CursorPath => Path.Combine(_dir, "cursor");

    private FileStream OpenSegment(long n)
    {
        var stream = new FileStream(SegmentPath(n), new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.Read | FileShare.Delete,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        _writing = n;
        _segments[n] = stream.Length;
        return stream;
    }

    /// <summary>Appends whole items (each an action line and a document line) and makes them readable.</summary>
    public void Append(ReadOnlySpan<byte> items)
    {
        lock (_gate)
        {
            while (PendingBytesLocked() + items.Length > _maxBytes && _segments.Count > 0)
            {
                if (_segments.Keys.First() == _writing)
                {
                    if (_segments[_writing] == 0)
                    {
                        break; // nothing to drop: the new items alone exceed the bound
                    }
                    Rotate();
                }
                DropOldest();
            }
            _writer.Write(items);
            _writer.Flush();
            _segments[_writing] += items.Length;
            Interlocked.Add(ref _pendingItems, items.Count((byte)'\n') / 2);
            if (_segments[_writing] >= _segmentBytes)
            {
                Rotate();
            }
        }
    }

    private long PendingBytesLocked() =>
        _segments.Sum(kv => kv.Key >= _cursorSeg ? kv.Value : 0) - (_segments.ContainsKey(_cursorSeg) ? _cursorOff : 0);

    private void Rotate()
    {
        _writer.Dispose();
        _writer = OpenSegment(_writing + 1);
    }

    private void DropOldest()
    {
        var oldest = _segments.Keys.First();
        var from = oldest == _cursorSeg ? _cursorOff : 0;
        var lost = CountItems(SegmentPath(oldest), from, _segments[oldest]);
        Interlocked.Add(ref _dropped, lost);
        Interlocked.Add(ref _pendingItems, -lost);
        File.Delete(SegmentPath(oldest));
        _segments.Remove(oldest);
        if (_cursorSeg <= oldest)
        {
            (_cursorSeg, _cursorOff) = (_segments.Keys.First(), 0);
            WriteCursor();
        }
    }

    /// <summary>A position in the spool: what to commit after a batch is acknowledged, and how many items it covers.</summary>
    public readonly record struct Position(long Segment, long Offset, int Items);

    /// <summary>
    /// Reads up to <paramref name="maxItems"/> items (and about <paramref name="maxBytes"/>) from the
    /// acknowledged position on, continuing into the next segments when one ends, so a batch
    /// is not cut short at a segment boundary. Returns the raw items (valid until the next Read) and
    /// the position after them.
    /// </summary>
    public (List<ReadOnlyMemory<byte>> Items, Position Next) Read(int maxItems, int maxBytes)
    {
        long seg, off;
        List<KeyValuePair<long, long>> segments;
        lock (_gate)
        {
            // Finished segments behind the writer are deleted once fully acknowledged.
            while (_segments.TryGetValue(_cursorSeg, out var l) && _cursorOff >= l && _cursorSeg != _writing)
            {
                File.Delete(SegmentPath(_cursorSeg));
                _segments.Remove(_cursorSeg);
                (_cursorSeg, _cursorOff) = (_segments.Keys.First(), 0);
                WriteCursor();
            }
            (seg, off) = (_cursorSeg, _cursorOff);
            segments = [.. _segments.Where(kv => kv.Key >= seg)];
        }
        var items = new List<ReadOnlyMemory<byte>>();
        _readBuffersUsed = 0;
        var at = new Position(seg, off, 0);
        var bytes = 0L;
        foreach (var (n, len) in segments)
        {
            var from = n == seg ? off : 0;
            if (len <= from)
            {
                continue;
            }
            var want = (int)Math.Min(len - from, Math.Max(maxBytes - bytes, 1));
            var buffer = ReadRange(n, from, want);
            var consumed = Split(buffer, items, maxItems);
            if (items.Count == 0)
            {
                // One item larger than maxBytes: read it whole and send it alone.
                buffer = ReadRange(n, from, (int)Math.Min(len - from, int.MaxValue));
                consumed = Split(buffer, items, 1);
            }
            if (consumed == 0)
            {
                break; // the next item does not fit in what is left of maxBytes
            }
            at = new Position(n, from + consumed, items.Count);
            bytes += consumed;
            if (items.Count >= maxItems || bytes >= maxBytes || from + consumed < len)
            {
                break;
            }
        }
        return (items, at);
    }

    // The items of one Read point into these buffers: they stay valid until the next Read
    // (one sender reads, sends, commits, then reads again). Reused, because a batch is
    // megabytes and a fresh array per batch is large-object-heap churn.
    private readonly List<byte[]> _readBuffers = [];
    private int _readBuffersUsed;

    private ArraySegment<byte> ReadRange(long seg, long off, int count)
    {
        using var file = new FileStream(SegmentPath(seg), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        file.Position = off;
        if (_readBuffersUsed == _readBuffers.Count)
        {
            _readBuffers.Add([]);
        }
        var buffer = _readBuffers[_readBuffersUsed];
        if (buffer.Length < count)
        {
            buffer = _readBuffers[_readBuffersUsed] = new byte[Math.Max(count, Math.Min(2 * buffer.Length, int.MaxValue / 2))];
        }
        _readBuffersUsed++;
        file.ReadExactly(buffer, 0, count);
        return new ArraySegment<byte>(buffer, 0, count);
    }

    // Cuts whole items (two lines each) off the front of the buffer.
    private static int Split(ArraySegment<byte> buffer, List<ReadOnlyMemory<byte>> items, int maxItems)
    {
        var at = 0;
        var span = buffer.AsSpan();
        while (items.Count < maxItems)
        {
            var first = span[at..].IndexOf((byte)'\n');
            if (first < 0)
            {
                break;
            }
            first += at;
            var second = span[(first + 1)..].IndexOf((byte)'\n');
            if (second < 0)
            {
                break;
            }
            second += first + 1;
            items.Add(buffer.AsMemory(at, second + 1 - at));
            at = second + 1;
        }
        return at;
    }

    /// <summary>Records that everything before <paramref name="next"/> is acknowledged.</summary>
    public void Commit(Position next)
    {
        lock (_gate)
        {
            if (next.Segment < _cursorSeg || (next.Segment == _cursorSeg && next.Offset <= _cursorOff))
            {
                return; // the segment was dropped for space meanwhile
            }
            (_cursorSeg, _cursorOff) = (next.Segment, next.Offset);
            WriteCursor();
            Interlocked.Add(ref _pendingItems, -next.Items);
            // A batch that ran into later segments leaves the earlier ones fully acknowledged.
            foreach (var done in _segments.Keys.Where(n => n < _cursorSeg).ToList())
            {
                File.Delete(SegmentPath(done));
                _segments.Remove(done);
            }
        }
    }

    private void ReadCursor()
    {
        if (File.Exists(CursorPath))
        {
            var parts = File.ReadAllText(CursorPath).Split(' ', StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && long.TryParse(parts[0], CultureInfo.InvariantCulture, out var s) && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var o))
            {
                (_cursorSeg, _cursorOff) = (s, o);
                return;
            }
        }
        (_cursorSeg, _cursorOff) = (_segments.Count > 0 ? _segments.Keys.First() : 1, 0);
    }

    private void WriteCursor()
    {
        var tmp = CursorPath + ".tmp";
        File.WriteAllText(tmp, string.Create(CultureInfo.InvariantCulture, $"{_cursorSeg} {_cursorOff}\n"));
        File.Move(tmp, CursorPath, overwrite: true);
    }

    // A crash can leave a half-written item at a segment's end: only whole items count.
    // Streamed, so a full spool (up to 64 MiB a segment) is never read into memory at start.
    // Returns the length of the whole items and how many there are.
    private static (long Length, long Items) WholeItems(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buffer = new byte[64 * 1024];
        long newlines = 0, end = 0, offset = 0;
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            for (var i = buffer.AsSpan(0, n).IndexOf((byte)'\n'); i >= 0;)
            {
                if (++newlines % 2 == 0)
                {
                    end = offset + i + 1;
                }
                var next = buffer.AsSpan(i + 1, n - i - 1).IndexOf((byte)'\n');
                i = next < 0 ? -1 : i + 1 + next;
            }
            offset += n;
        }
        return (end, newlines / 2);
    }

    private static long CountItems(string file, long from, long to)
    {
        if (!File.Exists(file) || to <= from)
        {
            return 0;
        }
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        stream.Position = from;
        var buffer = new byte[64 * 1024];
        long lines = 0;
        long left = to - from;
        while (left > 0)
        {
            var n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n == 0)
            {
                break;
            }
            lines += buffer.AsSpan(0, n).Count((byte)'\n');
            left -= n;
        }
        return lines / 2;
    }

    /// <summary>Closes the spool; when nothing is pending its files are removed.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _writer.Dispose();
            if (PendingBytesLocked() == 0)
            {
                foreach (var n in _segments.Keys)
                {
                    File.Delete(SegmentPath(n));
                }
                _segments.Clear();
                File.Delete(CursorPath);
            }
        }
    }
}
