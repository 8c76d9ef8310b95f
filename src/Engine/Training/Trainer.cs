using System.Diagnostics;
using Engine.Data;
using Engine.Layers;

namespace Engine.Training;

/// <summary>What a training run reports as it goes; every member has an empty default.</summary>
public interface ITrainingObserver
{
    /// <summary>After every optimiser step.</summary>
    void OnBatch(in BatchReport report) { }

    /// <summary>After the backward pass and before the optimiser step: gradients are complete (the hook for gradient statistics).</summary>
    void OnGradients(Sequential network) { }

    /// <summary>After every optimiser step (the hook pruning masks use to keep weights at zero).</summary>
    void OnStep(Sequential network) { }

    /// <summary>After every epoch.</summary>
    void OnEpoch(in EpochReport report) { }
}

/// <summary>One optimiser step: where it is, the batch's loss and accuracy, the running throughput.</summary>
public readonly record struct BatchReport(int Epoch, int Epochs, int Batch, int Batches, float Loss, float Accuracy, float LearningRate, double SamplesPerSecond);

/// <summary>One epoch: mean training loss and accuracy, test accuracy (NaN without test data), wall time.</summary>
public readonly record struct EpochReport(int Epoch, int Epochs, float TrainLoss, float TrainAccuracy, float TestAccuracy, double Seconds, double SamplesPerSecond);

/// <summary>
/// The training loop: for each mini-batch, forward, cross-entropy, backward, observers, SGD step, with the learning
/// rate schedule of <see cref="TrainingOptions"/>. The buffers are allocated once; the steps themselves allocate nothing.
/// </summary>
public sealed class Trainer
{
    private readonly Sequential _network;
    private readonly TrainingOptions _options;

    /// <summary>A trainer for <paramref name="network"/> with the given options (validated here).</summary>
    public Trainer(Sequential network, TrainingOptions options)
    {
        options.Validate();
        _network = network;
        _options = options;
    }

    /// <summary>Trains for <see cref="TrainingOptions.Epochs"/> epochs, evaluating on <paramref name="test"/> after each when given.</summary>
    public IReadOnlyList<EpochReport> Run(IBatchSource train, IBatchSource? test = null, ITrainingObserver? observer = null, CancellationToken cancel = default)
    {
        int batchSize = _options.BatchSize;
        int batches = (train.Count + batchSize - 1) / batchSize;
        int totalSteps = batches * _options.Epochs;
        var inputs = new FloatTensor([batchSize, .. train.SampleShape]);
        var labels = new int[batchSize];
        var loss = new CrossEntropyLoss(_options.LabelSmoothing);
        var sgd = new Sgd(_network.NamedParameters().Select(p => p.Parameter), _options.LearningRate, _options.Momentum,
            _options.WeightDecay, nesterov: _options.Nesterov && _options.Momentum > 0f);
        var reports = new List<EpochReport>();
        int step = 0;
        for (int epoch = 0; epoch < _options.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            double lossSum = 0;
            long correct = 0, seen = 0;
            for (int b = 0; b < batches; b++)
            {
                cancel.ThrowIfCancellationRequested();
                int count = train.FillBatch(epoch, b, batchSize, inputs.Data, labels);
                if (count != inputs.Dim(0))
                {
                    inputs.Resize([count, .. train.SampleShape]);
                }
                sgd.LearningRate = _options.LearningRateAt(step, totalSteps, batches);
                _network.ZeroGradients();
                FloatTensor logits = _network.Forward(inputs);
                float batchLoss = loss.Forward(logits, labels.AsSpan(0, count));
                int batchCorrect = Evaluation.CountCorrect(logits, labels.AsSpan(0, count));
                _network.Backward(loss.Backward());
                observer?.OnGradients(_network);
                sgd.Step();
                observer?.OnStep(_network);
                step++;
                lossSum += (double)batchLoss * count;
                correct += batchCorrect;
                seen += count;
                observer?.OnBatch(new BatchReport(epoch + 1, _options.Epochs, b + 1, batches, batchLoss, (float)batchCorrect / count,
                    sgd.LearningRate, seen / clock.Elapsed.TotalSeconds));
                if (count != batchSize)
                {
                    inputs.Resize([batchSize, .. train.SampleShape]);
                }
            }
            double seconds = clock.Elapsed.TotalSeconds;
            float testAccuracy = test is null ? float.NaN : Evaluation.Accuracy(_network, test);
            var report = new EpochReport(epoch + 1, _options.Epochs, (float)(lossSum / seen), (float)correct / seen, testAccuracy, seconds, seen / seconds);
            reports.Add(report);
            observer?.OnEpoch(report);
        }
        return reports;
    }
}
