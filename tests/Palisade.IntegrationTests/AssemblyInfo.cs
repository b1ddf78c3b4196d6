// Tests here attach to shared kernel hooks, cgroups and network namespaces: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
