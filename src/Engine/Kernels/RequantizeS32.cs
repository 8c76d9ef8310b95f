using System.Numerics;
using Engine.Quantization;

namespace Engine.Kernels;

/// <summary>
/// From int32 accumulators to 8-bit output codes, integer-only (TFLite's int8 spec, gemmlowp's output stage):
/// <code>
///   q = clamp(MultiplyByQuantizedMultiplier(acc + addend, mantissa, shift) + zero_point, low, high)
/// </code>
/// where addend carries the bias and the zero-point corrections of one output channel, (mantissa, shift) encode
/// input_scale x weight_scale[c] / output_scale, and [low, high] is the type's range, or [zero_point, high] to fuse a
/// following ReLU (real 0 is the zero point). A scalar loop for now: it costs one pass over the outputs, against k
/// multiply-adds per output in the GEMM before it.
/// </summary>
public static class RequantizeS32
{
    /// <summary>Requantizes one output channel's accumulators.</summary>
    public static void Row<T>(ReadOnlySpan<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high, Span<T> output)
        where T : unmanaged, IBinaryInteger<T>
    {
        if (output.Length != accumulators.Length)
        {
            throw new ArgumentException($"requantize: {accumulators.Length} accumulators, {output.Length} outputs.");
        }
        if (low > high)
        {
            throw new ArgumentException($"requantize: empty clamp range [{low}, {high}].");
        }
        for (int i = 0; i < accumulators.Length; i++)
        {
            int scaled = FixedPoint.MultiplyByQuantizedMultiplier(accumulators[i] + addend, mantissa, shift);
            output[i] = T.CreateTruncating(Math.Clamp((long)scaled + zeroPoint, low, high));
        }
    }
}
