using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Palisade.Datapath.Endpoints;

/// <summary>
/// The endpoints of this node on disk: one JSON file per endpoint, named after its host
/// interface, written durably once the endpoint is complete and removed when it is deleted.
/// At start the agent reads them back to adopt the endpoints that still exist.
/// </summary>
public sealed class EndpointRegistry
{
    private readonly string _directory;

    public EndpointRegistry(string directory)
    {
        _directory = directory;
        StateFile.EnsureDirectory(directory);
        StateFile.RemoveLeftovers(directory);
    }

    public string Directory => _directory;

    public void Save(Endpoint endpoint) =>
        StateFile.Write(PathOf(endpoint.HostIfName), JsonSerializer.SerializeToUtf8Bytes(RegistryEntry.From(endpoint), RegistryJson.Default.RegistryEntry));

    public void Remove(Endpoint endpoint) => StateFile.Delete(PathOf(endpoint.HostIfName));

    /// <summary>Every recorded endpoint; files that do not parse are listed in <paramref name="unreadable"/> (and left in place).</summary>
    public List<Endpoint> Load(List<string> unreadable)
    {
        var endpoints = new List<Endpoint>();
        foreach (var file in System.IO.Directory.EnumerateFiles(_directory, "*.json").Order(StringComparer.Ordinal))
        {
            try
            {
                var entry = JsonSerializer.Deserialize(File.ReadAllBytes(file), RegistryJson.Default.RegistryEntry)
                    ?? throw new JsonException("empty document");
                endpoints.Add(entry.ToEndpoint());
            }
            catch (Exception e) when (e is JsonException or IOException or FormatException or ArgumentException or InvalidOperationException)
            {
                unreadable.Add($"{file}: {e.Message}");
            }
        }
        return endpoints;
    }

    private string PathOf(string hostIfName) => Path.Combine(_directory, hostIfName + ".json");
}

/// <summary>An endpoint as the registry stores it (addresses and MACs as text).</summary>
internal sealed class RegistryEntry
{
    public uint Id { get; set; }
    public string ContainerId { get; set; } = "";
    public string IfName { get; set; } = "";
    public string Netns { get; set; } = "";
    public uint NetnsInode { get; set; }
    public string? PodNamespace { get; set; }
    public string? PodName { get; set; }
    public Dictionary<string, string> Labels { get; set; } = [];
    public Dictionary<string, string> NamespaceLabels { get; set; } = [];
    public List<RegistryPort> NamedPorts { get; set; } = [];
    public uint Identity { get; set; }
    public string HostIfName { get; set; } = "";
    public int HostIfIndex { get; set; }
    public string HostMac { get; set; } = "";
    public string PodMac { get; set; } = "";
    public string? IPv4 { get; set; }
    public string? IPv6 { get; set; }
    public DateTimeOffset Created { get; set; }

    public static RegistryEntry From(Endpoint e) => new()
    {
        Id = e.Id,
        ContainerId = e.ContainerId,
        IfName = e.IfName,
        Netns = e.Netns,
        NetnsInode = e.NetnsInode,
        PodNamespace = e.PodNamespace,
        PodName = e.PodName,
        Labels = new(e.Labels, StringComparer.Ordinal),
        NamespaceLabels = new(e.NamespaceLabels, StringComparer.Ordinal),
        NamedPorts = [.. e.NamedPorts.Select(p => new RegistryPort { Name = p.Name, Protocol = p.Protocol, Port = p.Port })],
        Identity = e.Identity,
        HostIfName = e.HostIfName,
        HostIfIndex = e.HostIfIndex,
        HostMac = Convert.ToHexString(e.HostMac),
        PodMac = Convert.ToHexString(e.PodMac),
        IPv4 = e.IPv4?.ToString(),
        IPv6 = e.IPv6?.ToString(),
        Created = e.Created,
    };

    public Endpoint ToEndpoint()
    {
        if (ContainerId.Length == 0 || IfName.Length == 0 || HostIfName.Length == 0)
        {
            throw new FormatException("container_id, if_name and host_if_name are required");
        }
        return new Endpoint
        {
            Id = Id,
            ContainerId = ContainerId,
            IfName = IfName,
            Netns = Netns,
            NetnsInode = NetnsInode,
            PodNamespace = PodNamespace,
            PodName = PodName,
            Labels = Labels,
            NamespaceLabels = NamespaceLabels,
            NamedPorts = [.. (NamedPorts ?? []).Select(p => new ContainerPort(p.Name, p.Protocol, p.Port))],
            Identity = Identity,
            HostIfName = HostIfName,
            HostIfIndex = HostIfIndex,
            HostMac = Convert.FromHexString(HostMac),
            PodMac = Convert.FromHexString(PodMac),
            IPv4 = IPv4 is null ? null : IPAddress.Parse(IPv4),
            IPv6 = IPv6 is null ? null : IPAddress.Parse(IPv6),
            Created = Created,
        };
    }
}

internal sealed class RegistryPort
{
    public string Name { get; set; } = "";
    public string Protocol { get; set; } = "TCP";
    public int Port { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(RegistryEntry))]
internal sealed partial class RegistryJson : JsonSerializerContext;
