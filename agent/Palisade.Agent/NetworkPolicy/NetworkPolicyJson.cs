using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Palisade.Policies.Network;
using Palisade.Policies.Network.Compilation;

namespace Palisade.Agent.NetworkPolicy;

/// <summary>The network-policy status and explanations as JSON (agent status, the API, `palisade policy list/explain`).</summary>
public static class NetworkPolicyJson
{
    /// <summary>The "network_policy" object: settings, every source with its errors, every policy with what it compiled to.</summary>
    public static void WriteStatus(Utf8JsonWriter w, NetworkPolicyEngine engine, string? policyDir)
    {
        var settings = engine.Settings;
        w.WriteStartObject("network_policy");
        w.WriteString("enforcement", settings.Mode.ToString().ToLowerInvariant());
        w.WriteBoolean("audit_all", settings.AuditAll);
        w.WriteStartArray("audit_namespaces");
        foreach (var ns in settings.AuditNamespaces.Order(StringComparer.Ordinal))
        {
            w.WriteStringValue(ns);
        }
        w.WriteEndArray();
        if (policyDir is not null)
        {
            w.WriteString("policy_dir", policyDir);
        }
        w.WriteNumber("generation", engine.Generation);
        w.WriteNumber("endpoints", engine.Endpoints.Count);
        if (engine.LastError is { } error)
        {
            w.WriteString("error", error);
        }
        if (engine.LastChange is { } change)
        {
            w.WriteStartObject("last_change");
            w.WriteString("cause", change.Cause);
            w.WriteString("at", change.At.ToString("O", CultureInfo.InvariantCulture));
            w.WriteNumber("parse_ms", Math.Round(change.ParseMs, 2));
            w.WriteNumber("compile_ms", Math.Round(change.CompileMs, 2));
            w.WriteNumber("apply_ms", Math.Round(change.ApplyMs, 2));
            w.WriteNumber("endpoints_compiled", change.EndpointsCompiled);
            w.WriteNumber("endpoints_written", change.EndpointsWritten);
            w.WriteEndObject();
        }
        var sources = engine.SourceStatus();
        w.WriteNumber("invalid_sources", sources.Count(s => s.Errors.Count > 0));
        w.WriteStartArray("sources");
        foreach (var s in sources)
        {
            w.WriteStartObject();
            w.WriteString("source", s.Source);
            w.WriteString("origin", s.Origin);
            w.WriteString("state", s.Errors.Count == 0 ? "ok" : s.KeptFrom is null ? "error" : "error-previous-version-in-force");
            if (s.KeptFrom is { } kept)
            {
                w.WriteString("in_force_since", kept.ToString("O", CultureInfo.InvariantCulture));
            }
            WriteErrors(w, "errors", s.Errors);
            WriteErrors(w, "warnings", s.Warnings);
            w.WriteStartArray("skipped");
            foreach (var skipped in s.Skipped)
            {
                w.WriteStringValue(skipped);
            }
            w.WriteEndArray();
            w.WriteStartArray("policies");
            foreach (var p in s.Policies)
            {
                w.WriteStringValue(p.ToString());
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("policies");
        foreach (var p in engine.PolicyStatus())
        {
            w.WriteStartObject();
            WritePolicyRef(w, p.Policy);
            w.WriteString("source", p.Source);
            w.WriteString("state", p.State);
            w.WriteBoolean("audit", p.Audit);
            w.WriteNumber("map_entries", p.Entries);
            w.WriteStartArray("endpoints");
            foreach (var e in p.Endpoints)
            {
                w.WriteStringValue(e);
            }
            w.WriteEndArray();
            w.WriteStartArray("unsupported");
            foreach (var u in p.Unsupported)
            {
                w.WriteStartObject();
                w.WriteString("path", u.Path);
                w.WriteString("feature", u.Feature);
                w.WriteString("effect", u.Effect == UnsupportedEffect.AllowsNothing ? "allows-nothing" : "denies-all-peers");
                w.WriteString("message", u.Message);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("notes");
            foreach (var n in p.Notes)
            {
                w.WriteStringValue(n);
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>The status as a standalone document: {"network_policy": {...}}.</summary>
    public static string Status(NetworkPolicyEngine engine, string? policyDir) => Document(w => WriteStatus(w, engine, policyDir));

    private static void WriteErrors(Utf8JsonWriter w, string name, IReadOnlyList<Palisade.Policies.PolicyError> errors)
    {
        w.WriteStartArray(name);
        foreach (var e in errors)
        {
            w.WriteStartObject();
            w.WriteString("field", e.Path);
            w.WriteString("message", e.Message);
            if (e.Line > 0)
            {
                w.WriteNumber("line", e.Line);
                w.WriteNumber("column", e.Column);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>An explanation as JSON: the verdict, the drop reason and per direction the deciding entry and rules.</summary>
    public static string Explanation(NetworkExplanation x) => Document(w =>
    {
        w.WriteString("verdict", Verdict(x.Result.Verdict));
        if (x.Result.Reason != PolicyDropReason.None)
        {
            w.WriteString("drop_reason", Reason(x.Result.Reason));
        }
        w.WriteStartObject("from");
        w.WriteString("name", x.From);
        w.WriteNumber("identity", x.FromIdentity);
        w.WriteEndObject();
        w.WriteStartObject("to");
        w.WriteString("name", x.To);
        w.WriteNumber("identity", x.ToIdentity);
        w.WriteEndObject();
        w.WriteNumber("protocol", x.Protocol);
        w.WriteNumber("port", x.Port);
        foreach (var d in new[] { x.Result.Egress, x.Result.Ingress })
        {
            if (d is null)
            {
                continue;
            }
            w.WriteStartObject(d.Direction == PolicyDirection.Egress ? "egress" : "ingress");
            w.WriteString("verdict", Verdict(d.Verdict));
            if (d.Reason != PolicyDropReason.None)
            {
                w.WriteString("drop_reason", Reason(d.Reason));
            }
            w.WriteString("why", d.Why);
            if (d.Entry is { } entry)
            {
                w.WriteString("entry", entry.ToString());
            }
            w.WriteStartArray("rules");
            foreach (var r in d.Rules)
            {
                w.WriteStartObject();
                WritePolicyRef(w, r.Policy);
                w.WriteString("file", r.Source);
                w.WriteString("rule", r.Rule);
                if (r.Peer is { } peer)
                {
                    w.WriteString("peer", peer);
                }
                if (r.Port is { } port)
                {
                    w.WriteString("port", port);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
    });

    /// <summary>An explanation for a person: the verdict line, then each direction with its deciding entry and rules.</summary>
    public static string Text(NetworkExplanation x)
    {
        var b = new StringBuilder();
        b.Append(CultureInfo.InvariantCulture, $"{Verdict(x.Result.Verdict)}");
        if (x.Result.Reason != PolicyDropReason.None)
        {
            b.Append(CultureInfo.InvariantCulture, $" ({Reason(x.Result.Reason)})");
        }
        b.Append(CultureInfo.InvariantCulture, $": {x.From} -> {x.To} {ProtocolName(x.Protocol)}/{x.Port}\n");
        if (x.Result.Egress is null && x.Result.Ingress is null)
        {
            b.Append("  neither side is a local endpoint: no policy of this node decides it\n");
        }
        foreach (var d in new[] { x.Result.Egress, x.Result.Ingress })
        {
            if (d is null)
            {
                continue;
            }
            b.Append(CultureInfo.InvariantCulture, $"  {(d.Direction == PolicyDirection.Egress ? "egress at source" : "ingress at destination")}: {Verdict(d.Verdict)}");
            if (d.Reason != PolicyDropReason.None)
            {
                b.Append(CultureInfo.InvariantCulture, $" ({Reason(d.Reason)})");
            }
            b.Append(CultureInfo.InvariantCulture, $", {d.Why}\n");
            if (d.Entry is { } entry)
            {
                b.Append(CultureInfo.InvariantCulture, $"    entry: {entry}\n");
            }
            foreach (var r in d.Rules)
            {
                b.Append(CultureInfo.InvariantCulture, $"    rule: {r}\n");
            }
        }
        return b.ToString();
    }

    public static string Verdict(PolicyVerdict v) => v switch
    {
        PolicyVerdict.Dropped => "DROPPED",
        PolicyVerdict.Audit => "AUDIT",
        _ => "FORWARDED",
    };

    public static string Reason(PolicyDropReason r) => r switch
    {
        PolicyDropReason.PolicyDeny => "POLICY_DENY",
        PolicyDropReason.PolicyDenied => "POLICY_DENIED",
        _ => "",
    };

    private static string ProtocolName(byte p) => p switch
    {
        6 => "TCP",
        17 => "UDP",
        132 => "SCTP",
        1 => "ICMP",
        58 => "ICMPv6",
        _ => p.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Reads an explain request's sides and port: "NS/POD", "k=v,k2=v2" labels (optionally in a
    /// namespace), an IP address; "80/TCP" or a bare port with <paramref name="protocol"/>.
    /// Throws <see cref="ArgumentException"/> naming the field, the value and the fix.
    /// </summary>
    public static (ExplainPeer From, ExplainPeer To, byte Protocol, ushort Port) ParseRequest(
        string? from, string? fromLabels, string? fromIp, string? to, string? toLabels, string? toIp, string? port, string? protocol, string? labelsNamespace = null)
    {
        var f = Peer("from", from, fromLabels, fromIp, labelsNamespace);
        var t = Peer("to", to, toLabels, toIp, labelsNamespace);
        var (proto, number) = Port(port, protocol);
        return (f, t, proto, number);
    }

    private static ExplainPeer Peer(string side, string? pod, string? labels, string? ip, string? labelsNamespace)
    {
        var given = new[] { pod, labels, ip }.Count(v => !string.IsNullOrWhiteSpace(v));
        if (given != 1)
        {
            throw new ArgumentException($"--{side}: give exactly one of --{side} NS/POD, --{side}-labels k=v[,k=v] or --{side}-ip ADDRESS ({(given == 0 ? "none was given" : "several were given")}).");
        }
        if (!string.IsNullOrWhiteSpace(pod))
        {
            var slash = pod.IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0 || slash == pod.Length - 1 || pod.IndexOf('/', slash + 1) >= 0)
            {
                throw new ArgumentException($"--{side}: \"{pod}\" is not NAMESPACE/POD. Fix: e.g. --{side} default/web-1.");
            }
            return new ExplainPeer.Pod(pod[..slash], pod[(slash + 1)..]);
        }
        if (!string.IsNullOrWhiteSpace(ip))
        {
            if (!IPAddress.TryParse(ip.Trim(), out var address))
            {
                throw new ArgumentException($"--{side}-ip: \"{ip}\" is not an IPv4 or IPv6 address. Fix: e.g. --{side}-ip 10.244.1.7.");
            }
            return new ExplainPeer.Address(address);
        }
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        string? ns = labelsNamespace;
        foreach (var part in labels!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new ArgumentException($"--{side}-labels: \"{part}\" is not key=value. Fix: e.g. --{side}-labels app=web,tier=front.");
            }
            var key = part[..eq];
            var value = part[(eq + 1)..];
            if (key is "io.kubernetes.pod.namespace" or "k8s:io.kubernetes.pod.namespace")
            {
                ns = value;
                continue;
            }
            values[key.StartsWith("k8s:", StringComparison.Ordinal) ? key[4..] : key] = value;
        }
        return new ExplainPeer.Labels(values, ns);
    }

    private static (byte Protocol, ushort Port) Port(string? port, string? protocol)
    {
        var text = port?.Trim() ?? "";
        string? proto = string.IsNullOrWhiteSpace(protocol) ? null : protocol.Trim();
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            if (proto is not null && !string.Equals(proto, text[(slash + 1)..], StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"--port \"{port}\" and --protocol \"{protocol}\" disagree. Fix: give the protocol once, e.g. --port 80/TCP.");
            }
            proto = text[(slash + 1)..];
            text = text[..slash];
        }
        proto ??= "TCP";
        byte p = proto.ToUpperInvariant() switch
        {
            "TCP" => 6,
            "UDP" => 17,
            "SCTP" => 132,
            "ICMP" => 1,
            "ICMPV6" => 58,
            _ => throw new ArgumentException($"--protocol: \"{proto}\" is not TCP, UDP, SCTP, ICMP or ICMPv6. Fix: e.g. --port 53/UDP."),
        };
        if (text.Length == 0)
        {
            if (p is 1 or 58)
            {
                return (p, p == 1 ? (ushort)8 : (ushort)128); // an echo request
            }
            throw new ArgumentException("--port: required for TCP, UDP and SCTP. Fix: e.g. --port 80/TCP.");
        }
        if (!ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || (number == 0 && p is not (1 or 58)))
        {
            throw new ArgumentException($"--port: \"{text}\" is not a port number (1-65535; for ICMP the type). Fix: e.g. --port 80/TCP.");
        }
        return (p, number);
    }

    private static string Document(Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>A policy's kind, namespace (when it has one) and name, as every network-policy document names it.</summary>
    private static void WritePolicyRef(Utf8JsonWriter w, PolicyRef policy)
    {
        w.WriteString("kind", policy.Kind.ToString());
        if (policy.Namespace is { } ns)
        {
            w.WriteString("namespace", ns);
        }
        w.WriteString("name", policy.Name);
    }
}
