using Palisade.Api.V1;
using Palisade.Events;
using Palisade.Exporters;
using ApiDirection = Palisade.Api.V1.TrafficDirection;
using ApiDropReason = Palisade.Api.V1.DropReason;
using ApiFlowType = Palisade.Api.V1.FlowType;
using ApiObservationPoint = Palisade.Api.V1.TraceObservationPoint;

namespace Palisade.Agent.Api;

// Flows as messages, field for field what HubbleJson writes. Our enums carry the proto's
// numbers, so they convert by value.
public static partial class EventMessages
{
    /// <summary>The Flow message of a flow event (what GetFlows and GetEvents carry).</summary>
    public static Flow ToFlow(FlowEvent f, string nodeName, TetragonJsonOptions o) => Flow(f, nodeName, o);

    private static Flow Flow(FlowEvent f, string nodeName, TetragonJsonOptions o)
    {
        var m = new Flow
        {
            Time = Time(f.Time),
            Uuid = f.Uuid,
            Verdict = (Verdict)f.Verdict,
            Type = (ApiFlowType)f.Type,
            NodeName = nodeName,
            TrafficDirection = (ApiDirection)f.TrafficDirection,
            TraceObservationPoint = (ApiObservationPoint)f.TraceObservationPoint,
            DropReasonDesc = (ApiDropReason)f.DropReason,
            IsReply = f.IsReply,
            Summary = f.Summary ?? "",
            Source = Endpoint(f.Source),
            Destination = Endpoint(f.Destination),
        };
        if (f.EventType is { } type)
        {
            m.EventType = new CiliumEventType { Type = type.Type, SubType = type.SubType };
        }
        if (f.IP is { } ip)
        {
            m.IP = new IP { Source = ip.Source, Destination = ip.Destination, IpVersion = (IPVersion)ip.IpVersion };
        }
        var l4 = f.L4;
        switch (l4.Protocol)
        {
            case L4Protocol.Tcp:
                var tcp = new TCP { SourcePort = l4.SourcePort, DestinationPort = l4.DestinationPort };
                if (l4.Flags != TcpFlags.None)
                {
                    tcp.Flags = new TCPFlags
                    {
                        FIN = l4.Flags.HasFlag(TcpFlags.Fin), SYN = l4.Flags.HasFlag(TcpFlags.Syn), RST = l4.Flags.HasFlag(TcpFlags.Rst),
                        PSH = l4.Flags.HasFlag(TcpFlags.Psh), ACK = l4.Flags.HasFlag(TcpFlags.Ack), URG = l4.Flags.HasFlag(TcpFlags.Urg),
                        ECE = l4.Flags.HasFlag(TcpFlags.Ece), CWR = l4.Flags.HasFlag(TcpFlags.Cwr), NS = l4.Flags.HasFlag(TcpFlags.Ns),
                    };
                }
                m.L4 = new Layer4 { TCP = tcp };
                break;
            case L4Protocol.Udp:
                m.L4 = new Layer4 { UDP = new UDP { SourcePort = l4.SourcePort, DestinationPort = l4.DestinationPort } };
                break;
            case L4Protocol.Icmpv4:
                m.L4 = new Layer4 { ICMPv4 = new ICMPv4 { Type = l4.IcmpType, Code = l4.IcmpCode } };
                break;
            case L4Protocol.Icmpv6:
                m.L4 = new Layer4 { ICMPv6 = new ICMPv6 { Type = l4.IcmpType, Code = l4.IcmpCode } };
                break;
        }
        if (f.Interface is { } nic)
        {
            m.Interface = new NetworkInterface { Index = nic.Index, Name = nic.Name };
        }
        if (f.Process is { } p)
        {
            m.Process = new Process
            {
                ExecId = p.ExecId,
                Pid = p.Pid,
                Binary = p.Binary,
                Arguments = o.Redactor is { } redactor ? redactor.Arguments(p) : p.Arguments,
            };
        }
        if (f.PolicyRule != 0 && o.PolicyRules?.Resolve(f.PolicyRule) is { } match)
        {
            m.PolicyMatch = new PolicyMatch { Name = match.Name, Namespace = match.Namespace ?? "", Kind = match.Kind, File = match.File ?? "", Rule = match.Rule };
            var list = FlowPolicyLists.Of(f) switch
            {
                FlowPolicyList.EgressAllowedBy => m.EgressAllowedBy,
                FlowPolicyList.IngressAllowedBy => m.IngressAllowedBy,
                FlowPolicyList.EgressDeniedBy => m.EgressDeniedBy,
                FlowPolicyList.IngressDeniedBy => m.IngressDeniedBy,
                _ => null,
            };
            list?.Add(new Policy { Name = match.Name, Namespace = match.Namespace ?? "", Kind = match.Kind, Labels = { FlowPolicyLists.Labels(match) } });
        }
        return m;
    }

    private static Endpoint? Endpoint(FlowEndpoint? e)
    {
        if (e is null)
        {
            return null;
        }
        var m = new Endpoint { ID = e.ID, Identity = e.Identity, Namespace = e.Namespace ?? "", PodName = e.PodName ?? "" };
        m.Labels.AddRange(e.Labels);
        return m;
    }
}
