using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Engine.Kernels;

/// <summary>Rectified linear unit, y = max(x, 0), and its gradient dx = dy [y &gt; 0].</summary>
public static class ReluF32
{
    /// <summary>y[i] = max(x[i], 0) (NaN stays NaN, as in PyTorch).</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Max(x, 0f, y);

    /// <summary>
    /// dx[i] = dy[i] where y[i] &gt; 0, else 0. Uses the output, not the input, so the forward pass caches nothing extra
    /// (y &gt; 0 exactly when x &gt; 0). The subgradient at 0 is taken as 0, as PyTorch does.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, KernelVariant variant = KernelVariant.Avx2Fma)
    {
        if (y.Length != dy.Length || dx.Length != dy.Length)
        {
            throw new ArgumentException($"ReLU backward: y, dy and dx must have equal lengths, got {y.Length}, {dy.Length}, {dx.Length}.");
        }
        int i = 0;
        if (variant != KernelVariant.Scalar && Vector256.IsHardwareAccelerated && y.Length >= Vector256<float>.Count)
        {
            int last = y.Length - Vector256<float>.Count;
            for (; i < last; i += Vector256<float>.Count)
            {
                Step256(y, dy, dx, i);
            }
            // Overlapping last vector instead of a scalar tail: recomputing a few elements gives the same values.
            Step256(y, dy, dx, last);
            return;
        }
        if (variant != KernelVariant.Scalar && Vector.IsHardwareAccelerated && y.Length >= Vector<float>.Count)
        {
            int last = y.Length - Vector<float>.Count;
            for (; i < last; i += Vector<float>.Count)
            {
                StepVector(y, dy, dx, i);
            }
            StepVector(y, dy, dx, last);
            return;
        }
        for (; i < y.Length; i++)
        {
            dx[i] = y[i] > 0f ? dy[i] : 0f;
        }
    }

    private static void Step256(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int i)
    {
        Vector256<float> mask = Vector256.GreaterThan(Vector256.Create(y[i..]), Vector256<float>.Zero);
        (mask & Vector256.Create(dy[i..])).CopyTo(dx[i..]);
    }

    private static void StepVector(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int i)
    {
        Vector<int> mask = Vector.GreaterThan(new Vector<float>(y[i..]), Vector<float>.Zero);
        Vector.ConditionalSelect(mask, new Vector<float>(dy[i..]), Vector<float>.Zero).CopyTo(dx[i..]);
    }
}
