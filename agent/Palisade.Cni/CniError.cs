namespace Palisade.Cni;

/// <summary>The CNI spec's well-known error codes (SPEC.md, section 5, "Error"), plus ours from 100 up.</summary>
internal static class CniErrorCode
{
    public const uint IncompatibleVersion = 1;
    public const uint UnsupportedField = 2;
    public const uint UnknownContainer = 3;
    public const uint InvalidEnvironment = 4;
    public const uint IoFailure = 5;
    public const uint DecodingFailure = 6;
    public const uint InvalidNetworkConfig = 7;
    public const uint TryAgainLater = 11;
    public const uint NotAvailable = 50;
    public const uint NotAvailableLimitedConnectivity = 51;
    public const uint Internal = 999;
}

/// <summary>
/// A CNI error the plugin prints as the spec's error JSON: <c>msg</c> names the field and the
/// value, <c>details</c> says how to fix it.
/// </summary>
internal sealed class CniException(uint code, string msg, string details = "") : Exception(msg)
{
    public uint Code { get; } = code;

    public string Details { get; } = details;
}
