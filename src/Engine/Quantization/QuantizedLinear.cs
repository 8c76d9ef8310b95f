using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>
/// Int8 fully connected layer (y = x Wᵀ + b, as <see cref="Layers.Linear"/>), for a whole batch at once:
/// <code>
///   packed  = pack(Xᵀ)                 X[n, in] codes become the in x n right operand
///   acc     = W[out, in] packed        exact int8 GEMM, int32 [out, n]
///   y[n, out] = requantize(acc)ᵀ       fixed-point rescale, + zero point, clamp (fused ReLU), written sample-major
/// </code>
/// </summary>
public sealed class QuantizedLinear : QuantizedWeightedLayer
{
    /// <summary>
    /// A linear layer with weight codes [out, in] of <paramref name="weightBits"/> bits (4 to 8, one per sbyte); see
    /// <see cref="QuantizedWeightedLayer"/> for the arithmetic. 4-bit codes stay packed two per byte in memory and the
    /// integer GEMM unpacks them in registers (<see cref="GemmS4U8"/>): the same outputs as the codes held as int8.
    /// </summary>
    public QuantizedLinear(string name, QuantParams input, QuantParams output, sbyte[] weights, int[] weightShape,
        float[] weightScales, int[] weightZeroPoints, int[] bias, bool fusedRelu, int weightBits = 8)
        : base(name, input, output, weights, CheckShape(name, weightShape), weightScales, weightZeroPoints, bias, fusedRelu,
            weightBits, nibblePanels: true)
    {
    }

    /// <summary>Input features.</summary>
    public int InFeatures => Depth;

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> sampleShape)
    {
        CheckInput(sampleShape);
        return [OutFeatures];
    }

    /// <inheritdoc/>
    public override void Forward(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<byte> output, QuantizedWorkspace workspace)
    {
        CheckInput(sampleShape);
        Span<int> acc = Multiply(input, samples, workspace);   // [out, n]
        Span<byte> row = workspace.Row(samples);
        for (int c = 0; c < OutFeatures; c++)
        {
            Requantize(c, acc.Slice(c * samples, samples), row);
            for (int s = 0; s < samples; s++)
            {
                output[s * OutFeatures + c] = row[s];                // y[n, out]
            }
        }
    }

    /// <inheritdoc/>
    public override void ForwardAccumulators(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output, QuantizedWorkspace workspace)
    {
        CheckInput(sampleShape);
        Span<int> acc = Multiply(input, samples, workspace);
        for (int c = 0; c < OutFeatures; c++)
        {
            for (int s = 0; s < samples; s++)
            {
                output[s * OutFeatures + c] = Dequantize(c, acc[c * samples + s]);
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"QuantizedLinear(in_features={InFeatures}, out_features={OutFeatures}{(FusedRelu ? ", relu" : "")}, {(PerChannel ? "per-channel" : "per-tensor")})";

    private Span<int> Multiply(ReadOnlySpan<byte> input, int samples, QuantizedWorkspace workspace)
    {
        Span<byte> packed = workspace.Packed(GemmS8U8.PackedActivationsLength(InFeatures, samples, Variant));
        GemmS8U8.PackActivationsTransposed(InFeatures, samples, input, InFeatures, packed, Variant);
        return Accumulate(packed, samples, workspace);
    }

    private void CheckInput(ReadOnlySpan<int> sampleShape)
    {
        if (sampleShape.Length != 1 || sampleShape[0] != InFeatures)
        {
            throw new ArgumentException($"{Name}: expected an input [{InFeatures}], got [{string.Join(", ", sampleShape.ToArray())}].");
        }
    }

    private static int[] CheckShape(string name, int[] shape)
    {
        if (shape.Length != 2 || shape.Any(d => d <= 0))
        {
            throw new ArgumentException($"{name}: linear weight shape [{string.Join(", ", shape)}] is not [out, in].");
        }
        return shape;
    }
}
