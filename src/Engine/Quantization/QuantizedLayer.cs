using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>
/// One stage of a <see cref="QuantizedNetwork"/>: uint8 activation codes in, uint8 codes out, integer arithmetic only.
/// Shapes are per sample (no batch dimension): [C, H, W] for images, [F] for feature vectors. Layers hold only
/// read-only state, so one network serves concurrent callers, each with its own <see cref="QuantizedWorkspace"/>.
/// </summary>
public abstract class QuantizedLayer(string name, QuantParams input, QuantParams output)
{
    /// <summary>The float layer's name (conv1, pool, ...); int8 file tensors are named after it.</summary>
    public string Name { get; } = name;

    /// <summary>Scale and zero point of the activation entering the layer.</summary>
    public QuantParams Input { get; } = input;

    /// <summary>Scale and zero point of the activation leaving the layer.</summary>
    public QuantParams Output { get; } = output;

    /// <summary>The per-sample output shape for a per-sample input shape; throws a clear error when the input does not fit.</summary>
    public abstract int[] OutputShape(ReadOnlySpan<int> sampleShape);

    /// <summary>
    /// Runs <paramref name="samples"/> samples: input [samples, sampleShape] codes to output [samples, OutputShape] codes.
    /// </summary>
    public abstract void Forward(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<byte> output, QuantizedWorkspace workspace);

    /// <summary>A PyTorch-like one-line description.</summary>
    public abstract override string ToString();

    /// <summary>The product of a shape's dimensions; throws an <see cref="ArgumentException"/> when it passes int.MaxValue or a dimension is negative.</summary>
    protected internal static int Size(ReadOnlySpan<int> shape)
    {
        long size = 1;
        foreach (int d in shape)
        {
            size *= d;
            if (d < 0 || size > int.MaxValue)
            {
                throw new ArgumentException($"shape [{string.Join(", ", shape.ToArray())}] holds more than {int.MaxValue} elements or a negative size.");
            }
        }
        return (int)size;
    }
}
