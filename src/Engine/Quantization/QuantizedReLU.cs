using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>
/// A ReLU that does not follow a weighted layer (where it would be fused): real max(x, 0) is max(q, zero point) on the
/// codes, with scale and zero point unchanged.
/// </summary>
public sealed class QuantizedReLU(string name, QuantParams parameters) : QuantizedLayer(name, parameters, parameters)
{
    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> sampleShape) => sampleShape.ToArray();

    /// <inheritdoc/>
    public override void Forward(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<byte> output, QuantizedWorkspace workspace)
    {
        int count = samples * Size(sampleShape);
        byte zero = (byte)Math.Clamp(Input.ZeroPoint, 0, 255);
        System.Numerics.Tensors.TensorPrimitives.Max(input[..count], zero, output[..count]);
    }

    /// <inheritdoc/>
    public override string ToString() => "QuantizedReLU()";
}
