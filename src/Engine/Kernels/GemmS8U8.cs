using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// Exact integer matrix product for the int8 path: C[m x n] = A[m x k] B[k x n] in int32, with A int8 (weights, one row
/// per output channel) and B uint8 (activations, for example an im2col matrix). Zero points stay out of the loop: the
/// caller corrects with precomputed row and column sums, (A - za)(B - zb) = AB - zb rowsum(A) - za colsum(B) + k za zb
/// (gemmlowp, doc/low-precision.md).
/// <para>
/// The AVX2 variant widens both operands to int16 and multiplies adjacent pairs with vpmaddwd
/// (<see cref="Avx2.MultiplyAddAdjacent(Vector256{short}, Vector256{short})"/>): each int32 lane gets
/// a[p] b[p] + a[p+1] b[p+1], at most 2 x 127 x 255 = 64,770 in magnitude, so nothing saturates and the result equals the
/// scalar reference bit for bit. (vpmaddubsw, which multiplies u8 by s8 into saturating int16, would overflow on
/// 255 x 127 x 2: the hazard DESIGN.md warns of.)
/// </para>
/// </summary>
public static unsafe class GemmS8U8
{
    private const int Mr = 4, Nr = 16;

    /// <summary>The fastest variant this CPU runs.</summary>
    public static KernelVariant Best { get; } = Avx2.IsSupported ? KernelVariant.Avx2Fma : KernelVariant.Scalar;

    /// <summary>Every variant this CPU runs, reference first.</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } =
        Avx2.IsSupported ? [KernelVariant.Scalar, KernelVariant.Avx2Fma] : [KernelVariant.Scalar];

    /// <summary>C[i, j] = sum over p of A[i * lda + p] B[p * ldb + j], exactly, in int32.</summary>
    public static void Multiply(int m, int n, int k, ReadOnlySpan<sbyte> a, int lda, ReadOnlySpan<byte> b, int ldb,
        Span<int> c, int ldc, KernelVariant variant)
    {
        if (m < 0 || n < 0 || k < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(m), $"int8 GEMM dimensions must be non-negative, got m={m}, n={n}, k={k}.");
        }
        Check("A", m, k, a.Length, lda);
        Check("B", k, n, b.Length, ldb);
        Check("C", m, n, c.Length, ldc);
        if (m == 0 || n == 0)
        {
            return;
        }
        if (variant == KernelVariant.Scalar || k == 0)
        {
            Scalar(m, n, k, a, lda, b, ldb, c, ldc);
            return;
        }
        if (!Avx2.IsSupported)
        {
            throw new PlatformNotSupportedException($"int8 GEMM variant {variant} needs AVX2.");
        }
        Avx2Pairs(m, n, k, a, lda, b, ldb, c, ldc);
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

    private static void Avx2Pairs(int m, int n, int k, ReadOnlySpan<sbyte> a, int lda, ReadOnlySpan<byte> b, int ldb, Span<int> c, int ldc)
    {
        int pairs = (k + 1) / 2;
        // A as int16 pairs packed in one int32 per (row, pair): broadcasting it gives vpmaddwd its left operand.
        // B as panels of 16 columns; per pair of depth steps, 32 int16 values: (B[p, j], B[p + 1, j]) for j in the panel.
        int rowsPadded = (m + Mr - 1) / Mr * Mr, panels = (n + Nr - 1) / Nr;
        int[] packedA = new int[rowsPadded * pairs];
        short[] packedB = new short[panels * pairs * 2 * Nr];
        for (int i = 0; i < m; i++)
        {
            for (int q = 0; q < pairs; q++)
            {
                int p = 2 * q;
                short lo = a[i * lda + p], hi = p + 1 < k ? a[i * lda + p + 1] : (short)0;
                packedA[(i / Mr * pairs + q) * Mr + i % Mr] = (ushort)lo | (hi << 16);
            }
        }
        for (int panel = 0; panel < panels; panel++)
        {
            for (int q = 0; q < pairs; q++)
            {
                int p = 2 * q, baseIndex = (panel * pairs + q) * 2 * Nr;
                for (int t = 0; t < Nr; t++)
                {
                    int j = panel * Nr + t;
                    if (j < n)
                    {
                        // Column order inside a vector follows vpmaddwd's output lanes: pair t of the 32 int16 values is column t.
                        packedB[baseIndex + 2 * t] = b[p * ldb + j];
                        packedB[baseIndex + 2 * t + 1] = p + 1 < k ? b[(p + 1) * ldb + j] : (short)0;
                    }
                }
            }
        }
        Span<int> tile = stackalloc int[Mr * Nr];
        fixed (int* pa = packedA, pc = c, pt = tile)
        fixed (short* pb = packedB)
        {
            for (int i0 = 0; i0 < m; i0 += Mr)
            {
                for (int panel = 0; panel < panels; panel++)
                {
                    int j0 = panel * Nr, rows = Math.Min(Mr, m - i0), cols = Math.Min(Nr, n - j0);
                    MicroKernel4x16(pairs, pa + i0 / Mr * pairs * Mr, pb + panel * pairs * 2 * Nr, pt);
                    for (int r = 0; r < rows; r++)
                    {
                        new Span<int>(pt + r * Nr, cols).CopyTo(new Span<int>(pc + (long)(i0 + r) * ldc + j0, cols));
                    }
                }
            }
        }
    }

    // 4 rows x 16 columns of int32: per pair of depth steps, two 16 x int16 loads of B and four broadcasts of A's pairs.
    private static void MicroKernel4x16(int pairs, int* a, short* b, int* tile)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<int> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int q = 0; q < pairs; q++)
        {
            Vector256<short> b0 = Avx.LoadVector256(b);
            Vector256<short> b1 = Avx.LoadVector256(b + 16);
            c00 = Avx2.Add(c00, Avx2.MultiplyAddAdjacent(Vector256.Create(a[0]).AsInt16(), b0));
            c01 = Avx2.Add(c01, Avx2.MultiplyAddAdjacent(Vector256.Create(a[0]).AsInt16(), b1));
            c10 = Avx2.Add(c10, Avx2.MultiplyAddAdjacent(Vector256.Create(a[1]).AsInt16(), b0));
            c11 = Avx2.Add(c11, Avx2.MultiplyAddAdjacent(Vector256.Create(a[1]).AsInt16(), b1));
            c20 = Avx2.Add(c20, Avx2.MultiplyAddAdjacent(Vector256.Create(a[2]).AsInt16(), b0));
            c21 = Avx2.Add(c21, Avx2.MultiplyAddAdjacent(Vector256.Create(a[2]).AsInt16(), b1));
            c30 = Avx2.Add(c30, Avx2.MultiplyAddAdjacent(Vector256.Create(a[3]).AsInt16(), b0));
            c31 = Avx2.Add(c31, Avx2.MultiplyAddAdjacent(Vector256.Create(a[3]).AsInt16(), b1));
            a += Mr;
            b += 2 * Nr;
        }
        Avx.Store(tile, c00); Avx.Store(tile + 8, c01);
        Avx.Store(tile + 16, c10); Avx.Store(tile + 24, c11);
        Avx.Store(tile + 32, c20); Avx.Store(tile + 40, c21);
        Avx.Store(tile + 48, c30); Avx.Store(tile + 56, c31);
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
