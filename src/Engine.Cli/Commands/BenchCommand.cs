using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Data;
using Engine.Inference;
using Engine.IO;
using Engine.Layers;
using Engine.Tensors;
using Engine.Training;
using static Engine.Cli.CallTiming;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine bench</c>: the quick throughput and latency of a model file, without BenchmarkDotNet. Calls of
/// <c>--batch-size</c> test digits run back to back for <c>--seconds</c> after a warm-up that is not counted; each call's
/// time goes into an array allocated before the run, so the loop itself allocates nothing. With <c>--train</c> it also
/// times training steps on a copy of a float network. The contract is docs/command-line.md, "bench".
/// </summary>
internal static class BenchCommand
{
    /// <summary>The largest --batch-size: a float batch of 1,024 digits already needs about 400 MB of activations.</summary>
    public const int MaxBatchSize = 1024;

    /// <summary>The longest --seconds: an hour (a quick figure, not a soak test).</summary>
    public const double MaxSeconds = 3600;

    /// <summary>The longest --warmup: a minute.</summary>
    public const double MaxWarmupSeconds = 60;

    /// <summary>Training steps timed at least, however short --seconds is (the median of fewer says little).</summary>
    public const int MinTrainingSteps = 3;

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model file: float (also pruned) or int8 safetensors, or .onnx of the supported operators.", Required = true };
        var batchSize = CommonOptions.Between(new Option<int>("--batch-size") { Description = $"Samples per call (1 to {MaxBatchSize}).", DefaultValueFactory = _ => 64 }, 1, MaxBatchSize);
        var threads = CommonOptions.Threads();
        var seconds = new Option<double>("--seconds") { Description = $"Seconds of timed calls after the warm-up (more than 0, at most {MaxSeconds}).", DefaultValueFactory = _ => 2.0 };
        seconds.Validators.Add(result =>
        {
            if (CommonOptions.TryGetValue(result, out double v) && !(v > 0 && v <= MaxSeconds))
            {
                result.AddError($"--seconds must be greater than 0 and at most {MaxSeconds}, got {v.ToString(CultureInfo.InvariantCulture)}.");
            }
        });
        var warmup = new Option<double>("--warmup") { Description = $"Seconds of untimed calls first (at least {MinWarmupCalls} calls; 0 to {MaxWarmupSeconds}): the JIT's tiers, first-call scratch, worker threads.", DefaultValueFactory = _ => 0.5 };
        warmup.Validators.Add(result =>
        {
            if (CommonOptions.TryGetValue(result, out double v) && !(v >= 0 && v <= MaxWarmupSeconds))
            {
                result.AddError($"--warmup must be at least 0 and at most {MaxWarmupSeconds}, got {v.ToString(CultureInfo.InvariantCulture)}.");
            }
        });
        var train = new Option<bool>("--train") { Description = "Also time training steps (forward, cross-entropy, backward, SGD with the training defaults) on a copy of a float model." };
        var data = CommonOptions.Data();
        var json = new Option<string?>("--json")
        {
            Description = "Write the results as one JSON object: to FILE, or as the last line of standard output with '-' or no value.",
            Arity = ArgumentArity.ZeroOrOne,
            HelpName = "FILE|-",
        };
        var command = new Command("bench", "Quick throughput and latency of a model on the test digits (and with --train, of a training step).")
        {
            model, batchSize, threads, seconds, warmup, train, data, json,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            // --json alone or '--json -': standard output; '--json FILE': that file; absent: no JSON.
            string? jsonTarget = parse.GetResult(json) is null ? null : parse.GetValue(json) ?? "-";
            return Run(parse.GetValue(model)!, parse.GetValue(batchSize), parse.GetValue(threads), new Durations(parse.GetValue(seconds), parse.GetValue(warmup)),
                parse.GetValue(train), parse.GetValue(data)!, jsonTarget);
        }));
        return command;
    }

    private static int Run(string modelPath, int batch, int threads, Durations durations, bool train, string dataDirectory, string? jsonTarget)
    {
        if (jsonTarget is not null and not "-")
        {
            CommonOptions.RequireWritableTarget(jsonTarget, "--json");
        }
        (Predictor model, string format) = ModelLoader.Load(modelPath, threads);
        if (train && model.FloatNetwork is null)
        {
            throw new InvalidDataException($"--train needs a float model: {Path.GetFileName(modelPath)} is {format}, whose integer network has no backward pass.");
        }
        CommonOptions.RequireDataDirectory(dataDirectory);
        MnistDataset testSet = MnistDataset.Load(dataDirectory, MnistSplit.Test);
        float[] inputs = TestInputs(model, modelPath, testSet, batch, dataDirectory);
        float[] outputs = new float[batch * model.OutputLength];
        MnistDataset? trainSet = null;
        if (train)
        {
            trainSet = MnistDataset.Load(dataDirectory, MnistSplit.Train);
            if (batch > trainSet.Count)
            {
                throw new UsageException($"--batch-size {batch} is more than the {trainSet.Count} training samples in {dataDirectory} (--train steps on full batches).");
            }
        }

        ConsoleReport.Line($"Timing {Path.GetFileName(modelPath)} ({format}, {ModelLoader.ParameterCount(model)} parameters): calls of {batch} test digit(s) " +
                           $"on {threads} thread(s) for {durations.Seconds.ToString(CultureInfo.InvariantCulture)} s after {durations.Warmup.ToString(CultureInfo.InvariantCulture)} s of warm-up.");
        Timing inference = Measure(() => model.Predict(inputs, batch, outputs), durations, minimumCalls: 1);
        Timing? training = trainSet is null ? null : MeasureTraining(model, trainSet, batch, threads, durations);

        Machine machine = Machine.Current();
        var rows = new List<IReadOnlyList<string>> { Row("inference", inference, batch) };
        if (training is { } t)
        {
            rows.Add(Row("training step", t, batch));
        }
        ConsoleReport.Table($"engine bench: {Path.GetFileName(modelPath)}, batch {batch}, {threads} thread(s)",
            ["", "calls", "median", "p90", "mean", "samples/s", "warm-up calls"], rows);
        ConsoleReport.Line(machine.Describe());

        if (jsonTarget is null)
        {
            return ExitCodes.Success;
        }
        var result = new JsonObject
        {
            ["model"] = modelPath,
            ["format"] = format,
            ["parameters"] = ModelLoader.ParameterCount(model),
            ["batch_size"] = batch,
            ["threads"] = threads,
            ["seconds"] = Math.Round(inference.Seconds, 4),
            ["warmup_seconds"] = durations.Warmup,
            ["calls"] = inference.Calls,
            ["warmup_calls"] = inference.WarmupCalls,
            ["samples_per_second"] = Math.Round(inference.SamplesPerSecond(batch), 2),
            ["latency_ms"] = Ms(inference.MedianMs),
            ["p90_ms"] = Ms(inference.P90Ms),
            ["mean_ms"] = Ms(inference.MeanMs),
            ["allocated_bytes"] = inference.AllocatedBytes,
            ["train_step_ms"] = training is { } step ? Ms(step.MedianMs) : null,
            ["train_p90_ms"] = training is { } step90 ? Ms(step90.P90Ms) : null,
            ["train_steps"] = training?.Calls,
            ["train_allocated_bytes"] = training?.AllocatedBytes,
            ["machine"] = machine.ToJson(),
        };
        if (jsonTarget == "-")
        {
            ConsoleReport.Json(result);
        }
        else
        {
            AtomicFile.Write(jsonTarget, Encoding.UTF8.GetBytes(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n"));
            ConsoleReport.Line($"Wrote {jsonTarget}.");
        }
        return ExitCodes.Success;
    }

    /// <summary>
    /// Training steps as <c>engine train</c> takes them (<see cref="Trainer"/>: zero the gradients, forward, cross-entropy
    /// with the default label smoothing, backward, SGD with the default learning rate, Nesterov momentum and weight
    /// decay) on full batches of the training split in file order, on a copy of the model's network so the predictor is
    /// untouched. Filling a batch is not timed; the step is.
    /// </summary>
    private static Timing MeasureTraining(Predictor model, MnistDataset trainSet, int batch, int threads, Durations durations)
    {
        InferenceNetwork source = model.FloatNetwork!;
        int[] inputShape = source.InputShape.ToArray();
        // The model file is the one faithful copy of a network (as Predictor.FromNetwork does it).
        Sequential network = ModelFile.LoadFloat(ModelFile.ToBytes(source.Network, source.InputMean, source.InputStd, inputShape), "copy").Network;
        network.Threads = threads;
        var options = new TrainingOptions();
        var loss = new CrossEntropyLoss(options.LabelSmoothing);
        var sgd = new Sgd(network.NamedParameters().Select(p => p.Parameter), options.LearningRate, options.Momentum, options.WeightDecay,
            nesterov: options.Nesterov && options.Momentum > 0f);
        IBatchSource batches = BatchIterator.Sequential(trainSet, batch, source.InputMean, source.InputStd);
        int fullBatches = trainSet.Count / batch;
        var inputs = new FloatTensor([batch, .. inputShape]);
        int[] labels = new int[batch];
        int next = 0;
        return Measure(() =>
        {
            network.ZeroGradients();
            loss.Forward(network.Forward(inputs), labels);
            network.Backward(loss.Backward());
            sgd.Step();
        }, durations, MinTrainingSteps, before: () =>
        {
            batches.FillBatch(0, next, batch, inputs.Data, labels);
            next = (next + 1) % fullBatches;
        });
    }

    private static double Ms(double ms) => Math.Round(ms, 4);

    private static string[] Row(string what, Timing t, int batch) =>
    [
        what, t.Calls.ToString(CultureInfo.InvariantCulture), Milliseconds(t.MedianMs), Milliseconds(t.P90Ms), Milliseconds(t.MeanMs),
        t.SamplesPerSecond(batch).ToString("F0", CultureInfo.InvariantCulture), t.WarmupCalls.ToString(CultureInfo.InvariantCulture),
    ];

    private static string Milliseconds(double ms) => ms.ToString(ms < 10 ? "F3" : "F1", CultureInfo.InvariantCulture) + " ms";
}

