using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// Stride-1 convolution computed directly, for shallow filters (conv1: one input channel, 3 x 3 taps): with the image
/// zero-padded once into xp[C, H + 2p, W + 2p], output row oh of channel c is
/// <code>
///   y[c, oh, ow .. ow + V) = sum over taps r = (ci, i, j) of w[c, r] xp[ci, oh + i, ow + j .. ow + j + V)
/// </code>
/// one broadcast weight times one contiguous vector of the padded image per tap. The implicit GEMM
/// (<see cref="ImplicitConvF32"/>) spends a 6-row micro-kernel tile, its set-up and its store on every 9 steps of such a
/// depth, and a partial tile on the last channels (32 = 5 x 6 + 2); here a block of 4 channels x 2 vectors keeps 8
/// independent accumulator chains in flight (enough to hide the FMA latency on two ports), each tap's two image vectors
/// are loaded once for the 4 channels, and no tile is partial but the last channels'.
/// <para>
/// Each output is the chain acc = 0; acc = fma(w[c, r], x_r, acc) for r = 0, 1, ... in the implicit GEMM's tap order, the
/// chain the packed GEMM's micro-kernel runs for a depth within one cache block (<see cref="MaxDepth"/> is far below it),
/// so the result equals theirs bit for bit, and every variant (the scalar twin on <see cref="MathF.FusedMultiplyAdd"/>,
/// <see cref="Vector256{T}"/>, <see cref="Vector512{T}"/>) gives the same bits; the tests check both.
/// </para>
/// </summary>
internal static unsafe class DirectConvF32
{
    /// <summary>
    /// The deepest filter (C kh kw) the layers run here. Measured with bench DirectConvBenchmarks (32 x 32 image, 32
    /// channels, the raw product alone): at depths 18 to 36 this kernel ran 10-20% faster than the implicit GEMM; at depth
    /// 9 (conv1) about as fast, but in the fused inference step it also takes the bias and the ReLU into its registers,
    /// which the GEMM cannot; at depth 72 the GEMM's 6-row tile, which reuses each image load for 6 channels rather than
    /// 4, won.
    /// </summary>
    public const int MaxDepth = 32;

    /// <summary>The variants this CPU runs, the scalar reference first.</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } =
        !GemmF32.HasAvx2Fma ? [KernelVariant.Scalar]
        : Avx512F.IsSupported ? [KernelVariant.Scalar, KernelVariant.Avx2Fma, KernelVariant.Avx512]
        : [KernelVariant.Scalar, KernelVariant.Avx2Fma];

    /// <summary>The fastest variant this CPU runs.</summary>
    public static KernelVariant Best => SupportedVariants[^1];

    /// <summary>Whether this geometry runs here: stride 1 and a filter of at most <see cref="MaxDepth"/> taps.</summary>
    public static bool Supports(in ConvGeometry g) => g.StrideHeight == 1 && g.StrideWidth == 1 && g.ColumnRows <= MaxDepth;

    // What Compute accepts: stride 1, any depth (the benchmarks time it past MaxDepth).
    private static bool Computes(in ConvGeometry g) => g.StrideHeight == 1 && g.StrideWidth == 1;

    /// <summary>Floats of the zero-padded image: C (H + 2 ph) (W + 2 pw).</summary>
    public static int PaddedLength(in ConvGeometry g) => g.Channels * (g.Height + 2 * g.PadHeight) * (g.Width + 2 * g.PadWidth);

    /// <summary>Writes the zero-padded image (borders zero, so every tap read is in bounds).</summary>
    public static void Pad(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> padded)
    {
        int hp = g.Height + 2 * g.PadHeight, wp = g.Width + 2 * g.PadWidth;
        if (image.Length < g.InputSize || padded.Length < PaddedLength(g))
        {
            throw new ArgumentException($"direct convolution: spans too small for {g}.");
        }
        padded[..PaddedLength(g)].Clear();
        for (int c = 0; c < g.Channels; c++)
        {
            for (int h = 0; h < g.Height; h++)
            {
                image.Slice((c * g.Height + h) * g.Width, g.Width).CopyTo(padded.Slice((c * hp + h + g.PadHeight) * wp + g.PadWidth, g.Width));
            }
        }
    }

    /// <summary>
    /// Output rows [<paramref name="firstRow"/>, + <paramref name="rowCount"/>) of every channel from a <see cref="Pad"/>ded
    /// image, with <paramref name="weights"/> as the layer stores them ([Cout, C kh kw]): y[c <paramref name="channelStride"/>
    /// + (oh - firstRow) OW + ow]. Disjoint row ranges can run on different threads. With a <paramref name="bias"/>
    /// (and <paramref name="relu"/>) the inference epilogue is applied in registers before the store, y = max(raw + b, 0):
    /// the same two operations as the bias add and <see cref="ReluF32.Forward"/> after it, so the same bits.
    /// <paramref name="rowStride"/> (0: OW) puts output row oh at y + (oh - firstRow) rowStride, so that the rows can land
    /// inside a wider buffer, such as the zero-padded image the next convolution reads (<see cref="WinogradF32.PaddedImageOffset"/>).
    /// </summary>
    public static void Compute(in ConvGeometry g, ReadOnlySpan<float> weights, int outChannels, ReadOnlySpan<float> padded,
        int firstRow, int rowCount, Span<float> y, int channelStride, KernelVariant variant, ReadOnlySpan<float> bias = default,
        bool relu = false, int rowStride = 0)
    {
        if (rowStride == 0)
        {
            rowStride = g.OutWidth;
        }
        if (!bias.IsEmpty && bias.Length < outChannels)
        {
            throw new ArgumentException($"direct convolution: {bias.Length} biases for {outChannels} output channels.");
        }
        int depth = g.ColumnRows, outW = g.OutWidth, hp = g.Height + 2 * g.PadHeight, wp = g.Width + 2 * g.PadWidth;
        if (!Computes(g) || outChannels < 0 || firstRow < 0 || rowCount < 0 || firstRow + rowCount > g.OutHeight
            || weights.Length < outChannels * depth || padded.Length < PaddedLength(g) || rowStride < outW || channelStride < (rowCount - 1) * rowStride + outW
            || (outChannels > 0 && rowCount > 0 && y.Length < (long)(outChannels - 1) * channelStride + (long)(rowCount - 1) * rowStride + outW))
        {
            throw new ArgumentException($"direct convolution: rows [{firstRow}, +{rowCount}) or spans do not fit {g} with {outChannels} output channels.");
        }
        if ((variant == KernelVariant.Avx2Fma && !GemmF32.HasAvx2Fma) || (variant == KernelVariant.Avx512 && !(GemmF32.HasAvx2Fma && Avx512F.IsSupported))
            || variant is KernelVariant.Vector or KernelVariant.AvxVnni)
        {
            throw new PlatformNotSupportedException($"direct convolution: variant {variant} is not supported on this CPU.");
        }
        if (outChannels == 0 || rowCount == 0)
        {
            return;
        }
        int* taps = stackalloc int[depth];
        int r = 0;
        for (int c = 0; c < g.Channels; c++)
        {
            for (int i = 0; i < g.KernelHeight; i++)
            {
                for (int j = 0; j < g.KernelWidth; j++)
                {
                    taps[r++] = (c * hp + i) * wp + j;
                }
            }
        }
        fixed (float* pw = weights, px = padded, py = y, pb = bias)
        {
            var epilogue = new Epilogue(pb, relu);
            for (int oh = firstRow; oh < firstRow + rowCount; oh++)
            {
                float* x = px + (long)oh * wp;
                float* yRow = py + (long)(oh - firstRow) * rowStride;
                int ow = 0;
                if (variant == KernelVariant.Avx512)
                {
                    for (; ow + 32 <= outW; ow += 32)
                    {
                        Columns512(depth, pw, outChannels, taps, x + ow, yRow + ow, channelStride, epilogue);
                    }
                }
                if (variant is KernelVariant.Avx512 or KernelVariant.Avx2Fma)
                {
                    for (; ow + 16 <= outW; ow += 16)
                    {
                        Columns256(depth, pw, outChannels, taps, x + ow, yRow + ow, channelStride, epilogue);
                    }
                }
                for (; ow < outW; ow++)
                {
                    for (int c = 0; c < outChannels; c++)
                    {
                        yRow[(long)c * channelStride + ow] = epilogue.Apply(ScalarPixel(depth, pw + (long)c * depth, taps, x + ow), c);
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ScalarPixel(int depth, float* w, int* taps, float* x)
    {
        float acc = 0f;
        for (int r = 0; r < depth; r++)
        {
            acc = MathF.FusedMultiplyAdd(w[r], x[taps[r]], acc);
        }
        return acc;
    }

    // 32 consecutive output pixels of one row for every channel: two zmm per channel, four channels at a time.
    private static void Columns512(int depth, float* w, int outChannels, int* taps, float* x, float* y, int ldy, Epilogue e)
    {
        int c = 0;
        for (; c + 4 <= outChannels; c += 4)
        {
            float* w0 = w + (long)c * depth, w1 = w0 + depth, w2 = w1 + depth, w3 = w2 + depth;
            Vector512<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
            for (int r = 0; r < depth; r++)
            {
                float* t = x + taps[r];
                Vector512<float> lo = Avx512F.LoadVector512(t), hi = Avx512F.LoadVector512(t + 16);
                Vector512<float> k = Vector512.Create(w0[r]);
                a0 = Avx512F.FusedMultiplyAdd(k, lo, a0);
                b0 = Avx512F.FusedMultiplyAdd(k, hi, b0);
                k = Vector512.Create(w1[r]);
                a1 = Avx512F.FusedMultiplyAdd(k, lo, a1);
                b1 = Avx512F.FusedMultiplyAdd(k, hi, b1);
                k = Vector512.Create(w2[r]);
                a2 = Avx512F.FusedMultiplyAdd(k, lo, a2);
                b2 = Avx512F.FusedMultiplyAdd(k, hi, b2);
                k = Vector512.Create(w3[r]);
                a3 = Avx512F.FusedMultiplyAdd(k, lo, a3);
                b3 = Avx512F.FusedMultiplyAdd(k, hi, b3);
            }
            float* o = y + (long)c * ldy;
            e.Store(o, a0, b0, c); o += ldy;
            e.Store(o, a1, b1, c + 1); o += ldy;
            e.Store(o, a2, b2, c + 2); o += ldy;
            e.Store(o, a3, b3, c + 3);
        }
        for (; c < outChannels; c++)
        {
            float* wc = w + (long)c * depth;
            Vector512<float> a = default, b = default;
            for (int r = 0; r < depth; r++)
            {
                float* t = x + taps[r];
                Vector512<float> k = Vector512.Create(wc[r]);
                a = Avx512F.FusedMultiplyAdd(k, Avx512F.LoadVector512(t), a);
                b = Avx512F.FusedMultiplyAdd(k, Avx512F.LoadVector512(t + 16), b);
            }
            e.Store(y + (long)c * ldy, a, b, c);
        }
    }

    // 16 consecutive output pixels of one row for every channel: two ymm per channel, four channels at a time.
    private static void Columns256(int depth, float* w, int outChannels, int* taps, float* x, float* y, int ldy, Epilogue e)
    {
        int c = 0;
        for (; c + 4 <= outChannels; c += 4)
        {
            float* w0 = w + (long)c * depth, w1 = w0 + depth, w2 = w1 + depth, w3 = w2 + depth;
            Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
            for (int r = 0; r < depth; r++)
            {
                float* t = x + taps[r];
                Vector256<float> lo = Avx.LoadVector256(t), hi = Avx.LoadVector256(t + 8);
                Vector256<float> k = Vector256.Create(w0[r]);
                a0 = Fma.MultiplyAdd(k, lo, a0);
                b0 = Fma.MultiplyAdd(k, hi, b0);
                k = Vector256.Create(w1[r]);
                a1 = Fma.MultiplyAdd(k, lo, a1);
                b1 = Fma.MultiplyAdd(k, hi, b1);
                k = Vector256.Create(w2[r]);
                a2 = Fma.MultiplyAdd(k, lo, a2);
                b2 = Fma.MultiplyAdd(k, hi, b2);
                k = Vector256.Create(w3[r]);
                a3 = Fma.MultiplyAdd(k, lo, a3);
                b3 = Fma.MultiplyAdd(k, hi, b3);
            }
            float* o = y + (long)c * ldy;
            e.Store(o, a0, b0, c); o += ldy;
            e.Store(o, a1, b1, c + 1); o += ldy;
            e.Store(o, a2, b2, c + 2); o += ldy;
            e.Store(o, a3, b3, c + 3);
        }
        for (; c < outChannels; c++)
        {
            float* wc = w + (long)c * depth;
            Vector256<float> a = default, b = default;
            for (int r = 0; r < depth; r++)
            {
                float* t = x + taps[r];
                Vector256<float> k = Vector256.Create(wc[r]);
                a = Fma.MultiplyAdd(k, Avx.LoadVector256(t), a);
                b = Fma.MultiplyAdd(k, Avx.LoadVector256(t + 8), b);
            }
            e.Store(y + (long)c * ldy, a, b, c);
        }
    }

    // What happens to an accumulator before it is stored: nothing (bias null), or + bias[c], then max(., 0) with relu.
    private readonly struct Epilogue(float* bias, bool relu)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Apply(float v, int c)
        {
            if (bias == null)
            {
                return v;
            }
            v += bias[c];
            return relu ? MathF.Max(v, 0f) : v;   // the IEEE maximum, as Vector512.Max and TensorPrimitives.Max
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(float* o, Vector512<float> lo, Vector512<float> hi, int c)
        {
            if (bias != null)
            {
                Vector512<float> b = Vector512.Create(bias[c]);
                lo += b;
                hi += b;
                if (relu)
                {
                    lo = Vector512.Max(lo, Vector512<float>.Zero);
                    hi = Vector512.Max(hi, Vector512<float>.Zero);
                }
            }
            Avx512F.Store(o, lo);
            Avx512F.Store(o + 16, hi);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(float* o, Vector256<float> lo, Vector256<float> hi, int c)
        {
            if (bias != null)
            {
                Vector256<float> b = Vector256.Create(bias[c]);
                lo += b;
                hi += b;
                if (relu)
                {
                    lo = Vector256.Max(lo, Vector256<float>.Zero);
                    hi = Vector256.Max(hi, Vector256<float>.Zero);
                }
            }
            Avx.Store(o, lo);
            Avx.Store(o + 8, hi);
        }
    }
}
