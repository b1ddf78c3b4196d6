using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Palisade.Datapath.Netlink;

/// <summary>
/// An rtnetlink socket (AF_NETLINK, NETLINK_ROUTE) bound to the network namespace of the
/// thread that opened it: requests sent on it act in that namespace from whichever thread
/// sends them. One request at a time; each is acknowledged before the next is sent.
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    internal const ushort NLM_F_REQUEST = 0x1, NLM_F_MULTI = 0x2, NLM_F_ACK = 0x4, NLM_F_ROOT = 0x100, NLM_F_MATCH = 0x200,
        NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH, NLM_F_REPLACE = 0x100, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400;

    private const ushort NLMSG_ERROR = 2, NLMSG_DONE = 3;
    private const ushort NLM_F_CAPPED = 0x100, NLM_F_ACK_TLVS = 0x200;
    private const ushort NLMSGERR_ATTR_MSG = 1;

    // A link dump of a busy host fits easily; the kernel never splits one message across reads.
    private const int ReceiveBufferBytes = 64 * 1024;

    private readonly SafeDescriptor _fd;
    private readonly Lock _sync = new();
    private readonly byte[] _receive = new byte[ReceiveBufferBytes];
    private uint _sequence;

    private NetlinkSocket(SafeDescriptor fd, string where)
    {
        _fd = fd;
        Where = where;
    }

    /// <summary>Which namespace the socket acts in, for messages ("host" or the netns path).</summary>
    public string Where { get; }

    /// <summary>Opens a socket in the calling thread's network namespace.</summary>
    public static NetlinkSocket Open(string where = "host")
    {
        var fd = Interop.Libc.Socket(Interop.Libc.AF_NETLINK, Interop.Libc.SOCK_RAW | Interop.Libc.SOCK_CLOEXEC, Interop.Libc.NETLINK_ROUTE);
        if (fd < 0)
        {
            throw new NetlinkException("open rtnetlink socket", where, Marshal.GetLastPInvokeError());
        }
        var handle = new SafeDescriptor(fd);
        int one = 1;
        // Extended acks carry the kernel's reason ("Invalid prefix for given prefix length"); capped acks
        // keep the echoed request out of error replies. Both are best effort on old kernels.
        _ = Interop.Libc.SetSockOpt(fd, Interop.Libc.SOL_NETLINK, Interop.Libc.NETLINK_EXT_ACK, &one, sizeof(int));
        _ = Interop.Libc.SetSockOpt(fd, Interop.Libc.SOL_NETLINK, Interop.Libc.NETLINK_CAP_ACK, &one, sizeof(int));
        return new NetlinkSocket(handle, where);
    }

    /// <summary>Sends <paramref name="request"/> and waits for its acknowledgement; throws on a refusal.</summary>
    public void Execute(NetlinkRequest request, string operation, string target)
    {
        lock (_sync)
        {
            var sequence = Send(request, operation, target);
            while (true)
            {
                var received = Receive(operation, target);
                ReadOnlySpan<byte> data = _receive.AsSpan(0, received);
                while (data.Length >= NetlinkRequest.Header.Size)
                {
                    var header = MemoryMarshal.Read<NetlinkRequest.Header>(data);
                    if (header.Length < NetlinkRequest.Header.Size || header.Length > data.Length)
                    {
                        throw new NetlinkException($"{operation} {target}: malformed netlink reply");
                    }
                    if (header.Sequence == sequence && header.Type == NLMSG_ERROR)
                    {
                        ThrowIfError(data[..(int)header.Length], header, operation, target);
                        return;
                    }
                    data = Next(data, header);
                }
            }
        }
    }

    /// <summary>Sends a dump request and returns every reply message (its type and body after the netlink header).</summary>
    public List<(ushort Type, byte[] Body)> Dump(NetlinkRequest request, string operation, string target)
    {
        var messages = new List<(ushort, byte[])>();
        lock (_sync)
        {
            var sequence = Send(request, operation, target);
            while (true)
            {
                var received = Receive(operation, target);
                ReadOnlySpan<byte> data = _receive.AsSpan(0, received);
                while (data.Length >= NetlinkRequest.Header.Size)
                {
                    var header = MemoryMarshal.Read<NetlinkRequest.Header>(data);
                    if (header.Length < NetlinkRequest.Header.Size || header.Length > data.Length)
                    {
                        throw new NetlinkException($"{operation} {target}: malformed netlink reply");
                    }
                    if (header.Sequence == sequence)
                    {
                        if (header.Type == NLMSG_DONE)
                        {
                            return messages;
                        }
                        if (header.Type == NLMSG_ERROR)
                        {
                            ThrowIfError(data[..(int)header.Length], header, operation, target);
                            return messages; // an ack ends a request that returns at most one message
                        }
                        messages.Add((header.Type, data[NetlinkRequest.Header.Size..(int)header.Length].ToArray()));
                        if ((header.Flags & NLM_F_MULTI) == 0)
                        {
                            return messages;
                        }
                    }
                    data = Next(data, header);
                }
            }
        }
    }

    private static ReadOnlySpan<byte> Next(ReadOnlySpan<byte> data, NetlinkRequest.Header header)
    {
        var aligned = (int)((header.Length + 3) & ~3u);
        return aligned >= data.Length ? [] : data[aligned..];
    }

    private uint Send(NetlinkRequest request, string operation, string target)
    {
        var sequence = ++_sequence;
        var message = request.Finish(sequence);
        fixed (byte* p = message)
        {
            while (true)
            {
                var sent = Interop.Libc.Send(_fd.Fd, p, (nuint)message.Length, 0);
                if (sent >= 0)
                {
                    return sequence;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Interop.Libc.EINTR)
                {
                    throw new NetlinkException(operation, $"{target} (send)", errno);
                }
            }
        }
    }

    private int Receive(string operation, string target)
    {
        fixed (byte* p = _receive)
        {
            while (true)
            {
                var received = Interop.Libc.Recv(_fd.Fd, p, (nuint)_receive.Length, 0);
                if (received >= 0)
                {
                    return (int)received;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Interop.Libc.EINTR)
                {
                    throw new NetlinkException(operation, $"{target} (receive)", errno);
                }
            }
        }
    }

    private static void ThrowIfError(ReadOnlySpan<byte> message, NetlinkRequest.Header header, string operation, string target)
    {
        var body = message[NetlinkRequest.Header.Size..];
        var error = BinaryPrimitives.ReadInt32LittleEndian(body);
        if (error == 0)
        {
            return;
        }
        string? text = null;
        if ((header.Flags & NLM_F_ACK_TLVS) != 0)
        {
            // After the error code: the echoed request (just its header when capped), then the TLVs.
            var echoed = (header.Flags & NLM_F_CAPPED) != 0
                ? NetlinkRequest.Header.Size
                : (int)((BinaryPrimitives.ReadUInt32LittleEndian(body[4..]) + 3) & ~3u);
            if (4 + echoed <= body.Length)
            {
                text = NetlinkAttributes.Parse(body[(4 + echoed)..]).Bytes(NLMSGERR_ATTR_MSG) is { } b ? Encoding.UTF8.GetString(b).TrimEnd('\0') : null;
            }
        }
        throw new NetlinkException(operation, target, -error, text);
    }

    public void Dispose() => _fd.Dispose();
}
