using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Palisade.Datapath.Ipam;

/// <summary>The addresses one attachment got: one per configured family.</summary>
public sealed record IpAllocation(IPAddress? IPv4, IPAddress? IPv6)
{
    public IEnumerable<IPAddress> All => new[] { IPv4, IPv6 }.OfType<IPAddress>();
}

/// <summary>An allocation that could not be made (pool exhausted, state not writable).</summary>
public sealed class IpamException : Exception
{
    public IpamException(string message) : base(message) { }

    public IpamException(string message, Exception innerException) : base(message, innerException) { }

    public IpamException() { }
}

/// <summary>
/// Node-local IPAM over this node's pod CIDRs (at most one IPv4 and one IPv6): every
/// attachment gets one address of each family. Each allocation is a file
/// STATE-DIR/ADDRESS holding "container-id\nifname\n" (as the reference host-local plugin
/// keeps them), written durably before the address is handed out, so a restart knows every
/// address in use. Thread-safe: reservations are made under a lock, files written outside it.
/// </summary>
public sealed class NodeIpam
{
    private readonly Lock _sync = new();
    private readonly Dictionary<AttachmentId, IpAllocation> _byOwner = [];
    private readonly string _directory;

    private NodeIpam(IpPool? v4, IpPool? v6, string directory)
    {
        IPv4 = v4;
        IPv6 = v6;
        _directory = directory;
    }

    public IpPool? IPv4 { get; }

    public IpPool? IPv6 { get; }

    public IEnumerable<IpPool> Pools => new[] { IPv4, IPv6 }.OfType<IpPool>();

    /// <summary>Files of the state directory that were not loaded: unreadable, or outside today's pod CIDRs (kept, not used).</summary>
    public IReadOnlyList<string> Ignored { get; private set; } = [];

    /// <summary>
    /// Opens IPAM over <paramref name="cidrs"/> (one per family) with its state in <paramref name="directory"/>,
    /// loading the allocations an earlier run made.
    /// </summary>
    public static NodeIpam Open(IReadOnlyList<IPNetwork> cidrs, string directory)
    {
        IpPool? v4 = null, v6 = null;
        foreach (var cidr in cidrs)
        {
            var pool = new IpPool(cidr);
            if (pool.Family == AddressFamily.InterNetwork)
            {
                v4 = v4 is null ? pool : throw new ArgumentException($"two IPv4 pod CIDRs ({v4.Cidr}, {cidr}): one per family is supported", nameof(cidrs));
            }
            else
            {
                v6 = v6 is null ? pool : throw new ArgumentException($"two IPv6 pod CIDRs ({v6.Cidr}, {cidr}): one per family is supported", nameof(cidrs));
            }
        }
        if (v4 is null && v6 is null)
        {
            throw new ArgumentException("no pod CIDR: IPAM needs an IPv4 or an IPv6 pod CIDR", nameof(cidrs));
        }
        var ipam = new NodeIpam(v4, v6, directory);
        ipam.Load();
        return ipam;
    }

    /// <summary>
    /// One address of each family for <paramref name="owner"/>, durably recorded. An owner that
    /// holds addresses already gets the same ones back. Throws <see cref="IpamException"/> when a pool is full.
    /// </summary>
    public IpAllocation Allocate(AttachmentId owner)
    {
        IPAddress? v4 = null, v6 = null;
        lock (_sync)
        {
            if (_byOwner.TryGetValue(owner, out var existing))
            {
                return existing;
            }
            if (IPv4 is { } p4 && (v4 = p4.TryReserve()) is null)
            {
                throw Exhausted(p4);
            }
            if (IPv6 is { } p6 && (v6 = p6.TryReserve()) is null)
            {
                if (v4 is not null)
                {
                    IPv4!.Release(v4);
                }
                throw Exhausted(p6);
            }
            // Claimed now, so a concurrent request for the same owner gets these rather than others.
            _byOwner[owner] = new IpAllocation(v4, v6);
        }
        var written = new List<IPAddress>();
        try
        {
            foreach (var address in new[] { v4, v6 }.OfType<IPAddress>())
            {
                StateFile.WriteUnsynced(PathOf(address), Encoding.UTF8.GetBytes($"{owner.ContainerId}\n{owner.IfName}\n"));
                written.Add(address);
            }
            StateFile.SyncDirectory(_directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            foreach (var address in written)
            {
                TryDelete(address);
            }
            lock (_sync)
            {
                Forget(owner);
            }
            throw new IpamException($"IPAM state in {_directory} cannot be written ({e.Message}); no address was allocated. Fix: make the directory writable for the agent (root), or set --ipam-state-dir.", e);
        }
        return new IpAllocation(v4, v6);
    }

    /// <summary>Releases the addresses of <paramref name="owner"/>; false when it held none.</summary>
    public bool Release(AttachmentId owner)
    {
        IpAllocation? allocation;
        lock (_sync)
        {
            if (!_byOwner.TryGetValue(owner, out allocation))
            {
                return false;
            }
            Forget(owner);
        }
        try
        {
            foreach (var address in allocation.All)
            {
                File.Delete(PathOf(address));
            }
            StateFile.SyncDirectory(_directory); // once for both families: each sync costs milliseconds on DEL's path
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The address is free in memory; a file left makes the next start think it is held
            // until GC finds no endpoint for it. Better than failing a DEL.
        }
        return true;
    }

    /// <summary>The addresses <paramref name="owner"/> holds; null when none.</summary>
    public IpAllocation? Find(AttachmentId owner)
    {
        lock (_sync)
        {
            return _byOwner.GetValueOrDefault(owner);
        }
    }

    /// <summary>Every owner holding addresses.</summary>
    public IReadOnlyList<KeyValuePair<AttachmentId, IpAllocation>> Allocations
    {
        get
        {
            lock (_sync)
            {
                return [.. _byOwner];
            }
        }
    }

    /// <summary>GC: releases the addresses of every owner <paramref name="isLive"/> says is gone; returns them.</summary>
    public IReadOnlyList<AttachmentId> ReleaseUnowned(Func<AttachmentId, bool> isLive)
    {
        var gone = Allocations.Select(kv => kv.Key).Where(owner => !isLive(owner)).ToList();
        return [.. gone.Where(Release)];
    }

    private void Forget(AttachmentId owner)
    {
        if (_byOwner.Remove(owner, out var allocation))
        {
            if (allocation.IPv4 is { } a4)
            {
                IPv4?.Release(a4);
            }
            if (allocation.IPv6 is { } a6)
            {
                IPv6?.Release(a6);
            }
        }
    }

    private static IpamException Exhausted(IpPool pool) =>
        new($"{(pool.Family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} pod CIDR {pool.Cidr} is exhausted: all {pool.Capacity} pod addresses are allocated. " +
            "Fix: delete pods that are gone (CNI GC releases addresses of containers the runtime no longer has), or give the node a larger pod CIDR.");

    private string PathOf(IPAddress address) => Path.Combine(_directory, address.ToString());

    private void TryDelete(IPAddress address)
    {
        try
        {
            StateFile.Delete(PathOf(address));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The address is free in memory; the file makes the next start think it is held
            // until GC finds no endpoint for it. Better than failing a DEL.
        }
    }

    private void Load()
    {
        StateFile.EnsureDirectory(_directory);
        StateFile.RemoveLeftovers(_directory);
        var ignored = new List<string>();
        var partial = new Dictionary<AttachmentId, (IPAddress? V4, IPAddress? V6)>();
        foreach (var file in Directory.EnumerateFiles(_directory).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(file);
            if (name.StartsWith('.'))
            {
                continue;
            }
            string[] lines;
            try
            {
                lines = File.ReadAllText(file).Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            }
            catch (IOException e)
            {
                ignored.Add($"{file}: {e.Message}");
                continue;
            }
            if (!IPAddress.TryParse(name, out var address) || lines.Length < 2)
            {
                ignored.Add($"{file}: not an allocation (the name must be an address, the content the container id and ifname)");
                continue;
            }
            var pool = Pools.FirstOrDefault(p => p.Contains(address));
            if (pool is null)
            {
                ignored.Add($"{file}: {address} is outside the pod CIDRs {string.Join(", ", Pools.Select(p => p.Cidr))}");
                continue;
            }
            var owner = new AttachmentId(lines[0], lines[1]);
            var held = partial.GetValueOrDefault(owner);
            if ((pool.Family == AddressFamily.InterNetwork ? held.V4 : held.V6) is not null || !pool.Reserve(address))
            {
                ignored.Add($"{file}: {owner} holds another address of this family already");
                continue;
            }
            partial[owner] = pool.Family == AddressFamily.InterNetwork ? (address, held.V6) : (held.V4, address);
        }
        foreach (var (owner, held) in partial)
        {
            _byOwner[owner] = new IpAllocation(held.V4, held.V6);
        }
        // Go on after the highest address held, so the addresses released just before the restart are not the next ones out.
        foreach (var pool in Pools)
        {
            var highest = partial.Values.Select(h => pool.Family == AddressFamily.InterNetwork ? h.V4 : h.V6).OfType<IPAddress>()
                .MaxBy(IpPool.Number);
            if (highest is not null)
            {
                pool.ContinueAfter(highest);
            }
        }
        Ignored = ignored;
    }
}
