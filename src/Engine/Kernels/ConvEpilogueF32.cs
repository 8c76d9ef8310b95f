using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// The tail of a convolution at inference, in one pass over its raw output while that output is still in cache:
/// <code>
///   v[c, h, w] = raw[c, h, w] + bias[c]          (the convolution's bias)
///   v          = max(v, 0)                       (when a ReLU follows)
///   y[c, i, j] = (1 / k^2) sum over the k x k window (i k, j k) of v   (when an AvgPool2d(k, k) follows; k = 1: y = v)
/// </code>
/// Bit for bit the layers it replaces (bias add, <see cref="ReluF32.Forward"/>, <see cref="AvgPoolF32.Forward"/>): the
/// same operations in the same order. Each element is one addition and one IEEE maximum (max(-0, 0) = +0, NaN stays
/// NaN, as TensorPrimitives.Max); the pool first adds the window's k rows top to bottom, ((r0 + r1) + r2) + ..., as
/// AvgPoolF32 does with TensorPrimitives.Add, then sums each window's k row sums as TensorPrimitives.Sum does (for
/// k = 4 its vectorised order (s0 + s1) + (s2 + s3), written out here; for other k, TensorPrimitives.Sum itself), then
/// multiplies by the float 1 / k^2. The vector variants only vectorise the element-wise part, so every variant gives the
/// same bits, which the tests check on odd shapes against the unfused layers.
/// </summary>
internal static unsafe class ConvEpilogueF32
{
    // Row sums per chunk of a pooled row: whole windows, at most this many columns (on the stack).
    private const int ChunkColumns = 1024;

    /// <summary>The variants this CPU runs, the scalar reference first.</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } = BuildSupported();

    /// <summary>The fastest variant this CPU runs.</summary>
    public static KernelVariant Best => SupportedVariants[^1];

    private static KernelVariant[] BuildSupported()
    {
        var list = new List<KernelVariant> { KernelVariant.Scalar };
        if (Vector256.IsHardwareAccelerated)
        {
            list.Add(KernelVariant.Avx2Fma);
        }
        if (Vector512.IsHardwareAccelerated)
        {
            list.Add(KernelVariant.Avx512);
        }
        return [.. list];
    }

    /// <summary>
    /// y for <paramref name="channels"/> planes of <paramref name="rows"/> x <paramref name="width"/> raw outputs
    /// (plane c at raw[c <paramref name="rawStride"/>], rows contiguous) into planes of (rows / k) x (width / k) (plane c at
    /// y[c <paramref name="outStride"/>]). <paramref name="rows"/> must be a multiple of <paramref name="pool"/> (whole
    /// windows); columns past the last whole window are dropped, as the pool's floor mode drops them. An empty
    /// <paramref name="bias"/> adds nothing.
    /// </summary>
    public static void Apply(ReadOnlySpan<float> raw, int rawStride, int channels, int rows, int width, ReadOnlySpan<float> bias,
        bool relu, int pool, Span<float> y, int outStride, KernelVariant variant)
    {
        if (channels < 0 || rows < 0 || width < 0 || pool < 1 || rows % pool != 0 || rawStride < rows * width
            || (!bias.IsEmpty && bias.Length < channels))
        {
            throw new ArgumentException($"convolution epilogue: {channels} planes of {rows} x {width} do not fit pool {pool}, stride {rawStride} and {bias.Length} biases.");
        }
        int outRows = rows / pool, outWidth = width / pool;
        if (channels == 0 || outRows == 0 || outWidth == 0)
        {
            return;
        }
        if (outStride < outRows * outWidth || raw.Length < (long)(channels - 1) * rawStride + rows * width
            || y.Length < (long)(channels - 1) * outStride + outRows * outWidth)
        {
            throw new ArgumentException($"convolution epilogue: spans of {raw.Length} and {y.Length} floats are too small.");
        }
        if ((variant == KernelVariant.Avx2Fma && !Vector256.IsHardwareAccelerated) || (variant == KernelVariant.Avx512 && !Vector512.IsHardwareAccelerated))
        {
            throw new PlatformNotSupportedException($"convolution epilogue: variant {variant} is not supported on this CPU.");
        }
        bool hasBias = !bias.IsEmpty;
        if (pool == 4 && variant == KernelVariant.Avx512 && width % 32 == 0 && Vector128.IsHardwareAccelerated)
        {
            fixed (float* pr = raw, py = y, pb = bias)
            {
                Pool4Avx512(pr, rawStride, channels, rows, width, hasBias ? pb : null, relu, py, outStride);
            }
            return;
        }
        int chunkWindows = Math.Max(1, ChunkColumns / pool);
        float* rowSum = stackalloc float[pool == 1 ? 1 : Math.Min(outWidth, chunkWindows) * pool];
        fixed (float* pr = raw, py = y)
        {
            for (int c = 0; c < channels; c++)
            {
                float b = hasBias ? bias[c] : 0f;
                float* src = pr + (long)c * rawStride, dst = py + (long)c * outStride;
                if (pool == 1)
                {
                    // y = v element-wise: a plane is one run of rows x width values.
                    Elementwise(src, dst, rows * width, hasBias, b, relu, variant);
                    continue;
                }
                for (int oh = 0; oh < outRows; oh++)
                {
                    for (int w0 = 0; w0 < outWidth; w0 += chunkWindows)
                    {
                        int windows = Math.Min(chunkWindows, outWidth - w0), columns = windows * pool;
                        float* top = src + (long)oh * pool * width + w0 * pool;
                        Elementwise(top, rowSum, columns, hasBias, b, relu, variant);
                        for (int i = 1; i < pool; i++)
                        {
                            AccumulateRow(top + (long)i * width, rowSum, columns, hasBias, b, relu, variant);
                        }
                        SumWindows(rowSum, windows, pool, dst + oh * outWidth + w0);
                    }
                }
            }
        }
    }

    // The seed's conv2 epilogue (pool 4, rows of whole 32-column blocks) in registers: per 32 columns of a window row, the
    // four rows' values summed top to bottom, then each window's four column sums pairwise within the vector,
    // (s0 + s1) + (s2 + s3) as TensorPrimitives.Sum adds four floats, then scaled: 8 outputs per step, no row-sum buffer.
    private static void Pool4Avx512(float* raw, int rawStride, int channels, int rows, int width, float* bias, bool relu, float* y, int outStride)
    {
        Vector512<float> scale = Vector512.Create(1f / 16f);
        Vector512<int> gather = Vector512.Create(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
        Vector512<int> pairs = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
        Vector512<int> halves = Vector512.Create(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
        int outRows = rows / 4, outWidth = width / 4;
        for (int c = 0; c < channels; c++)
        {
            Vector512<float> b = Vector512.Create(bias == null ? 0f : bias[c]);
            float* plane = raw + (long)c * rawStride;
            float* target = y + (long)c * outStride;
            for (int oh = 0; oh < outRows; oh++)
            {
                float* top = plane + (long)oh * 4 * width;
                for (int w0 = 0; w0 < width; w0 += 32)
                {
                    Vector512<float> lo = Value512(top + w0, bias != null, b, relu), hi = Value512(top + w0 + 16, bias != null, b, relu);
                    for (int i = 1; i < 4; i++)
                    {
                        float* row = top + (long)i * width + w0;
                        lo += Value512(row, bias != null, b, relu);
                        hi += Value512(row + 16, bias != null, b, relu);
                    }
                    lo += Avx512F.PermuteVar16x32(lo, pairs);       // lane 4j: s[4j] + s[4j + 1]; lane 4j + 2: s[4j + 2] + s[4j + 3]
                    hi += Avx512F.PermuteVar16x32(hi, pairs);
                    lo += Avx512F.PermuteVar16x32(lo, halves);      // lane 4j: (s[4j] + s[4j + 1]) + (s[4j + 2] + s[4j + 3])
                    hi += Avx512F.PermuteVar16x32(hi, halves);
                    Vector512<float> windows = Avx512F.PermuteVar16x32x2(lo, gather, hi) * scale;
                    windows.GetLower().Store(target + oh * outWidth + w0 / 4);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Value512(float* x, bool hasBias, Vector512<float> b, bool relu)
    {
        Vector512<float> v = Vector512.Load(x);
        v = hasBias ? v + b : v;
        return relu ? Vector512.Max(v, Vector512<float>.Zero) : v;
    }

    // dst[i] = v(src[i]), v(x) = max(x + b, 0) or x + b.
    private static void Elementwise(float* src, float* dst, int count, bool hasBias, float b, bool relu, KernelVariant variant)
    {
        int i = 0;
        if (variant == KernelVariant.Avx512)
        {
            Vector512<float> vb = Vector512.Create(b);
            for (; i + Vector512<float>.Count <= count; i += Vector512<float>.Count)
            {
                Vector512<float> v = Vector512.Load(src + i);
                v = hasBias ? v + vb : v;
                (relu ? Vector512.Max(v, Vector512<float>.Zero) : v).Store(dst + i);
            }
        }
        if (variant is KernelVariant.Avx512 or KernelVariant.Avx2Fma)
        {
            Vector256<float> vb = Vector256.Create(b);
            for (; i + Vector256<float>.Count <= count; i += Vector256<float>.Count)
            {
                Vector256<float> v = Vector256.Load(src + i);
                v = hasBias ? v + vb : v;
                (relu ? Vector256.Max(v, Vector256<float>.Zero) : v).Store(dst + i);
            }
        }
        for (; i < count; i++)
        {
            dst[i] = Value(src[i], hasBias, b, relu);
        }
    }

    // sum[i] = sum[i] + v(src[i]): the next row of the windows, added in AvgPoolF32's order.
    private static void AccumulateRow(float* src, float* sum, int count, bool hasBias, float b, bool relu, KernelVariant variant)
    {
        int i = 0;
        if (variant == KernelVariant.Avx512)
        {
            Vector512<float> vb = Vector512.Create(b);
            for (; i + Vector512<float>.Count <= count; i += Vector512<float>.Count)
            {
                Vector512<float> v = Vector512.Load(src + i);
                v = hasBias ? v + vb : v;
                v = relu ? Vector512.Max(v, Vector512<float>.Zero) : v;
                (Vector512.Load(sum + i) + v).Store(sum + i);
            }
        }
        if (variant is KernelVariant.Avx512 or KernelVariant.Avx2Fma)
        {
            Vector256<float> vb = Vector256.Create(b);
            for (; i + Vector256<float>.Count <= count; i += Vector256<float>.Count)
            {
                Vector256<float> v = Vector256.Load(src + i);
                v = hasBias ? v + vb : v;
                v = relu ? Vector256.Max(v, Vector256<float>.Zero) : v;
                (Vector256.Load(sum + i) + v).Store(sum + i);
            }
        }
        for (; i < count; i++)
        {
            sum[i] += Value(src[i], hasBias, b, relu);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Value(float x, bool hasBias, float b, bool relu)
    {
        float v = hasBias ? x + b : x;
        return relu ? MathF.Max(v, 0f) : v;   // MathF.Max is the IEEE maximum: max(-0, 0) = +0, NaN stays NaN
    }

    // y[j] = (sum of window j's row sums) / k^2, the sum in TensorPrimitives.Sum's order.
    private static void SumWindows(float* rowSum, int windows, int pool, float* y)
    {
        float scale = 1f / (pool * pool);
        if (pool == 4 && Vector128.IsHardwareAccelerated)
        {
            // TensorPrimitives.Sum of 4 floats reduces one Vector128 pairwise: (s0 + s1) + (s2 + s3).
            for (int j = 0; j < windows; j++)
            {
                float* s = rowSum + 4 * j;
                y[j] = ((s[0] + s[1]) + (s[2] + s[3])) * scale;
            }
            return;
        }
        for (int j = 0; j < windows; j++)
        {
            y[j] = TensorPrimitives.Sum(new ReadOnlySpan<float>(rowSum + (long)j * pool, pool)) * scale;
        }
    }
}
