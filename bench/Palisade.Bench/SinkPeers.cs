using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Grpc.Net.Client;
using Palisade.Api.V1;

namespace Palisade.Bench;

/// <summary>
/// The other end of each sink, run as a separate process pinned to the other core so the
/// sink's core does only the sink's work: a lean Elasticsearch `_bulk` endpoint and a gRPC
/// event-stream reader. Both print running totals on stdout for the benchmark to wait on.
/// </summary>
internal static class SinkPeers
{
    public static int Run(string[] args) => args[0] switch
    {
        "peer-es" => RunElasticsearch(int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture)),
        "peer-grpc" => RunGrpcReader(args[1]),
        _ => throw new ArgumentException($"unknown peer {args[0]}"),
    };

    /// <summary>
    /// Answers PUT _index_template with 200 and POST _bulk with one 201 per item. It decompresses
    /// and scans every body (as a real cluster must) but indexes nothing, so it keeps up with
    /// the sink. A minimal HTTP/1.1 server on a TCP_NODELAY socket, as real clusters run:
    /// HttpListener's split header/body writes meet the client's delayed ACK and add 40 ms to
    /// every request, which would measure the peer, not the sink. After each request: "bulk
    /// ITEMS WIRE_BYTES RAW_BYTES" (totals).
    /// </summary>
    private static int RunElasticsearch(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        Console.WriteLine("ready");
        long items = 0, wire = 0, raw = 0;
        while (true)
        {
            using var client = listener.AcceptTcpClient();
            client.NoDelay = true;
            using var stream = client.GetStream();
            var reader = new BufferedStream(stream, 1 << 16);
            while (ReadRequest(reader) is { } request)
            {
                wire += request.Body.Length;
                var ndjson = request.Gzip ? Gunzip(request.Body) : request.Body;
                var response = new MemoryStream();
                if (request.Method == "POST" && request.Path.EndsWith("/_bulk", StringComparison.Ordinal))
                {
                    raw += ndjson.Length;
                    var n = ndjson.AsSpan().Count((byte)'\n') / 2;
                    items += n;
                    response.Write("{\"took\":1,\"errors\":false,\"items\":["u8);
                    for (var i = 0; i < n; i++)
                    {
                        response.Write(i == 0 ? "{\"create\":{\"status\":201}}"u8 : ",{\"create\":{\"status\":201}}"u8);
                    }
                    response.Write("]}"u8);
                }
                else
                {
                    response.Write("{\"acknowledged\":true}"u8);
                }
                var head = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {response.Length}\r\n\r\n");
                var all = new byte[head.Length + response.Length];
                head.CopyTo(all, 0);
                response.GetBuffer().AsSpan(0, (int)response.Length).CopyTo(all.AsSpan(head.Length));
                stream.Write(all); // one write: headers and body in the same segment
                if (request.Method == "POST")
                {
                    Console.WriteLine($"bulk {items} {wire} {raw}");
                }
            }
        }
    }

    private sealed record HttpRequest(string Method, string Path, bool Gzip, byte[] Body);

    private static HttpRequest? ReadRequest(Stream input)
    {
        var line = ReadLine(input);
        if (string.IsNullOrEmpty(line))
        {
            return null;
        }
        var parts = line.Split(' ');
        var length = 0;
        var gzip = false;
        string? header;
        while ((header = ReadLine(input)) is { Length: > 0 })
        {
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            var name = header[..colon].Trim();
            var value = header[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                length = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (name.Equals("Content-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                gzip = value == "gzip";
            }
        }
        var body = new byte[length];
        input.ReadExactly(body);
        return new HttpRequest(parts[0], parts[1], gzip, body);
    }

    private static string? ReadLine(Stream input)
    {
        var line = new StringBuilder();
        int b;
        while ((b = input.ReadByte()) >= 0)
        {
            if (b == '\n')
            {
                return line.ToString().TrimEnd('\r');
            }
            line.Append((char)b);
        }
        return line.Length == 0 ? null : line.ToString();
    }

    private static byte[] Gunzip(byte[] body)
    {
        using var gzip = new GZipStream(new MemoryStream(body), CompressionMode.Decompress);
        using var plain = new MemoryStream();
        gzip.CopyTo(plain);
        return plain.ToArray();
    }

    /// <summary>
    /// Subscribes to GetEvents over the unix socket and reads every message; prints "events N
    /// BYTES" every 1000 messages (totals; BYTES = protobuf size of the messages).
    /// </summary>
    private static int RunGrpcReader(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), token).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        using var channel = GrpcChannel.ForAddress("http://palisade", new GrpcChannelOptions { HttpHandler = handler });
        var client = new FineGuidanceSensors.FineGuidanceSensorsClient(channel);
        using var call = client.GetEvents(new GetEventsRequest());
        long n = 0, bytes = 0;
        Console.WriteLine("ready");
        var stream = call.ResponseStream;
        while (stream.MoveNext(CancellationToken.None).GetAwaiter().GetResult())
        {
            bytes += stream.Current.CalculateSize();
            if (++n % 1000 == 0)
            {
                Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"events {n} {bytes}"));
            }
        }
        return 0;
    }
}

/// <summary>A peer process pinned to one core, whose stdout totals the benchmark waits on.</summary>
internal sealed class PeerProcess : IDisposable
{
    private readonly System.Diagnostics.Process _process;
    private readonly Lock _gate = new();
    private long[] _totals = [];
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PeerProcess(int core, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("taskset")
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(core.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // The benchmark itself runs in a process BenchmarkDotNet generated, so the peer is the
        // separately built bench executable (bench/run-sinks.sh builds it and sets this).
        start.ArgumentList.Add(Environment.GetEnvironmentVariable("PALISADE_BENCH_PEER")
            ?? throw new InvalidOperationException("set PALISADE_BENCH_PEER to the built Palisade.Bench executable (bench/run-sinks.sh does)"));
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        _process = System.Diagnostics.Process.Start(start)!;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }
            if (e.Data == "ready")
            {
                _ready.TrySetResult();
                return;
            }
            var parts = e.Data.Split(' ');
            var values = parts.Skip(1).Select(p => long.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            lock (_gate)
            {
                _totals = values;
            }
        };
        _process.BeginOutputReadLine();
        if (!_ready.Task.Wait(TimeSpan.FromSeconds(30)))
        {
            throw new InvalidOperationException($"peer {string.Join(' ', args)} did not start");
        }
    }

    /// <summary>The peer's latest totals line (numbers after the first word).</summary>
    public long[] Totals
    {
        get
        {
            lock (_gate)
            {
                return _totals;
            }
        }
    }

    /// <summary>Waits until the peer's first total reaches <paramref name="target"/>.</summary>
    public void WaitFor(long target)
    {
        var spin = new SpinWait();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while ((Totals.Length == 0 || Totals[0] < target) && DateTime.UtcNow < deadline)
        {
            spin.SpinOnce(sleep1Threshold: -1);
            if (spin.Count > 100)
            {
                Thread.Sleep(1);
            }
        }
        if (Totals.Length == 0 || Totals[0] < target)
        {
            throw new TimeoutException($"peer reached {(Totals.Length == 0 ? 0 : Totals[0])} of {target}");
        }
    }

    public void Dispose()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
