using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Training;

namespace Engine.Cli.Commands;

/// <summary><c>engine eval</c>: accuracy of a model file on the t10k split of a data directory.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model file (safetensors).", Required = true };
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
        // LoadFloat refuses any other format with a message naming the file and the format it found.
        FloatModel loaded = ModelFile.LoadFloat(modelPath);
        MnistDataset testSet = MnistDataset.Load(dataDirectory, MnistSplit.Test);
        var test = BatchIterator.Sequential(testSet, 250, loaded.InputMean, loaded.InputStd);
        var clock = Stopwatch.StartNew();
        float accuracy = Evaluation.Accuracy(loaded.Network, test);
        double seconds = clock.Elapsed.TotalSeconds;
        ConsoleReport.Line($"{Path.GetFileName(modelPath)} ({ModelFile.FloatFormat}, {loaded.Network.ParameterCount} parameters): " +
                           $"accuracy {ConsoleReport.Percent(accuracy)} on {testSet.Count} test digits in {seconds:F2} s.");
        if (json)
        {
            ConsoleReport.Json(new JsonObject
            {
                ["accuracy"] = accuracy,
                ["samples"] = testSet.Count,
                ["format"] = ModelFile.FloatFormat,
                ["parameters"] = loaded.Network.ParameterCount,
                ["seconds"] = Math.Round(seconds, 3),
            });
        }
        return ExitCodes.Success;
    }
}
