namespace Palisade.Runtime.Processes;

/// <summary>Identity of a process image in the cache and the kernel map: pid plus the boot-time ns it began.</summary>
public readonly record struct ProcessKey(uint Pid, ulong Ktime);
