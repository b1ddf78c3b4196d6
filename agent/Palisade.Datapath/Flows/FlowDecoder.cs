using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Palisade.Bpf;
using Palisade.Bpf.Abi;
using Palisade.Datapath.Abi;
using Palisade.Events;

namespace Palisade.Datapath.Flows;

/// <summary>Finds the process behind a flow's socket: (tgid, exec ktime) from the socket-owner table -> the cached record.</summary>
public interface IFlowProcessResolver
{
    /// <summary>The process with this exec identity, or null when the cache does not know it (ktime 0: identity unknown).</summary>
    ProcessRecord? Resolve(uint tgid, ulong ktime);
}

/// <summary>Counters of the flow decoder: what it turned into events, what it could not, and what the kernel aggregated.</summary>
/// <param name="Decoded">Records that became flow events.</param>
/// <param name="Malformed">Records refused (short, wrong type or size, a verdict or direction out of range).</param>
/// <param name="WithProcess">Flows that name their process.</param>
/// <param name="ProcessMisses">Flows whose record named an owner the process cache did not know.</param>
/// <param name="EndpointMisses">Flows naming a local endpoint id the endpoint directory did not know.</param>
/// <param name="AggregatedPackets">Packets the datapath folded into an earlier record of their connection instead of writing their own.</param>
/// <param name="Bytes">Bytes covered by the records.</param>
public readonly record struct FlowDecoderStats(long Decoded, long Malformed, long WithProcess, long ProcessMisses, long EndpointMisses, long AggregatedPackets, long Bytes);

/// <summary>Why the decoder refused a record (each counted in <see cref="FlowDecoder.MalformedBy"/>).</summary>
public enum FlowRecordError
{
    /// <summary>Shorter than struct pal_flow_event: cut off, or written by another version of the datapath.</summary>
    Truncated,
    /// <summary>The header names another event type.</summary>
    NotAFlow,
    /// <summary>The header's size is smaller than a flow record or larger than the record read.</summary>
    SizeMismatch,
    /// <summary>A verdict or direction no datapath writes.</summary>
    OutOfRange,
}

/// <summary>
/// Turns pal_flow_event records (bpf/include/pal_flow.h) into <see cref="FlowEvent"/>s: verdict,
/// addresses, L4, both endpoints from the <see cref="IEndpointDirectory"/>, the interface, a
/// Hubble-style summary, and the local process that owns the socket. The record is read in
/// place from the ring buffer's span; nothing is allocated for a record that is refused, and
/// what every flow of an endpoint shares (its labels, the interface, summaries) is built once.
/// Runs on the ring-buffer reader's thread.
/// </summary>
public sealed class FlowDecoder : IRingBufferConsumer
{
    /// <summary>Identities of remote peers kept with their endpoint object; past this the cache starts over.</summary>
    private const int PeerCacheLimit = 4096;

    private static readonly int RecordSize = Unsafe.SizeOf<PalFlowEvent>();

    private readonly IEndpointDirectory _endpoints;
    private readonly IFlowProcessResolver _processes;
    private readonly IInterfaceNames _interfaces;
    private readonly DateTimeOffset _bootTime;
    private readonly Action<PalisadeEvent> _publish;
    private readonly ConditionalWeakTable<Endpoint, FlowEndpoint> _local = new();
    private readonly Dictionary<uint, FlowEndpoint> _peers = [];
    private readonly Dictionary<uint, FlowInterface> _nics = [];
    private long _decoded, _malformed, _withProcess, _processMisses, _endpointMisses, _aggregated, _bytes;
    private readonly long[] _malformedBy = new long[Enum.GetValues<FlowRecordError>().Length];

    /// <param name="endpoints">Local endpoints by id and address.</param>
    /// <param name="processes">The agent's process cache.</param>
    /// <param name="bootTime">Wall-clock time at boot: record times are boot-time nanoseconds.</param>
    /// <param name="publish">Where events go (the hub).</param>
    /// <param name="interfaces">Interface names; null: none are named.</param>
    public FlowDecoder(IEndpointDirectory endpoints, IFlowProcessResolver processes, DateTimeOffset bootTime, Action<PalisadeEvent> publish, IInterfaceNames? interfaces = null)
    {
        _endpoints = endpoints;
        _processes = processes;
        _bootTime = bootTime;
        _publish = publish;
        _interfaces = interfaces ?? NoInterfaceNames.Instance;
    }

    public FlowDecoderStats Stats => new(Interlocked.Read(ref _decoded), Interlocked.Read(ref _malformed), Interlocked.Read(ref _withProcess),
        Interlocked.Read(ref _processMisses), Interlocked.Read(ref _endpointMisses), Interlocked.Read(ref _aggregated), Interlocked.Read(ref _bytes));

    /// <summary>Refused records of one kind; they add up to <see cref="FlowDecoderStats.Malformed"/>.</summary>
    public long MalformedBy(FlowRecordError reason) => Interlocked.Read(ref _malformedBy[(int)reason]);

    public void OnRecord(ReadOnlySpan<byte> record)
    {
        if (Decode(record) is { } flow)
        {
            _publish(flow);
        }
    }

    /// <summary>The flow of one record, or null (counted as malformed) when the record is not a valid flow record.</summary>
    public FlowEvent? Decode(ReadOnlySpan<byte> record)
    {
        // Fast checks first, on the span: a refused record costs no allocation.
        if (record.Length < RecordSize)
        {
            return Malformed(FlowRecordError.Truncated);
        }
        // A copy on the stack (144 bytes): its address fields can be read in place.
        var r = MemoryMarshal.Read<PalFlowEvent>(record);
        if (r.Hdr.Type != (uint)PalEventType.Flow)
        {
            return Malformed(FlowRecordError.NotAFlow);
        }
        if (r.Hdr.Size < RecordSize || r.Hdr.Size > record.Length)
        {
            return Malformed(FlowRecordError.SizeMismatch);
        }
        if (r.Verdict > (byte)PalFlowVerdict.Translated || r.Direction > (byte)PalFlowDirection.Egress ||
            r.PolicyDir > (byte)PalFlowDirection.Egress || r.PolicyMatch > (byte)PalFlowPolicyMatch.CtRelated)
        {
            return Malformed(FlowRecordError.OutOfRange);
        }
        return Build(ref r);
    }

    private unsafe FlowEvent Build(ref PalFlowEvent r)
    {
        var flags = (PalFlowFlags)r.Flags;
        var report = (PalFlowReport)r.Report;
        var v6 = (flags & PalFlowFlags.Ipv6) != 0;
        IPAddress source, destination;
        fixed (uint* s = r.Saddr)
        fixed (uint* d = r.Daddr)
        {
            source = Address(s, v6);
            destination = Address(d, v6);
        }
        var verdict = (FlowVerdict)r.Verdict;
        var reply = (report & PalFlowReport.Reply) != 0;
        var l4 = L4(r, v6);
        ProcessRecord? process = null;
        if ((flags & PalFlowFlags.Owner) != 0)
        {
            process = _processes.Resolve(r.OwnerTgid, r.OwnerKtime);
            Interlocked.Increment(ref process is null ? ref _processMisses : ref _withProcess);
        }
        // Clamped: a replayed record can claim 2^64 packets, and a counter must not turn negative.
        if (r.Packets > 1)
        {
            Interlocked.Add(ref _aggregated, (long)Math.Min(r.Packets - 1, long.MaxValue));
        }
        Interlocked.Add(ref _bytes, (long)Math.Min(r.Bytes, long.MaxValue));
        Interlocked.Increment(ref _decoded);
        return new FlowEvent
        {
            Time = _bootTime + TimeSpan.FromTicks((long)(r.Hdr.KtimeNs / 100)),
            Uuid = FlowUuid.Next(),
            Verdict = verdict,
            DropReason = verdict == FlowVerdict.Dropped ? (DropReason)r.DropReason : DropReason.Unknown,
            IP = new FlowIp(source.ToString(), destination.ToString(), v6 ? IpVersion.IPv6 : IpVersion.IPv4),
            L4 = l4,
            Source = Side(r.SrcEp, r.SrcIdentity, source),
            Destination = Side(r.DstEp, r.DstIdentity, destination),
            Type = FlowType.L3L4,
            EventType = EventTypeOf(verdict, report, (PalFlowObs)r.ObsPoint, r.DropReason),
            TrafficDirection = (TrafficDirection)r.Direction,
            IsReply = reply,
            TraceObservationPoint = ObservationPoint(r.ObsPoint),
            Interface = Interface(r.Ifindex),
            Summary = FlowSummary.Of(l4),
            Process = process,
            Parent = process?.Parent,
            PolicyRule = r.PolicyRule,
            PolicyDirection = (TrafficDirection)r.PolicyDir,
            PolicyDecision = (FlowPolicyDecision)r.PolicyMatch,
        };
    }

    /// <summary>
    /// Cilium's monitor message type of a record: a drop; the first packet of a connection
    /// (the datapath's policy decision on it) as a policy verdict; every later report as a trace.
    /// </summary>
    internal static FlowEventType EventTypeOf(FlowVerdict verdict, PalFlowReport report, PalFlowObs obs, uint dropReason)
    {
        if (verdict == FlowVerdict.Dropped)
        {
            return new FlowEventType(FlowEventType.Drop, (int)Math.Min(dropReason, int.MaxValue));
        }
        if ((report & PalFlowReport.First) != 0 && (report & PalFlowReport.Reply) == 0)
        {
            return new FlowEventType(FlowEventType.PolicyVerdict);
        }
        // Cilium numbers trace points as Hubble does, except TO_ENDPOINT (101 in Hubble) is TRACE_TO_LXC, 0.
        return new FlowEventType(FlowEventType.Trace, obs == PalFlowObs.ToEndpoint ? 0 : (int)obs);
    }

    private static TraceObservationPoint ObservationPoint(byte obs) =>
        Enum.IsDefined((PalFlowObs)obs) ? (TraceObservationPoint)obs : TraceObservationPoint.Unknown;

    private static unsafe IPAddress Address(uint* words, bool v6) =>
        new(new ReadOnlySpan<byte>(words, v6 ? 16 : 4));

    private static FlowL4 L4(in PalFlowEvent r, bool v6) => r.Proto switch
    {
        6 => FlowL4.Tcp(r.Sport, r.Dport, (TcpFlags)(r.TcpFlags & 0x1ff)),
        17 => FlowL4.Udp(r.Sport, r.Dport),
        1 when !v6 => FlowL4.Icmpv4(r.IcmpType, r.IcmpCode),
        58 when v6 => FlowL4.Icmpv6(r.IcmpType, r.IcmpCode),
        _ => default,
    };

    private FlowEndpoint Side(uint id, uint identity, IPAddress address)
    {
        var endpoint = id != 0 ? _endpoints.ById(id) : _endpoints.ByAddress(address);
        if (endpoint is not null)
        {
            return _local.GetValue(endpoint, Describe);
        }
        if (id != 0)
        {
            // The endpoint went between the packet and now: its id and identity are all we know.
            Interlocked.Increment(ref _endpointMisses);
            return new FlowEndpoint { ID = id, Identity = identity, Labels = ReservedLabels(identity) };
        }
        if (!_peers.TryGetValue(identity, out var peer))
        {
            if (_peers.Count >= PeerCacheLimit)
            {
                _peers.Clear();
            }
            _peers[identity] = peer = new FlowEndpoint { Identity = identity, Labels = ReservedLabels(identity) };
        }
        return peer;
    }

    /// <summary>An endpoint as Hubble names it: id, identity, namespace, pod, and labels in Cilium's "k8s:key=value" form, sorted.</summary>
    internal static FlowEndpoint Describe(Endpoint e)
    {
        var labels = new List<string>(e.Labels.Count + e.NamespaceLabels.Count + 1);
        foreach (var (key, value) in e.Labels)
        {
            labels.Add($"k8s:{key}={value}");
        }
        foreach (var (key, value) in e.NamespaceLabels)
        {
            labels.Add($"k8s:io.cilium.k8s.namespace.labels.{key}={value}");
        }
        if (e.PodNamespace is { Length: > 0 } ns)
        {
            labels.Add($"k8s:io.kubernetes.pod.namespace={ns}");
        }
        labels.Sort(StringComparer.Ordinal);
        return new FlowEndpoint { ID = e.Id, Identity = e.Identity, Namespace = e.PodNamespace, PodName = e.PodName, Labels = labels };
    }

    /// <summary>Cilium's reserved identities (pkg/identity/numericidentity.go) and their labels.</summary>
    internal static IReadOnlyList<string> ReservedLabels(uint identity) => identity switch
    {
        1 => ["reserved:host"],
        2 => ["reserved:world"],
        3 => ["reserved:unmanaged"],
        4 => ["reserved:health"],
        5 => ["reserved:init"],
        6 => ["reserved:remote-node"],
        7 => ["reserved:kube-apiserver"],
        8 => ["reserved:ingress"],
        _ => [],
    };

    private FlowInterface? Interface(uint index)
    {
        if (index == 0)
        {
            return null;
        }
        var name = _interfaces.Name(index) ?? "";
        if (!_nics.TryGetValue(index, out var nic) || nic.Name != name)
        {
            _nics[index] = nic = new FlowInterface(index, name);
        }
        return nic;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private FlowEvent? Malformed(FlowRecordError reason)
    {
        Interlocked.Increment(ref _malformedBy[(int)reason]);
        Interlocked.Increment(ref _malformed);
        return null;
    }

    private sealed class NoInterfaceNames : IInterfaceNames
    {
        public static readonly NoInterfaceNames Instance = new();

        public string? Name(uint index) => null;
    }
}
