using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Palisade.Bench.PipelineBenchmarks).Assembly).Run(args);
