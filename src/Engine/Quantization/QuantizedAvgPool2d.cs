using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>
/// Integer average pooling (no padding): each output code is the rounded mean of its window's stored codes. Input and
/// output share scale and zero point, as in TFLite, so mean(scale (q - z)) = scale (mean(q) - z) needs no rescaling.
/// </summary>
public sealed class QuantizedAvgPool2d(string name, QuantParams parameters, int kernelSize, int stride)
    : QuantizedLayer(name, parameters, parameters)
{
    /// <summary>Square window size.</summary>
    public int KernelSize { get; } = kernelSize > 0 ? kernelSize : throw new ArgumentException($"{name}: kernel size {kernelSize} must be > 0.");

    /// <summary>Step between windows.</summary>
    public int Stride { get; } = stride > 0 ? stride : throw new ArgumentException($"{name}: stride {stride} must be > 0.");

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> sampleShape)
    {
        ConvGeometry g = Geometry(sampleShape);
        return [g.Channels, g.OutHeight, g.OutWidth];
    }

    /// <inheritdoc/>
    public override void Forward(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<byte> output, QuantizedWorkspace workspace)
    {
        ConvGeometry g = Geometry(sampleShape);
        int outSize = g.Channels * g.OutHeight * g.OutWidth;
        for (int s = 0; s < samples; s++)
        {
            AvgPoolQ8.Forward(input.Slice(s * g.InputSize, g.InputSize), g, output.Slice(s * outSize, outSize));
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"QuantizedAvgPool2d(kernel_size={KernelSize}, stride={Stride})";

    private ConvGeometry Geometry(ReadOnlySpan<int> sampleShape)
    {
        if (sampleShape.Length != 3)
        {
            throw new ArgumentException($"{Name}: expected an input [C, H, W], got [{string.Join(", ", sampleShape.ToArray())}].");
        }
        var g = new ConvGeometry(sampleShape[0], sampleShape[1], sampleShape[2], KernelSize, KernelSize, Stride, Stride, 0, 0);
        g.Validate(Name);
        return g;
    }
}
