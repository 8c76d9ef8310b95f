using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// Average pooling on 8-bit codes, in integers: the mean of the stored values of each window, rounded half away from
/// zero, q_out = round(sum q / (kh kw)). Input and output share scale and zero point, so no rescaling is needed
/// (TFLite's reference AveragePool: (sum + count / 2) / count for non-negative sums, (sum - count / 2) / count otherwise).
/// <para>
/// The AVX2 variant splits each window sum into column sums: for one output row it adds the kernel's kh input rows
/// column by column, 16 columns per step in uint16 lanes (vpmovzxbw, then vpaddw; kh x 255 &lt;= 65535 keeps them exact),
/// then adds kw adjacent column sums per output in int32 and rounds as the reference does. Windows that overlap
/// (stride &lt; kernel) share their column sums. int8 codes are offset by 128 on loading (x ^ 0x80 = x + 128 as a byte),
/// so the same unsigned lanes serve, and 128 kh kw comes off each window sum before rounding.
/// </para>
/// </summary>
public static class AvgPoolQ8
{
    // Column sums of one output row live on the stack: 8 KB at most.
    private const int MaxVectorWidth = 4096;

    // uint16 column sums hold kh x 255 exactly.
    private const int MaxVectorKernelHeight = ushort.MaxValue / byte.MaxValue;

    /// <summary>The fastest variant this CPU runs.</summary>
    public static KernelVariant Best { get; } = Avx2.IsSupported ? KernelVariant.Avx2Fma : KernelVariant.Scalar;

    /// <summary>Every variant this CPU runs, reference first.</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } =
        Avx2.IsSupported ? [KernelVariant.Scalar, KernelVariant.Avx2Fma] : [KernelVariant.Scalar];

    /// <summary>y[C, OH, OW] = rounded window means of uint8 codes x[C, H, W] (no padding), with the fastest variant.</summary>
    public static void Forward(ReadOnlySpan<byte> x, in ConvGeometry g, Span<byte> y) => Forward(x, g, y, Best);

    /// <summary>
    /// y[c, oh, ow] = round_half_away(sum_{i &lt; kh, j &lt; kw} x[c, oh sh + i, ow sw + j] / (kh kw)) for uint8 codes
    /// (no padding), with <paramref name="variant"/>.
    /// </summary>
    public static void Forward(ReadOnlySpan<byte> x, in ConvGeometry g, Span<byte> y, KernelVariant variant)
    {
        if (UseAvx2(variant, g))
        {
            Check(x.Length, y.Length, g);
            Avx2Planes(x, g, y, signed: false);
        }
        else
        {
            ForwardScalar(x, g, y);
        }
    }

    /// <summary>y[C, OH, OW] = rounded window means of int8 codes x[C, H, W] (no padding), with the fastest variant.</summary>
    public static void Forward(ReadOnlySpan<sbyte> x, in ConvGeometry g, Span<sbyte> y) => Forward(x, g, y, Best);

    /// <summary>
    /// y[c, oh, ow] = round_half_away(sum_{i &lt; kh, j &lt; kw} x[c, oh sh + i, ow sw + j] / (kh kw)) for int8 codes
    /// (no padding), with <paramref name="variant"/>.
    /// </summary>
    public static void Forward(ReadOnlySpan<sbyte> x, in ConvGeometry g, Span<sbyte> y, KernelVariant variant)
    {
        if (UseAvx2(variant, g))
        {
            Check(x.Length, y.Length, g);
            Avx2Planes(MemoryMarshal.AsBytes(x), g, MemoryMarshal.AsBytes(y), signed: true);
        }
        else
        {
            ForwardScalar(x, g, y);
        }
    }

    /// <summary>
    /// The reference: y[c, oh, ow] = (s + kh kw / 2) / (kh kw) for s &gt;= 0, else (s - kh kw / 2) / (kh kw), with
    /// s = sum_{i &lt; kh, j &lt; kw} x[c, oh sh + i, ow sw + j] and truncating division (no padding).
    /// </summary>
    public static void ForwardScalar<T>(ReadOnlySpan<T> x, in ConvGeometry g, Span<T> y)
        where T : unmanaged, IBinaryInteger<T>
    {
        Check(x.Length, y.Length, g);
        int outH = g.OutHeight, outW = g.OutWidth, count = g.KernelHeight * g.KernelWidth;
        for (int c = 0; c < g.Channels; c++)
        {
            ReadOnlySpan<T> plane = x.Slice(c * g.Height * g.Width, g.Height * g.Width);
            for (int oh = 0; oh < outH; oh++)
            {
                for (int ow = 0; ow < outW; ow++)
                {
                    int sum = 0;
                    for (int i = 0; i < g.KernelHeight; i++)
                    {
                        foreach (T v in plane.Slice((oh * g.StrideHeight + i) * g.Width + ow * g.StrideWidth, g.KernelWidth))
                        {
                            sum += int.CreateTruncating(v);
                        }
                    }
                    y[(c * outH + oh) * outW + ow] = T.CreateTruncating(RoundedMean(sum, count));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RoundedMean(int sum, int count) => sum >= 0 ? (sum + count / 2) / count : (sum - count / 2) / count;

    private static bool UseAvx2(KernelVariant variant, in ConvGeometry g) =>
        variant != KernelVariant.Scalar && Avx2.IsSupported && g.KernelHeight <= MaxVectorKernelHeight && g.Width <= MaxVectorWidth;

    // x [C, H, W] and y [C, OH, OW] as bytes; signed: the bytes are int8 codes.
    private static void Avx2Planes(ReadOnlySpan<byte> x, in ConvGeometry g, Span<byte> y, bool signed)
    {
        int outH = g.OutHeight, outW = g.OutWidth, count = g.KernelHeight * g.KernelWidth;
        int columns = (outW - 1) * g.StrideWidth + g.KernelWidth;      // columns some window reads (<= W)
        Span<ushort> columnSums = stackalloc ushort[columns];          // [columns]: one output row's sums over kh rows
        Vector128<byte> offset = signed ? Vector128.Create((byte)0x80) : Vector128<byte>.Zero;
        int bias = signed ? 128 * count : 0;
        for (int c = 0; c < g.Channels; c++)
        {
            ReadOnlySpan<byte> plane = x.Slice(c * g.Height * g.Width, g.Height * g.Width);
            Span<byte> outPlane = y.Slice(c * outH * outW, outH * outW);
            for (int oh = 0; oh < outH; oh++)
            {
                ReadOnlySpan<byte> rows = plane[(oh * g.StrideHeight * g.Width)..];
                if (columns >= 16)
                {
                    int j = 0;
                    for (; j + 16 <= columns; j += 16)
                    {
                        SumColumns(rows, g.Width, g.KernelHeight, j, offset, columnSums);
                    }
                    if (j < columns)
                    {
                        // An overlapping last vector: recomputing a few sums is cheaper than a scalar tail.
                        SumColumns(rows, g.Width, g.KernelHeight, columns - 16, offset, columnSums);
                    }
                }
                else
                {
                    byte flip = offset.GetElement(0);
                    columnSums.Clear();
                    for (int i = 0; i < g.KernelHeight; i++)
                    {
                        ReadOnlySpan<byte> row = rows.Slice(i * g.Width, columns);
                        for (int j = 0; j < columns; j++)
                        {
                            columnSums[j] += (byte)(row[j] ^ flip);
                        }
                    }
                }
                Span<byte> outRow = outPlane.Slice(oh * outW, outW);
                if (!signed && BitOperations.IsPow2(count))
                {
                    // uint8 sums are >= 0, so (sum + count / 2) / count is a shift when count is a power of two (4x4
                    // windows: 16): the same integer without a division per output.
                    int log = BitOperations.Log2((uint)count);
                    for (int ow = 0; ow < outW; ow++)
                    {
                        int sum = count / 2;
                        foreach (ushort s in columnSums.Slice(ow * g.StrideWidth, g.KernelWidth))
                        {
                            sum += s;
                        }
                        outRow[ow] = (byte)(sum >> log);
                    }
                    continue;
                }
                for (int ow = 0; ow < outW; ow++)
                {
                    int sum = -bias;
                    foreach (ushort s in columnSums.Slice(ow * g.StrideWidth, g.KernelWidth))
                    {
                        sum += s;
                    }
                    outRow[ow] = unchecked((byte)RoundedMean(sum, count));
                }
            }
        }
    }

    // columnSums[j .. j + 16) = sum over kh rows of (x ^ offset), widened to uint16.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SumColumns(ReadOnlySpan<byte> rows, int width, int kernelHeight, int j, Vector128<byte> offset, Span<ushort> columnSums)
    {
        Vector256<ushort> sum = Vector256<ushort>.Zero;
        for (int i = 0; i < kernelHeight; i++)
        {
            Vector128<byte> codes = Vector128.Create(rows.Slice(i * width + j, 16)) ^ offset;
            sum += Avx2.ConvertToVector256Int16(codes).AsUInt16();
        }
        sum.CopyTo(columnSums[j..]);
    }

    private static void Check(int xLength, int yLength, in ConvGeometry g)
    {
        g.Validate("integer average pooling");
        if (g.PadHeight != 0 || g.PadWidth != 0 || xLength < g.InputSize || yLength < g.Channels * g.OutHeight * g.OutWidth)
        {
            throw new ArgumentException($"integer average pooling: spans of {xLength} and {yLength} do not fit {g} (no padding).");
        }
    }
}
