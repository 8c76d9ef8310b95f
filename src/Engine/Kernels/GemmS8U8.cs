using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// Exact integer matrix product for the int8 path: C[m x n] = A[m x k] B[k x n] in int32, with A int8 (weights, one row
/// per output channel) and B uint8 (activations, for example an im2col matrix). Zero points stay out of the loop: the
/// caller corrects with precomputed row and column sums, (A - za)(B - zb) = AB - zb rowsum(A) - za colsum(B) + k za zb
/// (gemmlowp, doc/low-precision.md).
/// <para>
/// Both operands are packed first, A once per layer (weights do not change) and B once per call, into the order the
/// micro-kernel reads them: depth in pairs (p, p + 1), because the AVX2 kernel widens both operands to int16 and
/// multiplies adjacent pairs with vpmaddwd (<see cref="Avx2.MultiplyAddAdjacent(Vector256{short}, Vector256{short})"/>):
/// each int32 lane gets a[p] b[p] + a[p+1] b[p+1], at most 2 x 128 x 255 = 65,280 in magnitude, so nothing saturates
/// and the result equals the scalar reference bit for bit. (vpmaddubsw, which multiplies u8 by s8 into saturating
/// int16, would overflow on 255 x 127 x 2: the hazard DESIGN.md warns of.)
/// </para>
/// <code>
///   packed A (int32)  [row block of 4][pair q][row r] = (ushort)A[r, 2q] | A[r, 2q+1] &lt;&lt; 16   (odd k: 0 in the high half)
///   packed B (uint8)  [panel of 16 columns][pair q][column t][2]  = B[2q, t], B[2q+1, t]         (missing columns: 0)
/// </code>
/// Zero-extending one packed B half (16 bytes) gives 8 columns' int16 pairs, so vpmaddwd's output lane t is column t.
/// </summary>
public static unsafe class GemmS8U8
{
    /// <summary>Rows of C computed together by the micro-kernel.</summary>
    public const int RowBlock = 4;

    /// <summary>Columns of C computed together by the micro-kernel (one packed B panel).</summary>
    public const int PanelWidth = 16;

    /// <summary>The fastest variant this CPU runs.</summary>
    public static KernelVariant Best { get; } = Avx2.IsSupported ? KernelVariant.Avx2Fma : KernelVariant.Scalar;

    /// <summary>Every variant this CPU runs, reference first.</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } =
        Avx2.IsSupported ? [KernelVariant.Scalar, KernelVariant.Avx2Fma] : [KernelVariant.Scalar];

    /// <summary>Depth steps taken two at a time.</summary>
    public static int DepthPairs(int k) => (k + 1) / 2;

    /// <summary>Packed B panels for <paramref name="n"/> columns.</summary>
    public static int Panels(int n) => (n + PanelWidth - 1) / PanelWidth;

    /// <summary>int32 elements <see cref="PackWeights"/> writes for an m x k matrix.</summary>
    public static int PackedWeightsLength(int m, int k) => (m + RowBlock - 1) / RowBlock * RowBlock * DepthPairs(k);

    /// <summary>Bytes <see cref="PackActivations"/> writes for a k x n matrix.</summary>
    public static int PackedActivationsLength(int k, int n) => Panels(n) * DepthPairs(k) * 2 * PanelWidth;

    /// <summary>Bytes of one packed B panel.</summary>
    public static int PanelLength(int k) => DepthPairs(k) * 2 * PanelWidth;

    /// <summary>Packs A[m x k] (row-major, leading dimension <paramref name="lda"/>) into int16 pairs by row block.</summary>
    public static void PackWeights(int m, int k, ReadOnlySpan<sbyte> a, int lda, Span<int> packed)
    {
        CheckDimensions(m, 1, k);
        Check("A", m, k, a.Length, lda);
        int pairs = DepthPairs(k), length = PackedWeightsLength(m, k);
        if (packed.Length < length)
        {
            throw new ArgumentException($"int8 GEMM: packed A needs {length} elements, got {packed.Length}.");
        }
        packed[..length].Clear();
        for (int i = 0; i < m; i++)
        {
            ReadOnlySpan<sbyte> row = a.Slice(i * lda, k);
            int blockBase = i / RowBlock * pairs * RowBlock + i % RowBlock;
            for (int q = 0; q < pairs; q++)
            {
                int p = 2 * q;
                short lo = row[p], hi = p + 1 < k ? row[p + 1] : (short)0;
                packed[blockBase + q * RowBlock] = (ushort)lo | (hi << 16);
            }
        }
    }

    /// <summary>Packs B[k x n] (row-major, leading dimension <paramref name="ldb"/>) into panels of 16 columns with interleaved depth pairs.</summary>
    public static void PackActivations(int k, int n, ReadOnlySpan<byte> b, int ldb, Span<byte> packed)
    {
        CheckDimensions(1, n, k);
        Check("B", k, n, b.Length, ldb);
        int pairs = DepthPairs(k), length = PackedActivationsLength(k, n);
        if (packed.Length < length)
        {
            throw new ArgumentException($"int8 GEMM: packed B needs {length} bytes, got {packed.Length}.");
        }
        for (int panel = 0, j0 = 0; j0 < n; panel++, j0 += PanelWidth)
        {
            int cols = Math.Min(PanelWidth, n - j0);
            Span<byte> dst = packed.Slice(panel * pairs * 2 * PanelWidth, pairs * 2 * PanelWidth);
            for (int q = 0; q < pairs; q++)
            {
                int p = 2 * q;
                ReadOnlySpan<byte> row0 = b.Slice(p * ldb + j0, cols);
                ReadOnlySpan<byte> row1 = p + 1 < k ? b.Slice((p + 1) * ldb + j0, cols) : default;
                InterleavePair(row0, row1, dst.Slice(q * 2 * PanelWidth, 2 * PanelWidth));
            }
        }
    }

    /// <summary>
    /// Packs B = Xᵀ where X[n x k] is row-major with leading dimension <paramref name="ldx"/>: a batch of input vectors,
    /// one per row, becomes the k x n right operand of a linear layer (C[out x n] = W X ᵀ).
    /// </summary>
    public static void PackActivationsTransposed(int k, int n, ReadOnlySpan<byte> x, int ldx, Span<byte> packed)
    {
        CheckDimensions(1, n, k);
        Check("X", n, k, x.Length, ldx);
        int pairs = DepthPairs(k), length = PackedActivationsLength(k, n);
        if (packed.Length < length)
        {
            throw new ArgumentException($"int8 GEMM: packed B needs {length} bytes, got {packed.Length}.");
        }
        packed[..length].Clear();
        for (int panel = 0, j0 = 0; j0 < n; panel++, j0 += PanelWidth)
        {
            int cols = Math.Min(PanelWidth, n - j0);
            Span<byte> dst = packed.Slice(panel * pairs * 2 * PanelWidth, pairs * 2 * PanelWidth);
            for (int t = 0; t < cols; t++)
            {
                ReadOnlySpan<byte> sample = x.Slice((j0 + t) * ldx, k);
                // Within a half of 16 bytes, column t's pair sits at 2t; the second half holds columns 8..15.
                int offset = PairOffset(t);
                for (int q = 0; q < k / 2; q++)
                {
                    dst[q * 2 * PanelWidth + offset] = sample[2 * q];
                    dst[q * 2 * PanelWidth + offset + 1] = sample[2 * q + 1];
                }
                if (k % 2 == 1)
                {
                    dst[(pairs - 1) * 2 * PanelWidth + offset] = sample[k - 1];
                }
            }
        }
    }

    /// <summary>
    /// One depth pair of one panel: 32 bytes, columns 0..7 interleaved in the first half and 8..15 in the second
    /// (row1 empty means the odd last depth step: zeros).
    /// </summary>
    internal static void InterleavePair(ReadOnlySpan<byte> row0, ReadOnlySpan<byte> row1, Span<byte> dst)
    {
        if (row0.Length == PanelWidth && (row1.IsEmpty || row1.Length == PanelWidth) && dst.Length >= 2 * PanelWidth)
        {
            fixed (byte* p0 = row0, p1 = row1, d = dst)
            {
                InterleavePair(p0, row1.IsEmpty ? null : p1, d);
            }
            return;
        }
        dst[..(2 * PanelWidth)].Clear();
        for (int t = 0; t < row0.Length; t++)
        {
            dst[PairOffset(t)] = row0[t];
            dst[PairOffset(t) + 1] = row1.IsEmpty ? (byte)0 : row1[t];
        }
    }

    /// <summary>16 bytes of depth step p and 16 of step p + 1 (null: zeros) into one packed depth pair of a full panel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void InterleavePair(byte* row0, byte* row1, byte* dst)
    {
        if (Sse2.IsSupported)
        {
            Vector128<byte> v0 = Sse2.LoadVector128(row0);
            Vector128<byte> v1 = row1 == null ? Vector128<byte>.Zero : Sse2.LoadVector128(row1);
            Sse2.Store(dst, Sse2.UnpackLow(v0, v1));
            Sse2.Store(dst + PanelWidth, Sse2.UnpackHigh(v0, v1));
            return;
        }
        for (int t = 0; t < PanelWidth; t++)
        {
            dst[PairOffset(t)] = row0[t];
            dst[PairOffset(t) + 1] = row1 == null ? (byte)0 : row1[t];
        }
    }

    /// <summary>Where column t's pair starts inside a packed depth pair: 2t in the first half, 16 + 2(t - 8) in the second.</summary>
    internal static int PairOffset(int t) => t < 8 ? 2 * t : PanelWidth + 2 * (t - 8);

    /// <summary>Sum over depth of every column of a packed B (for the za colsum(B) correction of asymmetric weights).</summary>
    public static void PackedColumnSums(int k, int n, ReadOnlySpan<byte> packedB, Span<int> sums)
    {
        int pairs = DepthPairs(k);
        for (int j = 0; j < n; j++)
        {
            int panel = j / PanelWidth, t = j % PanelWidth;
            int offset = PairOffset(t);
            ReadOnlySpan<byte> dst = packedB.Slice(panel * pairs * 2 * PanelWidth, pairs * 2 * PanelWidth);
            int sum = 0;
            for (int q = 0; q < pairs; q++)
            {
                sum += dst[q * 2 * PanelWidth + offset] + dst[q * 2 * PanelWidth + offset + 1];
            }
            sums[j] = sum;
        }
    }

    /// <summary>
    /// C[m x n] = A B from packed operands (<see cref="PackWeights"/>, <see cref="PackActivations"/>), exactly, in int32.
    /// <paramref name="variant"/> Scalar runs a portable loop over the packed layout (the fallback without AVX2).
    /// </summary>
    public static void MultiplyPacked(int m, int n, int k, ReadOnlySpan<int> packedA, ReadOnlySpan<byte> packedB,
        Span<int> c, int ldc, KernelVariant variant)
    {
        CheckDimensions(m, n, k);
        Check("C", m, n, c.Length, ldc);
        if (packedA.Length < PackedWeightsLength(m, k) || packedB.Length < PackedActivationsLength(k, n))
        {
            throw new ArgumentException($"int8 GEMM: packed operands of {packedA.Length} and {packedB.Length} do not fit m={m}, n={n}, k={k}.");
        }
        if (m == 0 || n == 0)
        {
            return;
        }
        if (variant != KernelVariant.Scalar && !Avx2.IsSupported)
        {
            throw new PlatformNotSupportedException($"int8 GEMM variant {variant} needs AVX2.");
        }
        int pairs = DepthPairs(k), panelLength = PanelLength(k);
        Span<int> tile = stackalloc int[RowBlock * PanelWidth];
        fixed (int* pa = packedA, pt = tile)
        fixed (byte* pb = packedB)
        {
            // Panel outer, row block inner: a panel of B (pairs x 32 bytes) stays in L1 while every row block of A meets it.
            for (int panel = 0, j0 = 0; j0 < n; panel++, j0 += PanelWidth)
            {
                int cols = Math.Min(PanelWidth, n - j0);
                for (int i0 = 0; i0 < m; i0 += RowBlock)
                {
                    int rows = Math.Min(RowBlock, m - i0);
                    int* a = pa + i0 / RowBlock * pairs * RowBlock;
                    byte* b = pb + (long)panel * panelLength;
                    if (variant == KernelVariant.Scalar)
                    {
                        PortableTile(pairs, a, b, pt);
                    }
                    else
                    {
                        MicroKernel4x16(pairs, a, b, pt);
                    }
                    for (int r = 0; r < rows; r++)
                    {
                        tile.Slice(r * PanelWidth, cols).CopyTo(c.Slice((i0 + r) * ldc + j0, cols));
                    }
                }
            }
        }
    }

    /// <summary>
    /// C[i, j] = sum over p of A[i * lda + p] B[p * ldb + j], exactly, in int32. Scalar is the reference (three loops on
    /// the unpacked operands); other variants pack into temporary arrays and run <see cref="MultiplyPacked"/>.
    /// </summary>
    public static void Multiply(int m, int n, int k, ReadOnlySpan<sbyte> a, int lda, ReadOnlySpan<byte> b, int ldb,
        Span<int> c, int ldc, KernelVariant variant)
    {
        CheckDimensions(m, n, k);
        Check("A", m, k, a.Length, lda);
        Check("B", k, n, b.Length, ldb);
        Check("C", m, n, c.Length, ldc);
        if (variant == KernelVariant.Scalar)
        {
            Scalar(m, n, k, a, lda, b, ldb, c, ldc);
            return;
        }
        int[] packedA = new int[PackedWeightsLength(m, k)];
        byte[] packedB = new byte[PackedActivationsLength(k, n)];
        if (m > 0 && n > 0 && k > 0)
        {
            PackWeights(m, k, a, lda, packedA);
            PackActivations(k, n, b, ldb, packedB);
        }
        MultiplyPacked(m, n, k, packedA, packedB, c, ldc, variant);
    }

    /// <summary>The reference: three loops in int32.</summary>
    private static void Scalar(int m, int n, int k, ReadOnlySpan<sbyte> a, int lda, ReadOnlySpan<byte> b, int ldb, Span<int> c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                int sum = 0;
                for (int p = 0; p < k; p++)
                {
                    sum += a[i * lda + p] * b[p * ldb + j];
                }
                c[i * ldc + j] = sum;
            }
        }
    }

    // The packed layout read with plain loops: what the AVX2 kernel computes, for CPUs without it.
    private static void PortableTile(int pairs, int* a, byte* b, int* tile)
    {
        new Span<int>(tile, RowBlock * PanelWidth).Clear();
        for (int q = 0; q < pairs; q++, a += RowBlock, b += 2 * PanelWidth)
        {
            for (int r = 0; r < RowBlock; r++)
            {
                int lo = (short)a[r], hi = a[r] >> 16;
                for (int t = 0; t < PanelWidth; t++)
                {
                    int offset = PairOffset(t);
                    tile[r * PanelWidth + t] += lo * b[offset] + hi * b[offset + 1];
                }
            }
        }
    }

    // 4 rows x 16 columns of int32: per depth pair, two zero-extending loads of B (16 bytes -> 16 x int16 each) and four
    // broadcasts of A's int16 pairs; eight vpmaddwd accumulate into eight registers.
    private static void MicroKernel4x16(int pairs, int* a, byte* b, int* tile)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<int> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int q = 0; q < pairs; q++)
        {
            Vector256<short> b0 = Avx2.ConvertToVector256Int16(b);
            Vector256<short> b1 = Avx2.ConvertToVector256Int16(b + 16);
            Vector256<short> a0 = Vector256.Create(a[0]).AsInt16();
            c00 = Avx2.Add(c00, Avx2.MultiplyAddAdjacent(a0, b0));
            c01 = Avx2.Add(c01, Avx2.MultiplyAddAdjacent(a0, b1));
            Vector256<short> a1 = Vector256.Create(a[1]).AsInt16();
            c10 = Avx2.Add(c10, Avx2.MultiplyAddAdjacent(a1, b0));
            c11 = Avx2.Add(c11, Avx2.MultiplyAddAdjacent(a1, b1));
            Vector256<short> a2 = Vector256.Create(a[2]).AsInt16();
            c20 = Avx2.Add(c20, Avx2.MultiplyAddAdjacent(a2, b0));
            c21 = Avx2.Add(c21, Avx2.MultiplyAddAdjacent(a2, b1));
            Vector256<short> a3 = Vector256.Create(a[3]).AsInt16();
            c30 = Avx2.Add(c30, Avx2.MultiplyAddAdjacent(a3, b0));
            c31 = Avx2.Add(c31, Avx2.MultiplyAddAdjacent(a3, b1));
            a += RowBlock;
            b += 2 * PanelWidth;
        }
        Avx.Store(tile, c00); Avx.Store(tile + 8, c01);
        Avx.Store(tile + 16, c10); Avx.Store(tile + 24, c11);
        Avx.Store(tile + 32, c20); Avx.Store(tile + 40, c21);
        Avx.Store(tile + 48, c30); Avx.Store(tile + 56, c31);
    }

    private static void CheckDimensions(int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(m), $"int8 GEMM dimensions must be non-negative, got m={m}, n={n}, k={k}.");
        }
    }

    private static void Check(string name, int rows, int cols, int length, int ld)
    {
        if (rows == 0 || cols == 0)
        {
            return;
        }
        if (ld < cols || (long)(rows - 1) * ld + cols > length)
        {
            throw new ArgumentException($"int8 GEMM matrix {name}: {rows} x {cols} with leading dimension {ld} does not fit a span of {length}.");
        }
    }
}
