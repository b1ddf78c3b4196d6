using Palisade.Policies.Schema;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Palisade.Policies.Tracing;

/// <summary>What parsing a file produced: the valid policies, every error, and documents that were not policies.</summary>
public sealed record PolicyParseResult(IReadOnlyList<TracingPolicy> Policies, IReadOnlyList<PolicyError> Errors, IReadOnlyList<string> Skipped)
{
    public bool Ok => Errors.Count == 0;
}

/// <summary>
/// Parses and validates TracingPolicy YAML exactly as Tetragon's CRD defines it. Pure: text
/// in, models and precise errors out (field path, value, what is allowed, a suggestion).
/// A document with errors yields no policy; other documents in the file are unaffected.
/// </summary>
public static partial class TracingPolicyParser
{
    /// <summary>The path of an error that is a bug in Palisade, not in the policy (the fuzz targets treat it as a crash).</summary>
    public const string InternalErrorPath = "(internal)";

    /// <summary>
    /// Parses every YAML document in <paramref name="yaml"/>; <paramref name="source"/> names the
    /// file in errors. Never throws: whatever the text, the result is policies or errors.
    /// </summary>
    public static PolicyParseResult Parse(string yaml, string source = "policy")
    {
        var policies = new List<TracingPolicy>();
        var errors = new List<PolicyError>();
        var skipped = new List<string>();
        if (YamlText.Load(yaml, out var stream) is { } problem)
        {
            errors.Add(new PolicyError("", problem.Message, problem.Line, problem.Column));
            return new PolicyParseResult(policies, errors, skipped);
        }
        for (var d = 0; d < stream!.Documents.Count; d++)
        {
            var prefix = stream.Documents.Count > 1 ? $"document {d + 1}: " : "";
            try
            {
                ReadDocument(stream.Documents[d].RootNode, d, prefix, policies, errors, skipped);
            }
#pragma warning disable CA1031 // a reader bug must cost one document its policy, never the caller (the agent) its life
            catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
            {
                errors.Add(new PolicyError(prefix + InternalErrorPath,
                    $"Palisade could not read this document ({e.GetType().Name}: {e.Message}). This is a bug in Palisade, not necessarily in the policy: please report it with the file."));
            }
        }
        return new PolicyParseResult(policies, errors, skipped);
    }

    private static void ReadDocument(YamlNode root, int d, string prefix, List<TracingPolicy> policies, List<PolicyError> errors, List<string> skipped)
    {
        if (root is YamlScalarNode { Value: null or "" })
        {
            return; // an empty document, e.g. a trailing "---"
        }
        var docErrors = new List<PolicyError>();
        var kind = (NodeReader.Field(root as YamlMappingNode, "kind") as YamlScalarNode)?.Value;
        if (kind is not null && !Vocabulary.Kinds.Contains(kind) && (NodeReader.Field(root as YamlMappingNode, "apiVersion") as YamlScalarNode)?.Value != Vocabulary.ApiVersion)
        {
            skipped.Add($"document {d + 1}: kind {kind} is not a tracing policy");
            return;
        }
        var policy = ReadPolicy(root, new NodeReader(docErrors));
        errors.AddRange(docErrors.Select(e => e with { Path = prefix + e.Path }));
        if (docErrors.Count == 0 && policy is not null)
        {
            policies.Add(policy);
        }
    }

    private static TracingPolicy? ReadPolicy(YamlNode root, NodeReader r)
    {
        var map = r.Mapping(root, "(document)", TracingPolicySchema.TopFields);
        if (map is null)
        {
            return null;
        }
        var apiVersion = r.String(map, "", "apiVersion", required: true);
        if (apiVersion is not null && apiVersion != Vocabulary.ApiVersion)
        {
            r.Error("apiVersion", $"\"{apiVersion}\" is not supported. Use {Vocabulary.ApiVersion}.", NodeReader.Field(map, "apiVersion"));
        }
        var kind = r.String(map, "", "kind", required: true);
        if (kind is not null && !Vocabulary.Kinds.Contains(kind))
        {
            r.Error("kind", $"\"{kind}\" is not a tracing policy kind." + Suggestions.For(kind, Vocabulary.Kinds), NodeReader.Field(map, "kind"));
        }
        var meta = r.Mapping(NodeReader.Field(map, "metadata"), "metadata", TracingPolicySchema.MetadataFields);
        if (meta is null)
        {
            r.Error("metadata", "is required, with at least a name.", map);
        }
        var name = r.String(meta, "metadata", "name", required: meta is not null);
        if (name is not null && !DnsSubdomain().IsMatch(name))
        {
            r.Error("metadata.name", $"\"{name}\" is not a valid name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters.", NodeReader.Field(meta, "name"));
        }
        var ns = r.String(meta, "metadata", "namespace");
        var labels = StringMap(r, NodeReader.Field(meta, "labels"), "metadata.labels");
        var spec = ReadSpec(r, NodeReader.Field(map, "spec"));
        if (NodeReader.Field(map, "spec") is null)
        {
            r.Error("spec", "is required: a policy needs at least one hook (kprobes, tracepoints, uprobes, lsmhooks, usdts).", map);
        }
        return spec is null || kind is null || name is null ? null : new TracingPolicy(kind, name, ns, labels, spec);
    }

    private static TracingPolicySpec? ReadSpec(NodeReader r, YamlNode? node)
    {
        const string p = "spec";
        var map = r.Mapping(node, p, TracingPolicySchema.Spec.Names);
        if (map is null)
        {
            return null;
        }
        var lists = r.List(map, p, "lists", (n, path) => ReadList(r, n, path));
        var listNames = lists.Select(l => l.Name).ToHashSet();
        var spec = new TracingPolicySpec(
            r.List(map, p, "kprobes", (n, path) => ReadKprobe(r, n, path, listNames)),
            r.List(map, p, "fentries", (n, path) => ReadKprobe(r, n, path, listNames)),
            r.List(map, p, "tracepoints", (n, path) => ReadTracepoint(r, n, path)),
            r.List(map, p, "uprobes", (n, path) => ReadUprobe(r, n, path)),
            r.List(map, p, "usdts", (n, path) => ReadUsdt(r, n, path)),
            r.List(map, p, "lsmhooks", (n, path) => ReadLsm(r, n, path)),
            lists,
            r.List(map, p, "options", (n, path) => ReadOption(r, n, path)),
            r.List(map, p, "enforcers", (n, path) => r.Mapping(n, path, TracingPolicySchema.Enforcer.Names) is { } m ? new EnforcerSpec(r.Strings(m, path, "calls")) : null),
            ReadLabelSelector(r, NodeReader.Field(map, "podSelector"), $"{p}.podSelector"),
            ReadLabelSelector(r, NodeReader.Field(map, "containerSelector"), $"{p}.containerSelector"),
            ReadLabelSelector(r, NodeReader.Field(map, "hostSelector"), $"{p}.hostSelector"),
            ReadLabelSelector(r, NodeReader.Field(map, "nodeSelector"), $"{p}.nodeSelector"),
            r.Bool(map, p, "loader"),
            r.Strings(map, p, "tags"));
        return spec;
    }

    private static KprobeSpec? ReadKprobe(NodeReader r, YamlNode node, string p, HashSet<string> lists)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.Kprobe.Names);
        if (map is null)
        {
            return null;
        }
        var call = r.String(map, p, "call", required: true);
        if (call is not null && call.StartsWith("list:", StringComparison.Ordinal) && !lists.Contains(call[5..]))
        {
            r.Error($"{p}.call", $"\"{call}\" names a list that spec.lists does not define." + Suggestions.For(call[5..], lists), NodeReader.Field(map, "call"));
        }
        var args = r.List(map, p, "args", (n, path) => ReadArg(r, n, path));
        var ret = NodeReader.Field(map, "returnArg") is { } rn ? ReadArg(r, rn, $"{p}.returnArg") : null;
        var isReturn = r.Bool(map, p, "return");
        var selectors = ReadSelectors(r, map, p, args);
        if (isReturn && ret is null)
        {
            r.Error($"{p}.returnArg", "is required when return is true: say which type the return value has, e.g. returnArg: {index: 0, type: int}.", map);
        }
        return call is null ? null : new KprobeSpec(call, r.Bool(map, p, "syscall"), isReturn, r.String(map, p, "message"), args, ret,
            r.String(map, p, "returnArgAction"), selectors, r.Strings(map, p, "tags"), r.Bool(map, p, "callNotFound"),
            r.List(map, p, "data", (n, path) => ReadArg(r, n, path)));
    }

    private static TracepointSpec? ReadTracepoint(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.Tracepoint.Names);
        if (map is null)
        {
            return null;
        }
        var subsystem = r.String(map, p, "subsystem", required: true);
        var ev = r.String(map, p, "event", required: true);
        var args = r.List(map, p, "args", (n, path) => ReadArg(r, n, path));
        var selectors = ReadSelectors(r, map, p, args);
        return subsystem is null || ev is null ? null
            : new TracepointSpec(subsystem, ev, r.Bool(map, p, "raw"), r.String(map, p, "message"), args, selectors, r.Strings(map, p, "tags"));
    }

    private static UprobeSpec? ReadUprobe(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.Uprobe.Names);
        if (map is null)
        {
            return null;
        }
        var path = r.String(map, p, "path", required: true);
        var symbols = r.Strings(map, p, "symbols");
        var offsets = r.Strings(map, p, "offsets");
        var addrs = r.Strings(map, p, "addrs");
        if (symbols.Count == 0 && offsets.Count == 0 && addrs.Count == 0)
        {
            r.Error($"{p}.symbols", "is required: name the functions to probe (symbols), or give offsets or addrs.", map);
        }
        var args = r.List(map, p, "args", (n, pp) => ReadArg(r, n, pp));
        var ret = NodeReader.Field(map, "returnArg") is { } rn ? ReadArg(r, rn, $"{p}.returnArg") : null;
        var selectors = ReadSelectors(r, map, p, args);
        return path is null ? null : new UprobeSpec(path, symbols, offsets, r.Bool(map, p, "return"), r.String(map, p, "message"), args, ret, selectors, r.Strings(map, p, "tags"));
    }

    private static UsdtSpec? ReadUsdt(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.Usdt.Names);
        if (map is null)
        {
            return null;
        }
        var path = r.String(map, p, "path", required: true);
        var provider = r.String(map, p, "provider", required: true);
        var name = r.String(map, p, "name", required: true);
        var args = r.List(map, p, "args", (n, pp) => ReadArg(r, n, pp));
        var selectors = ReadSelectors(r, map, p, args);
        return path is null || provider is null || name is null ? null
            : new UsdtSpec(path, provider, name, r.String(map, p, "message"), args, selectors, r.Strings(map, p, "tags"));
    }

    private static LsmHookSpec? ReadLsm(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.LsmHook.Names);
        if (map is null)
        {
            return null;
        }
        var hook = r.String(map, p, "hook", required: true);
        var args = r.List(map, p, "args", (n, pp) => ReadArg(r, n, pp));
        var selectors = ReadSelectors(r, map, p, args);
        return hook is null ? null : new LsmHookSpec(hook, r.String(map, p, "message"), args, selectors, r.Strings(map, p, "tags"));
    }

    private static PolicyArg? ReadArg(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.Arg.Names);
        if (map is null)
        {
            return null;
        }
        var type = r.String(map, p, "type") ?? "auto";
        if (!Vocabulary.ArgTypes.Contains(type))
        {
            r.Error($"{p}.type", $"unknown argument type \"{type}\"." + Suggestions.For(type, Vocabulary.ArgTypes), NodeReader.Field(map, "type"));
        }
        return new PolicyArg(r.UInt(map, p, "index") ?? 0, type, r.String(map, p, "label"), r.UInt(map, p, "sizeArgIndex"),
            r.Bool(map, p, "returnCopy"), r.Bool(map, p, "maxData"), r.String(map, p, "resolve"), r.String(map, p, "source"), r.String(map, p, "btfType"));
    }

    private static IReadOnlyList<Selector> ReadSelectors(NodeReader r, YamlMappingNode map, string p, IReadOnlyList<PolicyArg> args)
    {
        var selectors = r.List(map, p, "selectors", (n, path) => ReadSelector(r, n, path, args));
        if (selectors.Count > Vocabulary.MaxSelectors)
        {
            r.Error($"{p}.selectors", $"has {selectors.Count} selectors; at most {Vocabulary.MaxSelectors} are allowed per hook. Fix: merge selectors (values lists are ORed) or split the hook into two policies.",
                NodeReader.Field(map, "selectors"));
        }
        return selectors;
    }

    private static Selector? ReadSelector(NodeReader r, YamlNode node, string p, IReadOnlyList<PolicyArg> args)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.Selector.Names);
        if (map is null)
        {
            return null;
        }
        if (NodeReader.Field(map, "matchArgs") is YamlSequenceNode { Children.Count: > Vocabulary.MaxMatchArgs } many)
        {
            r.Error($"{p}.matchArgs", $"has {many.Children.Count} entries; at most {Vocabulary.MaxMatchArgs} are allowed per selector (one per argument). Fix: put several values in one entry, or split the selector.", many);
        }
        return new Selector(
            r.List(map, p, "matchPIDs", (n, path) => ReadPid(r, n, path)),
            r.List(map, p, "matchArgs", (n, path) => ReadArgSelector(r, n, path, args, checkIndex: true)),
            r.List(map, p, "matchData", (n, path) => ReadArgSelector(r, n, path, args, checkIndex: false)),
            r.List(map, p, "matchReturnArgs", (n, path) => ReadArgSelector(r, n, path, args, checkIndex: false)),
            r.List(map, p, "matchBinaries", (n, path) => ReadBinary(r, n, path)),
            r.List(map, p, "matchParentBinaries", (n, path) => ReadBinary(r, n, path)),
            r.List(map, p, "matchNamespaces", (n, path) => ReadNamespace(r, n, path)),
            r.List(map, p, "matchNamespaceChanges", (n, path) => r.Mapping(n, path, TracingPolicySchema.NamespaceChangesSelector.Names) is { } m
                ? new NamespaceChangesSelector(SetOperator(r, m, path), r.Strings(m, path, "values")) : null),
            r.List(map, p, "matchCapabilities", (n, path) => ReadCapabilities(r, n, path)),
            r.List(map, p, "matchCapabilityChanges", (n, path) => ReadCapabilities(r, n, path)),
            r.List(map, p, "matchActions", (n, path) => ReadAction(r, n, path)),
            r.List(map, p, "matchReturnActions", (n, path) => ReadAction(r, n, path)));
    }

    private static ArgSelector? ReadArgSelector(NodeReader r, YamlNode node, string p, IReadOnlyList<PolicyArg> args, bool checkIndex)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.ArgSelector.Names);
        if (map is null)
        {
            return null;
        }
        // Tetragon reads index as an arg's own index on kprobes and as a position in args on
        // some tracepoints; accept either, reject one that is neither.
        var index = r.UInt(map, p, "index") ?? 0;
        if (checkIndex && args.Count > 0 && NodeReader.Field(map, "args") is null && index >= args.Count && args.All(a => a.Index != index))
        {
            r.Error($"{p}.index", $"{index} matches no argument of this hook: its args have index {string.Join(", ", args.Select(a => a.Index))}.", NodeReader.Field(map, "index") ?? map);
        }
        var opText = r.String(map, p, "operator", required: true);
        string op = "";
        if (opText is not null)
        {
            if (Vocabulary.ArgOperators.TryGetValue(opText, out var canonical))
            {
                op = canonical;
            }
            else
            {
                r.Error($"{p}.operator", $"unknown operator \"{opText}\"." + Suggestions.For(opText, Vocabulary.ArgOperators.Values), NodeReader.Field(map, "operator"));
            }
        }
        var values = r.Strings(map, p, "values");
        if (values.Count == 0 && op is not ("" or "CapabilitiesGained"))
        {
            r.Error($"{p}.values", $"is required: operator {op} needs at least one value.", map);
        }
        var argRefs = r.Strings(map, p, "args").Select(s => uint.TryParse(s, out var v) ? v : 0).ToList();
        return new ArgSelector(index, argRefs, op, values);
    }

    private static PidSelector? ReadPid(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.PidSelector.Names);
        if (map is null)
        {
            return null;
        }
        var op = SetOperator(r, map, p);
        var values = new List<uint>();
        foreach (var v in r.Strings(map, p, "values"))
        {
            if (uint.TryParse(v, out var pid))
            {
                values.Add(pid);
            }
            else
            {
                r.Error($"{p}.values", $"\"{v}\" is not a process id.", NodeReader.Field(map, "values"));
            }
        }
        if (values.Count == 0 && r.Errors.Count == 0)
        {
            r.Error($"{p}.values", "is required: list at least one process id.", map);
        }
        return new PidSelector(op, values, r.Bool(map, p, "followForks"), r.Bool(map, p, "isNamespacePID"));
    }

    private static BinarySelector? ReadBinary(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.BinarySelector.Names);
        if (map is null)
        {
            return null;
        }
        var op = r.String(map, p, "operator", required: true) ?? "";
        if (op.Length > 0 && !Vocabulary.BinaryOperators.Contains(op))
        {
            r.Error($"{p}.operator", $"\"{op}\" is not a matchBinaries operator." + Suggestions.For(op, Vocabulary.BinaryOperators), NodeReader.Field(map, "operator"));
        }
        var values = r.Strings(map, p, "values");
        if (values.Count == 0)
        {
            r.Error($"{p}.values", "is required: list at least one binary path.", map);
        }
        return new BinarySelector(op, values, r.Bool(map, p, "followChildren"));
    }

    private static NamespaceSelector? ReadNamespace(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.NamespaceSelector.Names);
        if (map is null)
        {
            return null;
        }
        var ns = r.String(map, p, "namespace", required: true) ?? "";
        var canonical = Vocabulary.Namespaces.FirstOrDefault(n => string.Equals(n, ns, StringComparison.OrdinalIgnoreCase));
        if (ns.Length > 0 && canonical is null)
        {
            r.Error($"{p}.namespace", $"unknown namespace \"{ns}\"." + Suggestions.For(ns, Vocabulary.Namespaces), NodeReader.Field(map, "namespace"));
        }
        var values = r.Strings(map, p, "values");
        foreach (var v in values)
        {
            if (v != "host_ns" && !uint.TryParse(v, out _))
            {
                r.Error($"{p}.values", $"\"{v}\" is neither a namespace inode number nor host_ns.", NodeReader.Field(map, "values"));
            }
        }
        return new NamespaceSelector(canonical ?? ns, SetOperator(r, map, p), values);
    }

    private static CapabilitiesSelector? ReadCapabilities(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.CapabilitiesSelector.Names);
        if (map is null)
        {
            return null;
        }
        var type = r.String(map, p, "type") ?? "Effective";
        var canonical = Vocabulary.CapabilitySets.FirstOrDefault(t => string.Equals(t, type, StringComparison.OrdinalIgnoreCase));
        if (canonical is null)
        {
            r.Error($"{p}.type", $"unknown capability set \"{type}\"." + Suggestions.For(type, Vocabulary.CapabilitySets), NodeReader.Field(map, "type"));
        }
        var values = r.Strings(map, p, "values");
        foreach (var v in values)
        {
            if (!Capabilities.Names.Contains(v.ToUpperInvariant()))
            {
                r.Error($"{p}.values", $"unknown capability \"{v}\"." + Suggestions.For(v.ToUpperInvariant(), Capabilities.Names), NodeReader.Field(map, "values"));
            }
        }
        return new CapabilitiesSelector(canonical ?? type, SetOperator(r, map, p), r.Bool(map, p, "isNamespaceCapability"), values);
    }

    private static ActionSelector? ReadAction(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.Action.Names);
        if (map is null)
        {
            return null;
        }
        var text = r.String(map, p, "action", required: true) ?? "";
        var action = Vocabulary.Actions.FirstOrDefault(a => string.Equals(a, text, StringComparison.OrdinalIgnoreCase));
        if (text.Length > 0 && action is null)
        {
            r.Error($"{p}.action", $"unknown action \"{text}\"." + Suggestions.For(text, Vocabulary.Actions), NodeReader.Field(map, "action"));
        }
        var sig = r.UInt(map, p, "argSig");
        if (action == "Signal" && sig is null)
        {
            r.Error($"{p}.argSig", "is required for the Signal action: the signal number to send, e.g. 9 for SIGKILL or 19 for SIGSTOP.", map);
        }
        if (sig is > 64)
        {
            r.Error($"{p}.argSig", $"{sig} is not a signal number (1 to 64).", NodeReader.Field(map, "argSig"));
        }
        var rateLimit = r.String(map, p, "rateLimit");
        if (rateLimit is not null && !RateLimit().IsMatch(rateLimit))
        {
            r.Error($"{p}.rateLimit", $"\"{rateLimit}\" is not a rate-limit interval. Use a number with an optional unit s, m or h, e.g. 30s, 1m.", NodeReader.Field(map, "rateLimit"));
        }
        var scope = r.String(map, p, "rateLimitScope");
        if (scope is not null && scope is not ("thread" or "process" or "global"))
        {
            r.Error($"{p}.rateLimitScope", $"\"{scope}\" is not a scope." + Suggestions.For(scope, ["thread", "process", "global"]), NodeReader.Field(map, "rateLimitScope"));
        }
        return new ActionSelector(action ?? text, sig, r.Int(map, p, "argError"), r.UInt(map, p, "argFd"), r.UInt(map, p, "argName"),
            r.String(map, p, "argUrl"), r.String(map, p, "argFqdn"), r.UInt(map, p, "argSock"), r.UInt(map, p, "argIndex"), r.UInt(map, p, "argValue"),
            rateLimit, scope, r.Bool(map, p, "kernelStackTrace"), r.Bool(map, p, "userStackTrace"), r.Bool(map, p, "imaHash"));
    }

    private static ListSpec? ReadList(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.List.Names);
        if (map is null)
        {
            return null;
        }
        var name = r.String(map, p, "name", required: true);
        var type = r.String(map, p, "type");
        if (type is not null && !Vocabulary.ListTypes.Contains(type))
        {
            r.Error($"{p}.type", $"unknown list type \"{type}\"." + Suggestions.For(type, Vocabulary.ListTypes), NodeReader.Field(map, "type"));
        }
        return name is null ? null : new ListSpec(name, type, r.Strings(map, p, "values"), r.String(map, p, "pattern"));
    }

    private static OptionSpec? ReadOption(NodeReader r, YamlNode node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.Option.Names);
        if (map is null)
        {
            return null;
        }
        var name = r.String(map, p, "name", required: true);
        var value = r.String(map, p, "value") ?? "";
        if (name is not null && !Vocabulary.Options.Contains(name))
        {
            r.Error($"{p}.name", $"unknown option \"{name}\"." + Suggestions.For(name, Vocabulary.Options), NodeReader.Field(map, "name"));
        }
        if (name == "policy-mode" && !Vocabulary.PolicyModes.Contains(value))
        {
            r.Error($"{p}.value", $"\"{value}\" is not a policy mode." + Suggestions.For(value, Vocabulary.PolicyModes), NodeReader.Field(map, "value"));
        }
        return name is null ? null : new OptionSpec(name, value);
    }

    private static LabelSelector? ReadLabelSelector(NodeReader r, YamlNode? node, string p)
    {
        var map = r.Mapping(node, p, TracingPolicySchema.LabelSelector.Names);
        if (map is null)
        {
            return null;
        }
        var labels = StringMap(r, NodeReader.Field(map, "matchLabels"), $"{p}.matchLabels");
        var expressions = r.List(map, p, "matchExpressions", (n, path) =>
        {
            var m = r.Mapping(n, path, TracingPolicySchema.LabelRequirement.Names);
            if (m is null)
            {
                return null;
            }
            var op = r.String(m, path, "operator", required: true) ?? "";
            if (op.Length > 0 && !Vocabulary.LabelOperators.Contains(op))
            {
                r.Error($"{path}.operator", $"\"{op}\" is not a label selector operator." + Suggestions.For(op, Vocabulary.LabelOperators), NodeReader.Field(m, "operator"));
            }
            return new LabelRequirement(r.String(m, path, "key", required: true) ?? "", op, r.Strings(m, path, "values"));
        });
        return new LabelSelector(labels, expressions);
    }

    private static string SetOperator(NodeReader r, YamlMappingNode map, string p)
    {
        var op = r.String(map, p, "operator", required: true) ?? "";
        if (op.Length > 0 && !Vocabulary.SetOperators.Contains(op))
        {
            r.Error($"{p}.operator", $"\"{op}\" is not allowed here." + Suggestions.For(op, Vocabulary.SetOperators), NodeReader.Field(map, "operator"));
        }
        return op;
    }

    private static Dictionary<string, string> StringMap(NodeReader r, YamlNode? node, string p)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (node is null)
        {
            return result;
        }
        if (node is not YamlMappingNode map)
        {
            r.Error(p, $"must be a mapping of names to values, not {NodeReader.Describe(node)}.", node);
            return result;
        }
        foreach (var (k, v) in map.Children)
        {
            result[(k as YamlScalarNode)?.Value ?? ""] = (v as YamlScalarNode)?.Value ?? "";
        }
        return result;
    }

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex(@"^[0-9]+(s|m|h)?$")]
    private static partial Regex RateLimit();
}
