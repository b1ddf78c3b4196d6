using System.Buffers.Binary;
using Google.Protobuf;

namespace Palisade.Cni.Api;

/// <summary>
/// Framing of the endpoint API on its unix socket: a 4-byte big-endian length, then one
/// protobuf message. One request and one response per connection.
/// </summary>
public static class EndpointWire
{
    /// <summary>Default path of the agent's endpoint socket.</summary>
    public const string DefaultSocketPath = "/var/run/palisade/endpoint.sock";

    /// <summary>Largest message either side accepts; a CNI config is a few KiB.</summary>
    public const int MaxMessageBytes = 1 << 20;

    public static async Task WriteAsync(Stream stream, IMessage message, CancellationToken cancellationToken)
    {
        var size = message.CalculateSize();
        var buffer = new byte[4 + size];
        BinaryPrimitives.WriteInt32BigEndian(buffer, size);
        message.WriteTo(buffer.AsSpan(4));
        await stream.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads one framed message; throws <see cref="InvalidDataException"/> on a bad length or a short read.</summary>
    public static async Task<T> ReadAsync<T>(Stream stream, MessageParser<T> parser, CancellationToken cancellationToken)
        where T : IMessage<T>
    {
        var header = new byte[4];
        await ReadExactlyAsync(stream, header, cancellationToken).ConfigureAwait(false);
        var size = BinaryPrimitives.ReadInt32BigEndian(header);
        if (size < 0 || size > MaxMessageBytes)
        {
            throw new InvalidDataException($"endpoint API frame of {size} bytes: the limit is {MaxMessageBytes}");
        }
        var body = new byte[size];
        await ReadExactlyAsync(stream, body, cancellationToken).ConfigureAwait(false);
        try
        {
            return parser.ParseFrom(body);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"endpoint API frame is not a valid {typeof(T).Name}: {e.Message}", e);
        }
    }

    private static async Task ReadExactlyAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            await stream.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("endpoint API connection closed in the middle of a frame", e);
        }
    }
}
