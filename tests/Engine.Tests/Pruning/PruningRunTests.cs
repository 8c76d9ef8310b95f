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

    [Theory]
    [InlineData(PruningCriterion.Random, 1UL)]
    [InlineData(PruningCriterion.Random, 2UL)]
    [InlineData(PruningCriterion.Random, 3UL)]
    [InlineData(PruningCriterion.L1, 1UL)]
    [InlineData(PruningCriterion.L2, 1UL)]
    [InlineData(PruningCriterion.Taylor, 1UL)]
    [InlineData(PruningCriterion.GradientStability, 1UL)]
    public void Iterative_mask_pruning_zeroes_exactly_the_target_and_keeps_earlier_masks(PruningCriterion criterion, ulong seed)
    {
        // Each step used to replace the previous mask, assuming masked neurons score lowest; random scores do not, so
        // 8 to 11 of 16 fc1 units ended up zero for a target of 8.
        (BatchIterator train, BatchIterator test) = Data();
        Sequential original = SeedNetwork.Create(5, conv1Channels: 4, conv2Channels: 8, hidden: 16);
        var statistics = new GradientStatistics(original, Input);
        new Trainer(original, new TrainingOptions { Epochs = 1, BatchSize = 32 }).Run(train, observer: statistics, cancel: TestContext.Current.CancellationToken);
        var options = new PruningOptions
        {
            Criterion = criterion,
            Amount = 0.5,
            Layers = ["conv2", "fc1"],
            Structured = false,
            Iterations = 3,
            FineTuneEpochs = 1,
            Seed = seed,
        };
        PruningOutcome outcome = PruningRun.Run(original, statistics, options, train, test, Input, cancel: TestContext.Current.CancellationToken);

        var fc1 = (Linear)outcome.Network["fc1"];
        var conv2 = (Conv2d)outcome.Network["conv2"];
        int zeroUnits = Enumerable.Range(0, 16).Count(n => fc1.Weight.Value.Data.Slice(n * fc1.InFeatures, fc1.InFeatures).IndexOfAnyExcept(0f) < 0);
        int zeroFilters = Enumerable.Range(0, 8).Count(n => conv2.Weight.Value.Data.Slice(n * 36, 36).IndexOfAnyExcept(0f) < 0);
        Assert.Equal(8, zeroUnits);
        Assert.Equal(4, zeroFilters);
    }

    [Theory]
    [InlineData(PruningCriterion.GradientStability)]
    [InlineData(PruningCriterion.Taylor)]
    public void The_next_steps_plan_does_not_depend_on_the_observer_order(PruningCriterion criterion)
    {
        // fc1 feeds fc2 without a ReLU, so a masked fc1 unit still receives gradients: statistics recorded before the mask
        // zeroes them differ from statistics recorded after. The next plan must not care.
        int[] shape = [12];
        Sequential Network()
        {
            var net = new Sequential(("fc1", new Linear(12, 10)), ("fc2", new Linear(10, 8)), ("relu", new ReLU()), ("fc3", new Linear(8, 3)));
            net.Initialize(new SeededRandom(7));
            return net;
        }
        float[] inputs = TestData.Uniform(64 * 12, 8);
        int[] labels = Enumerable.Range(0, 64).Select(i => i % 3).ToArray();
        var data = new InMemoryBatches(inputs, shape, labels);
        var mask = new PruningPlan();
        mask.Remove("fc1", [1, 4, 6]);
        mask.Remove("fc2", [2]);

        PruningPlan Next(bool maskFirst, out GradientStatistics statistics)
        {
            Sequential net = Network();
            MaskPruner pruner = MaskPruner.Apply(net, mask, shape);
            statistics = new GradientStatistics(net, shape);
            var observers = maskFirst ? new ObserverList(pruner, statistics) : new ObserverList(statistics, pruner);
            new Trainer(net, new TrainingOptions { Epochs = 2, BatchSize = 16, WarmupEpochs = 0 }).Run(data, observer: observers,
                cancel: TestContext.Current.CancellationToken);
            return NeuronImportance.Rank(net, shape, criterion, 0.5, statistics: statistics, alreadyPruned: mask);
        }

        PruningPlan first = Next(maskFirst: true, out GradientStatistics after);
        PruningPlan second = Next(maskFirst: false, out GradientStatistics before);
        // The statistics of the masked units do differ with the order...
        Assert.NotEqual(after.Summary("fc1").MeanAbsMean[1], before.Summary("fc1").MeanAbsMean[1]);
        // ...and the plans do not: the masked units stay, and the live ones are ranked alike.
        Assert.Equal(first.Removed.Keys.Order(), second.Removed.Keys.Order());
        foreach ((string layer, int[] neurons) in first.Removed)
        {
            Assert.Equal(neurons, second.RemovedFrom(layer));
            Assert.Superset(new HashSet<int>(mask.RemovedFrom(layer)), new HashSet<int>(neurons));
        }
        Assert.Equal(5, first.RemovedFrom("fc1").Length);
        Assert.Equal(4, first.RemovedFrom("fc2").Length);
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
