using System.CommandLine;
using System.Text.Json;
using Palisade.Agent;
using Palisade.Agent.Configuration;
using Palisade.Bpf;
using Palisade.Bpf.Probe;

namespace Palisade.Cli;

/// <summary>The verbs of the `palisade` command.</summary>
internal static class PalisadeCommand
{
    public static RootCommand Create()
    {
        var root = new RootCommand("Palisade: eBPF runtime security and network datapath agent.");
        root.Subcommands.Add(AgentCommand());
        root.Subcommands.Add(ProbeCommand());
        root.Subcommands.Add(PolicyCommand());
        root.Subcommands.Add(VersionCommand());
        root.Subcommands.Add(CrdsCommand());
        root.Subcommands.Add(ClientCommands.GetEvents());
        root.Subcommands.Add(Observe.ObserveCommand.Create());
        root.Subcommands.Add(ClientCommands.Status());
        root.Subcommands.Add(ClientCommands.Completion());
        return root;
    }

    private static Command AgentCommand()
    {
        var command = new Command("agent", "Run the agent in the foreground until SIGTERM or Ctrl-C. Every setting can also come from the YAML config file, --config-dir or PALISADE_* variables; see docs/configuration.md.");
        var options = AgentSettings.All.ToDictionary(s => s.Key, s =>
        {
            var allowed = s.Allowed is null ? string.Empty : $" One of: {string.Join(", ", s.Allowed)}.";
            var aliases = (s.Aliases ?? []).Select(a => "--" + a).ToArray();
            var option = new Option<string?>(s.Flag, aliases)
            {
                Description = $"{s.Description}{allowed} Default: \"{s.Default}\". Env: {s.EnvironmentVariable}." +
                    (aliases.Length > 0 ? $" Also: {string.Join(", ", aliases)}." : ""),
            };
            if (s.Allowed is { } choices && choices.Contains("true") && choices.Contains("false"))
            {
                // A switch as in Tetragon: "--keep-sensors-on-exit" alone means true.
                option.Arity = ArgumentArity.ZeroOrOne;
                option.CustomParser = r => r.Tokens.Count == 0 ? "true" : r.Tokens[0].Value;
            }
            command.Options.Add(option);
            return option;
        });
        // Tetragon's flags that do nothing here are accepted (hidden), so a Tetragon command line
        // starts; each becomes a start-up warning naming it.
        var tetragonOnly = TetragonSettings.NotApplicable.Keys.ToDictionary(k => k, k =>
        {
            var option = new Option<string?>("--" + k) { Hidden = true, Arity = ArgumentArity.ZeroOrOne, CustomParser = r => r.Tokens.Count == 0 ? "true" : r.Tokens[0].Value };
            command.Options.Add(option);
            return option;
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            var flags = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, option) in options.Concat(tetragonOnly))
            {
                if (parse.GetValue(option) is { } value)
                {
                    flags[key] = value;
                }
            }
            AgentOptions agentOptions;
            try
            {
                agentOptions = AgentConfiguration.Load(flags, EnvironmentVariables());
            }
            catch (AgentConfigurationException e)
            {
                await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
                return 2;
            }
            return await AgentHost.RunAsync(agentOptions, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static Command ProbeCommand()
    {
        var command = new Command("probe", "Show which eBPF program types, attach points and helpers work on this kernel, found by loading and attaching tiny programs. Needs root.");
        var output = new Option<string>("--output", "-o")
        {
            Description = "Output format.",
            DefaultValueFactory = _ => "table",
        };
        output.AcceptOnlyFromAmong("table", "json");
        command.Options.Add(output);
        command.SetAction(parse =>
        {
            if (!KernelEnvironment.IsRoot)
            {
                Console.Error.WriteLine("palisade probe: not running as root; every BPF load will fail with EPERM. Run it as root.");
            }
            KernelEnvironment.EnsureMounts();
            KernelEnvironment.RaiseMemlockLimit();
            var report = KernelProbe.Run();
            Console.WriteLine(parse.GetValue(output) == "json"
                ? JsonSerializer.Serialize(report, ProbeReportJsonContext.Default.ProbeReport)
                : report.ToTable());
            return 0;
        });
        return command;
    }

    private static Command CrdsCommand()
    {
        var command = new Command("crds", "Write the CustomResourceDefinitions of the policy kinds (TracingPolicy, TracingPolicyNamespaced), generated from the schema the agent parses with. Without --out they go to stdout as one multi-document YAML.");
        var output = new Option<DirectoryInfo?>("--out") { Description = "Directory to write one file per CRD into (e.g. helm/palisade/files/crds)." };
        command.Options.Add(output);
        command.SetAction(parse =>
        {
            var crds = Palisade.Policies.Schema.CrdGenerator.Generate();
            if (parse.GetValue(output) is { } dir)
            {
                dir.Create();
                foreach (var (file, yaml) in crds)
                {
                    File.WriteAllText(Path.Combine(dir.FullName, file), yaml);
                    Console.WriteLine(Path.Combine(dir.FullName, file));
                }
                return 0;
            }
            Console.Write(string.Join("---\n", crds.Select(c => c.Yaml)));
            return 0;
        });
        return command;
    }

    private static Command PolicyCommand()
    {
        var command = new Command("policy", "Work with TracingPolicy files (also `tracingpolicy` and `tp`, as in tetra).");
        command.Aliases.Add("tracingpolicy");
        command.Aliases.Add("tp");
        var validate = new Command("validate", "Check TracingPolicy YAML files offline (no agent, no root): print every error with its field path and line. Exit code 1 when any file has errors.");
        var files = new Argument<FileInfo[]>("FILE") { Description = "Policy files (YAML; several documents per file are fine).", Arity = ArgumentArity.OneOrMore };
        validate.Arguments.Add(files);
        validate.SetAction(parse => PolicyValidation.Run(parse.GetValue(files) ?? [], Console.Out, Console.Error));
        command.Subcommands.Add(validate);
        ClientCommands.AddPolicyVerbs(command);
        return command;
    }

    private static Command VersionCommand()
    {
        var command = new Command("version", "Print the version of this build, and of the running agent when it answers.");
        var server = ClientCommands.ServerOption();
        command.Options.Add(server);
        command.SetAction(async (parse, token) =>
        {
            Console.WriteLine($"palisade {typeof(PalisadeCommand).Assembly.GetName().Version?.ToString(3)} (client)");
            var address = ApiClient.Resolve(parse.GetValue(server));
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                timeout.CancelAfter(TimeSpan.FromSeconds(2));
                var v = await ApiClient.Connect(address).GetVersionAsync(new Palisade.Api.V1.GetVersionRequest(), cancellationToken: timeout.Token).ConfigureAwait(false);
                Console.WriteLine($"palisade {v.Version} (agent at {address})");
            }
            catch (Grpc.Core.RpcException)
            {
                Console.WriteLine($"agent: not reachable at {address}");
            }
            return 0;
        });
        return command;
    }

    private static Dictionary<string, string> EnvironmentVariables()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            result[(string)entry.Key] = entry.Value as string ?? string.Empty;
        }
        return result;
    }
}
