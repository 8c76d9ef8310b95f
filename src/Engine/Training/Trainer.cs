using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
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
/// Thrown when training meets a NaN or an infinity: in the loss, in a gradient, or in a parameter after the optimiser
/// step. The network keeps the parameters it had after the last good step (<see cref="LastGoodStep"/>).
/// </summary>
public sealed class TrainingDivergedException : InvalidOperationException
{
    /// <summary>An exception for optimiser step <paramref name="step"/> (1-based) with a message saying where the fault is.</summary>
    public TrainingDivergedException(string message, int step, int epoch, int batch, string location)
        : base(message)
    {
        Step = step;
        Epoch = epoch;
        Batch = batch;
        Location = location;
    }

    /// <summary>The optimiser step that failed, counted from 1 over the whole run; its update was not kept.</summary>
    public int Step { get; }

    /// <summary>The last step whose parameters the network holds (0: the parameters it started with).</summary>
    public int LastGoodStep => Step - 1;

    /// <summary>The epoch of the failed step, from 1.</summary>
    public int Epoch { get; }

    /// <summary>The batch of the failed step within its epoch, from 1.</summary>
    public int Batch { get; }

    /// <summary>Where the first non-finite value was found: a layer (for the loss) or a parameter such as "fc1.weight".</summary>
    public string Location { get; }
}

/// <summary>
/// The training loop: for each mini-batch, forward, cross-entropy, backward, observers, SGD step, with the learning
/// rate schedule of <see cref="TrainingOptions"/>. The buffers are allocated once; the steps themselves allocate nothing.
/// <para>
/// Every step is checked for NaN and infinity (vectorised passes over the loss, the gradients and the updated
/// parameters, small beside the step): a non-finite loss or gradient stops training before the update, and an update
/// that leaves a parameter non-finite is undone. Either way <see cref="Run"/> throws a
/// <see cref="TrainingDivergedException"/> naming the step and the layer or parameter, and the network keeps the
/// parameters of the last good step.
/// </para>
/// </summary>
public sealed class Trainer
{
    private readonly Sequential _network;
    private readonly TrainingOptions _options;

    /// <summary>A trainer for <paramref name="network"/> with the given options (validated here).</summary>
    public Trainer(Sequential network, TrainingOptions options)
    {
        options.Validate();
        if (ReferenceEquals(options.Teacher, network))
        {
            throw new ArgumentException("a network cannot be its own distillation teacher (give a copy of it).", nameof(options));
        }
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
        Sequential? teacher = _options.Teacher;
        DistillationLoss? distillation = teacher is null ? null
            : new DistillationLoss(_options.DistillationTemperature, _options.DistillationWeight, _options.LabelSmoothing);
        (string Name, Parameter Parameter)[] parameters = [.. _network.NamedParameters()];
        var sgd = new Sgd(parameters.Select(p => p.Parameter), _options.LearningRate, _options.Momentum,
            _options.WeightDecay, nesterov: _options.Nesterov && _options.Momentum > 0f);
        // The parameters before the current step, to undo an update that is not finite.
        float[][] lastGood = parameters.Select(p => new float[p.Parameter.Value.Length]).ToArray();
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
                float batchLoss = distillation is null
                    ? loss.Forward(logits, labels.AsSpan(0, count))
                    : distillation.Forward(logits, teacher!.Forward(inputs), labels.AsSpan(0, count));
                if (!float.IsFinite(batchLoss))
                {
                    throw LossFault(inputs, batchLoss, step + 1, epoch + 1, b + 1);
                }
                int batchCorrect = Evaluation.CountCorrect(logits, labels.AsSpan(0, count));
                _network.Backward(distillation is null ? loss.Backward() : distillation.Backward());
                foreach ((string name, Parameter p) in parameters)
                {
                    if (!TensorPrimitives.IsFiniteAll<float>(p.Gradient.Data))
                    {
                        throw Fault($"the gradient of {name} holds {FirstNonFinite(p.Gradient.Data)}", name, step + 1, epoch + 1, b + 1);
                    }
                }
                observer?.OnGradients(_network);
                // The update copies each parameter into lastGood and checks its result for NaN and infinity in the same
                // pass over the parameters, instead of a copy pass before it and a check pass after it.
                bool finite = sgd.Step(lastGood);
                for (int i = 0; i < parameters.Length && !finite; i++)
                {
                    Span<float> value = parameters[i].Parameter.Value.Data;
                    if (!TensorPrimitives.IsFiniteAll<float>(value))
                    {
                        string found = FirstNonFinite(value);
                        for (int j = 0; j < parameters.Length; j++)
                        {
                            lastGood[j].CopyTo(parameters[j].Parameter.Value.Data);
                        }
                        throw Fault($"the update (learning rate {sgd.LearningRate.ToString(CultureInfo.InvariantCulture)}) made {parameters[i].Name} {found}; it was undone",
                            parameters[i].Name, step + 1, epoch + 1, b + 1);
                    }
                }
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

    // The loss is not finite: find the first layer whose output is not, running the batch forward again (error path only).
    private TrainingDivergedException LossFault(FloatTensor inputs, float batchLoss, int step, int epoch, int batch)
    {
        string loss = batchLoss.ToString(CultureInfo.InvariantCulture);
        if (!TensorPrimitives.IsFiniteAll<float>(inputs.Data))
        {
            return Fault($"the loss is {loss}: the batch's input holds {FirstNonFinite(inputs.Data)}", "input", step, epoch, batch);
        }
        FloatTensor x = inputs;
        foreach ((string name, Layer layer) in _network.Layers)
        {
            x = layer.Forward(x);
            if (!TensorPrimitives.IsFiniteAll<float>(x.Data))
            {
                return Fault($"the loss is {loss}: the output of layer '{name}' is the first to hold {FirstNonFinite(x.Data)}", name, step, epoch, batch);
            }
        }
        return Fault($"the loss is {loss} although the logits are finite", "loss", step, epoch, batch);
    }

    private static TrainingDivergedException Fault(string what, string location, int step, int epoch, int batch) =>
        new($"training stopped at step {step} (epoch {epoch}, batch {batch}): {what}. The network keeps the parameters of " +
            (step == 1 ? "its start (no step succeeded)." : $"step {step - 1}, the last good one."), step, epoch, batch, location);

    private static string FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                return $"{values[i].ToString(CultureInfo.InvariantCulture)} at element {i}";
            }
        }
        return "no non-finite value";
    }
}
