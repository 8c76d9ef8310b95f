using System.Diagnostics;

namespace Engine.Benchmarks;

/// <summary>
/// `--stages [rounds]`: the stages of <see cref="PrunedStageBenchmarks"/> for both conv2 widths, interleaved round after
/// round in one process, each stage's fastest call reported. On a shared, noisy machine the minimum over many interleaved
/// calls is a steadier profile than a mean (other processes only ever add time); BenchmarkDotNet gives the figures to quote.
/// </summary>
internal static class StageProfile
{
    public static void Run(int rounds)
    {
        var stages = new (string Name, Action<PrunedStageBenchmarks> Call)[]
        {
            ("whole, 1 thread", b => b.Whole()),
            ("whole, 2 threads", b => b.WholeTwoThreads()),
            ("whole, 1 thread, conv1 and conv2 unchained", b => b.WholeUnchained(1)),
            ("whole, 2 threads, conv1 and conv2 unchained", b => b.WholeUnchained(2)),
            ("conv1", b => b.Conv1()),
            ("winograd pad", b => b.WinogradPad()),
            ("winograd input transform", b => b.WinogradInputTransform()),
            ("winograd gemms", b => b.WinogradGemms()),
            ("winograd output transform", b => b.WinogradOutputTransform()),
            ("epilogue", b => b.Epilogue()),
            ("fc1", b => b.Fc1()),
            ("fc2", b => b.Fc2()),
        };
        int[] widths = [64, 32];
        var benches = widths.Select(w => { var b = new PrunedStageBenchmarks { Conv2Filters = w }; b.Setup(); return b; }).ToArray();
        var best = new double[widths.Length, stages.Length];
        for (int i = 0; i < best.Length; i++)
        {
            best[i / stages.Length, i % stages.Length] = double.MaxValue;
        }
        for (int round = 0; round < rounds; round++)
        {
            for (int s = 0; s < stages.Length; s++)
            {
                for (int w = 0; w < widths.Length; w++)
                {
                    long start = Stopwatch.GetTimestamp();
                    stages[s].Call(benches[w]);
                    double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    best[w, s] = Math.Min(best[w, s], ms);
                }
            }
        }
        Console.WriteLine($"| stage (batch 64, min of {rounds}) | conv2 32 -> 64 | conv2 32 -> 32 |");
        Console.WriteLine("| --- | ---: | ---: |");
        for (int s = 0; s < stages.Length; s++)
        {
            Console.WriteLine($"| {stages[s].Name} | {best[0, s]:F3} ms | {best[1, s]:F3} ms |");
        }
    }
}
