using System.Net;
using System.Net.Sockets;
using Palisade.Cni.Api;

namespace Palisade.Datapath.Endpoints;

/// <summary>
/// The endpoint API the plugin calls, over <see cref="NodeEndpoints"/>: reads each request,
/// runs it, and answers with a CNI result or a CNI error (code, message, details). Nothing a
/// request carries can make it throw.
/// </summary>
public sealed class EndpointApi(NodeEndpoints endpoints) : IEndpointApi
{
    public Task<Response> HandleAsync(Request request, CancellationToken cancellationToken) =>
        // Netlink calls block: keep them off the caller's thread (the socket's accept loop).
        Task.Run(() => Handle(request), cancellationToken);

    /// <summary>Answers one request synchronously.</summary>
    public Response Handle(Request request)
    {
        try
        {
            return request.OpCase switch
            {
                Request.OpOneofCase.Add => Add(request.Add),
                Request.OpOneofCase.Del => Del(request.Del),
                Request.OpOneofCase.Check => Check(request.Check),
                Request.OpOneofCase.Status => Status(),
                Request.OpOneofCase.Gc => Gc(request.Gc),
                _ => Error(ErrorCodes.InvalidConfig, "the request names no operation", "send one of add, del, check, status, gc"),
            };
        }
        catch (EndpointException e)
        {
            return Error(e.Code, e.Message, e.Details);
        }
#pragma warning disable CA1031 // the API's contract: any failure is an error response, never a dropped connection
        catch (Exception e)
#pragma warning restore CA1031
        {
            return Error(ErrorCodes.Internal, $"{e.GetType().Name}: {e.Message}", "");
        }
    }

    private Response Add(AddRequest add)
    {
        var attachment = Attachment(add.Attachment);
        string? Arg(string key) => add.Args.TryGetValue(key, out var v) && v.Length > 0 ? v : null;
        var podNamespace = add.PodNamespace.Length > 0 ? add.PodNamespace : Arg("K8S_POD_NAMESPACE");
        var podName = add.PodName.Length > 0 ? add.PodName : Arg("K8S_POD_NAME");
        var endpoint = endpoints.Add(new NodeEndpoints.AddSpec(attachment, add.Netns, podNamespace, podName,
            new Dictionary<string, string>(add.Labels, StringComparer.Ordinal), Mtu: (int)Math.Min(add.Mtu, 65535),
            NamedPorts: [.. add.NamedPorts.Select(p => new ContainerPort(p.Name, p.Protocol, (int)Math.Min(p.Port, 65535)))]));
        return new Response { Result = Result(endpoint, endpoints.Ipam.IPv4?.Gateway, endpoints.Ipam.IPv6?.Gateway) };
    }

    private Response Del(DelRequest del)
    {
        endpoints.Delete(Attachment(del.Attachment));
        return new Response();
    }

    private Response Check(CheckRequest check)
    {
        var attachment = Attachment(check.Attachment);
        var problems = endpoints.Check(attachment).ToList();
        if (check.PrevResult is { } previous && endpoints.Find(attachment) is { } endpoint)
        {
            var ours = new[] { endpoint.IPv4, endpoint.IPv6 }.OfType<IPAddress>().ToHashSet();
            foreach (var ip in previous.Ips)
            {
                var text = ip.Address.Split('/')[0];
                if (IPAddress.TryParse(text, out var address) && !ours.Contains(address))
                {
                    problems.Add($"prevResult has {ip.Address}, the endpoint has {string.Join(", ", ours)}");
                }
            }
        }
        return problems.Count == 0
            ? new Response()
            : Error(ErrorCodes.EndpointBroken, $"endpoint of {attachment} is broken: {string.Join("; ", problems)}", "DEL and ADD the container again to rebuild it");
    }

    private Response Status() =>
        endpoints.NotReadyReason is { } reason
            ? Error(ErrorCodes.NotAvailable, $"the Palisade agent is not ready: {reason}", "")
            : new Response();

    private Response Gc(GcRequest gc)
    {
        var valid = gc.ValidAttachments.Select(a => new AttachmentId(a.ContainerId, a.Ifname)).ToList();
        return new Response { Released = (uint)endpoints.Collect(valid) };
    }

    /// <summary>The CNI result of an endpoint: host and pod interfaces, the pod's addresses and its default routes.</summary>
    public static Result Result(Endpoint endpoint, IPAddress? gatewayV4, IPAddress? gatewayV6)
    {
        var result = new Result();
        result.Interfaces.Add(new Interface { Name = endpoint.HostIfName, Mac = Netlink.Mac.Format(endpoint.HostMac) });
        result.Interfaces.Add(new Interface { Name = endpoint.IfName, Mac = Netlink.Mac.Format(endpoint.PodMac), Sandbox = endpoint.Netns });
        foreach (var (address, gateway) in new[] { (endpoint.IPv4, gatewayV4), (endpoint.IPv6, gatewayV6) })
        {
            if (address is null)
            {
                continue;
            }
            var v4 = address.AddressFamily == AddressFamily.InterNetwork;
            result.Ips.Add(new IpConfig { Address = $"{address}/{(v4 ? 32 : 128)}", Gateway = gateway?.ToString() ?? "", Interface = 1 });
            result.Routes.Add(new Route { Dst = v4 ? "0.0.0.0/0" : "::/0", Gw = gateway?.ToString() ?? "" });
        }
        return result;
    }

    private static AttachmentId Attachment(Attachment? attachment) =>
        attachment is null
            ? throw new EndpointException(ErrorCodes.InvalidEnvironment, "the request has no attachment", "CNI_CONTAINERID and CNI_IFNAME are required")
            : new AttachmentId(attachment.ContainerId, attachment.Ifname);

    private static Response Error(uint code, string message, string details) =>
        new() { Error = new Error { Code = code, Msg = message, Details = details } };
}
