using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Quantization;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine quantize</c>: float model to int8 by post-training calibration; prints per layer the scales, zero points,
/// weight range and quantization errors, compares int8 with float on the test digits, and optionally writes the int8
/// file and explains one layer value by value.
/// </summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Float model file to quantize.", Required = true };
        var perChannel = new Option<bool>("--per-channel") { Description = "Symmetric int8 weights with one scale per output channel (the default)." };
        var perTensor = new Option<bool>("--per-tensor") { Description = "Asymmetric int8 weights with one scale and zero point per tensor." };
        var samples = CommonOptions.Positive(new Option<int>("--calibration-samples")
        {
            Description = "Training images the activation ranges are observed on.",
            DefaultValueFactory = _ => 1000,
        });
        var observer = new Option<string?>("--observer")
        {
            Description = "How activation ranges are chosen: minmax, moving-average or percentile (default: minmax after training, moving-average during --qat-epochs).",
        };
        observer.AcceptOnlyFromAmong([.. ActivationObserver.Names]);
        var logits = new Option<string>("--logits")
        {
            Description = "int32-accumulator (the last layer's accumulators, rescaled) or dequantized-output (the last layer requantized too).",
            DefaultValueFactory = _ => "int32-accumulator",
        };
        logits.AcceptOnlyFromAmong("int32-accumulator", "dequantized-output");
        var weightBits = CommonOptions.Between(new Option<int>("--weight-bits")
        {
            Description = $"Bits of every weight code, {QuantizationOptions.MinWeightBits} to {QuantizationOptions.MaxWeightBits} (stored one per byte).",
            DefaultValueFactory = _ => QuantizationOptions.MaxWeightBits,
        }, QuantizationOptions.MinWeightBits, QuantizationOptions.MaxWeightBits);
        var qatEpochs = CommonOptions.Between(new Option<int>("--qat-epochs")
        {
            Description = "Epochs of quantization-aware training on the training images before quantizing (0: post-training quantization).",
            DefaultValueFactory = _ => 0,
        }, 0, 100);
        var qatFreezeSteps = CommonOptions.Positive(new Option<int>("--qat-freeze-steps")
        {
            Description = "Optimiser steps of quantization-aware training after which the activation observers freeze.",
            DefaultValueFactory = _ => QuantizationAwareTraining.DefaultFreezeSteps,
        });
        var qatLr = CommonOptions.InRange(new Option<float>("--qat-lr")
        {
            Description = "Peak learning rate of quantization-aware training (cosine to zero, no warm-up).",
            DefaultValueFactory = _ => DefaultQatLearningRate,
        }, 0f, 10f, minExclusive: true);
        var explain = new Option<string?>("--explain") { Description = "Show one layer's float weights, int8 codes and dequantized values side by side." };
        var output = new Option<string?>("--out") { Description = "Write the int8 model here." };
        var data = CommonOptions.Data();
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var command = new Command("quantize", "Quantize a float model to int8 (calibrated post-training quantization, or quantization-aware training).")
        {
            model, perChannel, perTensor, weightBits, samples, observer, logits, qatEpochs, qatFreezeSteps, qatLr, explain, output, data, threads, json,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(perChannel) && parse.GetValue(perTensor))
            {
                throw new UsageException("--per-channel and --per-tensor exclude each other.");
            }
            var qat = new QatSettings(parse.GetValue(qatEpochs), parse.GetValue(qatFreezeSteps), parse.GetValue(qatLr));
            var options = new QuantizationOptions
            {
                PerChannel = !parse.GetValue(perTensor),
                Observer = ActivationObserver.ParseKind(parse.GetValue(observer) ?? (qat.Epochs > 0 ? "moving-average" : "minmax")),
                Logits = parse.GetValue(logits) == "dequantized-output" ? LogitsMode.DequantizedOutput : LogitsMode.Int32Accumulator,
                WeightBits = parse.GetValue(weightBits),
            };
            return Run(parse.GetValue(model)!, options, qat, parse.GetValue(samples), parse.GetValue(explain), parse.GetValue(output),
                parse.GetValue(data)!, parse.GetValue(threads), parse.GetValue(json));
        }));
        return command;
    }

    /// <summary>The peak learning rate of quantization-aware training: a fifth of training's, as fine-tuning from a trained model.</summary>
    public const float DefaultQatLearningRate = 0.01f;

    // Quantization-aware training requested on the command line (Epochs 0: none).
    private readonly record struct QatSettings(int Epochs, int FreezeSteps, float LearningRate);

    private static int Run(string modelPath, QuantizationOptions options, QatSettings qatSettings, int calibrationSamples, string? explain, string? outPath,
        string dataDirectory, int threads, bool json)
    {
        if (outPath is not null)
        {
            CommonOptions.RequireWritableTarget(outPath, "--out");
        }
        CommonOptions.RequireModelFile(modelPath, "--model");
        CommonOptions.RequireDataDirectory(dataDirectory);
        FloatModel loaded = ModelFile.LoadFloat(modelPath);
        loaded.Network.Threads = threads;
        if (explain is not null && !loaded.Network.Layers.Any(l => l.Name == explain && l.Layer.Parameters.Count > 0))
        {
            string weighted = string.Join(", ", loaded.Network.Layers.Where(l => l.Layer.Parameters.Count > 0).Select(l => l.Name));
            throw new UsageException($"--explain: '{explain}' is not a weighted layer of {Path.GetFileName(modelPath)} ({weighted}).");
        }
        MnistDataset trainSet = MnistDataset.Load(dataDirectory, MnistSplit.Train);
        MnistDataset testSet = MnistDataset.Load(dataDirectory, MnistSplit.Test);
        if (calibrationSamples > trainSet.Count)
        {
            throw new UsageException($"--calibration-samples {calibrationSamples} is more than the {trainSet.Count} training images in {dataDirectory}.");
        }
        var calibration = BatchIterator.Sequential(trainSet, 100, loaded.InputMean, loaded.InputStd);
        var test = BatchIterator.Sequential(testSet, 250, loaded.InputMean, loaded.InputStd);

        // Not timed: one cold pass over the test digits is no benchmark (bench/README.md has the measured timings).
        // The float model's predictions come first: quantization-aware training changes its weights.
        int[] floatPredictions = Evaluation.Predictions(loaded.Network, test);
        float floatAccuracy = testSet.Count == 0 ? float.NaN : (float)floatPredictions.Where((p, i) => p == testSet.Labels[i]).Count() / testSet.Count;

        var clock = Stopwatch.StartNew();
        QuantizedNetwork quantized;
        float qatAccuracy = float.NaN;
        int[]? qatPredictions = null;
        string weights = $"{(options.PerChannel ? "per-channel symmetric" : "per-tensor asymmetric")} {options.WeightBits}-bit weights";
        if (qatSettings.Epochs > 0)
        {
            var trainingOptions = new TrainingOptions { Epochs = qatSettings.Epochs, LearningRate = qatSettings.LearningRate, WarmupEpochs = 0f };
            var qat = new QuantizationAwareTraining(loaded.Network, options, options.Observer, qatSettings.FreezeSteps);
            var train = BatchIterator.Shuffled(trainSet, trainingOptions.BatchSize, trainingOptions.Seed, epoch: 0, loaded.InputMean, loaded.InputStd,
                BatchIterator.DefaultMaxShift);
            ConsoleReport.Line($"Quantization-aware training for {qatSettings.Epochs} epoch(s) on {trainSet.Count} training images, {weights}.");
            using (Interruption.Cooperate())
            {
                qat.Train(train, trainingOptions, observer: new QatProgress(qatSettings.Epochs), cancel: Interruption.Token);
            }
            qatPredictions = Evaluation.Predictions(qat.Network, test);
            qatAccuracy = testSet.Count == 0 ? float.NaN : (float)qatPredictions.Where((p, i) => p == testSet.Labels[i]).Count() / testSet.Count;
            quantized = qat.ToQuantizedNetwork(((IBatchSource)calibration).SampleShape, loaded.InputMean, loaded.InputStd);
            // The per-layer report compares the integer network with the float weights training ended with.
            qat.RestoreFloatWeights();
            ConsoleReport.Line($"Quantization-aware training done: " +
                               $"{ActivationObserver.NameOf(options.Observer)} observers frozen after {Math.Min(qat.Steps, qatSettings.FreezeSteps)} of {qat.Steps} steps, " +
                               $"in {clock.Elapsed.TotalSeconds:F1} s; fake-quantized accuracy {ConsoleReport.Percent(qatAccuracy)}.");
        }
        else
        {
            quantized = Quantizer.Quantize(loaded.Network, calibration, calibrationSamples, loaded.InputMean, loaded.InputStd, options);
            ConsoleReport.Line($"Calibrated on {calibrationSamples} training images ({ActivationObserver.NameOf(options.Observer)} observer, " +
                               $"{weights}) in {clock.Elapsed.TotalSeconds:F2} s.");
        }
        double quantizeSeconds = clock.Elapsed.TotalSeconds;

        // Per-layer report on (at most) the first 200 calibration images.
        int reportSamples = Math.Min(200, calibrationSamples);
        var reportInputs = new FloatTensor([reportSamples, .. ((IBatchSource)calibration).SampleShape]);
        ((IBatchSource)calibration).FillBatch(0, 0, reportSamples, reportInputs.Data, new int[reportSamples]);
        IReadOnlyList<LayerQuantizationReport> layers = QuantizationReport.Build(loaded.Network, quantized, reportInputs);
        ConsoleReport.Table("Per layer (errors: dequantized minus float; outputs on calibration images)",
            ["layer", "weights", "weight scale", "weight zp", "weight range", "weight err max", "weight err rms", "in scale / zp", "out scale / zp", "out err max", "out err rms", "out rms"],
            layers.Select(r => (IReadOnlyList<string>)
            [
                r.Name,
                r.PerChannel ? "per-channel" : "per-tensor",
                r.MinWeightScale == r.MaxWeightScale ? G(r.MinWeightScale) : $"{G(r.MinWeightScale)} .. {G(r.MaxWeightScale)}",
                r.MinWeightZeroPoint == r.MaxWeightZeroPoint ? $"{r.MinWeightZeroPoint}" : $"{r.MinWeightZeroPoint} .. {r.MaxWeightZeroPoint}",
                $"{G(r.WeightMin)} .. {G(r.WeightMax)}",
                G(r.WeightError.Max), G(r.WeightError.Rms),
                $"{G(r.Input.Scale)} / {r.Input.ZeroPoint}", $"{G(r.Output.Scale)} / {r.Output.ZeroPoint}",
                G(r.OutputError.Max), G(r.OutputError.Rms), G(r.OutputRms),
            ]));

        if (explain is not null)
        {
            Explain(loaded, quantized, explain);
        }

        (float int8Accuracy, int[] int8Predictions) = quantized.Evaluate(test, 250, threads);
        float agreement = testSet.Count == 0 ? float.NaN : (float)floatPredictions.Zip(int8Predictions).Count(p => p.First == p.Second) / testSet.Count;

        long floatBytes = new FileInfo(modelPath).Length;
        long int8Bytes;
        if (outPath is not null)
        {
            QuantizedModelFile.Save(quantized, outPath);
            int8Bytes = new FileInfo(outPath).Length;
        }
        else
        {
            int8Bytes = QuantizedModelFile.ToBytes(quantized).Length;
        }
        ConsoleReport.Table("Float against int8 on the test digits",
            ["model", "accuracy", "file bytes"],
            [
                ["float", ConsoleReport.Percent(floatAccuracy), $"{floatBytes:N0}"],
                ["int8", ConsoleReport.Percent(int8Accuracy), $"{int8Bytes:N0} ({(double)int8Bytes / floatBytes:F3}x)"],
            ]);
        ConsoleReport.Line($"Top-1 agreement int8 vs float: {ConsoleReport.Percent(agreement)} of {testSet.Count} test digits." +
                           (outPath is null ? "" : $" Wrote {outPath}."));
        if (json)
        {
            ConsoleReport.Json(new JsonObject
            {
                ["float_accuracy"] = floatAccuracy,
                ["int8_accuracy"] = int8Accuracy,
                ["agreement"] = agreement,
                ["float_bytes"] = floatBytes,
                ["int8_bytes"] = int8Bytes,
                ["per_channel"] = options.PerChannel,
                ["weight_bits"] = options.WeightBits,
                ["qat_epochs"] = qatSettings.Epochs,
                ["qat_freeze_steps"] = qatSettings.Epochs > 0 ? qatSettings.FreezeSteps : null,
                ["qat_lr"] = qatSettings.Epochs > 0 ? qatSettings.LearningRate : null,
                ["qat_accuracy"] = qatPredictions is null ? null : qatAccuracy,
                ["qat_int8_agreement"] = qatPredictions is null || testSet.Count == 0 ? null
                    : (float)qatPredictions.Zip(int8Predictions).Count(p => p.First == p.Second) / testSet.Count,
                ["observer"] = ActivationObserver.NameOf(options.Observer),
                ["calibration_samples"] = calibrationSamples,
                ["logits"] = options.Logits == LogitsMode.Int32Accumulator ? "int32_accumulator" : "dequantized_output",
                ["samples"] = testSet.Count,
                ["seconds"] = Math.Round(quantizeSeconds, 3),
                ["out"] = outPath,
                ["layers"] = new JsonArray(layers.Select(r => (JsonNode)new JsonObject
                {
                    ["name"] = r.Name,
                    ["weight_scale_min"] = r.MinWeightScale,
                    ["weight_scale_max"] = r.MaxWeightScale,
                    ["weight_zero_point_min"] = r.MinWeightZeroPoint,
                    ["weight_zero_point_max"] = r.MaxWeightZeroPoint,
                    ["weight_min"] = r.WeightMin,
                    ["weight_max"] = r.WeightMax,
                    ["weight_error_max"] = r.WeightError.Max,
                    ["weight_error_rms"] = r.WeightError.Rms,
                    ["input_scale"] = r.Input.Scale,
                    ["input_zero_point"] = r.Input.ZeroPoint,
                    ["output_scale"] = r.Output.Scale,
                    ["output_zero_point"] = r.Output.ZeroPoint,
                    ["output_error_max"] = r.OutputError.Max,
                    ["output_error_rms"] = r.OutputError.Rms,
                }).ToArray()),
            });
        }
        return ExitCodes.Success;
    }

    // The learner's view of one layer: the arithmetic of the first output channels, value by value.
    private static void Explain(FloatModel model, QuantizedNetwork quantized, string layerName)
    {
        var layer = quantized.Layers.OfType<QuantizedWeightedLayer>().First(l => l.Name == layerName);
        var parameters = model.Network[layerName].Parameters;
        ReadOnlySpan<float> weights = parameters[0].Value.Data, bias = parameters[1].Value.Data;
        int channels = Math.Min(3, layer.OutFeatures), shown = Math.Min(8, layer.Depth);
        ConsoleReport.Line($"{layerName}: real = scale x (code - zero point). Input activation: scale {G(layer.Input.Scale)}, zero point {layer.Input.ZeroPoint}; " +
                           $"output: scale {G(layer.Output.Scale)}, zero point {layer.Output.ZeroPoint}{(layer.FusedRelu ? " (ReLU fused: codes below the zero point are clamped)" : "")}.");
        var rows = new List<IReadOnlyList<string>>();
        for (int c = 0; c < channels; c++)
        {
            float scale = layer.WeightScale(c);
            int zeroPoint = layer.WeightZeroPoint(c);
            for (int p = 0; p < shown; p++)
            {
                float real = weights[c * layer.Depth + p];
                sbyte code = layer.Weights[c * layer.Depth + p];
                float dequantized = scale * (code - zeroPoint);
                rows.Add([$"{c}", $"{p}", G(real), $"{code}", G(dequantized), G(dequantized - real), p == 0 ? $"{G(scale)} / {zeroPoint}" : ""]);
            }
        }
        ConsoleReport.Table($"{layerName}: the first {shown} weights of output channels 0..{channels - 1}",
            ["channel", "index", "float weight", "int8 code", "dequantized", "error", "scale / zp"], rows);
        var stage = new List<IReadOnlyList<string>>();
        for (int c = 0; c < channels; c++)
        {
            double multiplier = (double)layer.Input.Scale * layer.WeightScale(c) / layer.Output.Scale;
            (int mantissa, int shift) = layer.Multiplier(c);
            stage.Add([$"{c}", G(bias[c]), $"{layer.Bias[c]}", G(layer.Bias[c] * (double)layer.Input.Scale * layer.WeightScale(c)), $"{layer.Addend(c)}",
                G(multiplier), $"{mantissa} x 2^{shift - 31}"]);
        }
        ConsoleReport.Table($"{layerName}: bias and output stage (bias scale = input scale x weight scale; addend = bias - input zp x sum of codes)",
            ["channel", "float bias", "int32 bias", "dequantized bias", "addend", "multiplier", "fixed point"], stage);
    }

    // One line per QAT epoch: training progress of a run that can take minutes.
    private sealed class QatProgress(int epochs) : ITrainingObserver
    {
        public void OnEpoch(in EpochReport report) =>
            ConsoleReport.Line($"QAT epoch {report.Epoch}/{epochs}: loss {report.TrainLoss:F4}, fake-quantized training accuracy {ConsoleReport.Percent(report.TrainAccuracy)}, {report.Seconds:F1} s.");
    }

    private static string G(double value) => value.ToString("G4", CultureInfo.InvariantCulture);
}
