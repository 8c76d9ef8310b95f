using System.Globalization;
using Engine.Data;
using Engine.IO;
using Engine.Quantization;
using Engine.Tests.Data;
using Engine.Training;

namespace Engine.Tests.Docs;

/// <summary>Figures of README.md that are cheap to measure again: the bundled models' sizes, accuracies and agreement.</summary>
public sealed class ReadmeFiguresTests
{
    [Fact]
    public void The_bundled_models_table_is_what_the_models_score()
    {
        string models = Path.Combine(AppContext.BaseDirectory, "data", "models");
        string floatPath = Path.Combine(models, "seed1.safetensors"), int8Path = Path.Combine(models, "seed1.int8.safetensors");
        FloatModel floatModel = ModelFile.LoadFloat(floatPath);
        QuantizedNetwork int8 = QuantizedModelFile.Load(File.ReadAllBytes(int8Path), "seed1.int8.safetensors");
        var test = BatchIterator.Sequential(BundledMnist.Test, 250, floatModel.InputMean, floatModel.InputStd);
        int[] floatPredictions = Evaluation.Predictions(floatModel.Network, test);
        (float int8Accuracy, int[] int8Predictions) = int8.Evaluate(BatchIterator.Sequential(BundledMnist.Test, 250, int8.InputMean, int8.InputStd));
        double floatAccuracy = floatPredictions.Where((p, i) => p == BundledMnist.Test.Labels[i]).Count() / (double)BundledMnist.Test.Count;
        double agreement = floatPredictions.Zip(int8Predictions).Count(p => p.First == p.Second) / (double)floatPredictions.Length;

        string table = string.Join("\n",
            "| file | what | bytes | test accuracy (1,000 digits) | top-1 agreement with float |",
            "| --- | --- | ---: | ---: | ---: |",
            $"| `seed1.safetensors` | float | {Bytes(floatPath)} | {Percent(floatAccuracy)} | |",
            $"| `seed1.int8.safetensors` | int8, per channel | {Bytes(int8Path)} | {Percent(int8Accuracy)} | {Percent(agreement)} |");
        GeneratedSections.Check("README.md", "bundled-models", table);
    }

    private static string Bytes(string path) => new FileInfo(path).Length.ToString("N0", CultureInfo.InvariantCulture);

    private static string Percent(double fraction) => (100 * fraction).ToString("F2", CultureInfo.InvariantCulture) + "%";
}
