namespace Palisade.Datapath;

/// <summary>What CNI calls an attachment: the container id and the interface name inside it. Keys endpoints and addresses.</summary>
public readonly record struct AttachmentId(string ContainerId, string IfName)
{
    public override string ToString() => $"{ContainerId}/{IfName}";
}
