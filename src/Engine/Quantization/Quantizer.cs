using Engine.Data;
using Engine.Kernels;
using Engine.Layers;

namespace Engine.Quantization;

/// <summary>How a float network is turned into a <see cref="QuantizedNetwork"/>.</summary>
public sealed record QuantizationOptions
{
    /// <summary>Symmetric int8 weights with one scale per output channel (default), or one asymmetric scale and zero point per tensor.</summary>
    public bool PerChannel { get; init; } = true;

    /// <summary>How activation ranges are chosen from the calibration data.</summary>
    public ObserverKind Observer { get; init; } = ObserverKind.MinMax;

    /// <summary>How the logits are read off the last layer.</summary>
    public LogitsMode Logits { get; init; } = LogitsMode.Int32Accumulator;

    /// <summary>Calibration images per forward pass.</summary>
    public int CalibrationBatchSize { get; init; } = 100;

    /// <summary>
    /// Bits of every weight code, 4 to 8 (default 8): symmetric codes lie in [-(2^(b-1) - 1), 2^(b-1) - 1], per-tensor
    /// asymmetric ones in [-2^(b-1), 2^(b-1) - 1]. <see cref="LayerWeightBits"/> overrides it layer by layer.
    /// </summary>
    public int WeightBits { get; init; } = 8;

    /// <summary>Bits of the weight codes of the named layers, overriding <see cref="WeightBits"/> (null: none).</summary>
    public IReadOnlyDictionary<string, int>? LayerWeightBits { get; init; }

    /// <summary>The fewest and the most bits a weight code may have.</summary>
    public const int MinWeightBits = 4, MaxWeightBits = 8;

    /// <summary>The bits of layer <paramref name="layer"/>'s weight codes; throws when they are outside 4..8.</summary>
    public int WeightBitsOf(string layer)
    {
        int bits = LayerWeightBits is not null && LayerWeightBits.TryGetValue(layer, out int b) ? b : WeightBits;
        if (bits < MinWeightBits || bits > MaxWeightBits)
        {
            throw new ArgumentOutOfRangeException(nameof(WeightBits), bits,
                $"layer '{layer}': weight codes have {MinWeightBits} to {MaxWeightBits} bits, not {bits}.");
        }
        return bits;
    }
}

/// <summary>
/// Post-training quantization (TFLite's int8 scheme, gemmlowp's arithmetic): run the float network over calibration
/// images while observers record the range of the network input and of every weighted layer's output (after the ReLU
/// that will be fused into it), then quantize
/// <list type="bullet">
/// <item>activations: uint8, asymmetric per tensor, from the observed range (real 0 exact, <see cref="QuantParams.Asymmetric"/>);</item>
/// <item>weights: int8 symmetric per output channel in [-127, 127], sw[c] = max |w[c]| / 127 (or asymmetric per tensor; fewer bits narrow the range, <see cref="QuantizationOptions.WeightBits"/>);</item>
/// <item>bias: int32 with scale sx sw[c] and zero point 0, so it adds straight into the accumulators.</item>
/// </list>
/// Pooling, flatten and a ReLU that follows no weighted layer keep their input's scale and zero point.
/// </summary>
public static class Quantizer
{
    /// <summary>Quantizes <paramref name="network"/> with ranges observed on the first <paramref name="calibrationSamples"/> samples of <paramref name="calibration"/>.</summary>
    public static QuantizedNetwork Quantize(Sequential network, IBatchSource calibration, int calibrationSamples,
        float inputMean, float inputStd, QuantizationOptions? options = null)
    {
        options ??= new QuantizationOptions();
        ActivationObserver[] observers = Calibrate(network, calibration, calibrationSamples, options);
        return Quantize(network, [.. observers.Select(o => o.Range)], calibration.SampleShape, inputMean, inputStd, options);
    }

    /// <summary>
    /// Quantizes <paramref name="network"/> with given activation ranges instead of calibrating: the network input's
    /// first, then each weighted layer's output after its fused ReLU, in layer order (the order <see cref="Calibrate"/>
    /// returns its observers in; quantization-aware training hands over its frozen ranges this way,
    /// <see cref="QuantizationAwareTraining.ToQuantizedNetwork"/>).
    /// </summary>
    public static QuantizedNetwork Quantize(Sequential network, IReadOnlyList<(float Min, float Max)> activationRanges,
        int[] sampleShape, float inputMean, float inputStd, QuantizationOptions? options = null)
    {
        options ??= new QuantizationOptions();
        int expected = 1 + network.Layers.Count(l => l.Layer is Conv2d or Linear);
        if (activationRanges.Count != expected)
        {
            throw new ArgumentException($"the network needs {expected} activation ranges (its input and each weighted layer's output), not {activationRanges.Count}.",
                nameof(activationRanges));
        }
        QuantParams input = ToActivation(activationRanges[0]);
        var layers = new List<QuantizedLayer>();
        QuantParams current = input;
        int observer = 1;
        var floatLayers = network.Layers;
        for (int i = 0; i < floatLayers.Count; i++)
        {
            (string name, Layer layer) = floatLayers[i];
            bool fusedRelu = i + 1 < floatLayers.Count && floatLayers[i + 1].Layer is ReLU;
            switch (layer)
            {
                case Conv2d conv:
                {
                    QuantParams output = ToActivation(activationRanges[observer++]);
                    var w = QuantizeWeights(conv.Weight.Value.Data, conv.OutChannels, options.PerChannel, options.WeightBitsOf(name));
                    int[] bias = QuantizeBias(conv.Bias.Value.Data, current, w.Scales);
                    layers.Add(new QuantizedConv2d(name, current, output, w.Codes, conv.Weight.Value.Shape.ToArray(), w.Scales, w.ZeroPoints,
                        bias, fusedRelu, conv.Stride, conv.Padding, options.WeightBitsOf(name)));
                    current = output;
                    i += fusedRelu ? 1 : 0;
                    break;
                }
                case Linear linear:
                {
                    QuantParams output = ToActivation(activationRanges[observer++]);
                    var w = QuantizeWeights(linear.Weight.Value.Data, linear.OutFeatures, options.PerChannel, options.WeightBitsOf(name));
                    int[] bias = QuantizeBias(linear.Bias.Value.Data, current, w.Scales);
                    layers.Add(new QuantizedLinear(name, current, output, w.Codes, linear.Weight.Value.Shape.ToArray(), w.Scales, w.ZeroPoints,
                        bias, fusedRelu, options.WeightBitsOf(name)));
                    current = output;
                    i += fusedRelu ? 1 : 0;
                    break;
                }
                case AvgPool2d pool:
                    layers.Add(new QuantizedAvgPool2d(name, current, pool.KernelSize, pool.Stride));
                    break;
                case Flatten:
                    layers.Add(new QuantizedFlatten(name, current));
                    break;
                case ReLU:
                    layers.Add(new QuantizedReLU(name, current));
                    break;
                default:
                    throw new NotSupportedException($"layer '{name}' ({layer}) has no int8 version.");
            }
        }
        return new QuantizedNetwork(layers, input, sampleShape, inputMean, inputStd, options.Logits);
    }

    /// <summary>
    /// Observers of the network input (first) and of each weighted layer's output after its fused ReLU (in layer order),
    /// fed with the float activations of the first <paramref name="samples"/> calibration samples.
    /// </summary>
    public static ActivationObserver[] Calibrate(Sequential network, IBatchSource calibration, int samples, QuantizationOptions options)
    {
        if (samples <= 0 || samples > calibration.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(samples), samples, $"calibration needs between 1 and {calibration.Count} samples.");
        }
        var layers = network.Layers;
        // observeAfter[i]: the observer fed with layer i's output, or -1.
        int[] observeAfter = Enumerable.Repeat(-1, layers.Count).ToArray();
        int count = 1;
        for (int i = 0; i < layers.Count; i++)
        {
            if (layers[i].Layer is Conv2d or Linear)
            {
                bool fused = i + 1 < layers.Count && layers[i + 1].Layer is ReLU;
                observeAfter[fused ? i + 1 : i] = count++;
            }
        }
        var observers = Enumerable.Range(0, count).Select(_ => ActivationObserver.Create(options.Observer)).ToArray();
        int batchSize = Math.Min(options.CalibrationBatchSize, samples);
        var inputs = new FloatTensor([batchSize, .. calibration.SampleShape]);
        int[] labels = new int[batchSize];
        for (int b = 0, done = 0; done < samples; b++)
        {
            int filled = calibration.FillBatch(0, b, batchSize, inputs.Data, labels);
            int used = Math.Min(filled, samples - done);
            if (used <= 0)
            {
                break;
            }
            inputs.Resize([used, .. calibration.SampleShape]);
            observers[0].Observe(inputs.Data);
            FloatTensor x = inputs;
            for (int i = 0; i < layers.Count; i++)
            {
                x = layers[i].Layer.Forward(x);
                if (observeAfter[i] >= 0)
                {
                    observers[observeAfter[i]].Observe(x.Data);
                }
            }
            inputs.Resize([batchSize, .. calibration.SampleShape]);
            done += used;
        }
        return observers;
    }

    /// <summary>
    /// Codes of a weight tensor with <paramref name="outChannels"/> rows, <paramref name="bits"/> bits each (4 to 8, stored
    /// one per sbyte): symmetric per row (scale max |w| / (2^(b-1) - 1), zero point 0, codes in [-(2^(b-1) - 1), 2^(b-1) - 1])
    /// or one asymmetric scale and zero point over [-2^(b-1), 2^(b-1) - 1] for the whole tensor (<see cref="QuantParams"/>).
    /// </summary>
    public static (sbyte[] Codes, float[] Scales, int[] ZeroPoints) QuantizeWeights(ReadOnlySpan<float> weights, int outChannels, bool perChannel,
        int bits = QuantizationOptions.MaxWeightBits)
    {
        sbyte[] codes = new sbyte[weights.Length];
        var (scales, zeroPoints) = WeightParameters(weights, outChannels, perChannel, bits);
        int depth = weights.Length / outChannels;
        for (int c = 0; c < scales.Length; c++)
        {
            int count = scales.Length == 1 ? weights.Length : depth;
            QuantParams p = WeightParams(scales[c], zeroPoints[c], perChannel, bits);
            Kernels.QuantizeF32.ToInt8(weights.Slice(c * depth, count), p, codes.AsSpan(c * depth, count));
        }
        return (codes, scales, zeroPoints);
    }

    /// <summary>
    /// The weights the integer path computes with, in float: sw (q - zw) for the codes <see cref="QuantizeWeights"/> gives
    /// (fake quantization: what quantization-aware training and sensitivity analysis feed the float network).
    /// </summary>
    public static void FakeQuantizeWeights(ReadOnlySpan<float> weights, int outChannels, bool perChannel, int bits, Span<float> destination)
    {
        if (destination.Length != weights.Length)
        {
            throw new ArgumentException($"destination holds {destination.Length} values for {weights.Length} weights.");
        }
        var (scales, zeroPoints) = WeightParameters(weights, outChannels, perChannel, bits);
        int depth = weights.Length / outChannels;
        for (int c = 0; c < scales.Length; c++)
        {
            int count = scales.Length == 1 ? weights.Length : depth;
            QuantParams p = WeightParams(scales[c], zeroPoints[c], perChannel, bits);
            ReadOnlySpan<float> row = weights.Slice(c * depth, count);
            Span<float> target = destination.Slice(c * depth, count);
            for (int i = 0; i < row.Length; i++)
            {
                target[i] = p.Dequantize(p.Quantize(row[i]));
            }
        }
    }

    private static (float[] Scales, int[] ZeroPoints) WeightParameters(ReadOnlySpan<float> weights, int outChannels, bool perChannel, int bits)
    {
        if (bits < QuantizationOptions.MinWeightBits || bits > QuantizationOptions.MaxWeightBits)
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits,
                $"weight codes have {QuantizationOptions.MinWeightBits} to {QuantizationOptions.MaxWeightBits} bits.");
        }
        if (outChannels <= 0 || weights.Length % outChannels != 0)
        {
            throw new ArgumentException($"{weights.Length} weights do not split into {outChannels} output channels.");
        }
        if (!perChannel)
        {
            QuantParams p = QuantParams.Asymmetric(System.Numerics.Tensors.TensorPrimitives.Min(weights),
                System.Numerics.Tensors.TensorPrimitives.Max(weights), -(1 << (bits - 1)), (1 << (bits - 1)) - 1);
            return ([p.Scale], [p.ZeroPoint]);
        }
        int depth = weights.Length / outChannels;
        float[] scales = new float[outChannels];
        for (int c = 0; c < outChannels; c++)
        {
            float absMax = depth == 0 ? 0f : MathF.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(weights.Slice(c * depth, depth)));
            scales[c] = QuantParams.Symmetric(absMax, (1 << (bits - 1)) - 1).Scale;
        }
        return (scales, new int[outChannels]);
    }

    private static QuantParams WeightParams(float scale, int zeroPoint, bool perChannel, int bits) => perChannel
        ? new QuantParams(scale, 0, -((1 << (bits - 1)) - 1), (1 << (bits - 1)) - 1)
        : new QuantParams(scale, zeroPoint, -(1 << (bits - 1)), (1 << (bits - 1)) - 1);

    /// <summary>
    /// bias[c] / (sx sw[c]) rounded half away from zero, saturated to [-2^30, 2^30 - 1] (int.MinValue / 2 to
    /// int.MaxValue / 2): half of int32, so that the bias plus the layer's accumulators still fits int32, which
    /// <see cref="QuantizedWeightedLayer"/> requires (docs/quantization.md, "Scale and zero point").
    /// </summary>
    public static int[] QuantizeBias(ReadOnlySpan<float> bias, QuantParams input, float[] weightScales)
    {
        int[] codes = new int[bias.Length];
        for (int c = 0; c < bias.Length; c++)
        {
            double scale = (double)input.Scale * weightScales[weightScales.Length == 1 ? 0 : c];
            double q = Math.Round(bias[c] / scale, MidpointRounding.AwayFromZero);
            codes[c] = (int)Math.Clamp(q, int.MinValue / 2, int.MaxValue / 2);
        }
        return codes;
    }

    /// <summary>uint8 activation parameters for the real range [min, max] (widened to hold 0): <see cref="QuantParams.Asymmetric"/> over [0, 255].</summary>
    public static QuantParams ToActivation((float Min, float Max) range) => QuantParams.Asymmetric(range.Min, range.Max, 0, 255);
}
