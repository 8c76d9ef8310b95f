using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// One band of an int8 convolution followed by an average pooling of window and stride p (no padding), from packed
/// operands to pooled codes, with no int32 accumulator and no unpooled code ever leaving L1:
/// <code>
///   for each column panel pc of the band (16 pixels of each of its p output rows)
///     sums[m, 16] = 0
///     for each band row r, for each block of 4 output channels
///       tile[4, 16]  = W[4 rows, k] B[k, panel (r, pc)]            the GEMM's micro-kernel (GemmS8U8)
///       sums[c, t] += clamp(MultiplyByQuantizedMultiplier(tile[c, t] + addend[c], m[c], shift[c]) + zy, low, high)
///     pooled[c, pc 16 / p + w] = (sum over the p columns of window w of sums[c, .] + p^2 / 2) >> log2(p^2)
/// </code>
/// The same integers as the GEMM (<see cref="GemmS8U8.MultiplyPacked"/>), then requantization
/// (<see cref="RequantizeS32.RowScalar{T}"/>), then <see cref="AvgPoolQ8.ForwardScalar{T}"/>: integer sums do not depend
/// on their order, codes are &gt;= 0 so the rounded mean (s + p^2 / 2) / p^2 is that shift, and a window (p rows of p
/// columns) lies inside one panel column of the band because p divides 16 (docs/quantization.md, "11. Convolution and
/// pooling fused"). Panel outer and channel inner, as in the GEMM: a 4.6 KB panel (conv2) stays in L1 while every
/// channel block meets it, and the window sums are 64 bytes a channel.
/// </summary>
internal static unsafe class PooledGemmQ8
{
    /// <summary>Whether a pooling window of <paramref name="pool"/> fits whole inside a panel: p divides 16 (1, 2, 4, 8, 16).</summary>
    public static bool SupportsPool(int pool) => pool > 0 && GemmS8U8.PanelWidth % pool == 0;

    /// <summary>
    /// Whether every channel requantizes with the vector lanes (<see cref="RequantizeS32.CanVectorize"/>); otherwise the
    /// caller keeps the unfused path (the scalar variant has no such condition).
    /// </summary>
    public static bool CanRun(ReadOnlySpan<int> shifts, int zeroPoint, int low, int high, KernelVariant variant)
    {
        if (variant == KernelVariant.Scalar)
        {
            return true;
        }
        foreach (int shift in shifts)
        {
            if (!RequantizeS32.CanVectorize(shift, zeroPoint, low, high))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Int32 elements of the window-sum scratch <see cref="MultiplyRequantizePool"/> needs for m channels.</summary>
    public static int SumsLength(int m) => (m + GemmS8U8.RowBlock - 1) / GemmS8U8.RowBlock * GemmS8U8.RowBlock * GemmS8U8.PanelWidth;

    /// <summary>
    /// pooled[c * ldp + w], c &lt; m, w &lt; panelsPerRow 16 / pool: the pooled, requantized codes of one band of
    /// <paramref name="pool"/> output rows (symmetric weights). packedB holds pool x panelsPerRow panels for depth k
    /// (<see cref="GemmS8U8.PackedActivationsLength"/>), band row r's panel pc at index r panelsPerRow + pc, as
    /// <see cref="ConvPackQ8.PackBorderedRows"/> writes them.
    /// </summary>
    /// <remarks>
    /// With <paramref name="nibbles"/>, packedA holds 4-bit codes packed by <see cref="GemmS4U8.PackWeights"/> and every tile
    /// is computed by <see cref="GemmS4U8.Tile"/>: the same accumulators, so the same codes.
    /// </remarks>
    public static void MultiplyRequantizePool(int m, int k, int panelsPerRow, int pool, ReadOnlySpan<int> packedA, ReadOnlySpan<byte> packedB,
        ReadOnlySpan<int> addends, ReadOnlySpan<int> mantissas, ReadOnlySpan<int> shifts, int zeroPoint, int low, int high,
        Span<int> sums, Span<byte> pooled, int ldp, KernelVariant variant, bool nibbles = false)
    {
        const int width = GemmS8U8.PanelWidth, block = GemmS8U8.RowBlock;
        int windows = width / Math.Max(pool, 1);
        if (m <= 0 || k <= 0 || panelsPerRow <= 0 || !SupportsPool(pool) || addends.Length < m || mantissas.Length < m || shifts.Length < m
            || packedA.Length < (nibbles ? GemmS4U8.PackedWeightsLength(m, k) : GemmS8U8.PackedWeightsLength(m, k, variant))
            || packedB.Length < (long)pool * panelsPerRow * GemmS8U8.PanelLength(k, variant)
            || sums.Length < SumsLength(m) || ldp < panelsPerRow * windows || (long)(m - 1) * ldp + panelsPerRow * windows > pooled.Length
            || low < 0 || high > byte.MaxValue || low > high || !CanRun(shifts[..m], zeroPoint, low, high, variant))
        {
            throw new ArgumentException($"pooled int8 convolution: operands do not fit m={m}, k={k}, {panelsPerRow} panels a row, pool {pool}, clamp [{low}, {high}].");
        }
        if ((variant == KernelVariant.Avx2Fma && !Avx2.IsSupported) || (variant == KernelVariant.AvxVnni && !AvxVnni.IsSupported)
            || (variant != KernelVariant.Scalar && variant != KernelVariant.Avx2Fma && variant != KernelVariant.AvxVnni))
        {
            throw new PlatformNotSupportedException($"pooled int8 convolution variant {variant} is not supported on this CPU.");
        }
        int groups = GemmS8U8.DepthGroups(k, variant), panelLength = GemmS8U8.PanelLength(k, variant);
        int log = BitOperations.Log2((uint)(pool * pool));
        bool wide = RequantizeS32.Best == KernelVariant.Avx512;      // requantize 16 lanes at a time where AVX-512 runs
        Span<int> tile = stackalloc int[block * width];
        fixed (int* pa = packedA, pt = tile, ps = sums)
        fixed (byte* pb = packedB, py = pooled)
        {
            for (int pc = 0; pc < panelsPerRow; pc++)
            {
                new Span<int>(ps, SumsLength(m)).Clear();
                for (int r = 0; r < pool; r++)
                {
                    byte* b = pb + (long)(r * panelsPerRow + pc) * panelLength;
                    for (int i0 = 0; i0 < m; i0 += block)
                    {
                        if (nibbles)
                        {
                            GemmS4U8.Tile(groups, pa + i0 / block * GemmS4U8.Octets(k) * block, b, pt, width, variant);
                        }
                        else
                        {
                            GemmS8U8.Tile(groups, pa + i0 / block * groups * block, b, pt, width, variant);
                        }
                        int rows = Math.Min(block, m - i0);
                        for (int row = 0; row < rows; row++)
                        {
                            int c = i0 + row;
                            AddCodes(pt + row * width, ps + c * width, addends[c], mantissas[c], shifts[c], zeroPoint, low, high, variant, wide);
                        }
                    }
                }
                for (int c = 0; c < m; c++)
                {
                    WriteMeans(ps + c * width, py + (long)c * ldp + pc * windows, pool, log, variant);
                }
            }
        }
    }

    // sums[t] += the requantized code of accumulator tile[t], t < 16.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddCodes(int* tile, int* sums, int addend, int mantissa, int shift, int zeroPoint, int low, int high,
        KernelVariant variant, bool wide)
    {
        if (variant == KernelVariant.Scalar)
        {
            for (int t = 0; t < GemmS8U8.PanelWidth; t++)
            {
                int scaled = FixedPoint.MultiplyByQuantizedMultiplier(unchecked(tile[t] + addend), mantissa, shift);
                sums[t] += (int)Math.Clamp((long)scaled + zeroPoint, low, high);
            }
            return;
        }
        if (wide)
        {
            Vector512<int> codes = RequantizeS32.Lanes(Vector512.Load(tile), addend, mantissa, shift, zeroPoint, low, high);
            (Vector512.Load(sums) + codes).Store(sums);
            return;
        }
        Vector256<int> low8 = RequantizeS32.Lanes(Vector256.Load(tile), addend, mantissa, shift, zeroPoint, low, high);
        Vector256<int> high8 = RequantizeS32.Lanes(Vector256.Load(tile + 8), addend, mantissa, shift, zeroPoint, low, high);
        (Vector256.Load(sums) + low8).Store(sums);
        (Vector256.Load(sums + 8) + high8).Store(sums + 8);
    }

    // means[w] = (sum of sums[w pool .. w pool + pool) + pool^2 / 2) >> log2(pool^2), for the 16 / pool windows of a panel.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteMeans(int* sums, byte* means, int pool, int log, KernelVariant variant)
    {
        if (pool == 4 && variant != KernelVariant.Scalar && Avx2.IsSupported)
        {
            // Two horizontal adds sum each group of 4 lanes: 128-bit halves give windows 0 and 2 (low half), 1 and 3
            // (high half), which a permute puts in order.
            Vector256<int> lo = Vector256.Load(sums), hi = Vector256.Load(sums + 8);
            Vector256<int> pairs = Avx2.HorizontalAdd(lo, hi);
            Vector256<int> quads = Avx2.HorizontalAdd(pairs, pairs);
            Vector256<int> ordered = Avx2.PermuteVar8x32(quads, Vector256.Create(0, 4, 1, 5, 0, 4, 1, 5));
            Vector128<int> rounded = Vector128.ShiftRightLogical(ordered.GetLower() + Vector128.Create(8), 4);
            Vector128<byte> bytes = Ssse3.Shuffle(rounded.AsByte(), Vector128.Create((byte)0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12));
            *(int*)means = bytes.AsInt32().ToScalar();
            return;
        }
        int half = pool * pool / 2;
        for (int w = 0; w < GemmS8U8.PanelWidth / pool; w++)
        {
            int sum = half;
            for (int j = 0; j < pool; j++)
            {
                sum += sums[w * pool + j];
            }
            means[w] = (byte)(sum >> log);
        }
    }
}
