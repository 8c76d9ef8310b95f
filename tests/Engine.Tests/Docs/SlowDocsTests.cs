using System.Globalization;
using Engine.Data;
using Engine.Layers;
using Engine.Tests.Cli;
using Engine.Tests.Data;
using Engine.Training;

namespace Engine.Tests.Docs;

/// <summary>
/// Figures in the docs that take minutes to compute: whole training runs. They run only with ENGINE_SLOW_DOCS=1
/// (<c>ENGINE_SLOW_DOCS=1 dotnet test -c Release --project tests/Engine.Tests -- --filter-class Engine.Tests.Docs.SlowDocsTests</c>),
/// and otherwise report themselves skipped, never passed.
/// </summary>
public sealed class SlowDocsTests
{
    private static bool Enabled => Environment.GetEnvironmentVariable("ENGINE_SLOW_DOCS") == "1";

    // Training is deterministic for a seed, a thread count and a kernel variant: the AVX2 kernels sum in another order
    // than the AVX-512 ones the docs' runs used, and reach other (equally good) weights.
    private static void SkipUnlessTheDocsKernels()
    {
        Assert.SkipUnless(Enabled, "trains networks (minutes); set ENGINE_SLOW_DOCS=1 to run it.");
        Assert.SkipUnless(Engine.Kernels.GemmF32.Best == Engine.Kernels.KernelVariant.Avx512,
            $"the docs' figures were recorded with the AVX-512 kernels; this machine runs {Engine.Kernels.GemmF32.Best}.");
    }

    [Fact]
    public void Training_three_seeds_reaches_the_accuracies_docs_training_md_gives()
    {
        SkipUnlessTheDocsKernels();
        var rows = new List<string> { "| seed | test accuracy (1,000 digits) | final training loss |", "| ---: | ---: | ---: |" };
        foreach (ulong seed in new ulong[] { 1, 2, 3 })
        {
            // What 'engine train --seed S --threads 2' does with its defaults.
            var options = new TrainingOptions { Seed = seed };
            float mean = MnistPreprocessing.DefaultMean, std = MnistPreprocessing.DefaultStd;
            var train = BatchIterator.Shuffled(BundledMnist.Train, options.BatchSize, options.Seed, epoch: 0, mean, std, BatchIterator.DefaultMaxShift);
            var test = BatchIterator.Sequential(BundledMnist.Test, 250, mean, std);
            Sequential network = SeedNetwork.Create(seed);
            network.Threads = 2;
            EpochReport last = new Trainer(network, options).Run(train, test, cancel: TestContext.Current.CancellationToken)[^1];
            rows.Add(FormattableString.Invariant($"| {seed} | {100 * last.TestAccuracy:F2}% | {last.TrainLoss:F4} |"));
        }
        GeneratedSections.Check("docs/training.md", "training-seeds", string.Join("\n", rows));
    }

    /// <summary>
    /// Runs <c>engine demo --threads 2</c> as the README's first command does on a two-core machine and checks the
    /// README's excerpt of its final table: model, accuracy, parameters, file size and multiply-accumulates must be what
    /// the run printed (the demo is deterministic for a seed and thread count); the two timing columns come from the run
    /// the README names and are not compared.
    /// </summary>
    [Fact]
    public void The_readme_demo_table_is_what_the_demo_prints()
    {
        SkipUnlessTheDocsKernels();
        string output = Path.Combine(Path.GetTempPath(), $"engine-demo-{Guid.NewGuid():N}");
        try
        {
            CliRunner.Result run = CliRunner.Run(TimeSpan.FromMinutes(15), "demo", "--threads", "2", "--out", output);
            Assert.True(run.ExitCode == 0, run.StdErr);
            string[] lines = run.StdOut.ReplaceLineEndings("\n").Split('\n');
            int title = Array.FindLastIndex(lines, l => l.Trim().StartsWith("engine demo: ", StringComparison.Ordinal) && l.Contains("epoch", StringComparison.Ordinal));
            Assert.True(title >= 0, "the demo printed no final table:\n" + run.StdOut);
            string excerpt = "```text\n" + string.Join("\n", lines[title..].Where(l => l.Trim().Length > 0)) + "\n```";
            GeneratedSections.Check("README.md", "demo-table", excerpt, SameModels);
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }

    /// <summary>The rows of two printed demo tables name the same models with the same figures, timings apart.</summary>
    private static bool SameModels(string inFile, string computed)
    {
        static string[][] Rows(string text) => [.. text.Split('\n')
            .Where(l => l.TrimStart().StartsWith('|'))
            .Select(l => l.Trim().Trim('|').Split('|').Select(c => c.Trim()).Take(5).ToArray())];
        string[][] a = Rows(inFile), b = Rows(computed);
        return a.Length > 0 && a.Length == b.Length && a.Zip(b).All(p => p.First.SequenceEqual(p.Second));
    }
}
