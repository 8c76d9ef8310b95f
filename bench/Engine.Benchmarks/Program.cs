using BenchmarkDotNet.Running;

// Run all: dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Engine.Benchmarks.FloatForwardBenchmarks).Assembly).Run(args);
