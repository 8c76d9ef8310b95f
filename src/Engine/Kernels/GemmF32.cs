using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>The implementations of a kernel, from the plain reference to the widest instruction set.</summary>
public enum KernelVariant
{
    /// <summary>Plain loops: the reference the others are tested against.</summary>
    Scalar,
    /// <summary><see cref="Vector{T}"/>, for any CPU with SIMD.</summary>
    Vector,
    /// <summary><see cref="Vector256{T}"/> with AVX2 and fused multiply-add.</summary>
    Avx2Fma,
    /// <summary>AVX-VNNI (vpdpbusd: four u8 x s8 products into each int32 lane), for the int8 GEMM where the CPU has it.</summary>
    AvxVnni,
    /// <summary><see cref="Vector512{T}"/> with AVX-512F fused multiply-add, for the implicit convolution where the CPU has it.</summary>
    Avx512,
}

/// <summary>
/// Single-precision matrix multiply, C = op(A) op(B) (+ C when accumulating), with op(X) = X or X^T, row-major.
/// <para>
/// The fast variants follow Goto and van de Geijn, "Anatomy of high-performance matrix multiplication" (2008):
/// op(B) is packed into KC x NR panels that stay in L1, op(A) into MC x KC blocks that stay in L2, and a
/// register-blocked micro-kernel computes an MR x NR tile of C from one panel of each. Transposes are absorbed
/// by the packing, so all four combinations run the same micro-kernel.
/// </para>
/// </summary>
public static unsafe class GemmF32
{
    // Blocking: a KC x NR panel of B (256 x 16 floats = 16 KiB) fits L1 beside a streaming A panel; an MC x KC
    // block of A (96 x 256 floats = 96 KiB) fits L2. MC is a multiple of both micro-kernels' MR (6 and 4).
    private const int KC = 256;
    private const int MC = 96;
    private const int NC = 2048;

    private const int MrAvx = 6, NrAvx = 16, Nr512 = 32;
    private const int MrVec = 4;
    private static readonly int NrVec = 2 * Vector<float>.Count;

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>The fastest variant this CPU runs.</summary>
    public static KernelVariant Best { get; } =
        Avx512F.IsSupported && Fma.IsSupported && Avx2.IsSupported ? KernelVariant.Avx512
        : Fma.IsSupported && Avx2.IsSupported ? KernelVariant.Avx2Fma
        : Vector.IsHardwareAccelerated ? KernelVariant.Vector
        : KernelVariant.Scalar;

    /// <summary>Every variant this CPU can run, reference first (tests compare each with the reference).</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } = BuildSupported();

    private static KernelVariant[] BuildSupported()
    {
        var list = new List<KernelVariant> { KernelVariant.Scalar, KernelVariant.Vector };
        if (HasAvx2Fma)
        {
            list.Add(KernelVariant.Avx2Fma);
        }
        if (HasAvx2Fma && Avx512F.IsSupported)
        {
            list.Add(KernelVariant.Avx512);
        }
        return [.. list];
    }

    /// <summary>Whether the AVX2 + FMA kernels run here (the pre-packed GEMM and the implicit convolution need them).</summary>
    public static bool HasAvx2Fma => Fma.IsSupported && Avx2.IsSupported;

    /// <summary>
    /// C[m x n] = op(A)[m x k] op(B)[k x n], or C += op(A) op(B) when <paramref name="accumulate"/>, on one thread.
    /// op(A)[i, p] = A[i * lda + p] (or A[p * lda + i] when <paramref name="transposeA"/>); likewise B and C.
    /// </summary>
    public static void Multiply(
        bool transposeA, bool transposeB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, bool accumulate, KernelVariant variant)
    {
        CheckArguments(transposeA, transposeB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0)
        {
            return;
        }
        fixed (float* pa = a, pb = b, pc = c)
        {
            Dispatch(variant, transposeA, transposeB, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate);
        }
    }

    /// <summary>
    /// As <see cref="Multiply"/> with the fastest variant, split over <paramref name="threads"/> threads along the
    /// larger of m and n, each thread owning whole tiles of C.
    /// </summary>
    public static void MultiplyParallel(int threads,
        bool transposeA, bool transposeB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, bool accumulate)
    {
        CheckArguments(transposeA, transposeB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0)
        {
            return;
        }
        fixed (float* pa = a, pb = b, pc = c)
        {
            var work = new ParallelGemm(Best, transposeA, transposeB, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate, splitRows: m > n);
            if (m > n)
            {
                WorkPartition.Run(threads, m, MrAvx, work);
            }
            else
            {
                WorkPartition.Run(threads, n, NrAvx, work);
            }
        }
    }

    /// <summary>
    /// Columns per panel of a pre-packed B (<see cref="PackPanels"/>, Im2ColF32.Im2ColPanels): the
    /// <see cref="KernelVariant.Avx2Fma"/> micro-kernel's NR.
    /// </summary>
    public const int PanelWidth = NrAvx;

    /// <summary>Floats a pre-packed [k x n] B occupies: ceil(n / <see cref="PanelWidth"/>) panels of k x <see cref="PanelWidth"/>.</summary>
    public static int PanelsLength(int k, int n) => (n + PanelWidth - 1) / PanelWidth * PanelWidth * k;

    /// <summary>
    /// Packs B [k x n] (row-major, leading dimension ldb) into column panels:
    /// panels[((j / 16) k + p) 16 + j % 16] = B[p, j], columns past n zero. A layout the micro-kernel streams directly.
    /// </summary>
    public static void PackPanels(ReadOnlySpan<float> b, int ldb, int k, int n, Span<float> panels)
    {
        CheckMatrix("B", k, n, b.Length, ldb);
        if (panels.Length < PanelsLength(k, n))
        {
            throw new ArgumentException($"GEMM panels: {panels.Length} floats cannot hold a packed {k} x {n} matrix ({PanelsLength(k, n)} needed).");
        }
        for (int j0 = 0; j0 < n; j0 += PanelWidth)
        {
            int cols = Math.Min(PanelWidth, n - j0);
            Span<float> panel = panels.Slice(j0 * k, k * PanelWidth);
            for (int p = 0; p < k; p++)
            {
                Span<float> dst = panel.Slice(p * PanelWidth, PanelWidth);
                b.Slice(p * ldb + j0, cols).CopyTo(dst);
                dst[cols..].Clear();
            }
        }
    }

    /// <summary>Floats a pre-packed [m x k] A occupies (<see cref="PackRows"/>): m rounded up to the micro-kernel's 6 rows, times k.</summary>
    public static int PackedRowsLength(int m, int k) => (m + MrAvx - 1) / MrAvx * MrAvx * k;

    /// <summary>
    /// Packs A [m x k] (row-major) once into the blocks <see cref="MultiplyPrepacked"/> reads, so a matrix used for many
    /// products (a convolution's weights, for every image of a batch) is packed once rather than per product.
    /// </summary>
    public static void PackRows(ReadOnlySpan<float> a, int lda, int m, int k, Span<float> packedA)
    {
        CheckMatrix("A", m, k, a.Length, lda);
        if (packedA.Length < PackedRowsLength(m, k))
        {
            throw new ArgumentException($"GEMM packed rows: {packedA.Length} floats cannot hold a packed {m} x {k} matrix.");
        }
        fixed (float* pa = a, dst = packedA)
        {
            for (int ic = 0; ic < m; ic += MC)
            {
                int mc = Math.Min(MC, m - ic);
                for (int pc = 0; pc < k; pc += KC)
                {
                    PackA(false, pa, lda, ic, pc, mc, Math.Min(KC, k - pc), MrAvx, dst + BlockOffset(ic, pc, mc, k));
                }
            }
        }
    }

    /// <summary>Rows of A per cache block (MC) in a packed A.</summary>
    internal const int RowBlock = MC;

    /// <summary>Depth per cache block (KC) in a packed A.</summary>
    internal const int DepthBlock = KC;

    /// <summary>Where block (rows from <paramref name="ic"/>, depth from <paramref name="pc"/>) of a packed A starts.</summary>
    internal static long RowBlockOffset(int ic, int pc, int mc, int k) => BlockOffset(ic, pc, mc, k);

    // Block (ic, pc) of a packed A: the rows before it (ic k, ic a multiple of MC and so of 6), then this row block's
    // earlier depth blocks (its rows rounded up to whole panels, times pc).
    private static long BlockOffset(int ic, int pc, int mc, int k) => (long)ic * k + (long)(mc + MrAvx - 1) / MrAvx * MrAvx * pc;

    /// <summary>
    /// C[m x n] (+)= A B with A packed by <see cref="PackRows"/> and B [k x n] packed by <see cref="PackPanels"/>, on one
    /// thread, with the <see cref="KernelVariant.Avx2Fma"/> micro-kernel. A convolution packs its weights once per batch
    /// and writes its im2col columns straight into panels, so neither operand is copied per product.
    /// </summary>
    public static void MultiplyPrepacked(int m, int n, int k, ReadOnlySpan<float> packedA, ReadOnlySpan<float> packedB,
        Span<float> c, int ldc, bool accumulate)
    {
        if (!(Fma.IsSupported && Avx2.IsSupported))
        {
            throw new PlatformNotSupportedException("pre-packed GEMM needs AVX2 and FMA; use Multiply.");
        }
        CheckMatrix("C", m, n, c.Length, ldc);
        if (m == 0 || n == 0)
        {
            return;
        }
        if (packedA.Length < PackedRowsLength(m, k) || packedB.Length < PanelsLength(k, n))
        {
            throw new ArgumentException($"GEMM: packed operands too small for {m} x {k} times {k} x {n}.");
        }
        if (k == 0)
        {
            fixed (float* pc = c)
            {
                ClearUnlessAccumulating(pc, ldc, m, n, accumulate);
            }
            return;
        }
        fixed (float* pa = packedA, pb = packedB, pc = c)
        {
            for (int ic = 0; ic < m; ic += MC)
            {
                int mc = Math.Min(MC, m - ic);
                for (int p0 = 0; p0 < k; p0 += KC)
                {
                    int kc = Math.Min(KC, k - p0);
                    bool acc = accumulate || p0 > 0;
                    float* block = pa + BlockOffset(ic, p0, mc, k);
                    for (int jr = 0; jr < n; jr += NrAvx)
                    {
                        int cols = Math.Min(NrAvx, n - jr);
                        float* panel = pb + ((long)jr * k + (long)p0 * NrAvx);
                        for (int ir = 0; ir < mc; ir += MrAvx)
                        {
                            MicroKernel6x16Avx2Fma(kc, block + (long)ir * kc, panel, pc + (long)(ic + ir) * ldc + jr, ldc, acc,
                                Math.Min(MrAvx, mc - ir), cols);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// c[0, n) (+)= x[0, k) B for one row x, with B [k x n] packed by <see cref="PackPanels"/>: the batch-1 product of a
    /// linear layer. <see cref="MultiplyPrepacked"/> with one row runs each 16-column panel as two FMA chains one after
    /// another, so it waits on the FMA latency at every step; here 8 panels (AVX-512) or 4 (AVX2) advance together, with
    /// as many independent chains in flight. Every output is the same sequence of operations as in
    /// <see cref="MultiplyPrepacked"/> (per depth block of 256, a chain acc = fma(x[p], B[p, j], acc) from zero, then
    /// added to c), so a sample's outputs do not depend on the batch it is computed in; the tests check it bit for bit.
    /// </summary>
    internal static void MultiplyRowPrepacked(int n, int k, ReadOnlySpan<float> x, ReadOnlySpan<float> packedB, Span<float> c,
        bool accumulate, KernelVariant variant)
    {
        if (!HasAvx2Fma || (variant == KernelVariant.Avx512 && !Avx512F.IsSupported) || variant is not (KernelVariant.Avx2Fma or KernelVariant.Avx512))
        {
            throw new PlatformNotSupportedException($"one-row pre-packed GEMM: variant {variant} is not supported on this CPU.");
        }
        if (n < 0 || k < 0 || x.Length < k || packedB.Length < PanelsLength(k, n) || c.Length < n)
        {
            throw new ArgumentException($"one-row GEMM: spans too small for 1 x {k} times {k} x {n}.");
        }
        if (n == 0)
        {
            return;
        }
        fixed (float* px = x, pb = packedB, pc = c)
        {
            if (k == 0)
            {
                ClearUnlessAccumulating(pc, n, 1, n, accumulate);
                return;
            }
            int panels = (n + NrAvx - 1) / NrAvx;
            int group = variant == KernelVariant.Avx512 ? RowGroup512 : RowGroup256;
            for (int p0 = 0; p0 < k; p0 += KC)
            {
                int kc = Math.Min(KC, k - p0);
                bool acc = accumulate || p0 > 0;
                for (int j = 0; j < panels; j += group)
                {
                    int count = Math.Min(group, panels - j);
                    float* panel = pb + (long)j * NrAvx * k + (long)p0 * NrAvx;
                    if (variant == KernelVariant.Avx512)
                    {
                        RowPanels512(kc, px + p0, panel, (long)NrAvx * k, count, pc + j * NrAvx, n - j * NrAvx, acc);
                    }
                    else
                    {
                        RowPanels256(kc, px + p0, panel, (long)NrAvx * k, count, pc + j * NrAvx, n - j * NrAvx, acc);
                    }
                }
            }
        }
    }

    private const int RowGroup512 = 8, RowGroup256 = 4;

    // Up to 8 panels of one row on zmm (one per 16-column panel): 8 independent chains. Panels past `count` are computed
    // on panel 0 again and not stored, so the loop has no branches.
    [SkipLocalsInit]
    private static void RowPanels512(int kc, float* x, float* b, long panelStride, int count, float* c, int cols, bool accumulate)
    {
        float* b0 = b, b1 = b + (count > 1 ? panelStride : 0), b2 = b + (count > 2 ? 2 * panelStride : 0), b3 = b + (count > 3 ? 3 * panelStride : 0);
        float* b4 = b + (count > 4 ? 4 * panelStride : 0), b5 = b + (count > 5 ? 5 * panelStride : 0), b6 = b + (count > 6 ? 6 * panelStride : 0);
        float* b7 = b + (count > 7 ? 7 * panelStride : 0);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> xp = Vector512.Create(x[p]);
            long o = (long)p * NrAvx;
            c0 = Avx512F.FusedMultiplyAdd(xp, Avx512F.LoadVector512(b0 + o), c0);
            c1 = Avx512F.FusedMultiplyAdd(xp, Avx512F.LoadVector512(b1 + o), c1);
            c2 = Avx512F.FusedMultiplyAdd(xp, Avx512F.LoadVector512(b2 + o), c2);
            c3 = Avx512F.FusedMultiplyAdd(xp, Avx512F.LoadVector512(b3 + o), c3);
            c4 = Avx512F.FusedMultiplyAdd(xp, Avx512F.LoadVector512(b4 + o), c4);
            c5 = Avx512F.FusedMultiplyAdd(xp, Avx512F.LoadVector512(b5 + o), c5);
            c6 = Avx512F.FusedMultiplyAdd(xp, Avx512F.LoadVector512(b6 + o), c6);
            c7 = Avx512F.FusedMultiplyAdd(xp, Avx512F.LoadVector512(b7 + o), c7);
        }
        float* tile = stackalloc float[RowGroup512 * NrAvx];
        Avx512F.Store(tile, c0); Avx512F.Store(tile + 16, c1); Avx512F.Store(tile + 32, c2); Avx512F.Store(tile + 48, c3);
        Avx512F.Store(tile + 64, c4); Avx512F.Store(tile + 80, c5); Avx512F.Store(tile + 96, c6); Avx512F.Store(tile + 112, c7);
        CopyTile(tile, NrAvx * RowGroup512, c, 0, accumulate, 1, Math.Min(cols, count * NrAvx));
    }

    // Up to 4 panels of one row on ymm pairs: 8 independent chains, as in the 6 x 16 micro-kernel's registers.
    [SkipLocalsInit]
    private static void RowPanels256(int kc, float* x, float* b, long panelStride, int count, float* c, int cols, bool accumulate)
    {
        float* b0 = b, b1 = b + (count > 1 ? panelStride : 0), b2 = b + (count > 2 ? 2 * panelStride : 0), b3 = b + (count > 3 ? 3 * panelStride : 0);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> xp = Vector256.Create(x[p]);
            long o = (long)p * NrAvx;
            c00 = Fma.MultiplyAdd(xp, Avx.LoadVector256(b0 + o), c00);
            c01 = Fma.MultiplyAdd(xp, Avx.LoadVector256(b0 + o + 8), c01);
            c10 = Fma.MultiplyAdd(xp, Avx.LoadVector256(b1 + o), c10);
            c11 = Fma.MultiplyAdd(xp, Avx.LoadVector256(b1 + o + 8), c11);
            c20 = Fma.MultiplyAdd(xp, Avx.LoadVector256(b2 + o), c20);
            c21 = Fma.MultiplyAdd(xp, Avx.LoadVector256(b2 + o + 8), c21);
            c30 = Fma.MultiplyAdd(xp, Avx.LoadVector256(b3 + o), c30);
            c31 = Fma.MultiplyAdd(xp, Avx.LoadVector256(b3 + o + 8), c31);
        }
        float* tile = stackalloc float[RowGroup256 * NrAvx];
        Avx.Store(tile, c00); Avx.Store(tile + 8, c01); Avx.Store(tile + 16, c10); Avx.Store(tile + 24, c11);
        Avx.Store(tile + 32, c20); Avx.Store(tile + 40, c21); Avx.Store(tile + 48, c30); Avx.Store(tile + 56, c31);
        CopyTile(tile, NrAvx * RowGroup256, c, 0, accumulate, 1, Math.Min(cols, count * NrAvx));
    }

    private readonly struct ParallelGemm(
        KernelVariant variant, bool transposeA, bool transposeB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, bool splitRows) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            if (splitRows)
            {
                float* aPart = transposeA ? a + start : a + (long)start * lda;
                Dispatch(variant, transposeA, transposeB, end - start, n, k, aPart, lda, b, ldb, c + (long)start * ldc, ldc, accumulate);
            }
            else
            {
                float* bPart = transposeB ? b + (long)start * ldb : b + start;
                Dispatch(variant, transposeA, transposeB, m, end - start, k, a, lda, bPart, ldb, c + start, ldc, accumulate);
            }
        }
    }

    private static void Dispatch(
        KernelVariant variant, bool transposeA, bool transposeB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        switch (variant)
        {
            case KernelVariant.Scalar:
                Scalar(transposeA, transposeB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
                break;
            case KernelVariant.Vector:
                Packed(transposeA, transposeB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, MrVec, NrVec, &MicroKernelVector);
                break;
            case KernelVariant.Avx2Fma when Fma.IsSupported && Avx2.IsSupported:
                Packed(transposeA, transposeB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, MrAvx, NrAvx, &MicroKernel6x16Avx2Fma);
                break;
            case KernelVariant.Avx512 when Avx512F.IsSupported:
                Packed(transposeA, transposeB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, MrAvx, Nr512, &MicroKernel6x32Avx512);
                break;
            default:
                throw new PlatformNotSupportedException($"GEMM variant {variant} is not supported on this CPU.");
        }
    }

    /// <summary>The reference: C[i, j] (+)= sum over p of op(A)[i, p] op(B)[p, j], summed in double.</summary>
    private static void Scalar(
        bool transposeA, bool transposeB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float aip = transposeA ? a[(long)p * lda + i] : a[(long)i * lda + p];
                    float bpj = transposeB ? b[(long)j * ldb + p] : b[(long)p * ldb + j];
                    sum += (double)aip * bpj;
                }
                float* cij = c + (long)i * ldc + j;
                *cij = accumulate ? *cij + (float)sum : (float)sum;
            }
        }
    }

    private static void Packed(
        bool transposeA, bool transposeB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate,
        int mr, int nr, delegate*<int, float*, float*, float*, int, bool, int, int, void> microKernel)
    {
        if (k == 0)
        {
            ClearUnlessAccumulating(c, ldc, m, n, accumulate);
            return;
        }

        // Pinned and padded by one cache line, so the panels can start on a 64-byte boundary: a 64-byte load that
        // straddles two lines costs two.
        float[] packA = t_packA ??= GC.AllocateArray<float>(MC * KC + 16, pinned: true);
        float[] packB = t_packB ??= GC.AllocateArray<float>(KC * (NC + 2 * Nr512) + 16, pinned: true);
        fixed (float* pA0 = packA, pB0 = packB)
        {
            float* pA = AlignTo64(pA0), pB = AlignTo64(pB0);
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    bool acc = accumulate || pc > 0;
                    PackB(transposeB, b, ldb, pc, jc, kc, nc, nr, pB);
                    for (int ic = 0; ic < m; ic += MC)
                    {
                        int mc = Math.Min(MC, m - ic);
                        PackA(transposeA, a, lda, ic, pc, mc, kc, mr, pA);
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int cols = Math.Min(nr, nc - jr);
                            for (int ir = 0; ir < mc; ir += mr)
                            {
                                int rows = Math.Min(mr, mc - ir);
                                microKernel(kc, pA + (long)ir * kc, pB + (long)jr * kc,
                                    c + (long)(ic + ir) * ldc + jc + jr, ldc, acc, rows, cols);
                            }
                        }
                    }
                }
            }
        }
    }

    private static float* AlignTo64(float* p) => (float*)(((nuint)p + 63) & ~(nuint)63);

    // A product over zero depth is zero: C = 0, or C unchanged when accumulating.
    private static void ClearUnlessAccumulating(float* c, int ldc, int m, int n, bool accumulate)
    {
        for (int i = 0; i < m && !accumulate; i++)
        {
            new Span<float>(c + (long)i * ldc, n).Clear();
        }
    }

    // Packed A: for each panel of mr rows, kc steps of mr consecutive values op(A)[i, p]; rows past m are zero.
    private static void PackA(bool transposeA, float* a, int lda, int i0, int p0, int mc, int kc, int mr, float* dst)
    {
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* panel = dst + (long)ir * kc;
            if (transposeA)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + ir;
                    float* d = panel + p * mr;
                    int i = 0;
                    for (; i < rows; i++)
                    {
                        d[i] = src[i];
                    }
                    for (; i < mr; i++)
                    {
                        d[i] = 0;
                    }
                }
            }
            else
            {
                for (int i = 0; i < mr; i++)
                {
                    InterleaveLane(i < rows ? a + (long)(i0 + ir + i) * lda + p0 : null, kc, panel, mr, i);
                }
            }
        }
    }

    // Lane `lane` of a panel `width` wide: panel[p * width + lane] = src[p] for p < kc, or zeros past the matrix edge (src null).
    private static void InterleaveLane(float* src, int kc, float* panel, int width, int lane)
    {
        for (int p = 0; p < kc; p++)
        {
            panel[p * width + lane] = src is null ? 0f : src[p];
        }
    }

    // Packed B: for each panel of nr columns, kc steps of nr consecutive values op(B)[p, j]; columns past n are zero.
    private static void PackB(bool transposeB, float* b, int ldb, int p0, int j0, int kc, int nc, int nr, float* dst)
    {
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr);
            float* panel = dst + (long)jr * kc;
            if (transposeB)
            {
                for (int j = 0; j < nr; j++)
                {
                    InterleaveLane(j < cols ? b + (long)(j0 + jr + j) * ldb + p0 : null, kc, panel, nr, j);
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(p0 + p) * ldb + j0 + jr;
                    float* d = panel + p * nr;
                    Buffer.MemoryCopy(src, d, nr * sizeof(float), cols * sizeof(float));
                    for (int j = cols; j < nr; j++)
                    {
                        d[j] = 0;
                    }
                }
            }
        }
    }

    /// <summary>Where row p of a 16-column B panel lives, so one micro-kernel serves packed panels and in-place reads.</summary>
    internal interface IPanelRows
    {
        /// <summary>The address of the 16 (or 32) values of row <paramref name="p"/>.</summary>
        float* Row(int p);
    }

    /// <summary>A packed panel: row p at b + 16 p.</summary>
    internal readonly struct PackedRows(float* b) : IPanelRows
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float* Row(int p) => b + (long)p * NrAvx;
    }

    /// <summary>Rows read in place: row p at b + offsets[p] (the taps of an implicit convolution).</summary>
    internal readonly struct OffsetRows(float* b, int* offsets) : IPanelRows
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float* Row(int p) => b + offsets[p];
    }

    private static void MicroKernel6x16Avx2Fma(int kc, float* a, float* b, float* c, int ldc, bool accumulate, int rows, int cols) =>
        MicroKernel6x16(kc, a, new PackedRows(b), c, ldc, accumulate, rows, cols);

    /// <summary>
    /// 6 x 16 tile of C from a packed 6-row panel of A and 16-column rows of B: twelve ymm accumulators, two B loads and
    /// six broadcasts per step, so the two FMA ports stay busy (12 FMAs per 8 loads). Generic over the row addressing,
    /// which the JIT specialises per struct, so the indirection costs nothing.
    /// </summary>
    internal static void MicroKernel6x16<TRows>(int kc, float* a, TRows b, float* c, int ldc, bool accumulate, int rows, int cols)
        where TRows : struct, IPanelRows
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            float* row = b.Row(p);
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
            a += 6;
        }

        if (rows == MrAvx && cols == NrAvx)
        {
            StoreRow(c, c00, c01, accumulate);
            StoreRow(c + ldc, c10, c11, accumulate);
            StoreRow(c + 2L * ldc, c20, c21, accumulate);
            StoreRow(c + 3L * ldc, c30, c31, accumulate);
            StoreRow(c + 4L * ldc, c40, c41, accumulate);
            StoreRow(c + 5L * ldc, c50, c51, accumulate);
            return;
        }

        if (cols == NrAvx)
        {
            // The last rows of a matrix whose row count is not a multiple of 6 (64 = 10 x 6 + 4 channels): whole-width
            // vector stores of the valid rows, not a scalar copy. c + tile and tile + c are the same float.
            StoreRow(c, c00, c01, accumulate);
            if (rows > 1)
            {
                StoreRow(c + ldc, c10, c11, accumulate);
            }
            if (rows > 2)
            {
                StoreRow(c + 2L * ldc, c20, c21, accumulate);
            }
            if (rows > 3)
            {
                StoreRow(c + 3L * ldc, c30, c31, accumulate);
            }
            if (rows > 4)
            {
                StoreRow(c + 4L * ldc, c40, c41, accumulate);
            }
            return;
        }

        // Edge tile: spill the full tile and copy the valid part, so the loop above has no edge cases.
        float* tile = stackalloc float[MrAvx * NrAvx];
        Avx.Store(tile, c00); Avx.Store(tile + 8, c01);
        Avx.Store(tile + 16, c10); Avx.Store(tile + 24, c11);
        Avx.Store(tile + 32, c20); Avx.Store(tile + 40, c21);
        Avx.Store(tile + 48, c30); Avx.Store(tile + 56, c31);
        Avx.Store(tile + 64, c40); Avx.Store(tile + 72, c41);
        Avx.Store(tile + 80, c50); Avx.Store(tile + 88, c51);
        CopyTile(tile, NrAvx, c, ldc, accumulate, rows, cols);
    }

    private static void MicroKernel6x32Avx512(int kc, float* a, float* b, float* c, int ldc, bool accumulate, int rows, int cols) =>
        MicroKernel6x32(kc, a, new PackedRows512(b), c, ldc, accumulate, rows, cols);

    /// <summary>A packed 32-column panel: row p at b + 32 p.</summary>
    internal readonly struct PackedRows512(float* b) : IPanelRows
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float* Row(int p) => b + (long)p * Nr512;
    }

    /// <summary>
    /// 6 x 32 tile on <see cref="Vector512{T}"/> (AVX-512F): the 6 x 16 kernel's shape at twice the width, twelve zmm
    /// accumulators, rows of 32 columns from a packed panel or read in place (the implicit convolution).
    /// </summary>
    [SkipLocalsInit]
    internal static void MicroKernel6x32<TRows>(int kc, float* a, TRows b, float* c, int ldc, bool accumulate, int rows, int cols)
        where TRows : struct, IPanelRows
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++, a += MrAvx)
        {
            float* row = b.Row(p);
            Vector512<float> b0 = Avx512F.LoadVector512(row);
            Vector512<float> b1 = Avx512F.LoadVector512(row + 16);
            Vector512<float> ai = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(ai, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(ai, b1, c01);
            ai = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(ai, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(ai, b1, c11);
            ai = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(ai, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(ai, b1, c21);
            ai = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(ai, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(ai, b1, c31);
            ai = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(ai, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(ai, b1, c41);
            ai = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(ai, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(ai, b1, c51);
        }
        if (rows == MrAvx && cols == Nr512)
        {
            StoreRow512(c, c00, c01, accumulate);
            StoreRow512(c + ldc, c10, c11, accumulate);
            StoreRow512(c + 2L * ldc, c20, c21, accumulate);
            StoreRow512(c + 3L * ldc, c30, c31, accumulate);
            StoreRow512(c + 4L * ldc, c40, c41, accumulate);
            StoreRow512(c + 5L * ldc, c50, c51, accumulate);
            return;
        }
        if (cols == Nr512)
        {
            // The last rows of a matrix whose row count is not a multiple of 6 (32 = 5 x 6 + 2 channels after pruning):
            // whole-width vector stores of the valid rows, not a scalar copy.
            StoreRow512(c, c00, c01, accumulate);
            if (rows > 1)
            {
                StoreRow512(c + ldc, c10, c11, accumulate);
            }
            if (rows > 2)
            {
                StoreRow512(c + 2L * ldc, c20, c21, accumulate);
            }
            if (rows > 3)
            {
                StoreRow512(c + 3L * ldc, c30, c31, accumulate);
            }
            if (rows > 4)
            {
                StoreRow512(c + 4L * ldc, c40, c41, accumulate);
            }
            return;
        }
        float* tile = stackalloc float[MrAvx * Nr512];
        Avx512F.Store(tile, c00); Avx512F.Store(tile + 16, c01);
        Avx512F.Store(tile + 32, c10); Avx512F.Store(tile + 48, c11);
        Avx512F.Store(tile + 64, c20); Avx512F.Store(tile + 80, c21);
        Avx512F.Store(tile + 96, c30); Avx512F.Store(tile + 112, c31);
        Avx512F.Store(tile + 128, c40); Avx512F.Store(tile + 144, c41);
        Avx512F.Store(tile + 160, c50); Avx512F.Store(tile + 176, c51);
        CopyTile(tile, Nr512, c, ldc, accumulate, rows, cols);
    }

    /// <summary>
    /// The last 1 to 4 rows of a packed A (a 6-row panel whose lower rows are padding) times 32 columns on
    /// <see cref="Vector512{T}"/>: 4 x 2 accumulators, so a matrix of 32 rows (conv2 pruned to 32 filters: 5 x 6 + 2)
    /// spends 4 rows' work on its last 2, not 6. Each output is the same FMA chain as in <see cref="MicroKernel6x32"/>.
    /// </summary>
    internal static void MicroKernel4x32<TRows>(int kc, float* a, TRows b, float* c, int ldc, bool accumulate, int rows)
        where TRows : struct, IPanelRows
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++, a += MrAvx)
        {
            float* row = b.Row(p);
            Vector512<float> b0 = Avx512F.LoadVector512(row);
            Vector512<float> b1 = Avx512F.LoadVector512(row + 16);
            Vector512<float> ai = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(ai, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(ai, b1, c01);
            ai = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(ai, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(ai, b1, c11);
            ai = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(ai, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(ai, b1, c21);
            ai = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(ai, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(ai, b1, c31);
        }
        StoreRow512(c, c00, c01, accumulate);
        if (rows > 1)
        {
            StoreRow512(c + ldc, c10, c11, accumulate);
        }
        if (rows > 2)
        {
            StoreRow512(c + 2L * ldc, c20, c21, accumulate);
        }
        if (rows > 3)
        {
            StoreRow512(c + 3L * ldc, c30, c31, accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow512(float* c, Vector512<float> lo, Vector512<float> hi, bool accumulate)
    {
        if (accumulate)
        {
            lo += Avx512F.LoadVector512(c);
            hi += Avx512F.LoadVector512(c + 16);
        }
        Avx512F.Store(c, lo);
        Avx512F.Store(c + 16, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector256<float> lo, Vector256<float> hi, bool accumulate)
    {
        if (accumulate)
        {
            lo = Avx.Add(lo, Avx.LoadVector256(c));
            hi = Avx.Add(hi, Avx.LoadVector256(c + 8));
        }
        Avx.Store(c, lo);
        Avx.Store(c + 8, hi);
    }

    /// <summary>4 x (2 W) tile with <see cref="Vector{T}"/> of width W: eight accumulators, fine for 16 registers.</summary>
    private static void MicroKernelVector(int kc, float* a, float* b, float* c, int ldc, bool accumulate, int rows, int cols)
    {
        int w = Vector<float>.Count;
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector<float> b0 = Vector.Load(b);
            Vector<float> b1 = Vector.Load(b + w);
            // Multiply then add (not fused): this variant is for CPUs without FMA, where a fused call is emulated slowly.
            c00 += new Vector<float>(a[0]) * b0;
            c01 += new Vector<float>(a[0]) * b1;
            c10 += new Vector<float>(a[1]) * b0;
            c11 += new Vector<float>(a[1]) * b1;
            c20 += new Vector<float>(a[2]) * b0;
            c21 += new Vector<float>(a[2]) * b1;
            c30 += new Vector<float>(a[3]) * b0;
            c31 += new Vector<float>(a[3]) * b1;
            a += MrVec;
            b += 2 * w;
        }
        int nr = 2 * w;
        float* tile = stackalloc float[MrVec * nr];
        Vector.Store(c00, tile); Vector.Store(c01, tile + w);
        Vector.Store(c10, tile + nr); Vector.Store(c11, tile + nr + w);
        Vector.Store(c20, tile + 2 * nr); Vector.Store(c21, tile + 2 * nr + w);
        Vector.Store(c30, tile + 3 * nr); Vector.Store(c31, tile + 3 * nr + w);
        CopyTile(tile, nr, c, ldc, accumulate, rows, cols);
    }

    private static void CopyTile(float* tile, int tileStride, float* c, int ldc, bool accumulate, int rows, int cols)
    {
        for (int i = 0; i < rows; i++)
        {
            float* src = tile + i * tileStride;
            float* dst = c + (long)i * ldc;
            if (accumulate)
            {
                for (int j = 0; j < cols; j++)
                {
                    dst[j] += src[j];
                }
            }
            else
            {
                for (int j = 0; j < cols; j++)
                {
                    dst[j] = src[j];
                }
            }
        }
    }

    private static void CheckArguments(
        bool transposeA, bool transposeB, int m, int n, int k,
        int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM dimensions must be non-negative, got m={m}, n={n}, k={k}.");
        }
        CheckMatrix("A", transposeA ? k : m, transposeA ? m : k, aLength, lda);
        CheckMatrix("B", transposeB ? n : k, transposeB ? k : n, bLength, ldb);
        CheckMatrix("C", m, n, cLength, ldc);
    }

    private static void CheckMatrix(string name, int rows, int cols, int length, int ld)
    {
        if (rows == 0 || cols == 0)
        {
            return;
        }
        if (ld < cols)
        {
            throw new ArgumentException($"GEMM matrix {name}: leading dimension {ld} is smaller than its {cols} columns.");
        }
        long needed = (long)(rows - 1) * ld + cols;
        if (needed > length)
        {
            throw new ArgumentException($"GEMM matrix {name}: {rows} x {cols} with leading dimension {ld} needs {needed} elements, the span has {length}.");
        }
    }
}
