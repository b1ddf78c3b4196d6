using System.Text;

namespace Palisade.Testing;

/// <summary>The cluster of the netpol truth tables: namespaces x, y, z, each with pods a, b, c (as Kubernetes' test/e2e/network/netpol).</summary>
public static class NetpolPods
{
    public static readonly string[] Namespaces = ["x", "y", "z"];
    public static readonly string[] Names = ["a", "b", "c"];

    /// <summary>"x/a", "x/b", ... "z/c".</summary>
    public static readonly IReadOnlyList<string> All = [.. Namespaces.SelectMany(n => Names.Select(p => $"{n}/{p}"))];

    /// <summary>A source that is not a pod: the node itself (root network namespace, identity host).</summary>
    public const string Host = "host";

    public static string NamespaceOf(string pod) => pod.Split('/')[0];

    public static string NameOf(string pod) => pod.Split('/')[1];

    /// <summary>Each pod serves TCP and UDP on ports 80 and 81, and names them (container ports) serve-PORT-PROTO.</summary>
    public static readonly NetpolProbe[] Probes = [new(80, "TCP"), new(80, "UDP"), new(81, "TCP"), new(81, "UDP")];

    public static string PortName(NetpolProbe probe) => $"serve-{probe.Port}-{probe.Protocol.ToLowerInvariant()}";
}

/// <summary>One column set of the truth table: a destination port and protocol.</summary>
public sealed record NetpolProbe(int Port, string Protocol)
{
    public override string ToString() => $"{Port}/{Protocol}";
}

/// <summary>Namespace and/or pod name; null matches any (the e2e suite's Peer). Matches pods only, never the host.</summary>
public sealed record Peer(string? Namespace = null, string? Pod = null)
{
    public bool Matches(string pod) =>
        pod != NetpolPods.Host && (Namespace is null || NetpolPods.NamespaceOf(pod) == Namespace) && (Pod is null || NetpolPods.NameOf(pod) == Pod);
}

/// <summary>
/// A truth table from sources to pods (the e2e suite's Reachability): every pair starts at the
/// default, expectations override it, loopback (a pod to itself) is never compared, as the
/// e2e suite ignores it. Printed as that suite prints it: "." reachable, "X" blocked.
/// </summary>
public sealed class Reachability
{
    private readonly Dictionary<(string From, string To), bool> _cells = [];

    /// <param name="defaultReachable">Every pair's value until an expectation says otherwise.</param>
    /// <param name="withHost">Adds the host as a source row (entity cases).</param>
    public Reachability(bool defaultReachable = true, bool withHost = false)
    {
        Sources = withHost ? [.. NetpolPods.All, NetpolPods.Host] : NetpolPods.All;
        foreach (var from in Sources)
        {
            foreach (var to in NetpolPods.All)
            {
                _cells[(from, to)] = defaultReachable;
            }
        }
    }

    public IReadOnlyList<string> Sources { get; }

    public static IReadOnlyList<string> Destinations => NetpolPods.All;

    public bool this[string from, string to]
    {
        get => _cells[(from, to)];
        set => _cells[(Check(from), Check(to))] = value;
    }

    private string Check(string name) =>
        Sources.Contains(name) ? name : throw new ArgumentException($"\"{name}\" is not a source of this table ({string.Join(", ", Sources)})", nameof(name));

    public Reachability Expect(string from, string to, bool reachable)
    {
        this[from, to] = reachable;
        return this;
    }

    /// <summary>Every source to <paramref name="pod"/> (the host too, when it is a row).</summary>
    public Reachability ExpectAllIngress(string pod, bool reachable)
    {
        foreach (var from in Sources)
        {
            this[from, pod] = reachable;
        }
        return this;
    }

    /// <summary><paramref name="pod"/> to every pod.</summary>
    public Reachability ExpectAllEgress(string pod, bool reachable)
    {
        foreach (var to in Destinations)
        {
            this[pod, to] = reachable;
        }
        return this;
    }

    public Reachability ExpectPeer(Peer from, Peer to, bool reachable)
    {
        foreach (var f in Sources.Where(from.Matches))
        {
            foreach (var t in Destinations.Where(to.Matches))
            {
                this[f, t] = reachable;
            }
        }
        return this;
    }

    /// <summary>Loopback is not compared (the e2e suite's ignoreLoopback).</summary>
    public static bool IsCompared(string from, string to) => from != to;

    /// <summary>The grid as the e2e suite prints it, one row per source, "." reachable, "X" blocked, "-" not compared.</summary>
    public string Print()
    {
        var sb = new StringBuilder("       ").AppendJoin(" ", Destinations.Select(d => d.PadRight(3))).Append('\n');
        foreach (var from in Sources)
        {
            sb.Append(from.PadRight(6)).Append(' ');
            foreach (var to in Destinations)
            {
                sb.Append((!IsCompared(from, to) ? "-" : this[from, to] ? "." : "X").PadRight(4));
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>The pairs where <paramref name="observed"/> differs from this (the expectation).</summary>
    public IReadOnlyList<(string From, string To)> Differences(Reachability observed) =>
        [.. _cells.Keys.Where(k => IsCompared(k.From, k.To) && observed._cells.TryGetValue(k, out var got) && got != _cells[k])];

    /// <summary>Null when <paramref name="observed"/> agrees; else expected, observed and the comparison grid ("X" where they differ).</summary>
    public string? Compare(Reachability observed, string title)
    {
        var wrong = Differences(observed);
        if (wrong.Count == 0)
        {
            return null;
        }
        var comparison = new Reachability(true, Sources.Contains(NetpolPods.Host));
        foreach (var (from, to) in wrong)
        {
            comparison[from, to] = false;
        }
        return $"{title}: {wrong.Count} of {Sources.Count * Destinations.Count - Destinations.Count} pairs differ\n" +
            $"expected:\n{Print()}observed:\n{observed.Print()}comparison (X: differs):\n{comparison.Print()}" +
            string.Join("\n", wrong.Select(w => $"  {w.From} -> {w.To}: expected {(this[w.From, w.To] ? "reachable" : "blocked")}, observed {(observed[w.From, w.To] ? "reachable" : "blocked")}")) + "\n";
    }
}
