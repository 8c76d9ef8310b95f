using System.Globalization;
using Engine.Data;
using Engine.IO;
using Engine.Layers;
using Engine.Pruning;
using Engine.Quantization;
using Engine.Tests.Data;
using Engine.Training;

namespace Engine.Tests.Docs;

/// <summary>
/// The figures of docs/seed-sketch.md, computed on the bundled seed-1 model and the 1,000 bundled test digits: what the
/// sketch's <c>round(w / 255) * 255</c> does to the weights, against per-channel int8 codes; and what masking a neuron's
/// weights without its bias leaves behind, against masking both and removing the neuron.
/// </summary>
public sealed class SeedSketchTests
{
    private static string BundledModel => Path.Combine(AppContext.BaseDirectory, "data", "models", "seed1.safetensors");

    [Fact]
    public void Rounding_to_multiples_of_255_against_int8_codes()
    {
        FloatModel original = ModelFile.LoadFloat(BundledModel);
        float largest = WeightsOf(original.Network).Max(p => p.Value.Data.ToArray().Max(Math.Abs));

        FloatModel sketch = ModelFile.LoadFloat(BundledModel);
        foreach (Parameter weight in WeightsOf(sketch.Network))
        {
            Span<float> w = weight.Value.Data;
            for (int i = 0; i < w.Length; i++)
            {
                w[i] = MathF.Round(w[i] / 255f) * 255f;   // the sketch's expression, as written
            }
        }

        FloatModel engine = ModelFile.LoadFloat(BundledModel);
        double largestError = 0;
        foreach (Parameter weight in WeightsOf(engine.Network))
        {
            // Per output channel, symmetric: scale = max |w[c]| / 127, code = round(w / scale) in [-127, 127].
            int channels = weight.Value.Shape[0];
            Span<float> w = weight.Value.Data;
            (sbyte[] codes, float[] scales, int[] zeroPoints) = Quantizer.QuantizeWeights(w, channels, true);
            int depth = w.Length / channels;
            for (int i = 0; i < w.Length; i++)
            {
                float dequantized = scales[i / depth] * (codes[i] - zeroPoints[i / depth]);
                largestError = Math.Max(largestError, Math.Abs(dequantized - w[i]));
                w[i] = dequantized;
            }
        }

        long weights = WeightsOf(original.Network).Sum(p => (long)p.Value.Length);
        string table = string.Join("\n",
            "| weights | non-zero weights | largest change of a weight | test accuracy |",
            "| --- | ---: | ---: | ---: |",
            Row("float, as trained (bundled `seed1.safetensors`)", original, weights, 0),
            Row("the sketch: `round(w / 255) * 255`", sketch, weights, largest),
            Row("per-channel int8 codes, dequantized: `s[c] * round(w / s[c])`, `s[c] = max \\|w[c]\\| / 127`", engine, weights, largestError));
        GeneratedSections.Check("docs/seed-sketch.md", "seed-quantization", table);

        Assert.Equal(0, NonZero(sketch));            // every weight of a trained network is far below 127.5
        Assert.True(largest < 127.5f);
        Assert.True(Accuracy(engine) >= Accuracy(original) - 0.005);
    }

    [Fact]
    public void Masking_weights_without_the_bias_does_not_remove_a_neuron()
    {
        FloatModel original = ModelFile.LoadFloat(BundledModel);
        int[] inputShape = original.InputShape;
        PruningPlan plan = NeuronImportance.Rank(original.Network, inputShape, PruningCriterion.L1, 0.5, ["conv2"]);
        int[] removed = plan.RemovedFrom("conv2");

        FloatModel weightsOnly = ModelFile.LoadFloat(BundledModel);
        var conv2 = (Conv2d)weightsOnly.Network.Layers.Single(l => l.Name == "conv2").Layer;
        int depth = conv2.Weight.Value.Length / conv2.Weight.Value.Shape[0];
        foreach (int neuron in removed)
        {
            conv2.Weight.Value.Data.Slice(neuron * depth, depth).Clear();
        }
        int stillActive = removed.Count(n => conv2.Bias.Value.Data[n] > 0);   // ReLU(b) > 0: a constant that fc1 still reads

        FloatModel masked = ModelFile.LoadFloat(BundledModel);
        MaskPruner.Apply(masked.Network, plan, inputShape);
        Sequential structured = StructuredPruner.Apply(ModelFile.LoadFloat(BundledModel).Network, plan, inputShape);
        var test = BatchIterator.Sequential(BundledMnist.Test, 250, original.InputMean, original.InputStd);

        string table = string.Join("\n",
            $"| conv2, the {removed.Length} of 64 channels with the smallest L1 norm | parameters stored | test accuracy (no fine-tuning) |",
            "| --- | ---: | ---: |",
            $"| none removed | {N(original.Network.ParameterCount)} | {P(Evaluation.Accuracy(original.Network, test))} |",
            $"| weights zeroed, biases kept ({stillActive} of the {removed.Length} channels then output a constant ReLU(b) > 0) | {N(weightsOnly.Network.ParameterCount)} | {P(Evaluation.Accuracy(weightsOnly.Network, test))} |",
            $"| weights and biases zeroed (`MaskPruner`) | {N(masked.Network.ParameterCount)} | {P(Evaluation.Accuracy(masked.Network, test))} |",
            $"| channels removed with their edges (`StructuredPruner`) | {N(structured.ParameterCount)} | {P(Evaluation.Accuracy(structured, test))} |");
        GeneratedSections.Check("docs/seed-sketch.md", "seed-mask", table);

        Assert.True(stillActive > 0, "the example needs a removed channel with a positive bias");
        Assert.Equal(Evaluation.Predictions(masked.Network, test), Evaluation.Predictions(structured, test));
    }

    private static IEnumerable<Parameter> WeightsOf(Sequential network) =>
        network.NamedParameters().Where(p => p.Name.EndsWith(".weight", StringComparison.Ordinal)).Select(p => p.Parameter);

    private static long NonZero(FloatModel model) => WeightsOf(model.Network).Sum(p => (long)p.Value.Data.ToArray().Count(v => v != 0));

    private static double Accuracy(FloatModel model) =>
        Evaluation.Accuracy(model.Network, BatchIterator.Sequential(BundledMnist.Test, 250, model.InputMean, model.InputStd));

    private static string Row(string name, FloatModel model, long weights, double largestChange) =>
        $"| {name} | {N(NonZero(model))} of {N(weights)} | {largestChange.ToString("G3", CultureInfo.InvariantCulture)} | {P(Accuracy(model))} |";

    private static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    private static string P(double accuracy) => (100 * accuracy).ToString("F1", CultureInfo.InvariantCulture) + "%";
}
