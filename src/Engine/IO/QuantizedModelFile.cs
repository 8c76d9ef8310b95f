using System.Globalization;
using System.Text;
using Engine.Kernels;
using Engine.Quantization;

namespace Engine.IO;

/// <summary>
/// Int8 model files (docs/file-formats.md, "Int8 model file"): safetensors with, for each weighted layer L,
/// <code>
///   L.weight I8 [out, in(, kh, kw)]     L.weight_scale F32 [out] or [1]     L.weight_zero_point I32 (same shape)
///   L.bias I32 [out]                    (real bias = bias input_scale weight_scale[c])
///   L.input_scale F32 [1]   L.input_zero_point I32 [1]     the activation entering L
///   L.output_scale F32 [1]  L.output_zero_point I32 [1]    the activation leaving L (after a fused ReLU)
/// </code>
/// Weight codes of fewer than 8 bits (<see cref="QuantizedWeightedLayer.WeightBits"/>) add <c>L.weight_bits</c> I32 [1]
/// (absent: 8). 5 to 7 bits keep <c>L.weight</c> I8 as above; 4 bits store the codes packed two per byte instead:
/// <code>
///   L.weight_int4 U8 [out, ceil(depth / 2)]   byte j of row c: code 2j in the low nibble, code 2j + 1 in the high one
///                                             (two's complement; the high nibble past an odd depth is 0)
///   L.weight_shape I32 [rank]                 the float weight's shape, [out, in] or [out, in, kh, kw]
/// </code>
/// plus <c>input.scale</c> F32 [1] and <c>input.zero_point</c> I32 [1], the quantization of the network input, and
/// <c>__metadata__</c>: format = engine.int8, input_mean, input_std, input_shape, activation_dtype = uint8,
/// rounding = half_away_from_zero, logits (int32_accumulator or dequantized_output) and architecture
/// ("conv1=conv2d(3,1,1,relu);pool=avgpool2d(4,4);flatten=flatten;fc1=linear(relu);fc2=linear": fused ReLUs are
/// part of their layer). Pooling, flatten and unfused ReLU layers keep the scale and zero point of their input.
/// Loading rebuilds exactly the same integer network: every derived quantity (packed weights, row sums, fixed-point
/// multipliers) is recomputed from these tensors by the same code, so outputs match bit for bit.
/// </summary>
public static class QuantizedModelFile
{
    /// <summary>The <c>format</c> metadata value of int8 model files.</summary>
    public const string Int8Format = "engine.int8";

    /// <summary>The rounding rule this engine uses everywhere (metadata <c>rounding</c>).</summary>
    public const string Rounding = "half_away_from_zero";

    /// <summary>Writes <paramref name="network"/> to <paramref name="path"/> atomically.</summary>
    public static void Save(QuantizedNetwork network, string path, IReadOnlyDictionary<string, string>? extraMetadata = null) =>
        ToFile(network, extraMetadata).Write(path);

    /// <summary>The bytes <see cref="Save"/> would write (for sizes and tests).</summary>
    public static byte[] ToBytes(QuantizedNetwork network) => ToFile(network, null).ToBytes();

    /// <summary>Reads an int8 model; a float file or a damaged one gives an <see cref="InvalidDataException"/> naming the file and tensor.</summary>
    public static QuantizedNetwork Load(string path) => FromFile(SafeTensorsFile.Read(path), Path.GetFileName(path));

    /// <summary>Reads an int8 model from bytes; <paramref name="name"/> appears in error messages.</summary>
    public static QuantizedNetwork Load(ReadOnlySpan<byte> bytes, string name) => FromFile(SafeTensorsFile.Read(bytes, name), name);

    private static SafeTensorsFile ToFile(QuantizedNetwork network, IReadOnlyDictionary<string, string>? extraMetadata)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = Int8Format,
            ["input_mean"] = network.InputMean.ToString("R", CultureInfo.InvariantCulture),
            ["input_std"] = network.InputStd.ToString("R", CultureInfo.InvariantCulture),
            ["input_shape"] = string.Join(",", network.InputShape),
            ["activation_dtype"] = "uint8",
            ["rounding"] = Rounding,
            ["logits"] = network.Logits == LogitsMode.Int32Accumulator ? "int32_accumulator" : "dequantized_output",
            ["architecture"] = DescribeArchitecture(network),
        };
        foreach ((string key, string value) in extraMetadata ?? new Dictionary<string, string>())
        {
            metadata.TryAdd(key, value);
        }
        var tensors = new List<SafeTensor>
        {
            SafeTensor.FromFloats("input.scale", [1], [network.Input.Scale]),
            SafeTensor.FromInt32s("input.zero_point", [1], [network.Input.ZeroPoint]),
        };
        foreach (QuantizedLayer layer in network.Layers)
        {
            if (layer is not QuantizedWeightedLayer w)
            {
                continue;
            }
            string l = layer.Name;
            if (w.WeightBits == Int4Bits)
            {
                tensors.Add(SafeTensor.FromBytes($"{l}.weight_int4", [w.OutFeatures, (w.Depth + 1) / 2], PackNibbles(w.Weights, w.OutFeatures, w.Depth)));
                tensors.Add(SafeTensor.FromInt32s($"{l}.weight_shape", [w.WeightShape.Length], w.WeightShape));
            }
            else
            {
                tensors.Add(SafeTensor.FromSBytes($"{l}.weight", w.WeightShape.ToArray(), w.Weights));
            }
            if (w.WeightBits != 8)
            {
                tensors.Add(SafeTensor.FromInt32s($"{l}.weight_bits", [1], [w.WeightBits]));
            }
            tensors.Add(SafeTensor.FromFloats($"{l}.weight_scale", [w.WeightScales.Length], w.WeightScales));
            tensors.Add(SafeTensor.FromInt32s($"{l}.weight_zero_point", [w.WeightZeroPoints.Length], w.WeightZeroPoints));
            tensors.Add(SafeTensor.FromInt32s($"{l}.bias", [w.Bias.Length], w.Bias));
            tensors.Add(SafeTensor.FromFloats($"{l}.input_scale", [1], [w.Input.Scale]));
            tensors.Add(SafeTensor.FromInt32s($"{l}.input_zero_point", [1], [w.Input.ZeroPoint]));
            tensors.Add(SafeTensor.FromFloats($"{l}.output_scale", [1], [w.Output.Scale]));
            tensors.Add(SafeTensor.FromInt32s($"{l}.output_zero_point", [1], [w.Output.ZeroPoint]));
        }
        return new SafeTensorsFile(tensors, metadata);
    }

    /// <summary>The layer sequence, with fused ReLUs marked on their layer.</summary>
    public static string DescribeArchitecture(QuantizedNetwork network)
    {
        var text = new StringBuilder();
        foreach (QuantizedLayer layer in network.Layers)
        {
            text.Append(text.Length > 0 ? ";" : "").Append(layer.Name).Append('=').Append(layer switch
            {
                QuantizedConv2d c => $"conv2d({c.KernelSize},{c.Stride},{c.Padding}{(c.FusedRelu ? ",relu" : "")})",
                QuantizedLinear l => l.FusedRelu ? "linear(relu)" : "linear",
                QuantizedAvgPool2d p => $"avgpool2d({p.KernelSize},{p.Stride})",
                QuantizedFlatten => "flatten",
                QuantizedReLU => "relu",
                _ => throw new NotSupportedException($"layer '{layer.Name}' ({layer}) cannot be saved."),
            });
        }
        return text.ToString();
    }

    /// <summary>The int8 network a read safetensors file describes; <paramref name="name"/> appears in error messages.</summary>
    public static QuantizedNetwork FromFile(SafeTensorsFile file, string name)
    {
        string format = Meta(file, name, "format");
        if (format != Int8Format)
        {
            throw new InvalidDataException(format == ModelFile.FloatFormat
                ? $"{name}: this is a float model ({format}), not an int8 model ({Int8Format}); quantize it first."
                : $"{name}: format '{format}' is not an int8 model ({Int8Format}).");
        }
        string activation = Meta(file, name, "activation_dtype");
        if (activation != "uint8")
        {
            throw new InvalidDataException($"{name}: activation_dtype '{activation}' is not supported (this engine runs uint8 activations).");
        }
        string rounding = Meta(file, name, "rounding");
        if (rounding != Rounding)
        {
            throw new InvalidDataException($"{name}: rounding '{rounding}' is not supported (this engine rounds {Rounding}).");
        }
        LogitsMode logits = Meta(file, name, "logits") switch
        {
            "int32_accumulator" => LogitsMode.Int32Accumulator,
            "dequantized_output" => LogitsMode.DequantizedOutput,
            string other => throw new InvalidDataException($"{name}: logits '{other}' is neither int32_accumulator nor dequantized_output."),
        };
        float mean = MetaFloat(file, name, "input_mean"), std = MetaFloat(file, name, "input_std");
        ModelLimits.CheckNormalisation(mean, std, name);
        int[] inputShape = ParseInts(Meta(file, name, "input_shape"), name, "input_shape");
        if (inputShape.Length == 0 || inputShape.Any(d => d <= 0 || d > 1 << 16))
        {
            throw new InvalidDataException($"{name}: input_shape '{string.Join(",", inputShape)}' is not a list of positive sizes.");
        }
        ModelLimits.Check(inputShape, name, "metadata input_shape");

        var used = new HashSet<string>(StringComparer.Ordinal);
        QuantParams input = Activation(file, name, "input.scale", "input.zero_point", used);
        QuantParams current = input;
        var layers = new List<QuantizedLayer>();
        foreach (ArchitectureEntry entry in ArchitectureText.Parse(Meta(file, name, "architecture"), name, allowFusedRelu: true))
        {
            string layerName = entry.Name;
            bool relu = entry.FusedRelu;
            try
            {
                QuantizedLayer layer = entry.Kind switch
                {
                    ArchitectureKind.Conv2d => Weighted(file, name, layerName, current, used,
                        (i, o, w, shape, s, z, b, bits) => new QuantizedConv2d(layerName, i, o, w, shape, s, z, b, relu, entry.Stride, entry.Padding, bits), 4),
                    ArchitectureKind.Linear => Weighted(file, name, layerName, current, used,
                        (i, o, w, shape, s, z, b, bits) => new QuantizedLinear(layerName, i, o, w, shape, s, z, b, relu, bits), 2),
                    ArchitectureKind.AvgPool2d => new QuantizedAvgPool2d(layerName, current, entry.Kernel, entry.Stride),
                    ArchitectureKind.Flatten => new QuantizedFlatten(layerName, current),
                    _ => new QuantizedReLU(layerName, current),
                };
                if (layer is QuantizedConv2d conv && conv.KernelSize != entry.Kernel)
                {
                    throw new InvalidDataException($"{name}: tensor '{layerName}.weight' has a {conv.KernelSize}x{conv.KernelSize} kernel, the architecture says {entry.Kernel}.");
                }
                layers.Add(layer);
                current = layer.Output;
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{name}: layer '{layerName}': {e.Message}", e);
            }
        }
        string? unexpected = file.Tensors.Select(t => t.Name).FirstOrDefault(n => !used.Contains(n));
        if (unexpected is not null)
        {
            throw new InvalidDataException($"{name}: unexpected tensor '{unexpected}' (not part of the network the architecture describes).");
        }
        int[] shape = inputShape;
        foreach (QuantizedLayer layer in layers)
        {
            try
            {
                shape = layer.OutputShape(shape);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{name}: the layers do not fit together: layer '{layer.Name}': {e.Message}", e);
            }
            ModelLimits.Check(shape, name, $"the output of layer '{layer.Name}'");
            if (layer is QuantizedConv2d conv)
            {
                ModelLimits.CheckConvolution(conv.InChannels, conv.KernelSize, (long)shape[1] * shape[2], name, layer.Name);
            }
        }
        CheckLogitRange(layers, current, logits, name);
        try
        {
            return new QuantizedNetwork(layers, input, inputShape, mean, std, logits);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{name}: the layers do not fit together: {e.Message}", e);
        }
    }

    // Logits are scale x integer: int32 accumulators (below 2^33 in magnitude with their addends) times
    // input_scale x weight_scale[c], or uint8 codes times the output scale. Either must stay far inside float range.
    private static void CheckLogitRange(List<QuantizedLayer> layers, QuantParams last, LogitsMode logits, string name)
    {
        if (layers.Count == 0)
        {
            return;
        }
        double largest = 256.0 * last.Scale;
        string tensor = $"{layers[^1].Name}.output_scale";
        if (logits == LogitsMode.Int32Accumulator && layers[^1] is QuantizedWeightedLayer w)
        {
            largest = 8589934592.0 * w.Input.Scale * System.Numerics.Tensors.TensorPrimitives.Max(w.WeightScales);
            tensor = $"{w.Name}.weight_scale";
        }
        if (largest > ModelLimits.MaxOutputBound)
        {
            throw new InvalidDataException($"{name}: tensor '{tensor}' makes logits of magnitude up to {largest:G3}, past {ModelLimits.MaxOutputBound:G0}.");
        }
    }

    private delegate QuantizedWeightedLayer WeightedFactory(QuantParams input, QuantParams output, sbyte[] weights, int[] shape,
        float[] scales, int[] zeroPoints, int[] bias, int weightBits);

    // Codes of 4 bits are stored two per byte (L.weight_int4); 5 to 8 bits one per I8 (L.weight).
    private const int Int4Bits = 4;

    /// <summary>Row c's codes 2j and 2j + 1 in the low and high nibble of byte c ceil(depth / 2) + j; 0 pads an odd depth.</summary>
    internal static byte[] PackNibbles(ReadOnlySpan<sbyte> codes, int rows, int depth)
    {
        int stride = (depth + 1) / 2;
        byte[] packed = new byte[rows * stride];
        for (int c = 0; c < rows; c++)
        {
            for (int p = 0; p < depth; p++)
            {
                packed[c * stride + p / 2] |= (byte)((codes[c * depth + p] & 0xF) << (4 * (p & 1)));
            }
        }
        return packed;
    }

    // The I32 [1] bit width of layer L's codes: 4 to 8, absent = 8.
    private static int WeightBits(SafeTensorsFile file, string name, string layer, HashSet<string> used)
    {
        string tensorName = $"{layer}.weight_bits";
        if (!file.TryGet(tensorName, out _))
        {
            if (!file.TryGet($"{layer}.weight", out _) && file.TryGet($"{layer}.weight_int4", out _))
            {
                throw new InvalidDataException($"{name}: tensor '{layer}.weight_int4' needs '{tensorName}' = 4, which is missing.");
            }
            return 8;
        }
        SafeTensor t = FloatTensor(file, name, tensorName, SafeTensorDType.I32, used);
        if (t.Shape.Length != 1 || t.Shape[0] != 1)
        {
            throw new InvalidDataException($"{name}: tensor '{tensorName}' has shape [{string.Join(", ", t.Shape)}], expected [1].");
        }
        int bits = t.ToInt32s()[0];
        if (bits < QuantizationOptions.MinWeightBits || bits > QuantizationOptions.MaxWeightBits)
        {
            throw new InvalidDataException(
                $"{name}: tensor '{tensorName}' is {bits}; weight codes have {QuantizationOptions.MinWeightBits} to {QuantizationOptions.MaxWeightBits} bits.");
        }
        return bits;
    }

    // L.weight_shape and L.weight_int4, checked against each other (before the codes are allocated), unpacked.
    private static (sbyte[] Codes, int[] Shape) Int4Weights(SafeTensorsFile file, string name, string layer, HashSet<string> used, int rank)
    {
        string shapeName = $"{layer}.weight_shape", packedName = $"{layer}.weight_int4";
        SafeTensor shapeTensor = FloatTensor(file, name, shapeName, SafeTensorDType.I32, used);
        int[] shape = shapeTensor.Shape.Length == 1 && shapeTensor.Shape[0] == rank ? shapeTensor.ToInt32s() : [];
        if (shape.Length != rank || shape.Any(d => d <= 0))
        {
            throw new InvalidDataException(
                $"{name}: tensor '{shapeName}' holds [{string.Join(", ", shapeTensor.Shape.Length == 1 ? shapeTensor.ToInt32s() : [])}], expected {rank} positive dimensions.");
        }
        long depth = 1;
        for (int d = 1; d < rank; d++)
        {
            depth *= shape[d];
            if (depth > int.MaxValue)
            {
                throw new InvalidDataException($"{name}: tensor '{shapeName}' describes a weight of more than {int.MaxValue} codes per output.");
            }
        }
        SafeTensor packed = FloatTensor(file, name, packedName, SafeTensorDType.U8, used);
        long stride = (depth + 1) / 2;
        if (packed.Shape.Length != 2 || packed.Shape[0] != shape[0] || packed.Shape[1] != stride)
        {
            throw new InvalidDataException(
                $"{name}: tensor '{packedName}' has shape [{string.Join(", ", packed.Shape)}]; '{shapeName}' [{string.Join(", ", shape)}] needs [{shape[0]}, {stride}] (two codes per byte).");
        }
        if ((long)shape[0] * depth > int.MaxValue)
        {
            throw new InvalidDataException($"{name}: tensor '{shapeName}' describes more than {int.MaxValue} codes.");
        }
        byte[] bytes = packed.Data;
        if (depth % 2 == 1)
        {
            for (int c = 0; c < shape[0]; c++)
            {
                if (bytes[c * stride + stride - 1] >> 4 != 0)
                {
                    throw new InvalidDataException(
                        $"{name}: tensor '{packedName}' row {c}: the high nibble past the odd depth {depth} is {bytes[c * stride + stride - 1] >> 4}, expected 0.");
                }
            }
        }
        // Every nibble is a code in [-8, 7]: nothing else to range-check.
        sbyte[] codes = new sbyte[shape[0] * (int)depth];
        for (int c = 0; c < shape[0]; c++)
        {
            for (int p = 0; p < depth; p++)
            {
                int nibble = (bytes[c * stride + p / 2] >> (4 * (p & 1))) & 0xF;
                codes[c * depth + p] = (sbyte)((nibble ^ 8) - 8);
            }
        }
        return (codes, shape);
    }

    private static QuantizedWeightedLayer Weighted(SafeTensorsFile file, string name, string layer, QuantParams current,
        HashSet<string> used, WeightedFactory create, int rank)
    {
        int bits = WeightBits(file, name, layer, used);
        sbyte[] codes;
        int[] weightShape;
        if (bits == Int4Bits)
        {
            (codes, weightShape) = Int4Weights(file, name, layer, used, rank);
        }
        else
        {
            SafeTensor weight = FloatTensor(file, name, $"{layer}.weight", SafeTensorDType.I8, used);
            if (weight.Shape.Length != rank || weight.Shape.Any(d => d <= 0))
            {
                throw new InvalidDataException($"{name}: tensor '{layer}.weight' has shape [{string.Join(", ", weight.Shape)}], expected {rank} positive dimensions.");
            }
            codes = weight.ToSBytes();
            weightShape = weight.Shape;
            int lowest = -(1 << (bits - 1)), highest = (1 << (bits - 1)) - 1;
            int outside = Array.FindIndex(codes, q => q < lowest || q > highest);
            if (outside >= 0)
            {
                throw new InvalidDataException(
                    $"{name}: tensor '{layer}.weight' holds {codes[outside]} at index {outside}, outside the {bits}-bit range [{lowest}, {highest}] of '{layer}.weight_bits'.");
            }
        }
        int outFeatures = weightShape[0];
        float[] scales = Vector(file, name, $"{layer}.weight_scale", SafeTensorDType.F32, outFeatures, used).ToFloats();
        int badScale = Array.FindIndex(scales, v => !(v > 0f) || !float.IsFinite(v));
        if (badScale >= 0)
        {
            throw new InvalidDataException($"{name}: tensor '{layer}.weight_scale' holds {scales[badScale]} at index {badScale}; a scale must be finite and > 0.");
        }
        int[] zeroPoints = Vector(file, name, $"{layer}.weight_zero_point", SafeTensorDType.I32, scales.Length, used).ToInt32s();
        int badZeroPoint = Array.FindIndex(zeroPoints, z => z < -(1 << (bits - 1)) || z >= 1 << (bits - 1));
        if (badZeroPoint >= 0)
        {
            throw new InvalidDataException(
                $"{name}: tensor '{layer}.weight_zero_point' holds {zeroPoints[badZeroPoint]} at index {badZeroPoint}, outside the {bits}-bit range [{-(1 << (bits - 1))}, {(1 << (bits - 1)) - 1}].");
        }
        int[] bias = Vector(file, name, $"{layer}.bias", SafeTensorDType.I32, outFeatures, used).ToInt32s();
        if (bias.Length != outFeatures)
        {
            throw new InvalidDataException($"{name}: tensor '{layer}.bias' has {bias.Length} values for {outFeatures} outputs.");
        }
        QuantParams input = Activation(file, name, $"{layer}.input_scale", $"{layer}.input_zero_point", used);
        if (input.Scale != current.Scale || input.ZeroPoint != current.ZeroPoint)
        {
            throw new InvalidDataException(
                $"{name}: tensor '{layer}.input_scale' / '{layer}.input_zero_point' ({input.Scale}, {input.ZeroPoint}) disagree with the activation the previous layer produces ({current.Scale}, {current.ZeroPoint}).");
        }
        QuantParams output = Activation(file, name, $"{layer}.output_scale", $"{layer}.output_zero_point", used);
        return create(input, output, codes, weightShape, scales, zeroPoints, bias, bits);
    }

    private static QuantParams Activation(SafeTensorsFile file, string name, string scaleName, string zeroPointName, HashSet<string> used)
    {
        float scale = Vector(file, name, scaleName, SafeTensorDType.F32, 1, used).ToFloats()[0];
        int zeroPoint = Vector(file, name, zeroPointName, SafeTensorDType.I32, 1, used).ToInt32s()[0];
        if (!(scale > 0f) || !float.IsFinite(scale))
        {
            throw new InvalidDataException($"{name}: tensor '{scaleName}' is {scale}; a scale must be finite and > 0.");
        }
        if (zeroPoint < 0 || zeroPoint > 255)
        {
            throw new InvalidDataException($"{name}: tensor '{zeroPointName}' is {zeroPoint}, outside uint8 [0, 255].");
        }
        return new QuantParams(scale, zeroPoint, 0, 255);
    }

    // A rank-1 tensor of `length` values, or of 1 value (per-tensor parameters).
    private static SafeTensor Vector(SafeTensorsFile file, string name, string tensorName, SafeTensorDType dtype, int length, HashSet<string> used)
    {
        SafeTensor t = FloatTensor(file, name, tensorName, dtype, used);
        if (t.Shape.Length != 1 || (t.Shape[0] != length && t.Shape[0] != 1))
        {
            throw new InvalidDataException($"{name}: tensor '{tensorName}' has shape [{string.Join(", ", t.Shape)}], expected [{length}]{(length != 1 ? " or [1]" : "")}.");
        }
        return t;
    }

    private static SafeTensor FloatTensor(SafeTensorsFile file, string name, string tensorName, SafeTensorDType dtype, HashSet<string> used)
    {
        if (!file.TryGet(tensorName, out SafeTensor tensor))
        {
            throw new InvalidDataException($"{name}: tensor '{tensorName}' is missing.");
        }
        if (tensor.DType != dtype)
        {
            throw new InvalidDataException($"{name}: tensor '{tensorName}' is {tensor.DType}, expected {dtype}.");
        }
        if (!used.Add(tensorName))
        {
            throw new InvalidDataException($"{name}: tensor '{tensorName}' is used by two layers (duplicate layer name).");
        }
        return tensor;
    }

    private static string Meta(SafeTensorsFile file, string name, string key) =>
        file.Metadata.TryGetValue(key, out string? value) ? value : throw new InvalidDataException($"{name}: metadata '{key}' is missing.");

    private static float MetaFloat(SafeTensorsFile file, string name, string key)
    {
        string text = Meta(file, name, key);
        return float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float value)
            ? value
            : throw new InvalidDataException($"{name}: metadata '{key}' = '{text}' is not a number.");
    }

    private static int[] ParseInts(string text, string name, string what)
    {
        string[] parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        int[] values = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i]))
            {
                throw new InvalidDataException($"{name}: '{what}' has '{parts[i]}', which is not an integer.");
            }
        }
        return values;
    }
}
