using Engine.Data;
using Engine.Layers;
using Engine.Pruning;
using Engine.Statistics;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Tests.Pruning;

public class PruningRunTests
{
    private static readonly int[] Input = [1, 32, 32];

    private static (BatchIterator Train, BatchIterator Test) Data()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "data", "mnist");
        MnistDataset train = MnistDataset.Load(dir, MnistSplit.Train).Take(128);
        MnistDataset test = MnistDataset.Load(dir, MnistSplit.Test).Take(64);
        return (BatchIterator.Shuffled(train, 32, 1, 0, 0.1f, 0.3f, 1), BatchIterator.Sequential(test, 64, 0.1f, 0.3f));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Iterative_pruning_reaches_the_target_in_steps_and_collects_fresh_statistics(bool structured)
    {
        (BatchIterator train, BatchIterator test) = Data();
        Sequential original = SeedNetwork.Create(4, conv1Channels: 4, conv2Channels: 8, hidden: 12);
        var statistics = new GradientStatistics(original, Input);
        new Trainer(original, new TrainingOptions { Epochs = 1, BatchSize = 32 }).Run(train, observer: statistics, cancel: TestContext.Current.CancellationToken);
        float[] before = original.NamedParameters().First().Parameter.Value.Data.ToArray();

        var options = new PruningOptions
        {
            Criterion = PruningCriterion.Taylor,
            Amount = 0.5,
            Layers = ["conv2", "fc1"],
            Structured = structured,
            Iterations = 2,
            FineTuneEpochs = 1,
        };
        PruningOutcome outcome = PruningRun.Run(original, statistics, options, train, test, Input, cancel: TestContext.Current.CancellationToken);

        Assert.Equal(before, original.NamedParameters().First().Parameter.Value.Data.ToArray());
        Assert.NotNull(outcome.Statistics);
        Assert.NotSame(statistics, outcome.Statistics);
        var fc1 = (Linear)outcome.Network["fc1"];
        var conv2 = (Conv2d)outcome.Network["conv2"];
        if (structured)
        {
            Assert.Equal([4, 4, 6, 10], outcome.After.Select(l => l.Neurons));
            Assert.True(outcome.ParametersAfter < outcome.ParametersBefore);
        }
        else
        {
            // Masks keep the shapes; half of each layer's neurons are zero after fine-tuning.
            Assert.Equal(outcome.ParametersBefore, outcome.ParametersAfter);
            int zeroUnits = Enumerable.Range(0, 12).Count(n => fc1.Weight.Value.Data.Slice(n * fc1.InFeatures, fc1.InFeatures).IndexOfAnyExcept(0f) < 0);
            int zeroFilters = Enumerable.Range(0, 8).Count(n => conv2.Weight.Value.Data.Slice(n * 36, 36).IndexOfAnyExcept(0f) < 0);
            Assert.Equal(6, zeroUnits);
            Assert.Equal(4, zeroFilters);
        }
        // The reported accuracy is the returned network's, measured again here on the same test digits.
        Assert.Equal(Evaluation.Accuracy(outcome.Network, test), outcome.AccuracyAfterFineTune);
        FloatTensor logits = outcome.Network.Forward(TestData.FloatTensor(3, 2, 1, 32, 32));
        Assert.Equal([2, 10], logits.Shape.ToArray());
    }

    [Fact]
    public void Iterating_a_statistics_criterion_without_fine_tuning_is_refused()
    {
        (BatchIterator train, BatchIterator test) = Data();
        Sequential network = SeedNetwork.Create(4, conv1Channels: 2, conv2Channels: 2, hidden: 2);
        var e = Assert.Throws<ArgumentException>(() => PruningRun.Run(network, new GradientStatistics(network, Input),
            new PruningOptions { Criterion = PruningCriterion.GradientStability, Iterations = 2, FineTuneEpochs = 0 }, train, test, Input, cancel: TestContext.Current.CancellationToken));
        Assert.Contains("fine-tuning", e.Message);
    }
}
