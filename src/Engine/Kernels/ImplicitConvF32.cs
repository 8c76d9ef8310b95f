using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// Stride-1 convolution as an implicit GEMM: out[Cout, OH OW] = W[Cout, C kh kw] col, without building col.
/// With the image zero-padded once into xp[C, H + 2p, W + 2p], the 16 values of col that a micro-kernel step needs,
/// tap r = (c, i, j) for the pixels (oh, ow0 .. ow0 + 15), are xp[c, oh + i, ow0 + j .. ow0 + j + 15]: contiguous.
/// So the kernel reads them in place through a table of tap offsets, offset[r] = (c (H + 2p) + i) (W + 2p) + j, and the
/// im2col pass (a 1.2 MB copy per image for conv2) disappears. Needs AVX2 + FMA, stride 1 and rows of output pixels
/// that are whole multiples of 16 (<see cref="Supports"/>); otherwise the layer uses im2col. Where the CPU has
/// AVX-512F and rows are multiples of 32, a 6 x 32 micro-kernel on <see cref="Vector512{T}"/> does twice the work per
/// instruction (<see cref="VariantFor"/>); both variants are tested against the scalar reference.
/// </summary>
public static unsafe class ImplicitConvF32
{
    private const int Mr = 6, Nr = 16, Nr512 = 32;

    /// <summary>The variants this CPU runs for a geometry that <see cref="Supports"/> accepts.</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } =
        Avx512F.IsSupported ? [KernelVariant.Avx2Fma, KernelVariant.Avx512] : [KernelVariant.Avx2Fma];

    /// <summary>The fastest variant for <paramref name="g"/>: AVX-512 when present and the output width is a multiple of 32.</summary>
    public static KernelVariant VariantFor(in ConvGeometry g) =>
        Avx512F.IsSupported && g.OutWidth % Nr512 == 0 ? KernelVariant.Avx512 : KernelVariant.Avx2Fma;

    /// <summary>Output pixels per panel for <paramref name="variant"/>: 32 (AVX-512) or 16.</summary>
    public static int PanelWidthOf(KernelVariant variant) => variant == KernelVariant.Avx512 ? Nr512 : Nr;

    /// <summary>Whether this geometry can run here: AVX2 + FMA, stride 1, output width a multiple of 16.</summary>
    public static bool Supports(in ConvGeometry g) =>
        Fma.IsSupported && Avx2.IsSupported && g.StrideHeight == 1 && g.StrideWidth == 1 && g.OutWidth % Nr == 0;

    /// <summary>Floats of the zero-padded image: C (H + 2 ph) (W + 2 pw).</summary>
    public static int PaddedLength(in ConvGeometry g) => g.Channels * (g.Height + 2 * g.PadHeight) * (g.Width + 2 * g.PadWidth);

    /// <summary>
    /// y[Cout, OH OW] = W x (im2col of image), with W packed by <see cref="GemmF32.PackRows"/> ([Cout, C kh kw]).
    /// <paramref name="padded"/> (<see cref="PaddedLength"/> floats) and <paramref name="offsets"/> (C kh kw ints) are scratch.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> image, in ConvGeometry g, ReadOnlySpan<float> packedWeights, int outChannels,
        Span<float> y, Span<float> padded, Span<int> offsets)
    {
        Prepare(image, g, padded, offsets);
        KernelVariant variant = VariantFor(g);
        Compute(g, packedWeights, outChannels, y, padded, offsets, 0, g.ColumnCols / PanelWidthOf(variant), variant);
    }

    /// <summary>Fills <paramref name="padded"/> with the zero-padded image and <paramref name="offsets"/> with the tap offsets.</summary>
    public static void Prepare(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> padded, Span<int> offsets)
    {
        if (!Supports(g))
        {
            throw new PlatformNotSupportedException($"implicit convolution does not support {g} on this CPU.");
        }
        int k = g.ColumnRows, hp = g.Height + 2 * g.PadHeight, wp = g.Width + 2 * g.PadWidth;
        if (image.Length < g.InputSize || padded.Length < PaddedLength(g) || offsets.Length < k)
        {
            throw new ArgumentException($"implicit convolution: spans too small for {g}.");
        }
        // Zero-padded copy of the image: borders stay zero, so every tap read is in bounds.
        padded[..PaddedLength(g)].Clear();
        for (int c = 0; c < g.Channels; c++)
        {
            for (int h = 0; h < g.Height; h++)
            {
                image.Slice((c * g.Height + h) * g.Width, g.Width)
                    .CopyTo(padded.Slice((c * hp + h + g.PadHeight) * wp + g.PadWidth, g.Width));
            }
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
    }

    /// <summary>
    /// Output panels [<paramref name="firstPanel"/>, + <paramref name="panelCount"/>) (<see cref="PanelWidthOf"/> pixels
    /// each) of y[Cout, OH OW] from a <see cref="Prepare"/>d image: disjoint panel ranges can run on different threads.
    /// </summary>
    public static void Compute(in ConvGeometry g, ReadOnlySpan<float> packedWeights, int outChannels, Span<float> y,
        ReadOnlySpan<float> padded, ReadOnlySpan<int> offsets, int firstPanel, int panelCount, KernelVariant variant) =>
        Compute(g, packedWeights, outChannels, y, g.ColumnCols, 0, padded, offsets, firstPanel, panelCount, variant);

    /// <summary>
    /// As <see cref="Compute(in ConvGeometry, ReadOnlySpan{float}, int, Span{float}, ReadOnlySpan{float}, ReadOnlySpan{int}, int, int, KernelVariant)"/>,
    /// writing output pixel j of channel c to y[c <paramref name="ldy"/> + j - <paramref name="firstPixel"/>]: a band of
    /// the output into a small buffer (the fused inference epilogue's), with the same operations per element.
    /// </summary>
    internal static void Compute(in ConvGeometry g, ReadOnlySpan<float> packedWeights, int outChannels, Span<float> y, int ldy,
        int firstPixel, ReadOnlySpan<float> padded, ReadOnlySpan<int> offsets, int firstPanel, int panelCount, KernelVariant variant)
    {
        int k = g.ColumnRows, pixels = g.ColumnCols, outW = g.OutWidth, wp = g.Width + 2 * g.PadWidth, nr = PanelWidthOf(variant);
        bool wide = variant == KernelVariant.Avx512;
        if (wide && (!Avx512F.IsSupported || outW % Nr512 != 0))
        {
            throw new PlatformNotSupportedException($"implicit convolution: the AVX-512 variant does not support {g} on this CPU.");
        }
        int lastPixel = (firstPanel + panelCount) * nr;
        if (!Supports(g) || padded.Length < PaddedLength(g) || offsets.Length < k
            || packedWeights.Length < GemmF32.PackedRowsLength(outChannels, k) || firstPanel < 0 || panelCount < 0 || lastPixel > pixels
            || firstPixel < 0 || firstPixel > firstPanel * nr || ldy < lastPixel - firstPixel
            || (outChannels > 0 && panelCount > 0 && y.Length < (long)(outChannels - 1) * ldy + lastPixel - firstPixel))
        {
            throw new ArgumentException($"implicit convolution: spans or panels [{firstPanel}, +{panelCount}) do not fit {g} with {outChannels} output channels.");
        }
        fixed (float* pa = packedWeights, px = padded, pyBase = y)
        fixed (int* po = offsets)
        {
            for (int ic = 0; ic < outChannels; ic += GemmF32.RowBlock)
            {
                int mc = Math.Min(GemmF32.RowBlock, outChannels - ic);
                for (int p0 = 0; p0 < k; p0 += GemmF32.DepthBlock)
                {
                    int kc = Math.Min(GemmF32.DepthBlock, k - p0);
                    float* block = pa + GemmF32.RowBlockOffset(ic, p0, mc, k);
                    for (int j0 = firstPanel * nr; j0 < (firstPanel + panelCount) * nr; j0 += nr)
                    {
                        float* tapBase = px + (long)(j0 / outW) * wp + j0 % outW;
                        for (int ir = 0; ir < mc; ir += Mr)
                        {
                            var rows = new GemmF32.OffsetRows(tapBase, po + p0);
                            float* c = pyBase + (long)(ic + ir) * ldy + j0 - firstPixel;
                            if (wide && mc - ir <= 4)
                            {
                                // The last rows of an output-channel count that is not a multiple of 6.
                                GemmF32.MicroKernel4x32(kc, block + (long)ir * kc, rows, c, ldy, accumulate: p0 > 0, mc - ir);
                            }
                            else if (wide)
                            {
                                GemmF32.MicroKernel6x32(kc, block + (long)ir * kc, rows, c, ldy, accumulate: p0 > 0, Math.Min(Mr, mc - ir), Nr512);
                            }
                            else
                            {
                                GemmF32.MicroKernel6x16(kc, block + (long)ir * kc, rows, c, ldy, accumulate: p0 > 0, Math.Min(Mr, mc - ir), Nr);
                            }
                        }
                    }
                }
            }
        }
    }
}
