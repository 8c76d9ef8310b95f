using System.Numerics.Tensors;

namespace Engine.Kernels;

/// <summary>
/// Softmax and log-softmax of one row of logits, stabilised by subtracting the maximum before exp
/// (softmax(x) = softmax(x - max x), so exp never overflows: every exponent is &lt;= 0).
/// TensorPrimitives.SoftMax does not subtract the maximum, which is why these exist.
/// </summary>
public static class SoftmaxF32
{
    /// <summary>y[i] = x[i] - max x - log sum_j exp(x[j] - max x).</summary>
    public static void LogSoftmax(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckRow(x.Length, y.Length);
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        float logSum = MathF.Log(SumExp(y));
        TensorPrimitives.Subtract(y, logSum, y);
    }

    /// <summary>y[i] = exp(x[i] - max x) / sum_j exp(x[j] - max x).</summary>
    public static void Softmax(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckRow(x.Length, y.Length);
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        TensorPrimitives.Exp(y, y);
        float sum = TensorPrimitives.Sum(y);
        TensorPrimitives.Divide(y, sum, y);
    }

    /// <summary>Reference log-softmax in double.</summary>
    public static void LogSoftmaxScalar(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckRow(x.Length, y.Length);
        double max = double.NegativeInfinity;
        foreach (float v in x)
        {
            max = Math.Max(max, v);
        }
        double sum = 0;
        foreach (float v in x)
        {
            sum += Math.Exp(v - max);
        }
        double logSum = Math.Log(sum);
        for (int i = 0; i < x.Length; i++)
        {
            y[i] = (float)(x[i] - max - logSum);
        }
    }

    /// <summary>Reference softmax in double.</summary>
    public static void SoftmaxScalar(ReadOnlySpan<float> x, Span<float> y)
    {
        LogSoftmaxScalar(x, y);
        for (int i = 0; i < y.Length; i++)
        {
            y[i] = (float)Math.Exp(y[i]);
        }
    }

    private static float SumExp(ReadOnlySpan<float> shifted)
    {
        // Rows are class counts (10 here): a small stack buffer keeps this allocation-free.
        Span<float> buffer = shifted.Length <= 256 ? stackalloc float[shifted.Length] : new float[shifted.Length];
        TensorPrimitives.Exp(shifted, buffer);
        return TensorPrimitives.Sum(buffer);
    }

    private static void CheckRow(int xLength, int yLength)
    {
        if (xLength == 0 || xLength != yLength)
        {
            throw new ArgumentException($"softmax: input and output rows must be non-empty and of equal length, got {xLength} and {yLength}.");
        }
    }
}
