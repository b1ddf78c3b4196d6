using System.Globalization;

namespace Palisade.Policies.Tracing.Compilation;

/// <summary>A hook's selectors as string dimensions and integer tests: matchArgs, matchPIDs, matchBinaries, namespaces, capabilities.</summary>
internal static class SelectorCompiler
{
    internal static List<CompiledSelector> CompileSelectors(TracingPolicy policy, IReadOnlyList<Selector> selectors, IReadOnlyList<PolicyArg> args,
        string path, List<PolicyError> errors, bool tracepoint, KernelFacts facts)
    {
        var result = new List<CompiledSelector>();
        if (selectors.Count == 0)
        {
            result.Add(new CompiledSelector(0, [], [], SelectorActions.PostOnly));
            return result;
        }
        for (var i = 0; i < selectors.Count; i++)
        {
            var s = selectors[i];
            var sp = $"{path}.selectors[{i}]";
            var strings = new List<StringMatch>();
            var ints = new List<IntMatch>();
            foreach (var unsupported in new (string Name, int Count)[] { ("matchData", s.MatchData.Count), ("matchParentBinaries", s.MatchParentBinaries.Count) })
            {
                if (unsupported.Count > 0)
                {
                    throw new UnsupportedHookException($"{sp}.{unsupported.Name} is not implemented by this version of Palisade");
                }
            }
            for (var j = 0; j < s.MatchArgs.Count; j++)
            {
                ArgumentMatchCompiler.CompileArg(policy, s.MatchArgs[j], args, $"{sp}.matchArgs[{j}]", strings, ints, errors, tracepoint, isReturn: false);
            }
            for (var j = 0; j < s.MatchReturnArgs.Count; j++)
            {
                ArgumentMatchCompiler.CompileArg(policy, s.MatchReturnArgs[j], args, $"{sp}.matchReturnArgs[{j}]", strings, ints, errors, tracepoint, isReturn: true);
            }
            foreach (var p in s.MatchPids)
            {
                var pseudo = p.FollowForks ? (p.IsNamespacePid ? Pseudo.NsPidTree : Pseudo.PidTree) : p.IsNamespacePid ? Pseudo.NsPid : Pseudo.Pid;
                ints.Add(new IntMatch(ValueRef.Of(pseudo), SockField.Value, p.Operator == "NotIn", p.Values.Select(v => new IntTest(FilterOp.Equal, v)).ToList()));
            }
            for (var j = 0; j < s.MatchBinaries.Count; j++)
            {
                var b = s.MatchBinaries[j];
                var (cls, neg) = StringOp(b.Operator) ?? throw new UnsupportedHookException($"{sp}.matchBinaries[{j}].operator {b.Operator} is not supported");
                CheckStrings(b.Values, $"{sp}.matchBinaries[{j}].values", errors);
                strings.Add(new StringMatch(ValueRef.Of(Pseudo.Binary), cls, neg, b.FollowChildren, b.Values));
            }
            for (var j = 0; j < s.MatchNamespaces.Count; j++)
            {
                var n = s.MatchNamespaces[j];
                var slot = Array.IndexOf(Vocabulary.Namespaces, n.Namespace);
                var tests = new List<IntTest>();
                foreach (var v in n.Values)
                {
                    if (v == "host_ns")
                    {
                        tests.Add(new IntTest(FilterOp.Equal, facts.HostNamespaces.TryGetValue(n.Namespace, out var host)
                            ? host
                            : throw new UnsupportedHookException($"host_ns: the host's {n.Namespace} namespace is unknown (the agent reads /proc/1/ns at start-up)")));
                    }
                    else if (uint.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var inum))
                    {
                        tests.Add(new IntTest(FilterOp.Equal, inum));
                    }
                    else
                    {
                        errors.Add(new PolicyError($"{sp}.matchNamespaces[{j}].values", $"\"{v}\" is not a namespace inode number or host_ns", 0, 0));
                    }
                }
                ints.Add(new IntMatch(ValueRef.Of(Pseudo.NsBase + (byte)slot), SockField.Value, n.Operator == "NotIn", tests));
            }
            for (var j = 0; j < s.MatchNamespaceChanges.Count; j++)
            {
                var n = s.MatchNamespaceChanges[j];
                ulong mask = 0;
                foreach (var v in n.Values)
                {
                    var slot = Array.FindIndex(Vocabulary.Namespaces, x => string.Equals(x, v, StringComparison.OrdinalIgnoreCase));
                    if (slot < 0)
                    {
                        errors.Add(new PolicyError($"{sp}.matchNamespaceChanges[{j}].values", $"unknown namespace \"{v}\"", 0, 0));
                        continue;
                    }
                    mask |= 1UL << slot;
                }
                ints.Add(new IntMatch(ValueRef.Of(Pseudo.NsChanged), SockField.Value, n.Operator == "NotIn", [new IntTest(FilterOp.Mask, mask)]));
            }
            CompileCaps(s.MatchCapabilities, $"{sp}.matchCapabilities", ints, errors, changes: false, facts);
            CompileCaps(s.MatchCapabilityChanges, $"{sp}.matchCapabilityChanges", ints, errors, changes: true, facts);
            var actions = ActionCompiler.CompileActions(s.MatchActions, $"{sp}.matchActions", errors);
            if (s.MatchReturnActions.Count > 0)
            {
                throw new UnsupportedHookException($"{sp}.matchReturnActions is not implemented by this version of Palisade");
            }
            result.Add(new CompiledSelector(i, strings, ints, actions));
        }
        return result;
    }

    private static void CompileCaps(IReadOnlyList<CapabilitiesSelector> caps, string path, List<IntMatch> ints, List<PolicyError> errors, bool changes, KernelFacts facts)
    {
        for (var j = 0; j < caps.Count; j++)
        {
            var c = caps[j];
            if (c.IsNamespaceCapability)
            {
                // Tetragon: the capabilities are tested only outside the host user namespace.
                if (!facts.HostNamespaces.TryGetValue("User", out var hostUser))
                {
                    throw new UnsupportedHookException($"{path}[{j}].isNamespaceCapability: the host's user namespace is unknown (the agent reads /proc/1/ns at start-up)");
                }
                ints.Add(new IntMatch(ValueRef.Of(Pseudo.NsBase + (byte)Array.IndexOf(Vocabulary.Namespaces, "User")), SockField.Value, true, [new IntTest(FilterOp.Equal, hostUser)]));
            }
            ulong mask = 0;
            foreach (var v in c.Values)
            {
                var bit = Capabilities.Bit(v.ToUpperInvariant());
                if (bit < 0)
                {
                    errors.Add(new PolicyError($"{path}[{j}].values", $"unknown capability \"{v}\"", 0, 0));
                    continue;
                }
                mask |= 1UL << bit;
            }
            var pseudo = changes ? Pseudo.CapChanged : c.Type switch
            {
                "Permitted" => Pseudo.CapPermitted,
                "Inheritable" => Pseudo.CapInheritable,
                _ => Pseudo.CapEffective,
            };
            ints.Add(new IntMatch(ValueRef.Of(pseudo), SockField.Value, c.Operator == "NotIn", [new IntTest(FilterOp.Mask, mask)]));
        }
    }

    internal static (StringClass, bool)? StringOp(string op) => op switch
    {
        "Equal" or "In" => (StringClass.Equal, false),
        "NotEqual" or "NotIn" => (StringClass.Equal, true),
        "Prefix" => (StringClass.Prefix, false),
        "NotPrefix" => (StringClass.Prefix, true),
        "Postfix" => (StringClass.Postfix, false),
        "NotPostfix" => (StringClass.Postfix, true),
        _ => null,
    };

    internal static void CheckStrings(IReadOnlyList<string> values, string path, List<PolicyError> errors)
    {
        foreach (var v in values)
        {
            if (System.Text.Encoding.UTF8.GetByteCount(v) > PolicyCompiler.MaxStringValue)
            {
                errors.Add(new PolicyError(path, $"value \"{v[..20]}...\" is {System.Text.Encoding.UTF8.GetByteCount(v)} bytes; at most {PolicyCompiler.MaxStringValue} can be matched in the kernel", 0, 0));
            }
        }
    }
}
