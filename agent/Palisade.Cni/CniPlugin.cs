using System.Text.Json;
using Palisade.Cni.Api;

namespace Palisade.Cni;

/// <summary>
/// The plugin: reads one invocation, asks the agent over the endpoint API, prints the result
/// (or the spec's error JSON) on stdout and returns the exit code (0, or 1 on error). Holds no
/// state: a DEL the agent cannot take now goes to the <see cref="DelQueue"/> and succeeds.
/// </summary>
internal sealed class CniPlugin(Func<string, string?> getenv, Stream stdout, TextWriter stderr, TimeSpan? responseTimeout = null)
{
    public const string About = "palisade-cni: the Palisade CNI plugin (asks the Palisade agent over its endpoint API)";

    /// <summary>Runs the invocation whose configuration is on <paramref name="input"/> (null: none, as from a terminal).</summary>
    public async Task<int> RunAsync(Stream? input, CancellationToken cancellationToken = default)
    {
        byte[] stdin;
        try
        {
            stdin = input is null ? [] : await ReadLimitedAsync(input, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            return Fail(CniVersion.Latest, CniErrorCode.IoFailure, $"the network configuration could not be read from stdin: {e.Message}", "the runtime writes the configuration on stdin");
        }
        return await RunAsync(stdin, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadLimitedAsync(Stream input, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        // Reading one chunk past the limit is enough for the parser to say "too large".
        while (buffer.Length <= NetworkConfig.MaxBytes && (read = await input.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    public async Task<int> RunAsync(byte[] stdin, CancellationToken cancellationToken = default)
    {
        try
        {
            if (getenv("CNI_COMMAND") == "VERSION")
            {
                Write(ResultFormat.Serialize(new VersionJson { CniVersion = VersionAsked(stdin), SupportedVersions = CniVersion.Supported }));
                return 0;
            }
            var call = CniCall.Parse(getenv, stdin);
            return await ExecuteAsync(call, cancellationToken).ConfigureAwait(false);
        }
        catch (CniException e)
        {
            if (e.Code == CniErrorCode.InvalidEnvironment && string.IsNullOrEmpty(getenv("CNI_COMMAND")))
            {
                await stderr.WriteLineAsync($"{About}\nCNI protocol versions supported: {string.Join(", ", CniVersion.Supported)}").ConfigureAwait(false);
            }
            return Fail(SniffVersion(stdin), e.Code, e.Message, e.Details);
        }
#pragma warning disable CA1031 // the runtime reads stdout: a bug here must still be the spec's error JSON, not a stack trace
        catch (Exception e)
#pragma warning restore CA1031
        {
            await stderr.WriteLineAsync($"palisade-cni: internal error: {e}").ConfigureAwait(false);
            return Fail(SniffVersion(stdin), CniErrorCode.Internal, $"palisade-cni failed: {e.Message}", "this is a bug in palisade-cni; the stack trace is on stderr");
        }
    }

    private async Task<int> ExecuteAsync(CniCall call, CancellationToken cancellationToken)
    {
        var version = call.Config.CniVersion;
        var client = new EndpointApiClient(call.Config.Socket, responseTimeout: responseTimeout);
        Response response;
        try
        {
            response = await client.SendAsync(call.ToRequest(), cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e) when (e is EndpointUnreachableException or EndpointExchangeException)
        {
            return await AgentDownAsync(call, e).ConfigureAwait(false);
        }

        if (response.Error is { } error)
        {
            return Fail(version, error.Code, error.Msg, error.Details);
        }
        switch (call.Environment.Command)
        {
            case CniCommand.Add:
                if (response.Result is null)
                {
                    return Fail(version, CniErrorCode.Internal, "the agent answered ADD without a result", "this is a bug in the agent's endpoint API");
                }
                Write(ResultFormat.Serialize(ResultFormat.ToJson(WithConfigDns(ResultFormat.Merge(call.Config.PrevResult, response.Result), call.Config), version)));
                return 0;
            default:
                // DEL, CHECK, STATUS and GC print nothing on success.
                return 0;
        }
    }

    private async Task<int> AgentDownAsync(CniCall call, IOException e)
    {
        var version = call.Config.CniVersion;
        var socket = call.Config.Socket;
        var fix = $"start the Palisade agent, or point \"socket\" in the network configuration at its endpoint socket (now {socket})";
        switch (call.Environment.Command)
        {
            case CniCommand.Del:
                string path;
                try
                {
                    path = DelQueue.Enqueue(call.Config.DelQueueDir, call.ToDel());
                }
                catch (Exception queueError) when (queueError is IOException or UnauthorizedAccessException)
                {
                    return Fail(version, CniErrorCode.TryAgainLater, $"DEL: {e.Message}, and the DEL could not be queued in {call.Config.DelQueueDir}: {queueError.Message}",
                        $"{fix}; or make delQueueDir writable");
                }
                // DEL must succeed with the agent down (CNI spec): it replays the queue when it starts.
                await stderr.WriteLineAsync($"palisade-cni: {e.Message}; DEL queued in {path} for the agent to replay").ConfigureAwait(false);
                return 0;
            case CniCommand.Status:
                return Fail(version, CniErrorCode.NotAvailable, $"STATUS: {e.Message}", fix);
            default:
                return Fail(version, CniErrorCode.TryAgainLater, $"{CniEnvironment.Commands[(int)call.Environment.Command]}: {e.Message}", fix);
        }
    }

    private static Result WithConfigDns(Result result, NetworkConfig config)
    {
        if (result.Dns is not null || config.Dns is null)
        {
            return result;
        }
        var withDns = result.Clone();
        withDns.Dns = config.Dns;
        return withDns;
    }

    private int Fail(string cniVersion, uint code, string msg, string details)
    {
        Write(ResultFormat.Serialize(new ErrorJson { CniVersion = cniVersion, Code = code, Msg = msg, Details = details.Length == 0 ? null : details }));
        return 1;
    }

    private void Write(byte[] json)
    {
        stdout.Write(json);
        stdout.WriteByte((byte)'\n');
        stdout.Flush();
    }

    /// <summary>VERSION answers with the cniVersion it was asked in (spec, section 5), or the latest.</summary>
    private static string VersionAsked(byte[] stdin)
    {
        var asked = SniffString(stdin);
        return asked is not null && CniVersion.Parse(asked) is not null ? asked : CniVersion.Latest;
    }

    /// <summary>The version an error is reported in: the config's when it is one we speak.</summary>
    private static string SniffVersion(byte[] stdin)
    {
        var version = SniffString(stdin);
        return version is not null && CniVersion.IsSupported(version) ? version : CniVersion.Latest;
    }

    private static string? SniffString(byte[] stdin)
    {
        if (stdin.Length == 0 || stdin.Length > NetworkConfig.MaxBytes || !System.Text.Unicode.Utf8.IsValid(stdin))
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(stdin);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("cniVersion", out var v) && v.ValueKind == JsonValueKind.String
                ? v.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
