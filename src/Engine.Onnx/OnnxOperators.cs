namespace Engine.Onnx;

/// <summary>Convolution parameters this engine's square, symmetric Conv2d can express.</summary>
internal readonly record struct ConvShape(int Kernel, int Stride, int Padding);

/// <summary>
/// The attribute rules of the supported operators (ONNX operator specifications, opset 13 onwards), shared by the
/// float and int8 importers: each reads the attributes and refuses, naming the node, what this engine's layers
/// cannot express.
/// </summary>
internal static class OnnxOperators
{
    /// <summary>Largest kernel, stride or padding accepted (hostile values must not reach the geometry arithmetic).</summary>
    private const long MaxWindow = 1 << 12;

    public static long Int(OnnxGraph g, OnnxNode node, string name, long fallback) =>
        Attribute(g, node, name, OnnxFields.AttributeInt, "an int", fallback, a => a.I);

    public static float Float(OnnxGraph g, OnnxNode node, string name, float fallback) =>
        Attribute(g, node, name, OnnxFields.AttributeFloat, "a float", fallback, a => a.F);

    public static long[]? Ints(OnnxGraph g, OnnxNode node, string name) =>
        Attribute<long[]?>(g, node, name, OnnxFields.AttributeInts, "a list of ints", null, a => a.Ints);

    public static string String(OnnxGraph g, OnnxNode node, string name, string fallback) =>
        Attribute(g, node, name, OnnxFields.AttributeString, "a string", fallback, a => a.S);

    // The attribute's value when present (a missing type field, 0, is taken on trust), else the fallback.
    private static T Attribute<T>(OnnxGraph g, OnnxNode node, string name, int type, string kind, T fallback, Func<OnnxAttributeValue, T?> value)
    {
        if (!node.Attributes.TryGetValue(name, out OnnxAttributeValue? a))
        {
            return fallback;
        }
        return (a.Type == type || a.Type == 0) && value(a) is { } v ? v : throw g.Error(node, $"attribute '{name}' must be {kind}.");
    }

    /// <summary>
    /// Kernel, stride and padding of a Conv over a [C, H, W] input with weights [O, C, kh, kw]: group 1, dilations 1,
    /// a square kernel, equal strides and the same padding on all four sides (explicit pads, auto_pad NOTSET or VALID, or
    /// SAME_UPPER / SAME_LOWER where they pad symmetrically).
    /// </summary>
    public static ConvShape Conv(OnnxGraph g, OnnxNode node, long[] weightDims, int[] input)
    {
        if (weightDims.Length != 4 || weightDims.Any(d => d <= 0))
        {
            throw g.Error(node, $"weights of shape [{string.Join(", ", weightDims)}] are not [out, in, kh, kw].");
        }
        if (input.Length != 3 || input[0] != weightDims[1])
        {
            throw g.Error(node, $"weights [{string.Join(", ", weightDims)}] do not fit an input of per-sample shape [{string.Join(", ", input)}].");
        }
        if (Int(g, node, "group", 1) != 1)
        {
            throw g.Error(node, $"group {Int(g, node, "group", 1)} is not supported (only group = 1).");
        }
        if (Ints(g, node, "dilations") is { } dilations && dilations.Any(d => d != 1))
        {
            throw g.Error(node, $"dilations [{string.Join(", ", dilations)}] are not supported (only 1).");
        }
        if (weightDims[2] != weightDims[3])
        {
            throw g.Error(node, $"a {weightDims[2]}x{weightDims[3]} kernel is not supported (only square kernels).");
        }
        if (Ints(g, node, "kernel_shape") is { } kernelShape && !kernelShape.SequenceEqual(weightDims[2..]))
        {
            throw g.Error(node, $"kernel_shape [{string.Join(", ", kernelShape)}] disagrees with the weights [{string.Join(", ", weightDims)}].");
        }
        int kernel = Checked(g, node, "kernel", weightDims[2]);
        (int stride, int padding) = StrideAndPadding(g, node, kernel, input);
        return new ConvShape(kernel, stride, padding);
    }

    /// <summary>Kernel and stride of an AveragePool without padding (count_include_pad is then irrelevant).</summary>
    public static (int Kernel, int Stride) AveragePool(OnnxGraph g, OnnxNode node, int[] input)
    {
        if (input.Length != 3)
        {
            throw g.Error(node, $"expects an image input, got per-sample shape [{string.Join(", ", input)}].");
        }
        long[] kernelShape = Ints(g, node, "kernel_shape") ?? throw g.Error(node, "kernel_shape is missing.");
        if (kernelShape.Length != 2 || kernelShape[0] != kernelShape[1])
        {
            throw g.Error(node, $"kernel_shape [{string.Join(", ", kernelShape)}] is not supported (only square 2-D windows).");
        }
        if (Int(g, node, "ceil_mode", 0) != 0)
        {
            throw g.Error(node, "ceil_mode 1 is not supported.");
        }
        if (Ints(g, node, "dilations") is { } dilations && dilations.Any(d => d != 1))
        {
            throw g.Error(node, $"dilations [{string.Join(", ", dilations)}] are not supported (only 1).");
        }
        int kernel = Checked(g, node, "kernel", kernelShape[0]);
        (int stride, int padding) = StrideAndPadding(g, node, kernel, input);
        if (padding != 0)
        {
            throw g.Error(node, $"padding {padding} is not supported for pooling (only 0).");
        }
        return (kernel, stride);
    }

    /// <summary>transB of a Gemm with alpha = beta = 1 and transA = 0.</summary>
    public static bool Gemm(OnnxGraph g, OnnxNode node)
    {
        if (Float(g, node, "alpha", 1f) != 1f || Float(g, node, "beta", 1f) != 1f)
        {
            throw g.Error(node, "alpha and beta other than 1 are not supported.");
        }
        if (Int(g, node, "transA", 0) != 0)
        {
            throw g.Error(node, "transA = 1 is not supported.");
        }
        long transB = Int(g, node, "transB", 0);
        return transB is 0 or 1 ? transB == 1 : throw g.Error(node, $"transB {transB} is not 0 or 1.");
    }

    /// <summary>
    /// Whether a Flatten, Reshape or Identity turns a per-sample shape into a feature vector (true) or leaves it as it is
    /// (false); anything else is refused. Flatten must use axis 1; Reshape a constant shape [N, -1 or 0, F] of two values
    /// whose second is the per-sample size (or -1).
    /// </summary>
    public static bool Flattens(OnnxGraph g, OnnxNode node, int[] input)
    {
        long features = 1;
        foreach (int d in input)
        {
            features *= d;
        }
        switch (node.OpType)
        {
            case "Identity":
                return false;
            case "Flatten":
            {
                long axis = Int(g, node, "axis", 1);
                if (axis != 1)
                {
                    throw g.Error(node, $"axis {axis} is not supported (only 1: [N, ...] to [N, features]).");
                }
                return input.Length != 1;
            }
            case "Reshape":
            {
                if (Int(g, node, "allowzero", 0) != 0)
                {
                    throw g.Error(node, "allowzero = 1 is not supported.");
                }
                ConstantValue shapeValue = g.Constant(node, 1);
                long[] shape = shapeValue.FloatTensor.ToInt64s($"{g.File}: {node.Label}");
                bool batchOk = shape.Length == 2 && (shape[0] is -1 or 0 || shape[0] > 0);
                bool featuresOk = shape.Length == 2 && (shape[1] == features || (shape[1] == -1 && shape[0] != -1));
                if (!batchOk || !featuresOk)
                {
                    throw g.Error(node,
                        $"shape [{string.Join(", ", shape)}] is not supported (only [N or -1 or 0, {features}] for an input of per-sample shape [{string.Join(", ", input)}]).");
                }
                return input.Length != 1;
            }
            default:
                throw g.Error(node, "is not a reshaping operator.");
        }
    }

    private static (int Stride, int Padding) StrideAndPadding(OnnxGraph g, OnnxNode node, int kernel, int[] input)
    {
        long[] strides = Ints(g, node, "strides") ?? [1, 1];
        if (strides.Length != 2 || strides[0] != strides[1])
        {
            throw g.Error(node, $"strides [{string.Join(", ", strides)}] are not supported (only equal strides in both directions).");
        }
        int stride = Checked(g, node, "stride", strides[0]);
        string autoPad = String(g, node, "auto_pad", "NOTSET");
        long[]? pads = Ints(g, node, "pads");
        int padding;
        switch (autoPad)
        {
            case "NOTSET":
                pads ??= [0, 0, 0, 0];
                if (pads.Length != 4 || pads.Any(p => p != pads[0]) || pads[0] < 0 || pads[0] > MaxWindow)
                {
                    throw g.Error(node, $"pads [{string.Join(", ", pads)}] are not supported (only the same padding on all four sides).");
                }
                padding = (int)pads[0];
                break;
            case "VALID":
                padding = 0;
                break;
            case "SAME_UPPER":
            case "SAME_LOWER":
            {
                // Output ceil(in / stride); the total padding splits evenly only when it is even and the same for both axes.
                long totalH = Math.Max(0, ((long)input[1] + stride - 1) / stride * stride - stride + kernel - input[1]);
                long totalW = Math.Max(0, ((long)input[2] + stride - 1) / stride * stride - stride + kernel - input[2]);
                if (totalH != totalW || totalH % 2 != 0)
                {
                    throw g.Error(node, $"auto_pad {autoPad} pads {totalH} rows and {totalW} columns here; only equal, even totals (symmetric padding) are supported.");
                }
                padding = (int)(totalH / 2);
                break;
            }
            default:
                throw g.Error(node, $"auto_pad '{autoPad}' is not supported.");
        }
        if (autoPad != "NOTSET" && Ints(g, node, "pads") is not null)
        {
            throw g.Error(node, $"auto_pad {autoPad} and explicit pads exclude each other.");
        }
        if (input[1] + 2L * padding < kernel || input[2] + 2L * padding < kernel)
        {
            throw g.Error(node, $"a {kernel}x{kernel} window does not fit a {input[1]}x{input[2]} input with padding {padding}.");
        }
        return (stride, padding);
    }

    private static int Checked(OnnxGraph g, OnnxNode node, string what, long value) =>
        value is > 0 and <= MaxWindow ? (int)value : throw g.Error(node, $"{what} {value} is out of range (1 to {MaxWindow}).");
}
