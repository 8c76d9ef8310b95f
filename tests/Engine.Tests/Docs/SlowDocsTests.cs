using System.Globalization;
using Engine.Data;
using Engine.Layers;
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

    [Fact]
    public void Training_three_seeds_reaches_the_accuracies_docs_training_md_gives()
    {
        Assert.SkipUnless(Enabled, "trains three networks (minutes); set ENGINE_SLOW_DOCS=1 to run it.");
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
}
