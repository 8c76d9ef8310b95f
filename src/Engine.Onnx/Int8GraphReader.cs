using Engine.Kernels;
using Engine.Quantization;

namespace Engine.Onnx;

/// <summary>
/// Builds a <see cref="QuantizedNetwork"/> from a resolved QDQ graph by walking its chain with a small state machine.
/// The value flowing along the chain is, at each point, one of:
/// <code>
///   Input       the float graph input, before its QuantizeLinear
///   Codes(p)    uint8 codes with scale and zero point p
///   Real(p)     DequantizeLinear of Codes(p): a float view of the same codes
///   Weighted    the float output of Conv / Gemm / MatMul(+Add) over Real(p) with DequantizeLinear'd int8 weights,
///               optionally through Relu; QuantizeLinear(q) turns it into a layer with output q
///   Pooled, Rectified   AveragePool (optionally followed by the exporter's Add that rounds ties up) or Relu over
///               Real(p); QuantizeLinear must keep p (our layers keep their scale)
///   Accumulator MatMulInteger(Codes(p), int8 weights) (+ Add of an int32 bias), then Cast to float; a Mul by
///               input_scale x weight_scale[c] makes it the int32-accumulator logits
/// </code>
/// Flatten, Reshape and Identity pass Codes or Real through. The graph output must be float: Real after the last layer
/// (dequantized-output logits), or a Weighted value or rescaled accumulators (int32-accumulator logits).
/// </summary>
internal sealed class Int8GraphReader(OnnxGraph g)
{
    private enum State { Input, Codes, Real, Weighted, Pooled, Rectified, Accumulator, AccumulatorFloat, Logits }

    // The weighted layer being assembled: int8 codes in the float weight's layout [out, in(, k, k)].
    private sealed class WeightedSpec
    {
        public required OnnxNode Node { get; init; }
        public required sbyte[] Codes { get; init; }
        public required int[] Shape { get; init; }
        public required float[] Scales { get; set; }
        public required int[] ZeroPoints { get; init; }
        public ConvShape? Conv { get; init; }
        public ConstantValue? Bias { get; set; }
        public OnnxNode? BiasNode { get; set; }
        public int[]? IntegerBias { get; set; }
        public bool Relu { get; set; }
        public int OutFeatures => Shape[0];
    }

    private readonly LayerNames _names = new();
    private readonly List<QuantizedLayer> _layers = [];

    public QuantizedNetwork Read(int[] inputShape, float mean, float std)
    {
        State state = State.Input;
        QuantParams input = default, current = default;
        int[] shape = inputShape;
        WeightedSpec? weighted = null;
        OnnxNode? passThrough = null;
        (int Kernel, int Stride) pool = default;
        bool tiesNudged = false;
        foreach (OnnxNode node in g.Chain)
        {
            switch (state, node.OpType)
            {
                case (State.Input, "QuantizeLinear"):
                    input = current = Activation(node);
                    state = State.Codes;
                    break;
                case (State.Input, _):
                    throw g.Error(node, "an int8 graph must begin with QuantizeLinear on its input.");

                case (State.Codes, "DequantizeLinear"):
                    RequireSame(node, current, Activation(node), "DequantizeLinear reads its codes with other parameters than they were written with");
                    state = State.Real;
                    break;
                case (State.Codes or State.Real, "Flatten" or "Reshape" or "Identity"):
                    if (OnnxOperators.Flattens(g, node, shape))
                    {
                        shape = AddLayer(node, new QuantizedFlatten(_names.For(node, "flatten"), current), shape);
                    }
                    break;
                case (State.Codes, "MatMulInteger"):
                    weighted = IntegerLinear(node, current, shape);
                    state = State.Accumulator;
                    break;

                case (State.Real, "Conv"):
                    weighted = Convolution(node, shape);
                    state = State.Weighted;
                    break;
                case (State.Real, "Gemm"):
                    weighted = Linear(node, OnnxOperators.Gemm(g, node), shape);
                    weighted.Bias = g.OptionalConstant(node, 2);
                    weighted.BiasNode = node;
                    state = State.Weighted;
                    break;
                case (State.Real, "MatMul"):
                    weighted = Linear(node, transposed: false, shape);
                    state = State.Weighted;
                    break;
                case (State.Real, "AveragePool"):
                    pool = OnnxOperators.AveragePool(g, node, shape);
                    passThrough = node;
                    tiesNudged = false;
                    state = State.Pooled;
                    break;
                case (State.Real, "Relu"):
                    passThrough = node;
                    state = State.Rectified;
                    break;
                case (State.Real, "QuantizeLinear"):
                    RequireSame(node, current, Activation(node), "requantizing to other parameters without a layer is not supported");
                    state = State.Codes;
                    break;

                case (State.Weighted, "Add") when weighted!.Node.OpType == "MatMul" && weighted.Bias is null && !weighted.Relu:
                    weighted.Bias = g.Constant(node, node.Inputs[0] == weighted.Node.Outputs[0] ? 1 : 0);
                    weighted.BiasNode = node;
                    break;
                case (State.Weighted, "Relu") when !weighted!.Relu:
                    weighted.Relu = true;
                    break;
                case (State.Weighted, "QuantizeLinear"):
                {
                    QuantParams output = Activation(node);
                    shape = AddLayer(weighted!.Node, Build(weighted, current, output), shape);
                    current = output;
                    state = State.Codes;
                    break;
                }
                case (State.Pooled, "Add") when !tiesNudged:
                    RequireTieNudge(node, current, pool.Kernel);
                    tiesNudged = true;
                    break;
                case (State.Pooled, "QuantizeLinear"):
                    RequireSame(node, current, Activation(node), "average pooling must keep its input's scale and zero point");
                    shape = AddLayer(passThrough!, new QuantizedAvgPool2d(_names.For(passThrough!, "pool"), current, pool.Kernel, pool.Stride), shape);
                    state = State.Codes;
                    break;
                case (State.Rectified, "QuantizeLinear"):
                    RequireSame(node, current, Activation(node), "a ReLU that follows no weighted layer must keep its input's scale and zero point");
                    shape = AddLayer(passThrough!, new QuantizedReLU(_names.For(passThrough!, "relu"), current), shape);
                    state = State.Codes;
                    break;

                case (State.Accumulator, "Add") when weighted!.IntegerBias is null:
                    weighted.IntegerBias = IntegerBias(node, weighted);
                    break;
                case (State.Accumulator, "Cast"):
                    if (OnnxOperators.Int(g, node, "to", 0) != (long)OnnxDataType.Float)
                    {
                        throw g.Error(node, "int32 accumulators must be cast to float.");
                    }
                    state = State.AccumulatorFloat;
                    break;
                case (State.AccumulatorFloat, "Mul"):
                    weighted!.Scales = WeightScalesFromLogitScales(node, weighted, current);
                    weighted.IntegerBias ??= new int[weighted.OutFeatures];
                    shape = AddLayer(weighted.Node, Build(weighted, current, UnusedOutput), shape);
                    state = State.Logits;
                    break;

                default:
                    throw g.Error(node, $"is not supported at this point of an int8 graph (after {Describe(state)}).");
            }
        }
        LogitsMode logits;
        switch (state)
        {
            case State.Logits:
                logits = LogitsMode.Int32Accumulator;
                break;
            case State.Weighted:
                // Float output of the last weighted layer: in QDQ terms sx sw[c] (acc + bias), the int32-accumulator logits;
                // a Relu after it becomes the layer's fused ReLU, which clamps those logits at zero as the float Relu does.
                shape = AddLayer(weighted!.Node, Build(weighted, current, UnusedOutput), shape);
                logits = LogitsMode.Int32Accumulator;
                break;
            case State.Real when _layers.Count > 0:
                logits = LogitsMode.DequantizedOutput;
                break;
            default:
                throw new InvalidDataException($"{g.File}: the graph ends with {Describe(state)}; its output must be float logits after at least one layer.");
        }
        try
        {
            return new QuantizedNetwork(_layers, input, inputShape, mean, std, logits);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{g.File}: the layers do not fit together: {e.Message}", e);
        }
    }

    // The output quantization of a last layer whose logits come from its accumulators: the graph has none, and it is never used.
    private static readonly QuantParams UnusedOutput = new(1f, 0, 0, 255);

    private static string Describe(State state) => state switch
    {
        State.Input => "the float input",
        State.Codes => "uint8 codes",
        State.Real => "dequantized codes",
        State.Weighted => "a weighted layer's float output",
        State.Pooled => "an AveragePool",
        State.Rectified => "a Relu",
        State.Accumulator => "int32 accumulators",
        State.AccumulatorFloat => "accumulators cast to float",
        _ => "the logits",
    };

    private int[] AddLayer(OnnxNode node, QuantizedLayer layer, int[] shape)
    {
        try
        {
            int[] output = layer.OutputShape(shape);
            _layers.Add(layer);
            return output;
        }
        catch (ArgumentException e)
        {
            throw g.Error(node, e.Message);
        }
    }

    // Scale and uint8 zero point of a QuantizeLinear or DequantizeLinear on an activation (inputs 1 and 2).
    private QuantParams Activation(OnnxNode node)
    {
        string context = $"{g.File}: {node.Label}";
        OnnxTensor scale = g.Constant(node, 1).FloatTensor;
        OnnxTensor? zeroPoint = g.OptionalConstant(node, 2)?.FloatTensor;
        if (scale.ElementCount != 1 || (zeroPoint is not null && zeroPoint.ElementCount != 1))
        {
            throw g.Error(node, "activations must be quantized per tensor (one scale and one zero point).");
        }
        if (zeroPoint is not null && zeroPoint.DataType != OnnxDataType.UInt8)
        {
            throw g.Error(node, $"activations must be uint8 (the zero point is {zeroPoint.DataType}).");
        }
        float s = scale.FloatAt(0, context);
        if (!(s > 0f) || !float.IsFinite(s))
        {
            throw g.Error(node, $"scale {s} must be finite and > 0.");
        }
        return new QuantParams(s, zeroPoint?.ToBytes(context)[0] ?? 0, 0, 255);
    }

    private void RequireSame(OnnxNode node, QuantParams expected, QuantParams actual, string problem)
    {
        if (BitConverter.SingleToInt32Bits(expected.Scale) != BitConverter.SingleToInt32Bits(actual.Scale) || expected.ZeroPoint != actual.ZeroPoint)
        {
            throw g.Error(node, $"{problem}: scale {actual.Scale:R} / zero point {actual.ZeroPoint}, expected {expected.Scale:R} / {expected.ZeroPoint}.");
        }
    }

    // The exporter's Add between AveragePool and QuantizeLinear: a positive constant below half the mean's resolution
    // (scale / window), which only decides exact ties upward, as QuantizedAvgPool2d rounds them anyway.
    private void RequireTieNudge(OnnxNode node, QuantParams current, int kernel)
    {
        int index = node.Inputs.FindIndex(g.Constants.ContainsKey);
        OnnxTensor nudge = index >= 0 ? g.Constants[node.Inputs[index]].FloatTensor : throw g.Error(node, "expected a constant addend.");
        float value = nudge.ElementCount == 1 ? nudge.FloatAt(0, Context(node)) : float.NaN;
        if (!(value > 0f && value < current.Scale / (2f * kernel * kernel)))
        {
            throw g.Error(node, $"after AveragePool, only the rounding nudge (one positive value below scale / (2 window) = {current.Scale / (2f * kernel * kernel):R}) is supported.");
        }
    }

    private WeightedSpec Convolution(OnnxNode node, int[] shape)
    {
        Dequantization weight = QuantizedWeight(node);
        ConvShape conv = OnnxOperators.Conv(g, node, weight.Codes.Dims, shape);
        (float[] scales, int[] zeroPoints) = WeightScales(weight, outputAxis: 0);
        return new WeightedSpec
        {
            Node = node, Codes = weight.Codes.ToSBytes(Context(node)), Shape = [.. weight.Codes.Dims.Select(d => (int)d)],
            Scales = scales, ZeroPoints = zeroPoints, Conv = conv, Bias = g.OptionalConstant(node, 2), BiasNode = node,
        };
    }

    private WeightedSpec Linear(OnnxNode node, bool transposed, int[] shape)
    {
        Dequantization weight = QuantizedWeight(node);
        (int outFeatures, int inFeatures) = LinearShape(node, weight.Codes.Dims, transposed, shape);
        (float[] scales, int[] zeroPoints) = WeightScales(weight, outputAxis: transposed ? 0 : 1);
        sbyte[] codes = weight.Codes.ToSBytes(Context(node));
        return new WeightedSpec
        {
            Node = node, Codes = transposed ? codes : Transpose(codes, inFeatures, outFeatures), Shape = [outFeatures, inFeatures],
            Scales = scales, ZeroPoints = zeroPoints,
        };
    }

    // MatMulInteger(codes [N, in], int8 weights [in, out], a zero point equal to the codes', int8 weight zero points).
    private WeightedSpec IntegerLinear(OnnxNode node, QuantParams current, int[] shape)
    {
        string context = Context(node);
        OnnxTensor weight = g.Constant(node, 1).FloatTensor;
        if (weight.DataType != OnnxDataType.Int8)
        {
            throw g.Error(node, $"weights must be int8, not {weight.DataType}.");
        }
        (int outFeatures, int inFeatures) = LinearShape(node, weight.Dims, transposed: false, shape);
        OnnxTensor? inputZeroPoint = g.OptionalConstant(node, 2)?.FloatTensor;
        int zx = inputZeroPoint is null ? 0
            : inputZeroPoint is { DataType: OnnxDataType.UInt8, ElementCount: 1 } ? inputZeroPoint.ToBytes(context)[0]
            : throw g.Error(node, "the input zero point must be one uint8 value.");
        if (zx != current.ZeroPoint)
        {
            throw g.Error(node, $"input zero point {zx} differs from the codes' zero point {current.ZeroPoint}.");
        }
        OnnxTensor? weightZeroPoint = g.OptionalConstant(node, 3)?.FloatTensor;
        int[] zeroPoints = [0];
        if (weightZeroPoint is not null)
        {
            if (weightZeroPoint.DataType != OnnxDataType.Int8 || (weightZeroPoint.ElementCount != 1 && weightZeroPoint.ElementCount != outFeatures))
            {
                throw g.Error(node, $"weight zero points must be int8, one or {outFeatures} of them.");
            }
            zeroPoints = [.. weightZeroPoint.ToSBytes(context).Select(z => (int)z)];
        }
        return new WeightedSpec
        {
            Node = node, Codes = Transpose(weight.ToSBytes(context), inFeatures, outFeatures), Shape = [outFeatures, inFeatures],
            Scales = new float[zeroPoints.Length], ZeroPoints = zeroPoints,
        };
    }

    private (int Out, int In) LinearShape(OnnxNode node, long[] dims, bool transposed, int[] shape)
    {
        if (shape.Length != 1)
        {
            throw g.Error(node, $"expects a [N, features] input, got per-sample shape [{string.Join(", ", shape)}] (flatten first).");
        }
        if (dims.Length != 2 || dims.Any(d => d <= 0) || dims[transposed ? 1 : 0] != shape[0])
        {
            throw g.Error(node, $"weights [{string.Join(", ", dims)}] do not fit {shape[0]} input features.");
        }
        return ((int)dims[transposed ? 0 : 1], shape[0]);
    }

    private Dequantization QuantizedWeight(OnnxNode node)
    {
        ConstantValue weight = g.Constant(node, 1);
        Dequantization dq = weight.Dequantized
            ?? throw g.Error(node, "in an int8 graph, weights must be int8 codes behind a DequantizeLinear.");
        if (dq.Codes.DataType != OnnxDataType.Int8)
        {
            throw g.Error(node, $"weights must be int8 codes, not {dq.Codes.DataType}.");
        }
        return dq;
    }

    // Per-tensor (one scale) or per-channel scales along the weight's output axis, with int8 zero points.
    private (float[] Scales, int[] ZeroPoints) WeightScales(Dequantization weight, int outputAxis)
    {
        string context = Context(weight.Node);
        long rank = weight.Codes.Dims.Length;
        long axis = weight.Axis < 0 ? weight.Axis + rank : weight.Axis;
        long outputs = weight.Codes.Dims[outputAxis];
        float[] scales = weight.Scale.ToFloats(context);
        bool perTensor = scales.Length == 1 && weight.Scale.Dims.Length <= 1;
        if (!perTensor && (scales.Length != outputs || axis != outputAxis || weight.Scale.Dims.Length != 1))
        {
            throw g.Error(weight.Node, $"weight scales must be one value or one per output channel along axis {outputAxis} (found {scales.Length} along axis {axis}).");
        }
        int[] zeroPoints = new int[scales.Length];
        if (weight.ZeroPoint is not null)
        {
            if (weight.ZeroPoint.DataType != OnnxDataType.Int8 || weight.ZeroPoint.ElementCount != scales.Length)
            {
                throw g.Error(weight.Node, $"weight zero points must be int8, as many as the scales ({scales.Length}).");
            }
            zeroPoints = [.. weight.ZeroPoint.ToSBytes(context).Select(z => (int)z)];
        }
        return (scales, zeroPoints);
    }

    // int32 bias codes: DequantizeLinear(int32, input_scale x weight_scale[c]), or a float bias quantized here, or none.
    private int[] BiasCodes(WeightedSpec w, QuantParams input)
    {
        if (w.IntegerBias is not null)
        {
            return w.IntegerBias;
        }
        int outputs = w.OutFeatures;
        if (w.Bias is null)
        {
            return new int[outputs];
        }
        OnnxNode node = w.BiasNode!;
        OnnxTensor values = w.Bias.Dequantized?.Codes ?? w.Bias.FloatTensor;
        long[] dims = values.Dims;
        if (values.ElementCount != outputs || dims.Length is 0 or > 2 || dims[^1] != outputs)
        {
            throw g.Error(node, $"bias of shape [{string.Join(", ", dims)}] does not fit {outputs} outputs.");
        }
        int[] codes = new int[outputs];
        if (w.Bias.Dequantized is { } dq)
        {
            string context = Context(dq.Node);
            if (dq.Codes.DataType != OnnxDataType.Int32)
            {
                throw g.Error(dq.Node, $"a quantized bias must be int32, not {dq.Codes.DataType}.");
            }
            if (dq.ZeroPoint is not null && dq.ZeroPoint.ToInt32s(context).Any(z => z != 0))
            {
                throw g.Error(dq.Node, "an int32 bias must have zero point 0.");
            }
            float[] scales = dq.Scale.ToFloats(context);
            if (scales.Length != 1 && scales.Length != outputs)
            {
                throw g.Error(dq.Node, $"{scales.Length} bias scales for {outputs} outputs.");
            }
            for (int c = 0; c < outputs; c++)
            {
                // The engine adds bias codes straight into accumulators of scale input_scale x weight_scale[c].
                float expected = input.Scale * WeightScale(w, c), actual = scales[scales.Length == 1 ? 0 : c];
                if (!(Math.Abs(actual - expected) <= 1e-5f * expected))
                {
                    throw g.Error(dq.Node, $"bias scale {actual:R} of output {c} is not input_scale x weight_scale = {expected:R}.");
                }
            }
            return dq.Codes.ToInt32s(context);
        }
        float[] real = values.ToFloats(Context(node));
        for (int c = 0; c < outputs; c++)
        {
            double code = Math.Round(real[c] / ((double)input.Scale * WeightScale(w, c)), MidpointRounding.AwayFromZero);
            codes[c] = code is >= int.MinValue and <= int.MaxValue ? (int)code : throw g.Error(node, $"bias {real[c]} of output {c} does not fit int32 codes.");
        }
        return codes;
    }

    private int[] IntegerBias(OnnxNode node, WeightedSpec w)
    {
        OnnxTensor bias = g.Constant(node, node.Inputs[0] == w.Node.Outputs[0] ? 1 : 0).FloatTensor;
        if (bias.DataType != OnnxDataType.Int32 || bias.ElementCount != w.OutFeatures || bias.Dims.Length is 0 or > 2 || bias.Dims[^1] != w.OutFeatures)
        {
            throw g.Error(node, $"the accumulators' bias must be int32 of shape [{w.OutFeatures}].");
        }
        return bias.ToInt32s(Context(node));
    }

    /// <summary>
    /// Weight scales from the logits' Mul by input_scale x weight_scale[c]. When that constant is itself a Mul of the
    /// input scale and the weight scales (as the exporter writes it) they are taken as they are; otherwise each is
    /// recovered by division and, where the float product does not come back exactly, by the nearest float that does.
    /// </summary>
    private float[] WeightScalesFromLogitScales(OnnxNode node, WeightedSpec w, QuantParams input)
    {
        string context = Context(node);
        ConstantValue scale = g.Constant(node, node.Inputs.Count > 1 && g.Constants.ContainsKey(node.Inputs[1]) ? 1 : 0);
        float[] products = scale.FloatTensor.ToFloats(context);
        if (products.Length != 1 && products.Length != w.OutFeatures)
        {
            throw g.Error(node, $"{products.Length} logit scales for {w.OutFeatures} outputs.");
        }
        if (scale.Factors is var (a, b))
        {
            foreach ((OnnxTensor single, OnnxTensor other) in new[] { (a, b), (b, a) })
            {
                if (single.ElementCount == 1 && single.DataType == OnnxDataType.Float
                    && BitConverter.SingleToInt32Bits(single.FloatAt(0, context)) == BitConverter.SingleToInt32Bits(input.Scale))
                {
                    return other.ToFloats(context);
                }
            }
        }
        float[] scales = new float[products.Length];
        for (int c = 0; c < scales.Length; c++)
        {
            float target = products[c], guess = target / input.Scale, best = guess;
            for (int step = 0; step < 8 && input.Scale * best != target; step++)
            {
                best = input.Scale * best < target ? MathF.BitIncrement(best) : MathF.BitDecrement(best);
            }
            scales[c] = input.Scale * best == target ? best : guess;
        }
        return scales;
    }

    private QuantizedWeightedLayer Build(WeightedSpec w, QuantParams input, QuantParams output)
    {
        int[] bias = BiasCodes(w, input);
        // MatMulInteger may give one zero point and per-channel scales, or the reverse: the layer wants as many of each.
        int count = Math.Max(w.Scales.Length, w.ZeroPoints.Length);
        float[] scales = w.Scales.Length == count ? w.Scales : [.. Enumerable.Repeat(w.Scales[0], count)];
        int[] zeroPoints = w.ZeroPoints.Length == count ? w.ZeroPoints : [.. Enumerable.Repeat(w.ZeroPoints[0], count)];
        try
        {
            return w.Conv is { } conv
                ? new QuantizedConv2d(_names.For(w.Node, "conv"), input, output, w.Codes, w.Shape, scales, zeroPoints, bias, w.Relu,
                    conv.Stride, conv.Padding)
                : new QuantizedLinear(_names.For(w.Node, "fc"), input, output, w.Codes, w.Shape, scales, zeroPoints, bias, w.Relu);
        }
        catch (ArgumentException e)
        {
            throw g.Error(w.Node, e.Message);
        }
    }

    private static float WeightScale(WeightedSpec w, int c) => w.Scales.Length == 1 ? w.Scales[0] : w.Scales[c];

    private static sbyte[] Transpose(sbyte[] codes, int rows, int columns)
    {
        sbyte[] transposed = new sbyte[codes.Length];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                transposed[c * rows + r] = codes[r * columns + c];
            }
        }
        return transposed;
    }

    private string Context(OnnxNode node) => $"{g.File}: {node.Label}";
}
