using System.Buffers;
using System.Text.Json;
using Palisade.Events;

namespace Palisade.Exporters;

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
    private long _written;
    private long _failed;

    protected EventSink(EventSubscription subscription, string nodeName, TetragonJsonOptions? jsonOptions)
    {
        JsonOptions = jsonOptions ?? TetragonJsonOptions.Default;
        _subscription = subscription;
        NodeName = nodeName;
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public string NodeName { get; }

    public TetragonJsonOptions JsonOptions { get; }

    public string Name => _subscription.Name;

    /// <summary>Events written out.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Events that could not be encoded or written.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    public EventSubscription Subscription => _subscription;

    public void Start() => _run = Task.Run(RunAsync);

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
            try
            {
                Encode(e);
                pending++;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Interlocked.Increment(ref _failed);
            }
            if (_buffer.WrittenCount >= FlushThreshold)
            {
                pending = await FlushAsync(pending).ConfigureAwait(false);
            }
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
        TetragonJson.Write(json, e, NodeName, JsonOptions);
        json.Flush();
        buffer.Write("\n"u8);
    }
}

/// <summary>Tetragon-compatible JSON lines in a file (--export-filename), created with mode 0600.</summary>
public sealed class JsonFileSink : EventSink
{
    private readonly FileStream _file;

    public JsonFileSink(EventSubscription subscription, string nodeName, string path, TetragonJsonOptions? jsonOptions = null) : base(subscription, nodeName, jsonOptions)
    {
        Path = System.IO.Path.GetFullPath(path);
        if (System.IO.Path.GetDirectoryName(Path) is { } dir)
        {
            Directory.CreateDirectory(dir);
        }
        _file = new FileStream(Path, new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.Read,
            BufferSize = 0, // we hand it whole lines; no second buffer that could split one
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
    }

    public string Path { get; }

    protected override void EncodeLine(PalisadeEvent e, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json) => JsonLine(e, buffer, json);

    protected override ValueTask WriteAsync(ReadOnlyMemory<byte> lines) => _file.WriteAsync(lines);

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

    public ConsoleSink(EventSubscription subscription, string nodeName, bool json, TetragonJsonOptions? jsonOptions = null) : base(subscription, nodeName, jsonOptions)
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
        var line = CompactFormat.Format(e, NodeName, _color);
        var span = buffer.GetSpan(System.Text.Encoding.UTF8.GetMaxByteCount(line.Length) + 1);
        var n = System.Text.Encoding.UTF8.GetBytes(line, span);
        span[n] = (byte)'\n';
        buffer.Advance(n + 1);
    }

    protected override async ValueTask WriteAsync(ReadOnlyMemory<byte> lines)
    {
        await _stdout.WriteAsync(lines).ConfigureAwait(false);
        await _stdout.FlushAsync().ConfigureAwait(false);
    }
}
