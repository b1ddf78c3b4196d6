using System.Globalization;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// A network namespace standing for a pod's sandbox, as a runtime makes one before calling
/// CNI ADD: named uniquely (`ip netns add`), loopback up, deleted on dispose.
/// </summary>
internal sealed class PodNamespace : IDisposable
{
    private bool _deleted;

    public PodNamespace(string prefix = "pal-pod")
    {
        // Another test run on this machine may hold the same random name: pick again.
        do
        {
            Name = $"{prefix}-{Random.Shared.Next(0x10000, 0xfffff).ToString("x5", CultureInfo.InvariantCulture)}";
        }
        while (File.Exists(TestNetwork.NetnsPath(Name)));
        Command.Check("ip", "netns", "add", Name);
        try
        {
            Command.Check("ip", "-n", Name, "link", "set", "lo", "up");
        }
        catch
        {
            Dispose();
            throw;
        }
        ContainerId = $"{Name}-{Guid.NewGuid():N}";
    }

    public string Name { get; }

    /// <summary>The CNI_CONTAINERID a runtime would pass for this sandbox: unique per namespace.</summary>
    public string ContainerId { get; }

    public string Path => TestNetwork.NetnsPath(Name);

    public CniAttachment Attachment(string ifName = "eth0", string? args = null) => new(ContainerId, Path, ifName, args);

    /// <summary>Runs a command inside the namespace.</summary>
    public CommandResult Exec(params string[] command) => Command.Run("ip", ["netns", "exec", Name, .. command]);

    public void Dispose()
    {
        if (!_deleted)
        {
            Command.Run("ip", "netns", "delete", Name);
            _deleted = true;
        }
    }
}
