using Google.Protobuf;
using Palisade.Cni.Api;

namespace Palisade.Cni;

/// <summary>
/// One invocation as the runtime made it, parsed and checked: the environment, CNI_ARGS and
/// the configuration on stdin. Pure (no I/O), so the fuzz target and the unit tests call it
/// exactly as the plugin does. Errors come out in the order a runtime can fix them:
/// environment (4), then the configuration's version (1, 6), then the rest of it (2, 6, 7),
/// then what the command needs of it.
/// </summary>
internal sealed record CniCall(CniEnvironment Environment, NetworkConfig Config, CniArgs Args, byte[] RawConfig)
{
    public static CniCall Parse(Func<string, string?> getenv, ReadOnlySpan<byte> stdin)
    {
        var environment = CniEnvironment.Read(getenv);
        if (environment.Command == CniCommand.Version)
        {
            throw new InvalidOperationException("VERSION takes no network configuration");
        }
        var config = NetworkConfig.Parse(stdin, environment.Command);
        var version = config.CniVersion;
        switch (environment.Command)
        {
            case CniCommand.Check when !CniVersion.AtLeast(version, "0.4.0"):
                throw new CniException(CniErrorCode.IncompatibleVersion, $"cniVersion \"{version}\" does not allow CHECK", "CHECK came with CNI 0.4.0: set cniVersion to 0.4.0 or later");
            case CniCommand.Check when config.PrevResult is null:
                throw new CniException(CniErrorCode.InvalidNetworkConfig, "CHECK: prevResult is missing from the network configuration", "the runtime passes the ADD's result as prevResult (libcni caches it)");
            case CniCommand.Status or CniCommand.Gc when !CniVersion.AtLeast(version, "1.1.0"):
                throw new CniException(CniErrorCode.IncompatibleVersion, $"cniVersion \"{version}\" does not allow {CniEnvironment.Commands[(int)environment.Command]}",
                    $"{CniEnvironment.Commands[(int)environment.Command]} came with CNI 1.1.0: set cniVersion to 1.1.0");
            case CniCommand.Gc when config.ValidAttachments is null:
                throw new CniException(CniErrorCode.InvalidNetworkConfig, "GC: cni.dev/valid-attachments is missing from the network configuration",
                    "the runtime lists the attachments still in use; without the list nothing can be collected safely");
        }
        // DEL needs none of CNI_ARGS, and must not fail on what it cannot use.
        var args = environment.Command is CniCommand.Add or CniCommand.Check ? CniArgs.Parse(environment.Args) : CniArgs.Empty;
        return new CniCall(environment, config, args, stdin.ToArray());
    }

    private Attachment Attachment => new() { ContainerId = Environment.ContainerId, Ifname = Environment.IfName };

    /// <summary>The labels of the endpoint: PALISADE_LABELS, overridden by <c>args.cni.labels</c> (the conventions prefer args).</summary>
    public IReadOnlyDictionary<string, string> Labels
    {
        get
        {
            var labels = new Dictionary<string, string>(Args.Labels, StringComparer.Ordinal);
            foreach (var (key, value) in Config.ArgsLabels)
            {
                labels[key] = value;
            }
            return labels;
        }
    }

    public Request ToRequest() => Environment.Command switch
    {
        CniCommand.Add => new Request { Add = ToAdd() },
        CniCommand.Del => new Request { Del = ToDel() },
        CniCommand.Check => new Request { Check = new CheckRequest { Attachment = Attachment, Netns = Environment.Netns, NetworkName = Config.Name, PrevResult = Config.PrevResult } },
        CniCommand.Status => new Request { Status = new StatusRequest { NetworkName = Config.Name } },
        CniCommand.Gc => new Request { Gc = ToGc() },
        _ => throw new InvalidOperationException($"no request for {Environment.Command}"),
    };

    private AddRequest ToAdd()
    {
        var add = new AddRequest
        {
            Attachment = Attachment,
            Netns = Environment.Netns,
            NetworkName = Config.Name,
            CniVersion = Config.CniVersion,
            PodNamespace = Args.PodNamespace,
            PodName = Args.PodName,
            PodUid = Args.PodUid,
            Mtu = Config.Mtu,
            NetworkConfig = ByteString.CopyFrom(RawConfig),
        };
        foreach (var (key, value) in Labels)
        {
            add.Labels[key] = value;
        }
        foreach (var (key, value) in Args.Pairs)
        {
            add.Args[key] = value;
        }
        foreach (var (name, protocol, port) in Args.NamedPorts)
        {
            add.NamedPorts.Add(new NamedPort { Name = name, Protocol = protocol, Port = (uint)port });
        }
        return add;
    }

    public DelRequest ToDel() => new() { Attachment = Attachment, Netns = Environment.Netns, NetworkName = Config.Name };

    private GcRequest ToGc()
    {
        var gc = new GcRequest { NetworkName = Config.Name };
        gc.ValidAttachments.AddRange(Config.ValidAttachments!);
        return gc;
    }
}
