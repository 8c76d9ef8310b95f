using Engine.Data;
using Engine.IO;
using Engine.Quantization;

namespace Engine.Tests.IO;

/// <summary>
/// The bundled int8 model (src/Engine.Cli/Data/models, copied beside the binaries as data/models, and embedded in the
/// NativeAOT sample) still loads with the current code and still scores what it scored when it was made (98.60% on the
/// 1,000 bundled test digits). If the int8 file format changes, regenerate it with `engine train --seed 1` and `engine quantize` (docs/command-line.md).
/// </summary>
public class BundledModelTests
{
    [Fact]
    public void Bundled_int8_model_loads_and_classifies_the_test_digits()
    {
        string models = Path.Combine(AppContext.BaseDirectory, "data", "models");
        string path = Path.Combine(models, "seed1.int8.safetensors");
        QuantizedNetwork network = QuantizedModelFile.Load(File.ReadAllBytes(path), "seed1.int8.safetensors");

        MnistDataset test = MnistDataset.Load(Path.Combine(AppContext.BaseDirectory, "data", "mnist"), MnistSplit.Test);
        (float accuracy, _) = network.Evaluate(BatchIterator.Sequential(test, 250, network.InputMean, network.InputStd));

        Assert.True(accuracy >= 0.98f, $"the bundled int8 model scores {accuracy:P2} on {test.Count} test digits, expected 98.60%");
    }
}
