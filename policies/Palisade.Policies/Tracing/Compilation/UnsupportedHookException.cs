namespace Palisade.Policies.Tracing.Compilation;

/// <summary>
/// Thrown while a hook is compiled when it cannot run on this kernel or in this version; the
/// compiler catches it and reports the hook as unsupported with this reason (not an error).
/// </summary>
internal sealed class UnsupportedHookException(string reason) : Exception(reason);
