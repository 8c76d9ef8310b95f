using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Onnx;
using Engine.Quantization;
using Engine.Training;

namespace Engine.Cli.Commands;

/// <summary><c>engine eval</c>: accuracy of a model file on the t10k split of a data directory.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model file (safetensors, or .onnx of the supported operators).", Required = true };
        var data = CommonOptions.Data();
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var command = new Command("eval", "Accuracy of a model file on the test split (t10k-* files).") { model, data, threads, json };
        command.SetAction(parse => CliErrors.Run(() =>
            Run(parse.GetValue(model)!, parse.GetValue(data)!, parse.GetValue(threads), parse.GetValue(json))));
        return command;
    }

    private static int Run(string modelPath, string dataDirectory, int threads, bool json)
    {
        WorkPartition.Threads = threads;
        // An .onnx file goes to the ONNX reader; a float file and an int8 file are told apart by their format metadata,
        // and each loader refuses the other format.
        bool onnx = OnnxModel.IsOnnxFile(modelPath);
        string format = onnx ? "onnx" : QuantizedModelFile.ReadFormat(modelPath) ?? ModelFile.FloatFormat;
        bool int8 = format == QuantizedModelFile.Int8Format;
        MnistDataset testSet = MnistDataset.Load(dataDirectory, MnistSplit.Test);
        float accuracy;
        string description;
        long parameters;
        var clock = Stopwatch.StartNew();
        if (onnx)
        {
            OnnxImport imported = OnnxModel.Load(modelPath);
            clock.Restart();
            var test = BatchIterator.Sequential(testSet, 250, imported.InputMean, imported.InputStd);
            accuracy = imported.Int8?.Evaluate(test).Accuracy ?? Evaluation.Accuracy(imported.Float!, test);
            parameters = imported.ParameterCount;
            description = $"onnx, {(imported.Int8 is null ? "float" : "int8")}, {parameters} parameters";
        }
        else if (int8)
        {
            QuantizedNetwork network = QuantizedModelFile.Load(modelPath);
            clock.Restart();
            accuracy = network.Evaluate(BatchIterator.Sequential(testSet, 250, network.InputMean, network.InputStd)).Accuracy;
            parameters = network.Layers.OfType<QuantizedWeightedLayer>().Sum(l => (long)l.Weights.Length + l.Bias.Length);
            description = $"{format}, {parameters} parameters";
        }
        else
        {
            FloatModel loaded = ModelFile.LoadFloat(modelPath);
            clock.Restart();
            accuracy = Evaluation.Accuracy(loaded.Network, BatchIterator.Sequential(testSet, 250, loaded.InputMean, loaded.InputStd));
            parameters = loaded.Network.ParameterCount;
            description = $"{ModelFile.FloatFormat}, {parameters} parameters";
        }
        double seconds = clock.Elapsed.TotalSeconds;
        ConsoleReport.Line($"{Path.GetFileName(modelPath)} ({description}): accuracy {ConsoleReport.Percent(accuracy)} on {testSet.Count} test digits in {seconds:F2} s.");
        if (json)
        {
            ConsoleReport.Json(new JsonObject
            {
                ["accuracy"] = accuracy,
                ["samples"] = testSet.Count,
                ["format"] = format,
                ["parameters"] = parameters,
                ["seconds"] = Math.Round(seconds, 3),
            });
        }
        return ExitCodes.Success;
    }
}
