using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// Stride-1 convolution as an implicit GEMM: out[Cout, OH OW] = W[Cout, C kh kw] col, without building col.
/// With the image zero-padded once into xp[C, H + 2p, W + 2p], the 16 values of col that a micro-kernel step needs,
/// tap r = (c, i, j) for the pixels (oh, ow0 .. ow0 + 15), are xp[c, oh + i, ow0 + j .. ow0 + j + 15]: contiguous.
/// So the kernel reads them in place through a table of tap offsets, offset[r] = (c (H + 2p) + i) (W + 2p) + j, and the
/// im2col pass (a 1.2 MB copy per image for conv2) disappears. Needs AVX2 + FMA, stride 1 and rows of output pixels
/// that are whole multiples of 16 (<see cref="Supports"/>); otherwise the layer uses im2col.
/// </summary>
public static unsafe class ImplicitConvF32
{
    private const int Mr = 6, Nr = 16;

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
        if (!Supports(g))
        {
            throw new PlatformNotSupportedException($"implicit convolution does not support {g} on this CPU.");
        }
        int k = g.ColumnRows, pixels = g.ColumnCols, outW = g.OutWidth;
        int hp = g.Height + 2 * g.PadHeight, wp = g.Width + 2 * g.PadWidth;
        if (image.Length < g.InputSize || padded.Length < PaddedLength(g) || offsets.Length < k
            || y.Length < outChannels * pixels || packedWeights.Length < GemmF32.PackedRowsLength(outChannels, k))
        {
            throw new ArgumentException($"implicit convolution: spans too small for {g} with {outChannels} output channels.");
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
                    for (int j0 = 0; j0 < pixels; j0 += Nr)
                    {
                        float* tapBase = px + (long)(j0 / outW) * wp + j0 % outW;
                        for (int ir = 0; ir < mc; ir += Mr)
                        {
                            MicroKernel(kc, block + (long)ir * kc, tapBase, po + p0, pyBase + (long)(ic + ir) * pixels + j0, pixels,
                                accumulate: p0 > 0, Math.Min(Mr, mc - ir));
                        }
                    }
                }
            }
        }
    }

    /// <summary>The 6 x 16 FMA micro-kernel of <see cref="GemmF32"/>, with B's row p read at <paramref name="b"/> + offsets[p].</summary>
    private static void MicroKernel(int kc, float* a, float* b, int* offsets, float* c, int ldc, bool accumulate, int rows)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            float* row = b + offsets[p];
            Vector256<float> b0 = Avx.LoadVector256(row);
            Vector256<float> b1 = Avx.LoadVector256(row + 8);
            Vector256<float> ai = Avx.BroadcastScalarToVector256(a);
            c00 = Fma.MultiplyAdd(ai, b0, c00);
            c01 = Fma.MultiplyAdd(ai, b1, c01);
            ai = Avx.BroadcastScalarToVector256(a + 1);
            c10 = Fma.MultiplyAdd(ai, b0, c10);
            c11 = Fma.MultiplyAdd(ai, b1, c11);
            ai = Avx.BroadcastScalarToVector256(a + 2);
            c20 = Fma.MultiplyAdd(ai, b0, c20);
            c21 = Fma.MultiplyAdd(ai, b1, c21);
            ai = Avx.BroadcastScalarToVector256(a + 3);
            c30 = Fma.MultiplyAdd(ai, b0, c30);
            c31 = Fma.MultiplyAdd(ai, b1, c31);
            ai = Avx.BroadcastScalarToVector256(a + 4);
            c40 = Fma.MultiplyAdd(ai, b0, c40);
            c41 = Fma.MultiplyAdd(ai, b1, c41);
            ai = Avx.BroadcastScalarToVector256(a + 5);
            c50 = Fma.MultiplyAdd(ai, b0, c50);
            c51 = Fma.MultiplyAdd(ai, b1, c51);
            a += Mr;
        }
        Store(c, c00, c01, accumulate, rows > 0);
        Store(c + ldc, c10, c11, accumulate, rows > 1);
        Store(c + 2L * ldc, c20, c21, accumulate, rows > 2);
        Store(c + 3L * ldc, c30, c31, accumulate, rows > 3);
        Store(c + 4L * ldc, c40, c41, accumulate, rows > 4);
        Store(c + 5L * ldc, c50, c51, accumulate, rows > 5);
    }

    private static void Store(float* c, Vector256<float> lo, Vector256<float> hi, bool accumulate, bool valid)
    {
        if (!valid)
        {
            return;
        }
        if (accumulate)
        {
            lo = Avx.Add(lo, Avx.LoadVector256(c));
            hi = Avx.Add(hi, Avx.LoadVector256(c + 8));
        }
        Avx.Store(c, lo);
        Avx.Store(c + 8, hi);
    }
}
