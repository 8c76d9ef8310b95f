using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Engine.Data;
using Engine.Inference;
using Engine.IO;
using Engine.Quantization;

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
        // The same front door an embedding app uses: the format is told from the file's header.
        (Predictor model, string format) = ModelLoader.Load(modelPath, threads);
        CommonOptions.RequireDataDirectory(dataDirectory);
        MnistDataset testSet = MnistDataset.Load(dataDirectory, MnistSplit.Test);
        IBatchSource test = BatchIterator.Sequential(testSet, 250, model.Preprocessing.Mean, model.Preprocessing.Std);
        if (!test.SampleShape.AsSpan().SequenceEqual(model.InputShape))
        {
            throw new InvalidDataException(
                $"{Path.GetFileName(modelPath)} takes inputs [{string.Join(", ", model.InputShape.ToArray())}], but the digits in {dataDirectory} make [{string.Join(", ", test.SampleShape)}].");
        }
        long parameters = ModelLoader.ParameterCount(model);
        var clock = Stopwatch.StartNew();
        float accuracy = Accuracy(model, test);
        double seconds = clock.Elapsed.TotalSeconds;
        ConsoleReport.Line($"{Path.GetFileName(modelPath)} ({format}, {parameters} parameters): accuracy {ConsoleReport.Percent(accuracy)} on {testSet.Count} test digits in {seconds:F2} s.");
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

    /// <summary>Fraction of the test digits whose arg-max score is their label (also <c>engine demo</c>'s evaluation).</summary>
    internal static float Accuracy(Predictor model, IBatchSource test)
    {
        const int batch = 250;
        float[] inputs = new float[batch * model.InputLength], scores = new float[batch * model.OutputLength];
        int[] labels = new int[batch];
        long correct = 0;
        for (int b = 0; b * batch < test.Count; b++)
        {
            int count = test.FillBatch(0, b, batch, inputs, labels);
            model.Predict(inputs.AsSpan(0, count * model.InputLength), count, scores.AsSpan(0, count * model.OutputLength));
            for (int n = 0; n < count; n++)
            {
                correct += ClassScores.ArgMax(scores.AsSpan(n * model.OutputLength, model.OutputLength)) == labels[n] ? 1 : 0;
            }
        }
        return test.Count == 0 ? float.NaN : (float)correct / test.Count;
    }
}
