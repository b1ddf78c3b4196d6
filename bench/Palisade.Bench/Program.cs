using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "service-scale") return Palisade.Bench.ServiceScale.Run(args); // bench/service-scale.sh
if (args.Length > 0 && args[0].StartsWith("peer-", StringComparison.Ordinal))
{
    // The other end of a sink benchmark (see SinkBenchmarks), started as its own process.
    return Palisade.Bench.SinkPeers.Run(args);
}
BenchmarkSwitcher.FromAssembly(typeof(Palisade.Bench.PipelineBenchmarks).Assembly).Run(args);
return 0;
