namespace Palisade.Datapath.Endpoints;

/// <summary>A request the endpoint API refuses, with the CNI error code the plugin reports.</summary>
public sealed class EndpointException : Exception
{
    public EndpointException(uint code, string message, string details = "") : base(message)
    {
        Code = code;
        Details = details;
    }

    public EndpointException() { }

    public EndpointException(string message) : base(message) { }

    public EndpointException(string message, Exception innerException) : base(message, innerException) { }

    public uint Code { get; } = ErrorCodes.Internal;

    /// <summary>What the user can do about it, or the underlying error.</summary>
    public string Details { get; } = "";
}

/// <summary>CNI error codes: the spec's (below 100) and ours (100 and up).</summary>
public static class ErrorCodes
{
    public const uint IncompatibleVersion = 1;
    public const uint UnknownContainer = 3;
    public const uint InvalidEnvironment = 4;
    public const uint IoFailure = 5;
    public const uint InvalidConfig = 7;
    public const uint TryAgainLater = 11;
    public const uint NotAvailable = 50;
    public const uint LimitedConnectivity = 51;

    /// <summary>ADD of an attachment (container id, ifname) that exists already.</summary>
    public const uint AttachmentExists = 100;

    /// <summary>No address left in a pod CIDR.</summary>
    public const uint AddressesExhausted = 101;

    /// <summary>The kernel refused a netlink request (the message names it and the errno).</summary>
    public const uint InterfaceSetupFailed = 102;

    /// <summary>The BPF datapath could not install the endpoint.</summary>
    public const uint DatapathFailed = 103;

    /// <summary>CHECK found the endpoint broken (the message lists each problem).</summary>
    public const uint EndpointBroken = 104;

    /// <summary>The agent's own state could not be written.</summary>
    public const uint StateFailed = 105;

    /// <summary>A failure the agent did not foresee (the spec's catch-all).</summary>
    public const uint Internal = 999;
}
