using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// The weight gradient of a stride-1 convolution as an implicit GEMM whose depth is the output pixels:
/// <code>
///   dW[co, r] = sum over samples n, pixels (oh, ow) of dy[n, co, oh, ow] xp[n, offset[r] + oh (W + 2p) + ow]
/// </code>
/// with xp the zero-padded image and offset[r] = (c (H + 2p) + i) (W + 2p) + j the position of tap r = (c, i, j), as in
/// <see cref="ImplicitConvF32"/>. For a run of 16 (or 8) pixels of one output row, both operands are contiguous: the
/// row of dy, and the taps read in place from the padded image. So no im2col is built and nothing is packed; the
/// micro-kernel keeps a tile of dW (4 output channels x 6 taps on <see cref="Vector512{T}"/>, 3 x 4 on
/// <see cref="Vector256{T}"/>) as vectors of per-lane partial sums in registers for a whole image, 8 to 10 loads per 12 to
/// 24 fused multiply-adds, and adds them to a per-lane accumulator in memory once per image. <see cref="Reduce"/> sums
/// the lanes at the end of the batch.
/// <para>
/// Every dW element is computed by the same sequence of operations whichever tile it falls in and however the output
/// channels are split between threads, so the result does not depend on the thread count. The tile edges are handled by
/// padding: the accumulator has whole tiles (rows past Cout read the last dy row, taps past C k k repeat the last
/// offset) and those extra sums are discarded.
/// </para>
/// </summary>
internal static unsafe class ConvWeightGradientF32
{
    /// <summary>The variants this CPU runs, reference first.</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } =
        GemmF32.HasAvx2Fma && Avx512F.IsSupported ? [KernelVariant.Scalar, KernelVariant.Avx2Fma, KernelVariant.Avx512]
        : GemmF32.HasAvx2Fma ? [KernelVariant.Scalar, KernelVariant.Avx2Fma]
        : [KernelVariant.Scalar];

    /// <summary>Vector lanes (pixels per step) of <paramref name="variant"/>: 16, 8, or 1 for the scalar reference.</summary>
    public static int LanesOf(KernelVariant variant) => variant switch
    {
        KernelVariant.Avx512 => 16,
        KernelVariant.Avx2Fma => 8,
        _ => 1,
    };

    /// <summary>Output channels per micro-tile.</summary>
    public static int RowTileOf(KernelVariant variant) => variant switch
    {
        KernelVariant.Avx512 => 4,
        KernelVariant.Avx2Fma => 3,
        _ => 1,
    };

    /// <summary>Taps per micro-tile.</summary>
    public static int TapTileOf(KernelVariant variant) => variant switch
    {
        KernelVariant.Avx512 => 6,
        KernelVariant.Avx2Fma => 4,
        _ => 1,
    };

    /// <summary>Whether <paramref name="variant"/> runs <paramref name="g"/> here: stride 1, output rows whole vectors, the CPU's instructions.</summary>
    public static bool Supports(in ConvGeometry g, KernelVariant variant)
    {
        if (g.StrideHeight != 1 || g.StrideWidth != 1)
        {
            return false;
        }
        return variant switch
        {
            KernelVariant.Scalar => true,
            KernelVariant.Avx2Fma => GemmF32.HasAvx2Fma && g.OutWidth % 8 == 0,
            KernelVariant.Avx512 => GemmF32.HasAvx2Fma && Avx512F.IsSupported && g.OutWidth % 16 == 0,
            _ => false,
        };
    }

    /// <summary>The fastest vector variant for <paramref name="g"/>, or <see cref="KernelVariant.Scalar"/> when none applies.</summary>
    public static KernelVariant VariantFor(in ConvGeometry g) =>
        Supports(g, KernelVariant.Avx512) ? KernelVariant.Avx512
        : Supports(g, KernelVariant.Avx2Fma) ? KernelVariant.Avx2Fma
        : KernelVariant.Scalar;

    /// <summary>Output channels rounded up to whole row tiles.</summary>
    public static int PaddedRows(int outChannels, KernelVariant variant) => RoundUp(outChannels, RowTileOf(variant));

    /// <summary>Taps (C k k) rounded up to whole tap tiles: the length of the offset table.</summary>
    public static int PaddedTaps(in ConvGeometry g, KernelVariant variant) => RoundUp(g.ColumnRows, TapTileOf(variant));

    /// <summary>Floats of the per-lane accumulator: padded rows x padded taps x lanes.</summary>
    public static int AccumulatorLength(in ConvGeometry g, int outChannels, KernelVariant variant) =>
        PaddedRows(outChannels, variant) * PaddedTaps(g, variant) * LanesOf(variant);

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>
    /// The tap offsets into the padded image, padded to <see cref="PaddedTaps"/> entries by repeating the last one, so a
    /// tile past the last tap reads valid memory (its sums are discarded).
    /// </summary>
    public static void TapOffsets(in ConvGeometry g, KernelVariant variant, Span<int> offsets)
    {
        int hp = g.Height + 2 * g.PadHeight, wp = g.Width + 2 * g.PadWidth, taps = PaddedTaps(g, variant);
        if (offsets.Length < taps)
        {
            throw new ArgumentException($"weight gradient: offset table of {offsets.Length} entries, {taps} needed for {g}.");
        }
        int r = 0;
        for (int c = 0; c < g.Channels; c++)
        {
            for (int i = 0; i < g.KernelHeight; i++)
            {
                for (int j = 0; j < g.KernelWidth; j++)
                {
                    offsets[r++] = (c * hp + i) * wp + j;
                }
            }
        }
        for (; r < taps; r++)
        {
            offsets[r] = offsets[g.ColumnRows - 1];
        }
    }

    /// <summary>
    /// Copies <paramref name="image"/> [C, H, W] into the interior of <paramref name="padded"/>
    /// (<see cref="ImplicitConvF32.PaddedLength"/> floats). The border is zeroed only when <paramref name="clearBorder"/>:
    /// a buffer reused for every image of a batch keeps its zero border, so only the first image pays for it.
    /// </summary>
    public static void PadImage(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> padded, bool clearBorder)
    {
        int hp = g.Height + 2 * g.PadHeight, wp = g.Width + 2 * g.PadWidth;
        if (image.Length < g.InputSize || padded.Length < ImplicitConvF32.PaddedLength(g))
        {
            throw new ArgumentException($"weight gradient: image or padded buffer too small for {g}.");
        }
        if (clearBorder)
        {
            padded[..ImplicitConvF32.PaddedLength(g)].Clear();
        }
        for (int c = 0; c < g.Channels; c++)
        {
            for (int h = 0; h < g.Height; h++)
            {
                image.Slice((c * g.Height + h) * g.Width, g.Width)
                    .CopyTo(padded.Slice((c * hp + h + g.PadHeight) * wp + g.PadWidth, g.Width));
            }
        }
    }

    /// <summary>
    /// Adds one image's contribution to the per-lane accumulator for output channels [<paramref name="firstRow"/>,
    /// <paramref name="firstRow"/> + <paramref name="rowCount"/>), a whole number of row tiles (or up to the padded
    /// end): acc[co, r, lane] += sum over the pixels p = lane (mod lanes) of dy[co, p] xp[offset[r] + p]. The scalar
    /// variant keeps one lane and sums each image in double.
    /// </summary>
    public static void Accumulate(in ConvGeometry g, ReadOnlySpan<float> dy, int outChannels, ReadOnlySpan<float> padded,
        ReadOnlySpan<int> offsets, int firstRow, int rowCount, Span<float> accumulator, KernelVariant variant)
    {
        int pixels = g.ColumnCols, rowTile = RowTileOf(variant), taps = PaddedTaps(g, variant), lanes = LanesOf(variant);
        int paddedRows = PaddedRows(outChannels, variant);
        if (!Supports(g, variant))
        {
            throw new PlatformNotSupportedException($"weight gradient: variant {variant} does not support {g} on this CPU.");
        }
        if (dy.Length < outChannels * pixels || padded.Length < ImplicitConvF32.PaddedLength(g) || offsets.Length < taps
            || accumulator.Length < AccumulatorLength(g, outChannels, variant) || firstRow < 0 || firstRow % rowTile != 0
            || rowCount < 0 || firstRow + rowCount > paddedRows || outChannels <= 0)
        {
            throw new ArgumentException($"weight gradient: spans or rows [{firstRow}, +{rowCount}) do not fit {g} with {outChannels} output channels.");
        }
        fixed (float* pdy = dy, px = padded, pacc = accumulator)
        fixed (int* po = offsets)
        {
            var shape = new Shape(g.OutHeight, g.OutWidth, g.Width + 2 * g.PadWidth);
            for (int co = firstRow; co < firstRow + rowCount; co += rowTile)
            {
                for (int r = 0; r < taps; r += TapTileOf(variant))
                {
                    float* acc = pacc + ((long)co * taps + r) * lanes;
                    switch (variant)
                    {
                        case KernelVariant.Avx512:
                            Tile4x6Avx512(shape, Rows(pdy, co, outChannels, pixels, 4), px, po + r, acc, (long)taps * lanes);
                            break;
                        case KernelVariant.Avx2Fma:
                            Tile3x4Avx2(shape, Rows(pdy, co, outChannels, pixels, 3), px, po + r, acc, (long)taps * lanes);
                            break;
                        default:
                            *acc += (float)ScalarSum(shape, pdy + (long)Math.Min(co, outChannels - 1) * pixels, px + po[r]);
                            break;
                    }
                }
            }
        }
    }

    /// <summary>
    /// dW[co, r] += sum of the lanes of acc[co, r] in lane order, and db[co] is not touched (a row sum of dy, done by the
    /// caller), for output channels [<paramref name="firstRow"/>, <paramref name="firstRow"/> + <paramref name="rowCount"/>).
    /// </summary>
    public static void Reduce(in ConvGeometry g, int outChannels, ReadOnlySpan<float> accumulator, int firstRow, int rowCount,
        Span<float> weightGradient, KernelVariant variant)
    {
        int k = g.ColumnRows, taps = PaddedTaps(g, variant), lanes = LanesOf(variant);
        if (weightGradient.Length < outChannels * k || accumulator.Length < AccumulatorLength(g, outChannels, variant))
        {
            throw new ArgumentException($"weight gradient: dW or accumulator too small for {g} with {outChannels} output channels.");
        }
        int end = Math.Min(firstRow + rowCount, outChannels);
        for (int co = firstRow; co < end; co++)
        {
            for (int r = 0; r < k; r++)
            {
                ReadOnlySpan<float> partial = accumulator.Slice((co * taps + r) * lanes, lanes);
                float sum = 0f;
                for (int lane = 0; lane < lanes; lane++)
                {
                    sum += partial[lane];
                }
                weightGradient[co * k + r] += sum;
            }
        }
    }

    /// <summary>The output's rows and columns and the padded image's row length.</summary>
    private readonly record struct Shape(int OutHeight, int OutWidth, int PaddedWidth);

    /// <summary>Row pointers of a tile's output channels; rows past the last channel repeat it (their sums are discarded).</summary>
    private readonly struct DyRows
    {
        public readonly float* R0, R1, R2, R3;

        public DyRows(float* r0, float* r1, float* r2, float* r3)
        {
            R0 = r0;
            R1 = r1;
            R2 = r2;
            R3 = r3;
        }
    }

    private static DyRows Rows(float* dy, int co, int outChannels, int pixels, int count) =>
        new(Row(dy, co, outChannels, pixels), Row(dy, co + 1, outChannels, pixels), Row(dy, co + 2, outChannels, pixels),
            Row(dy, count > 3 ? co + 3 : co + 2, outChannels, pixels));

    private static float* Row(float* dy, int co, int outChannels, int pixels) => dy + (long)Math.Min(co, outChannels - 1) * pixels;

    // The reference: one tap, one channel, summed in double over the image.
    private static double ScalarSum(Shape s, float* dy, float* x)
    {
        double sum = 0;
        for (int oh = 0; oh < s.OutHeight; oh++)
        {
            for (int ow = 0; ow < s.OutWidth; ow++)
            {
                sum += (double)dy[oh * s.OutWidth + ow] * x[(long)oh * s.PaddedWidth + ow];
            }
        }
        return sum;
    }

    /// <summary>
    /// 4 output channels x 6 taps, 16 pixels per step: 24 zmm accumulators, 4 dy loads and 6 tap loads per 24 FMAs.
    /// The accumulators start from and return to memory once per image (acc rows <paramref name="rowStride"/> apart).
    /// </summary>
    [SkipLocalsInit]
    private static void Tile4x6Avx512(Shape s, DyRows dy, float* x, int* offsets, float* acc, long rowStride)
    {
        float* x0 = x + offsets[0], x1 = x + offsets[1], x2 = x + offsets[2], x3 = x + offsets[3], x4 = x + offsets[4], x5 = x + offsets[5];
        float* a0 = acc, a1 = acc + rowStride, a2 = acc + 2 * rowStride, a3 = acc + 3 * rowStride;
        Vector512<float> c00 = Avx512F.LoadVector512(a0), c01 = Avx512F.LoadVector512(a0 + 16), c02 = Avx512F.LoadVector512(a0 + 32);
        Vector512<float> c03 = Avx512F.LoadVector512(a0 + 48), c04 = Avx512F.LoadVector512(a0 + 64), c05 = Avx512F.LoadVector512(a0 + 80);
        Vector512<float> c10 = Avx512F.LoadVector512(a1), c11 = Avx512F.LoadVector512(a1 + 16), c12 = Avx512F.LoadVector512(a1 + 32);
        Vector512<float> c13 = Avx512F.LoadVector512(a1 + 48), c14 = Avx512F.LoadVector512(a1 + 64), c15 = Avx512F.LoadVector512(a1 + 80);
        Vector512<float> c20 = Avx512F.LoadVector512(a2), c21 = Avx512F.LoadVector512(a2 + 16), c22 = Avx512F.LoadVector512(a2 + 32);
        Vector512<float> c23 = Avx512F.LoadVector512(a2 + 48), c24 = Avx512F.LoadVector512(a2 + 64), c25 = Avx512F.LoadVector512(a2 + 80);
        Vector512<float> c30 = Avx512F.LoadVector512(a3), c31 = Avx512F.LoadVector512(a3 + 16), c32 = Avx512F.LoadVector512(a3 + 32);
        Vector512<float> c33 = Avx512F.LoadVector512(a3 + 48), c34 = Avx512F.LoadVector512(a3 + 64), c35 = Avx512F.LoadVector512(a3 + 80);
        // One index over the row for all ten streams, and row pointers moved once per output row: ten pointers, the
        // index and its bound stay in registers (advancing ten pointers per step would cost ten adds per 24 FMAs, and a
        // separate tap index spilled general registers).
        float* d0 = dy.R0, d1 = dy.R1, d2 = dy.R2, d3 = dy.R3;
        nint width = s.OutWidth, gap = s.PaddedWidth;
        for (int oh = 0; oh < s.OutHeight; oh++)
        {
            for (nint i = 0; i < width; i += 16)
            {
                Vector512<float> y0 = Avx512F.LoadVector512(d0 + i), y1 = Avx512F.LoadVector512(d1 + i);
                Vector512<float> y2 = Avx512F.LoadVector512(d2 + i), y3 = Avx512F.LoadVector512(d3 + i);
                Vector512<float> t = Avx512F.LoadVector512(x0 + i);
                c00 = Avx512F.FusedMultiplyAdd(y0, t, c00);
                c10 = Avx512F.FusedMultiplyAdd(y1, t, c10);
                c20 = Avx512F.FusedMultiplyAdd(y2, t, c20);
                c30 = Avx512F.FusedMultiplyAdd(y3, t, c30);
                t = Avx512F.LoadVector512(x1 + i);
                c01 = Avx512F.FusedMultiplyAdd(y0, t, c01);
                c11 = Avx512F.FusedMultiplyAdd(y1, t, c11);
                c21 = Avx512F.FusedMultiplyAdd(y2, t, c21);
                c31 = Avx512F.FusedMultiplyAdd(y3, t, c31);
                t = Avx512F.LoadVector512(x2 + i);
                c02 = Avx512F.FusedMultiplyAdd(y0, t, c02);
                c12 = Avx512F.FusedMultiplyAdd(y1, t, c12);
                c22 = Avx512F.FusedMultiplyAdd(y2, t, c22);
                c32 = Avx512F.FusedMultiplyAdd(y3, t, c32);
                t = Avx512F.LoadVector512(x3 + i);
                c03 = Avx512F.FusedMultiplyAdd(y0, t, c03);
                c13 = Avx512F.FusedMultiplyAdd(y1, t, c13);
                c23 = Avx512F.FusedMultiplyAdd(y2, t, c23);
                c33 = Avx512F.FusedMultiplyAdd(y3, t, c33);
                t = Avx512F.LoadVector512(x4 + i);
                c04 = Avx512F.FusedMultiplyAdd(y0, t, c04);
                c14 = Avx512F.FusedMultiplyAdd(y1, t, c14);
                c24 = Avx512F.FusedMultiplyAdd(y2, t, c24);
                c34 = Avx512F.FusedMultiplyAdd(y3, t, c34);
                t = Avx512F.LoadVector512(x5 + i);
                c05 = Avx512F.FusedMultiplyAdd(y0, t, c05);
                c15 = Avx512F.FusedMultiplyAdd(y1, t, c15);
                c25 = Avx512F.FusedMultiplyAdd(y2, t, c25);
                c35 = Avx512F.FusedMultiplyAdd(y3, t, c35);
            }
            d0 += width;
            d1 += width;
            d2 += width;
            d3 += width;
            x0 += gap;
            x1 += gap;
            x2 += gap;
            x3 += gap;
            x4 += gap;
            x5 += gap;
        }
        Avx512F.Store(a0, c00); Avx512F.Store(a0 + 16, c01); Avx512F.Store(a0 + 32, c02);
        Avx512F.Store(a0 + 48, c03); Avx512F.Store(a0 + 64, c04); Avx512F.Store(a0 + 80, c05);
        Avx512F.Store(a1, c10); Avx512F.Store(a1 + 16, c11); Avx512F.Store(a1 + 32, c12);
        Avx512F.Store(a1 + 48, c13); Avx512F.Store(a1 + 64, c14); Avx512F.Store(a1 + 80, c15);
        Avx512F.Store(a2, c20); Avx512F.Store(a2 + 16, c21); Avx512F.Store(a2 + 32, c22);
        Avx512F.Store(a2 + 48, c23); Avx512F.Store(a2 + 64, c24); Avx512F.Store(a2 + 80, c25);
        Avx512F.Store(a3, c30); Avx512F.Store(a3 + 16, c31); Avx512F.Store(a3 + 32, c32);
        Avx512F.Store(a3 + 48, c33); Avx512F.Store(a3 + 64, c34); Avx512F.Store(a3 + 80, c35);
    }

    /// <summary>
    /// 3 output channels x 4 taps, 8 pixels per step: 12 ymm accumulators, 3 dy rows and one tap in the other four of
    /// the 16 registers; 7 loads per 12 FMAs.
    /// </summary>
    [SkipLocalsInit]
    private static void Tile3x4Avx2(Shape s, DyRows dy, float* x, int* offsets, float* acc, long rowStride)
    {
        float* x0 = x + offsets[0], x1 = x + offsets[1], x2 = x + offsets[2], x3 = x + offsets[3];
        float* a0 = acc, a1 = acc + rowStride, a2 = acc + 2 * rowStride;
        Vector256<float> c00 = Avx.LoadVector256(a0), c01 = Avx.LoadVector256(a0 + 8), c02 = Avx.LoadVector256(a0 + 16), c03 = Avx.LoadVector256(a0 + 24);
        Vector256<float> c10 = Avx.LoadVector256(a1), c11 = Avx.LoadVector256(a1 + 8), c12 = Avx.LoadVector256(a1 + 16), c13 = Avx.LoadVector256(a1 + 24);
        Vector256<float> c20 = Avx.LoadVector256(a2), c21 = Avx.LoadVector256(a2 + 8), c22 = Avx.LoadVector256(a2 + 16), c23 = Avx.LoadVector256(a2 + 24);
        float* d0 = dy.R0, d1 = dy.R1, d2 = dy.R2;
        nint width = s.OutWidth, gap = s.PaddedWidth;
        for (int oh = 0; oh < s.OutHeight; oh++)
        {
            for (nint i = 0; i < width; i += 8)
            {
                Vector256<float> y0 = Avx.LoadVector256(d0 + i), y1 = Avx.LoadVector256(d1 + i), y2 = Avx.LoadVector256(d2 + i);
                Vector256<float> t = Avx.LoadVector256(x0 + i);
                c00 = Fma.MultiplyAdd(y0, t, c00);
                c10 = Fma.MultiplyAdd(y1, t, c10);
                c20 = Fma.MultiplyAdd(y2, t, c20);
                t = Avx.LoadVector256(x1 + i);
                c01 = Fma.MultiplyAdd(y0, t, c01);
                c11 = Fma.MultiplyAdd(y1, t, c11);
                c21 = Fma.MultiplyAdd(y2, t, c21);
                t = Avx.LoadVector256(x2 + i);
                c02 = Fma.MultiplyAdd(y0, t, c02);
                c12 = Fma.MultiplyAdd(y1, t, c12);
                c22 = Fma.MultiplyAdd(y2, t, c22);
                t = Avx.LoadVector256(x3 + i);
                c03 = Fma.MultiplyAdd(y0, t, c03);
                c13 = Fma.MultiplyAdd(y1, t, c13);
                c23 = Fma.MultiplyAdd(y2, t, c23);
            }
            d0 += width;
            d1 += width;
            d2 += width;
            x0 += gap;
            x1 += gap;
            x2 += gap;
            x3 += gap;
        }
        Avx.Store(a0, c00); Avx.Store(a0 + 8, c01); Avx.Store(a0 + 16, c02); Avx.Store(a0 + 24, c03);
        Avx.Store(a1, c10); Avx.Store(a1 + 8, c11); Avx.Store(a1 + 16, c12); Avx.Store(a1 + 24, c13);
        Avx.Store(a2, c20); Avx.Store(a2 + 8, c21); Avx.Store(a2 + 16, c22); Avx.Store(a2 + 24, c23);
    }
}
