using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>
/// Int8 convolution (cross-correlation, zero padding, as <see cref="Layers.Conv2d"/>), one sample at a time:
/// <code>
///   packed  = pack(im2col(x[C, H, W]))          taps outside the image read the input zero point (real 0)
///   acc     = W[OC, C kh kw] packed             exact int8 GEMM, int32 [OC, OH OW]
///   y[OC, OH, OW] = requantize(acc)             fixed-point rescale, + zero point, clamp (fused ReLU)
/// </code>
/// </summary>
public sealed class QuantizedConv2d : QuantizedWeightedLayer
{
    /// <summary>A convolution with weight codes [OC, C, kh, kw]; see <see cref="QuantizedWeightedLayer"/> for the arithmetic.</summary>
    public QuantizedConv2d(string name, QuantParams input, QuantParams output, sbyte[] weights, int[] weightShape,
        float[] weightScales, int[] weightZeroPoints, int[] bias, bool fusedRelu, int stride, int padding)
        : base(name, input, output, weights, CheckShape(name, weightShape), weightScales, weightZeroPoints, bias, fusedRelu)
    {
        if (stride <= 0 || padding < 0)
        {
            throw new ArgumentException($"{name}: stride {stride} and padding {padding} must be > 0 and >= 0.");
        }
        InChannels = weightShape[1];
        KernelSize = weightShape[2];
        Stride = stride;
        Padding = padding;
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Square kernel size.</summary>
    public int KernelSize { get; }

    /// <summary>Stride in both directions.</summary>
    public int Stride { get; }

    /// <summary>Zero padding on every side.</summary>
    public int Padding { get; }

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> sampleShape)
    {
        ConvGeometry g = Geometry(sampleShape);
        return [OutFeatures, g.OutHeight, g.OutWidth];
    }

    /// <inheritdoc/>
    public override void Forward(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<byte> output, QuantizedWorkspace workspace)
    {
        ConvGeometry g = Geometry(sampleShape);
        int pixels = g.ColumnCols;
        for (int s = 0; s < samples; s++)
        {
            Span<int> acc = Convolve(input.Slice(s * g.InputSize, g.InputSize), g, workspace);   // [OC, OH OW]
            Span<byte> y = output.Slice(s * OutFeatures * pixels, OutFeatures * pixels);         // [OC, OH, OW]
            for (int c = 0; c < OutFeatures; c++)
            {
                Requantize(c, acc.Slice(c * pixels, pixels), y.Slice(c * pixels, pixels));
            }
        }
    }

    /// <inheritdoc/>
    public override void ForwardAccumulators(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output, QuantizedWorkspace workspace)
    {
        ConvGeometry g = Geometry(sampleShape);
        int pixels = g.ColumnCols;
        for (int s = 0; s < samples; s++)
        {
            Span<int> acc = Convolve(input.Slice(s * g.InputSize, g.InputSize), g, workspace);
            Span<float> y = output.Slice(s * OutFeatures * pixels, OutFeatures * pixels);
            for (int c = 0; c < OutFeatures; c++)
            {
                for (int j = 0; j < pixels; j++)
                {
                    y[c * pixels + j] = Dequantize(c, acc[c * pixels + j]);
                }
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"QuantizedConv2d({InChannels}, {OutFeatures}, kernel_size={KernelSize}, stride={Stride}, padding={Padding}" +
        $"{(FusedRelu ? ", relu" : "")}, {(PerChannel ? "per-channel" : "per-tensor")})";

    private Span<int> Convolve(ReadOnlySpan<byte> image, in ConvGeometry g, QuantizedWorkspace workspace)
    {
        Span<byte> packed = workspace.Packed(ConvPackQ8.PackedLength(g, Variant));
        ConvPackQ8.Pack(image, g, (byte)Input.ZeroPoint, workspace.Scratch(ConvPackQ8.ScratchLength(g)), packed, Variant);
        return Accumulate(packed, g.ColumnCols, workspace);
    }

    private ConvGeometry Geometry(ReadOnlySpan<int> sampleShape)
    {
        if (sampleShape.Length != 3 || sampleShape[0] != InChannels)
        {
            throw new ArgumentException($"{Name}: expected an input [{InChannels}, H, W], got [{string.Join(", ", sampleShape.ToArray())}].");
        }
        var g = new ConvGeometry(InChannels, sampleShape[1], sampleShape[2], KernelSize, KernelSize, Stride, Stride, Padding, Padding);
        g.Validate(Name);
        return g;
    }

    private static int[] CheckShape(string name, int[] shape)
    {
        if (shape.Length != 4 || shape.Any(d => d <= 0) || shape[2] != shape[3])
        {
            throw new ArgumentException($"{name}: convolution weight shape [{string.Join(", ", shape)}] is not [out, in, k, k].");
        }
        return shape;
    }
}
