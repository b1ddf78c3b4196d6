using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Palisade.Events;
using Palisade.Exporters.Filters;

namespace Palisade.Exporters;

/// <summary>
/// What one sink lets through and how: allow/deny filters (deny wins), field filters applied
/// while the event is encoded, and an optional rate limit in events per minute (0: none).
/// </summary>
public sealed record SinkPipeline(ExportFilter Filter, IReadOnlyList<FieldFilter> Fields, int RateLimitPerMinute)
{
    public static readonly SinkPipeline PassAll = new(ExportFilter.All, [], 0);

    private FieldMasks? _masks;

    /// <summary>The field filters as masks per event type, built once (again after a `with` that changes them).</summary>
    public FieldMasks Masks => _masks is { } m && ReferenceEquals(m.Filters, Fields) ? m : _masks = new FieldMasks(Fields);
}

/// <summary>
/// Drains one subscription into an output, writing whole lines only: events are encoded
/// into a buffer and the buffer goes out in one write when the queue runs dry or the
/// buffer is full, so a crash never leaves half a line behind.
/// </summary>
public abstract class EventSink : IAsyncDisposable
{
    // Large enough to batch a burst into few writes, small enough to stay in the LOH-free pool.
    private const int FlushThreshold = 64 * 1024;

    // How long a partly filled buffer waits for more events before it is written: one write
    // per burst instead of one per event (a write per exec cost a 2-core machine 40% of its
    // exec throughput), while events still reach the output within a blink.
    private static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(50);

    private readonly EventSubscription _subscription;
    private readonly ArrayBufferWriter<byte> _buffer = new(FlushThreshold * 2);
    private readonly Utf8JsonWriter _json;
    private Task? _run;
    private readonly SinkPipeline _pipeline;
    private readonly RateLimiter? _limiter;
    private long _written;
    private long _failed;
    private long _filtered;
    private long _encodeFailed;

    protected EventSink(EventSubscription subscription, string nodeName, TetragonJsonOptions? jsonOptions, SinkPipeline? pipeline = null)
    {
        JsonOptions = jsonOptions ?? TetragonJsonOptions.Default;
        _pipeline = pipeline ?? SinkPipeline.PassAll;
        _limiter = _pipeline.RateLimitPerMinute > 0 ? new RateLimiter(_pipeline.RateLimitPerMinute) : null;
        _subscription = subscription;
        NodeName = nodeName;
        _json = new Utf8JsonWriter(_buffer, TetragonJson.WriterOptions);
    }

    public string NodeName { get; }

    public TetragonJsonOptions JsonOptions { get; }

    public string Name => _subscription.Name;

    /// <summary>Events written out.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Events that could not be encoded or written.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Events the allow/deny filters kept out (not a loss: asked for).</summary>
    public long Filtered => Interlocked.Read(ref _filtered);

    /// <summary>Events lost, by reason: queue_full, rate_limited, encode_failed, write_failed.</summary>
    public IReadOnlyDictionary<string, long> Drops => new Dictionary<string, long>(StringComparer.Ordinal)
    {
        ["queue_full"] = _subscription.Dropped,
        ["rate_limited"] = _limiter?.Dropped ?? 0,
        ["encode_failed"] = Interlocked.Read(ref _encodeFailed),
        ["write_failed"] = Interlocked.Read(ref _failed) - Interlocked.Read(ref _encodeFailed),
    };

    public EventSubscription Subscription => _subscription;

    public virtual void Start() => _run = Task.Run(RunAsync);

    private async Task RunAsync()
    {
        var reader = _subscription.Reader;
        var pending = 0;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            pending = await DrainAsync(reader, pending).ConfigureAwait(false);
            if (pending > 0 && !reader.Completion.IsCompleted)
            {
                await Task.Delay(FlushInterval).ConfigureAwait(false);
                pending = await DrainAsync(reader, pending).ConfigureAwait(false);
            }
            pending = await FlushAsync(pending).ConfigureAwait(false);
        }
        await FlushAsync(pending).ConfigureAwait(false);
    }

    private async ValueTask<int> DrainAsync(System.Threading.Channels.ChannelReader<PalisadeEvent> reader, int pending)
    {
        while (reader.TryRead(out var e))
        {
            if (!_pipeline.Filter.Passes(e))
            {
                Interlocked.Increment(ref _filtered);
                continue;
            }
            if (_limiter is not null && !_limiter.TryTake())
            {
                continue;
            }
            try
            {
                Encode(e);
                pending++;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Interlocked.Increment(ref _failed);
                Interlocked.Increment(ref _encodeFailed);
            }
            if (_buffer.WrittenCount >= FlushThreshold)
            {
                pending = await FlushAsync(pending).ConfigureAwait(false);
                // A long queue keeps this loop busy without ever awaiting anything (writes
                // often complete at once): give the thread pool back between buffers, or
                // on a one-CPU pod (one pool thread at first) other sinks' and the
                // Elasticsearch sender's work waits ~0.5 s for the pool to grow.
                await Task.Yield();
            }
        }
        if (_limiter?.TakeReport(force: reader.Completion.IsCompleted) is > 0 and var dropped)
        {
            EncodeRateLimitInfo(dropped, _buffer, _json);
        }
        return pending;
    }

    private void Encode(PalisadeEvent e)
    {
        var mark = _buffer.WrittenCount;
        try
        {
            EncodeLine(e, _buffer, _json);
        }
        catch
        {
            // Drop the half-encoded line; keep the whole ones before it.
            var keep = _buffer.WrittenSpan[..mark].ToArray();
            _buffer.ResetWrittenCount();
            _buffer.Write(keep);
            _json.Reset(_buffer);
            throw;
        }
    }

    /// <summary>Appends one event and a newline to <paramref name="buffer"/>.</summary>
    protected abstract void EncodeLine(PalisadeEvent e, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json);

    /// <summary>Appends Tetragon's rate_limit_info event: how many events the rate limit dropped.</summary>
    protected virtual void EncodeRateLimitInfo(long dropped, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        json.Reset(buffer);
        TetragonJson.WriteRateLimitInfo(json, dropped, NodeName, DateTimeOffset.UtcNow);
        json.Flush();
        buffer.Write("\n"u8);
    }

    /// <summary>Writes whole lines out.</summary>
    protected abstract ValueTask WriteAsync(ReadOnlyMemory<byte> lines);

    private async ValueTask<int> FlushAsync(int pending)
    {
        if (_buffer.WrittenCount == 0)
        {
            return 0;
        }
        try
        {
            await WriteAsync(_buffer.WrittenMemory).ConfigureAwait(false);
            Interlocked.Add(ref _written, pending);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Interlocked.Add(ref _failed, pending);
        }
        _buffer.ResetWrittenCount();
        return 0;
    }

    /// <summary>Stops after writing everything already queued.</summary>
    public virtual async ValueTask DisposeAsync()
    {
        _subscription.Dispose();
        if (_run is not null)
        {
            await _run.ConfigureAwait(false);
        }
        await _json.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    protected void JsonLine(PalisadeEvent e, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        json.Reset(buffer);
        TetragonJson.WriteFiltered(json, e, NodeName, JsonOptions, _pipeline.Masks);
        json.Flush();
        buffer.Write("\n"u8);
    }
}

/// <summary>
/// How the JSON file is rotated, as Tetragon's --export-file-* flags: past MaxBytes (or after
/// Interval) the file is renamed to NAME.1 (older backups shift up, the oldest beyond
/// MaxBackups is deleted; 0 keeps all), optionally gzipped, and a new file is opened with Mode.
/// Rotation happens between whole writes, so no line is ever split across files.
/// </summary>
public sealed record FileRotation(long MaxBytes, int MaxBackups, bool Compress, UnixFileMode Mode, TimeSpan Interval)
{
    public const UnixFileMode DefaultMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public static readonly FileRotation Default = new(10L * 1024 * 1024, 5, false, DefaultMode, TimeSpan.Zero);
}

/// <summary>Tetragon-compatible JSON lines in a file (--export-filename), rotated by size or age.</summary>
public sealed class JsonFileSink : EventSink
{
    private readonly FileRotation _rotation;
    private readonly TimeProvider _time;
    private FileStream _file;
    private long _size;
    private DateTimeOffset _opened;
    private long _rotations;

    public JsonFileSink(EventSubscription subscription, string nodeName, string path, TetragonJsonOptions? jsonOptions = null, FileRotation? rotation = null,
        TimeProvider? time = null, SinkPipeline? pipeline = null) : base(subscription, nodeName, jsonOptions, pipeline)
    {
        _rotation = rotation ?? FileRotation.Default;
        _time = time ?? TimeProvider.System;
        Path = System.IO.Path.GetFullPath(path);
        if (System.IO.Path.GetDirectoryName(Path) is { } dir)
        {
            Directory.CreateDirectory(dir);
        }
        _file = Open();
    }

    public string Path { get; }

    /// <summary>Files rotated away so far.</summary>
    public long Rotations => Interlocked.Read(ref _rotations);

    private FileStream Open()
    {
        var file = new FileStream(Path, new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.Read,
            BufferSize = 0, // we hand it whole lines; no second buffer that could split one
            UnixCreateMode = _rotation.Mode,
        });
        _size = file.Length;
        _opened = _time.GetUtcNow();
        return file;
    }

    protected override void EncodeLine(PalisadeEvent e, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json) => JsonLine(e, buffer, json);

    protected override async ValueTask WriteAsync(ReadOnlyMemory<byte> lines)
    {
        var tooBig = _size > 0 && _size + lines.Length > _rotation.MaxBytes;
        var tooOld = _rotation.Interval > TimeSpan.Zero && _size > 0 && _time.GetUtcNow() - _opened >= _rotation.Interval;
        if (tooBig || tooOld)
        {
            await RotateAsync().ConfigureAwait(false);
        }
        await _file.WriteAsync(lines).ConfigureAwait(false);
        _size += lines.Length;
    }

    private string Backup(int n) => $"{Path}.{n}" + (_rotation.Compress ? ".gz" : "");

    private async Task RotateAsync()
    {
        await _file.DisposeAsync().ConfigureAwait(false);
        // Shift NAME.1 -> NAME.2 ...; the oldest past the limit goes.
        var existing = 0;
        while (File.Exists(Backup(existing + 1)))
        {
            existing++;
        }
        for (var n = existing; n >= 1; n--)
        {
            if (_rotation.MaxBackups > 0 && n >= _rotation.MaxBackups)
            {
                File.Delete(Backup(n));
            }
            else
            {
                File.Move(Backup(n), Backup(n + 1), overwrite: true);
            }
        }
        if (_rotation.Compress)
        {
            // Compress beside the target, then rename: a crash leaves either the plain
            // file or a complete .gz, never a partial one under the final name.
            var tmp = Backup(1) + ".tmp";
            await using (var input = File.OpenRead(Path))
            await using (var output = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = _rotation.Mode }))
            await using (var gzip = new System.IO.Compression.GZipStream(output, System.IO.Compression.CompressionLevel.Fastest))
            {
                await input.CopyToAsync(gzip).ConfigureAwait(false);
            }
            File.Move(tmp, Backup(1), overwrite: true);
            File.Delete(Path);
        }
        else
        {
            File.Move(Path, Backup(1), overwrite: true);
        }
        Interlocked.Increment(ref _rotations);
        _file = Open();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        await _file.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Events on stdout, compact (one readable line) or as JSON lines.</summary>
public sealed class ConsoleSink : EventSink
{
    private readonly Stream _stdout = Console.OpenStandardOutput();
    private readonly bool _json;
    private readonly bool _color;

    public ConsoleSink(EventSubscription subscription, string nodeName, bool json, TetragonJsonOptions? jsonOptions = null, SinkPipeline? pipeline = null)
        : base(subscription, nodeName, jsonOptions, pipeline)
    {
        _json = json;
        _color = !json && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
    }

    protected override void EncodeLine(PalisadeEvent e, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        if (_json)
        {
            JsonLine(e, buffer, json);
            return;
        }
        var line = CompactFormat.Format(e, NodeName, _color, JsonOptions.Redactor);
        var span = buffer.GetSpan(System.Text.Encoding.UTF8.GetMaxByteCount(line.Length) + 1);
        var n = System.Text.Encoding.UTF8.GetBytes(line, span);
        span[n] = (byte)'\n';
        buffer.Advance(n + 1);
    }

    protected override void EncodeRateLimitInfo(long dropped, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        if (_json)
        {
            base.EncodeRateLimitInfo(dropped, buffer, json);
            return;
        }
        buffer.Write(System.Text.Encoding.UTF8.GetBytes(CompactFormat.RateLimitInfo(dropped, _color) + "\n"));
    }

    protected override async ValueTask WriteAsync(ReadOnlyMemory<byte> lines)
    {
        await _stdout.WriteAsync(lines).ConfigureAwait(false);
        await _stdout.FlushAsync().ConfigureAwait(false);
    }
}
