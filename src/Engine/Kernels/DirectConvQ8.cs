using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// The int8 convolution kernel for shallow depth (conv1: 1 input channel x 9 taps = depth 9), with requantization in
/// registers:
/// <code>
///   for each panel of 16 output pixels (its k taps packed once, GemmS8U8 layout, a few hundred bytes in L1)
///     for each output channel c
///       acc[16]  = sum_p w[c, p] x[p, pixel]          exact int32: vpdpbusd over groups of 4 taps, or vpmaddwd over pairs
///       acc     -= zw[c] colsum(x)[pixel]             asymmetric weights only
///       y[c, 16] = clamp(MultiplyByQuantizedMultiplier(acc + addend[c], m[c], shift[c]) + zy, low, high)
/// </code>
/// Each output goes from accumulator to code without leaving the registers, every output channel reads the same loaded
/// pixels, and nothing is written but the codes. The GEMM path (<see cref="GemmS8U8.MultiplyPacked"/>, then
/// <see cref="RequantizeS32.Row(ReadOnlySpan{int}, int, int, int, int, int, int, Span{byte})"/>) writes and re-reads every
/// int32 accumulator, and its 4 x 16 tiles, built for depth in the hundreds, spend more on stores than on the 3 groups of
/// a depth of 9 (docs/quantization.md, "9. Where the int8 time goes"). Integer sums do not depend on their order, so the
/// result equals that path bit for bit (tests compare both).
/// </summary>
internal static unsafe class DirectConvQ8
{
    /// <summary>
    /// The deepest layer for which the int8 convolution takes this kernel rather than the GEMM: 4 groups of 4 taps.
    /// Measured (32 channels x 1,024 pixels, AVX-VNNI and AVX-512, fastest of 40 runs, direct time / GEMM + requantize
    /// time): 0.31 at depth 9, 0.64 at 16, 0.83 at 18, 1.0 at 36, 2.0 at 72, 14 at 288 (conv2), where the GEMM's 4 x 16
    /// register tile reuses each loaded panel for 4 channels. The crossover is near 32; 16 covers conv1 with a margin.
    /// </summary>
    public const int MaxDepth = 16;

    /// <summary>
    /// y[c * ldy + j] = clamp(MultiplyByQuantizedMultiplier(sum_p A[c, p] B[p, j] - zw[c] colsum(B)[j] + addend[c],
    /// mantissa[c], shift[c]) + zeroPoint, low, high) for an m x k packed A and k x n packed B
    /// (<see cref="GemmS8U8.PackWeights"/>, <see cref="GemmS8U8.PackActivations"/> for <paramref name="variant"/>).
    /// <paramref name="weightZeroPoints"/> is empty for symmetric weights, else one per row.
    /// </summary>
    public static void MultiplyRequantize(int m, int n, int k, ReadOnlySpan<int> packedA, ReadOnlySpan<byte> packedB,
        ReadOnlySpan<int> addends, ReadOnlySpan<int> mantissas, ReadOnlySpan<int> shifts, ReadOnlySpan<int> weightZeroPoints,
        int zeroPoint, int low, int high, Span<byte> y, int ldy, KernelVariant variant)
    {
        if (m < 0 || n < 0 || k <= 0 || ldy < n || addends.Length < m || mantissas.Length < m || shifts.Length < m
            || (weightZeroPoints.Length != 0 && weightZeroPoints.Length < m)
            || packedA.Length < GemmS8U8.PackedWeightsLength(m, k, variant) || packedB.Length < GemmS8U8.PackedActivationsLength(k, n, variant)
            || (m > 0 && n > 0 && (long)(m - 1) * ldy + n > y.Length) || low < 0 || high > byte.MaxValue || low > high)
        {
            throw new ArgumentException($"direct int8 convolution: operands do not fit m={m}, n={n}, k={k}, ldy={ldy}, clamp [{low}, {high}].");
        }
        if ((variant == KernelVariant.Avx2Fma && !Avx2.IsSupported) || (variant == KernelVariant.AvxVnni && !AvxVnni.IsSupported)
            || (variant != KernelVariant.Scalar && variant != KernelVariant.Avx2Fma && variant != KernelVariant.AvxVnni))
        {
            throw new PlatformNotSupportedException($"direct int8 convolution variant {variant} is not supported on this CPU.");
        }
        int group = GemmS8U8.GroupSize(variant), groups = GemmS8U8.DepthGroups(k, variant), panelLength = GemmS8U8.PanelLength(k, variant);
        const int width = GemmS8U8.PanelWidth;
        bool asymmetric = weightZeroPoints.Length != 0;
        bool wide = RequantizeS32.Best == KernelVariant.Avx512;      // requantize 16 lanes at a time where AVX-512 runs
        Span<int> tile = stackalloc int[width];
        fixed (int* pa = packedA, pt = tile)
        fixed (byte* pb = packedB, py = y)
        {
            // Channel outer, panel inner: the channel's multiplier, addend and clamp stay in registers (broadcast once),
            // and the packed pixels (16 bytes x k per panel: 12 KB for conv1) stay in L1 across channels.
            for (int c = 0; c < m; c++)
            {
                // Row c of the packed weights: one int32 (a pair or quad of codes) per group, RowBlock apart.
                int* a = pa + c / GemmS8U8.RowBlock * groups * GemmS8U8.RowBlock + c % GemmS8U8.RowBlock;
                int zw = asymmetric ? weightZeroPoints[c] : 0;
                int addend = addends[c], mantissa = mantissas[c], shift = shifts[c];
                bool vector = variant != KernelVariant.Scalar && RequantizeS32.CanVectorize(shift, zeroPoint, low, high);
                byte* row = py + (long)c * ldy;
                for (int panel = 0, j0 = 0; j0 < n; panel++, j0 += width)
                {
                    int cols = Math.Min(width, n - j0);
                    byte* b = pb + (long)panel * panelLength;
                    if (variant == KernelVariant.Scalar)
                    {
                        PortableRow(groups, a, b, pt);
                        if (asymmetric)
                        {
                            for (int t = 0; t < width; t++)
                            {
                                pt[t] -= zw * PortableColumnSum(groups, b, t);
                            }
                        }
                        RequantizeS32.RowScalar<byte>(tile[..cols], addend, mantissa, shift, zeroPoint, low, high, new Span<byte>(row + j0, cols));
                        continue;
                    }
                    Vector256<int> low8, high8;
                    if (variant == KernelVariant.AvxVnni)
                    {
                        (low8, high8) = RowVnni(groups, a, b);
                    }
                    else
                    {
                        (low8, high8) = RowAvx2(groups, a, b);
                    }
                    if (asymmetric)
                    {
                        // colsum over the panel's bytes (zeros past k add nothing), then acc -= zw colsum, wrapping as
                        // the GEMM path's correction does.
                        (Vector256<int> sum0, Vector256<int> sum1) = variant == KernelVariant.AvxVnni ? ColumnSumsVnni(groups, b) : ColumnSumsAvx2(groups, b);
                        var z = Vector256.Create(zw);
                        low8 -= z * sum0;
                        high8 -= z * sum1;
                    }
                    if (cols == width && vector && wide)
                    {
                        // All 16 pixels in one zmm: half the requantization instructions; vpmovdb narrows exactly.
                        Vector512<int> codes = RequantizeS32.Lanes(Vector512.Create(low8, high8), addend, mantissa, shift, zeroPoint, low, high);
                        Avx512F.ConvertToVector128Byte(codes).Store(row + j0);
                        continue;
                    }
                    if (cols == width && vector)
                    {
                        Vector256<int> codes0 = RequantizeS32.Lanes(low8, addend, mantissa, shift, zeroPoint, low, high);
                        Vector256<int> codes1 = RequantizeS32.Lanes(high8, addend, mantissa, shift, zeroPoint, low, high);
                        // Lanes are inside [low, high] c [0, 255]: the truncating narrows are exact and keep lane order.
                        Vector256<ushort> words = Vector256.Narrow(codes0.AsUInt32(), codes1.AsUInt32());
                        Vector128.Narrow(words.GetLower(), words.GetUpper()).Store(row + j0);
                        continue;
                    }
                    Avx.Store(pt, low8);
                    Avx.Store(pt + 8, high8);
                    RequantizeS32.RowScalar<byte>(tile[..cols], addend, mantissa, shift, zeroPoint, low, high, new Span<byte>(row + j0, cols));
                }
            }
        }
    }

    // Column sums of one panel (columns 0-7, 8-15): vpdpbusd against all-ones weights.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int>, Vector256<int>) ColumnSumsVnni(int quads, byte* b)
    {
        Vector256<int> c0 = default, c1 = default;
        Vector256<sbyte> ones = Vector256.Create((sbyte)1);
        for (int q = 0; q < quads; q++, b += 4 * GemmS8U8.PanelWidth)
        {
            c0 = AvxVnni.MultiplyWideningAndAdd(c0, Avx.LoadVector256(b), ones);
            c1 = AvxVnni.MultiplyWideningAndAdd(c1, Avx.LoadVector256(b + 32), ones);
        }
        return (c0, c1);
    }

    // Column sums of one panel (columns 0-7, 8-15): vpmaddwd against all-ones pairs.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int>, Vector256<int>) ColumnSumsAvx2(int pairs, byte* b)
    {
        Vector256<int> c0 = default, c1 = default;
        Vector256<short> ones = Vector256.Create((short)1);
        for (int q = 0; q < pairs; q++, b += 2 * GemmS8U8.PanelWidth)
        {
            c0 = Avx2.Add(c0, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(b), ones));
            c1 = Avx2.Add(c1, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(b + 16), ones));
        }
        return (c0, c1);
    }

    // Column t's sum over a pair-packed panel (bytes past k are zeros).
    private static int PortableColumnSum(int pairs, byte* b, int t)
    {
        int offset = GemmS8U8.ByteOffset(t, 2), sum = 0;
        for (int q = 0; q < pairs; q++)
        {
            sum += b[q * 2 * GemmS8U8.PanelWidth + offset] + b[q * 2 * GemmS8U8.PanelWidth + offset + 1];
        }
        return sum;
    }

    // Columns 0-7 and 8-15 of one row: per quad of taps, two 32-byte loads of the panel and one vpdpbusd each.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int>, Vector256<int>) RowVnni(int quads, int* a, byte* b)
    {
        Vector256<int> c0 = default, c1 = default;
        for (int q = 0; q < quads; q++, a += GemmS8U8.RowBlock, b += 4 * GemmS8U8.PanelWidth)
        {
            Vector256<sbyte> w = Vector256.Create(*a).AsSByte();
            c0 = AvxVnni.MultiplyWideningAndAdd(c0, Avx.LoadVector256(b), w);
            c1 = AvxVnni.MultiplyWideningAndAdd(c1, Avx.LoadVector256(b + 32), w);
        }
        return (c0, c1);
    }

    // Columns 0-7 and 8-15 of one row: per pair of taps, two zero-extending loads (16 bytes -> 16 x int16) and vpmaddwd.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int>, Vector256<int>) RowAvx2(int pairs, int* a, byte* b)
    {
        Vector256<int> c0 = default, c1 = default;
        for (int q = 0; q < pairs; q++, a += GemmS8U8.RowBlock, b += 2 * GemmS8U8.PanelWidth)
        {
            Vector256<short> w = Vector256.Create(*a).AsInt16();
            c0 = Avx2.Add(c0, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(b), w));
            c1 = Avx2.Add(c1, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(b + 16), w));
        }
        return (c0, c1);
    }

    // The pair layout with plain loops (the Scalar variant packs pairs), for CPUs without AVX2.
    private static void PortableRow(int pairs, int* a, byte* b, int* row)
    {
        new Span<int>(row, GemmS8U8.PanelWidth).Clear();
        for (int q = 0; q < pairs; q++, a += GemmS8U8.RowBlock, b += 2 * GemmS8U8.PanelWidth)
        {
            int lo = (short)*a, hi = *a >> 16;
            for (int t = 0; t < GemmS8U8.PanelWidth; t++)
            {
                int offset = GemmS8U8.ByteOffset(t, 2);
                row[t] += lo * b[offset] + hi * b[offset + 1];
            }
        }
    }
}
