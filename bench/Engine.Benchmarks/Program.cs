using BenchmarkDotNet.Running;

// Run all: dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*'
// Per-stage profile of pruned against unpruned inference: dotnet run -c Release --project bench/Engine.Benchmarks -- --stages 200
if (args is ["--stages", ..])
{
    Engine.Benchmarks.StageProfile.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200);
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Engine.Benchmarks.FloatForwardBenchmarks).Assembly).Run(args);
