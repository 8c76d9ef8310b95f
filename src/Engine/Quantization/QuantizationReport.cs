using Engine.Kernels;
using Engine.Layers;

namespace Engine.Quantization;

/// <summary>Max and root-mean-square of (quantized - float) over a set of values.</summary>
public readonly record struct ErrorSummary(double Max, double Rms)
{
    /// <summary>The error of <paramref name="approximate"/> against <paramref name="exact"/>, element by element.</summary>
    public static ErrorSummary Of(ReadOnlySpan<float> approximate, ReadOnlySpan<float> exact)
    {
        if (approximate.Length != exact.Length)
        {
            throw new ArgumentException($"error summary: {approximate.Length} values against {exact.Length}.");
        }
        double max = 0, squares = 0;
        for (int i = 0; i < exact.Length; i++)
        {
            double d = (double)approximate[i] - exact[i];
            max = Math.Max(max, Math.Abs(d));
            squares += d * d;
        }
        return new ErrorSummary(max, exact.Length == 0 ? 0 : Math.Sqrt(squares / exact.Length));
    }
}

/// <summary>What quantization did to one weighted layer.</summary>
public sealed record LayerQuantizationReport(
    string Name,
    bool PerChannel,
    float MinWeightScale,
    float MaxWeightScale,
    int MinWeightZeroPoint,
    int MaxWeightZeroPoint,
    float WeightMin,
    float WeightMax,
    ErrorSummary WeightError,
    QuantParams Input,
    QuantParams Output,
    ErrorSummary OutputError,
    double OutputRms);

/// <summary>
/// Per weighted layer: the scales and zero points chosen, the float weight range, the error of the dequantized weights,
/// and the error of the layer's output when the quantized network runs on calibration images against the float network
/// on the same images (errors accumulate from the input on, as they do in use). The last layer's output is the logits
/// the network returns.
/// </summary>
public static class QuantizationReport
{
    /// <summary>Compares <paramref name="quantized"/> with the float <paramref name="network"/> it came from on <paramref name="inputs"/> [N, sample shape].</summary>
    public static IReadOnlyList<LayerQuantizationReport> Build(Sequential network, QuantizedNetwork quantized, FloatTensor inputs)
    {
        int samples = inputs.Dim(0);
        // Float activations at the end of each weighted layer's group (after its fused ReLU), by layer name.
        var floatOutputs = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var layers = network.Layers;
        FloatTensor x = inputs;
        string? pending = null;
        for (int i = 0; i < layers.Count; i++)
        {
            x = layers[i].Layer.Forward(x);
            if (layers[i].Layer is Conv2d or Linear)
            {
                pending = layers[i].Name;
            }
            bool fusedNext = i + 1 < layers.Count && layers[i + 1].Layer is ReLU && layers[i].Layer is Conv2d or Linear;
            if (pending is not null && !fusedNext)
            {
                floatOutputs[pending] = x.Data.ToArray();
                pending = null;
            }
        }
        float[] logits = new float[floatOutputs[quantized.Layers.OfType<QuantizedWeightedLayer>().Last().Name].Length];
        quantized.Predict(inputs.Data, samples, logits);
        var trace = quantized.Trace(inputs.Data, samples).ToDictionary(t => t.Name, StringComparer.Ordinal);

        var reports = new List<LayerQuantizationReport>();
        var weighted = quantized.Layers.OfType<QuantizedWeightedLayer>().ToList();
        foreach (QuantizedWeightedLayer layer in weighted)
        {
            ReadOnlySpan<float> floatWeights = layers.First(l => l.Name == layer.Name).Layer.Parameters[0].Value.Data;
            float[] real = floatOutputs[layer.Name];
            float[] approximate;
            if (layer == weighted[^1] && quantized.Layers[^1] == layer)
            {
                approximate = logits;
            }
            else
            {
                byte[] codes = trace[layer.Name].Codes;
                approximate = new float[codes.Length];
                for (int i = 0; i < codes.Length; i++)
                {
                    approximate[i] = layer.Output.Dequantize(codes[i]);
                }
            }
            reports.Add(new LayerQuantizationReport(
                layer.Name, layer.PerChannel,
                System.Numerics.Tensors.TensorPrimitives.Min(layer.WeightScales), System.Numerics.Tensors.TensorPrimitives.Max(layer.WeightScales),
                System.Numerics.Tensors.TensorPrimitives.Min(layer.WeightZeroPoints), System.Numerics.Tensors.TensorPrimitives.Max(layer.WeightZeroPoints),
                System.Numerics.Tensors.TensorPrimitives.Min(floatWeights), System.Numerics.Tensors.TensorPrimitives.Max(floatWeights),
                ErrorSummary.Of(layer.DequantizedWeights(), floatWeights),
                layer.Input, layer.Output,
                ErrorSummary.Of(approximate, real),
                Math.Sqrt(real.Sum(v => (double)v * v) / Math.Max(real.Length, 1))));
        }
        return reports;
    }
}
