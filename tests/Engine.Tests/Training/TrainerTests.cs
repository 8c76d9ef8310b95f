using Engine.Data;
using Engine.Layers;
using Engine.Training;

namespace Engine.Tests.Training;

public class TrainerTests
{
    private static string DataDirectory => Path.Combine(AppContext.BaseDirectory, "data", "mnist");

    [Fact]
    public void The_seed_network_learns_real_digits_from_a_small_subset()
    {
        MnistDataset trainSet = MnistDataset.Load(DataDirectory, MnistSplit.Train).Take(1200);
        MnistDataset testSet = MnistDataset.Load(DataDirectory, MnistSplit.Test).Take(400);
        float mean = MnistPreprocessing.DefaultMean, std = MnistPreprocessing.DefaultStd;
        var train = BatchIterator.Shuffled(trainSet, 32, seed: 5, epoch: 0, mean, std, maxShift: 1);
        var test = BatchIterator.Sequential(testSet, 200, mean, std);
        Sequential network = SeedNetwork.Create(seed: 5);
        float before = Evaluation.Accuracy(network, test);

        var losses = new List<float>();
        var options = new TrainingOptions { Epochs = 2, BatchSize = 32, LearningRate = 0.05f, Seed = 5, WarmupEpochs = 0.25f, LabelSmoothing = 0f };
        IReadOnlyList<EpochReport> reports = new Trainer(network, options).Run(train, test, new LossRecorder(losses), TestContext.Current.CancellationToken);

        Assert.Equal(2, reports.Count);
        float firstLoss = losses.Take(5).Average(), lastLoss = losses.TakeLast(5).Average();
        Assert.True(lastLoss < firstLoss / 3, $"loss fell only from {firstLoss} to {lastLoss}");
        Assert.True(reports[^1].TestAccuracy > 0.85f, $"test accuracy {reports[^1].TestAccuracy} (before training {before})");
        Assert.True(before < 0.3f, $"an untrained network already scores {before}: the test would prove nothing");
    }

    private static Sequential Tiny()
    {
        var network = new Sequential(("fc1", new Linear(4, 6)), ("relu", new ReLU()), ("fc2", new Linear(6, 3)));
        network.Initialize(new SeededRandom(3));
        return network;
    }

    private static float[][] Parameters(Sequential network) =>
        network.NamedParameters().Select(p => p.Parameter.Value.Data.ToArray()).ToArray();

    // Keeps a copy of the parameters after every step.
    private sealed class StepRecorder : ITrainingObserver
    {
        public List<float[][]> AfterStep { get; } = [];

        public void OnStep(Sequential network) => AfterStep.Add(Parameters(network));
    }

    [Fact]
    public void A_non_finite_loss_stops_training_naming_the_step_and_keeps_the_last_good_weights()
    {
        float[] inputs = TestData.Uniform(64 * 4, 4);
        inputs[40 * 4 + 2] = float.NaN;                       // sample 40: batch 3 of 16 samples
        var data = new InMemoryBatches(inputs, [4], Enumerable.Range(0, 64).Select(i => i % 3).ToArray());
        Sequential network = Tiny();
        var recorder = new StepRecorder();
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, LearningRate = 0.1f, WarmupEpochs = 0 };

        var e = Assert.Throws<TrainingDivergedException>(() =>
            new Trainer(network, options).Run(data, observer: recorder, cancel: TestContext.Current.CancellationToken));
        Assert.Equal(3, e.Step);
        Assert.Equal(2, e.LastGoodStep);
        Assert.Equal((1, 3), (e.Epoch, e.Batch));
        Assert.Equal("input", e.Location);
        Assert.Contains("step 3", e.Message);
        Assert.Contains("NaN", e.Message);
        Assert.Equal(2, recorder.AfterStep.Count);
        Assert.Equal(recorder.AfterStep[^1], Parameters(network));
    }

    [Fact]
    public void An_update_that_overflows_is_undone_and_names_the_parameter()
    {
        // Inputs of 1e3 and a learning rate of 1e38: the first update sends weights past float's range.
        float[] inputs = TestData.Uniform(32 * 4, 5, 500f, 1000f);
        var data = new InMemoryBatches(inputs, [4], Enumerable.Range(0, 32).Select(i => i % 3).ToArray());
        Sequential network = Tiny();
        float[][] start = Parameters(network);
        var options = new TrainingOptions { Epochs = 2, BatchSize = 16, LearningRate = 1e38f, WarmupEpochs = 0, Momentum = 0f, Nesterov = false };

        var e = Assert.Throws<TrainingDivergedException>(() => new Trainer(network, options).Run(data, cancel: TestContext.Current.CancellationToken));
        Assert.Equal(1, e.Step);
        Assert.Matches(@"^fc\d\.(weight|bias)$", e.Location);
        Assert.Contains(e.Location, e.Message);
        Assert.Contains("undone", e.Message);
        Assert.Equal(start, Parameters(network));
    }

    [Fact]
    public void A_huge_learning_rate_stops_at_the_first_bad_step_with_the_previous_steps_weights()
    {
        float[] inputs = TestData.Uniform(64 * 4, 6);
        var data = new InMemoryBatches(inputs, [4], Enumerable.Range(0, 64).Select(i => i % 3).ToArray());
        Sequential network = Tiny();
        var recorder = new StepRecorder();
        var options = new TrainingOptions { Epochs = 20, BatchSize = 16, LearningRate = 1e37f, WarmupEpochs = 0, CosineSchedule = false };

        var e = Assert.Throws<TrainingDivergedException>(() =>
            new Trainer(network, options).Run(data, observer: recorder, cancel: TestContext.Current.CancellationToken));
        Assert.Equal(recorder.AfterStep.Count, e.LastGoodStep);
        Assert.Equal(recorder.AfterStep.Count == 0 ? Parameters(Tiny()) : recorder.AfterStep[^1], Parameters(network));
        Assert.Contains($"step {e.Step}", e.Message);
        Assert.All(Parameters(network), p => Assert.True(System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(p)));
    }

    [Fact]
    public void The_same_seed_gives_the_same_weights_run_after_run()
    {
        MnistDataset trainSet = MnistDataset.Load(DataDirectory, MnistSplit.Train).Take(96);
        float[] Train()
        {
            var train = BatchIterator.Shuffled(trainSet, 32, seed: 9, epoch: 0, 0.1f, 0.3f, maxShift: 2);
            Sequential network = SeedNetwork.Create(seed: 9, conv1Channels: 4, conv2Channels: 8, hidden: 16);
            new Trainer(network, new TrainingOptions { Epochs = 2, BatchSize = 32, Seed = 9 }).Run(train, cancel: TestContext.Current.CancellationToken);
            return network.NamedParameters().SelectMany(p => p.Parameter.Value.Data.ToArray()).ToArray();
        }
        Assert.Equal(Train(), Train());
    }

    [Fact]
    public void Learning_rate_schedule_warms_up_linearly_then_follows_a_cosine_to_zero()
    {
        var options = new TrainingOptions { LearningRate = 0.1f, WarmupEpochs = 1 };
        Assert.Equal(0.01f, options.LearningRateAt(0, 100, 10), 1e-7f);
        Assert.Equal(0.055f, options.LearningRateAt(5, 100, 10), 1e-7f);
        Assert.Equal(0.1f, options.LearningRateAt(10, 100, 10), 1e-7f);
        Assert.Equal(0.05f, options.LearningRateAt(55, 100, 10), 1e-6f);
        Assert.True(options.LearningRateAt(99, 100, 10) < 1e-3f);
        Assert.Equal(0.1f, (options with { CosineSchedule = false }).LearningRateAt(99, 100, 10));
    }

    [Fact]
    public void Invalid_options_name_the_option()
    {
        Sequential network = SeedNetwork.Create(seed: 1, conv1Channels: 2, conv2Channels: 2, hidden: 2);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Trainer(network, new TrainingOptions { Epochs = 0 }));
        Assert.Equal("Epochs", e.ParamName);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => new Trainer(network, new TrainingOptions { LearningRate = float.NaN }));
        Assert.Equal("LearningRate", e.ParamName);
    }

    private sealed class LossRecorder(List<float> losses) : ITrainingObserver
    {
        public void OnBatch(in BatchReport report) => losses.Add(report.Loss);
    }
}
