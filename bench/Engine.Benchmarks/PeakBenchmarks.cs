using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// The machine's arithmetic peak on one core, the yardstick for the kernels: loops of independent accumulators
/// with nothing but the arithmetic. Per call:
/// <list type="bullet">
/// <item>FloatFma: Iterations x 12 vfmadd231ps of 8 lanes, 16 flop each: GFLOP/s = 12 x 16 x Iterations / time;</item>
/// <item>FloatFma512: the same with zmm (AVX-512F, where present: the implicit convolution's variant there), 32 flop each;</item>
/// <item>Int16Pairs: Iterations x 6 (vpmaddwd + vpaddd), what GemmS8U8 runs: 16 multiply-adds = 32 op each, GOP/s = 6 x 32 x Iterations / time;</item>
/// <item>UInt8Pairs: Iterations x 6 (vpmaddubsw + vpmaddwd with ones + vpaddd), the u8 x s8 sequence without int16 widening:
/// 32 multiply-adds = 64 op each, GOP/s = 6 x 64 x Iterations / time;</item>
/// <item>Vnni: Iterations x 12 vpdpbusd (AVX-VNNI, where present: the int8 GEMM's variant there), 32 multiply-adds = 64 op
/// each, GOP/s = 12 x 64 x Iterations / time.</item>
/// </list>
/// </summary>
public class PeakBenchmarks
{
    /// <summary>Loop trips per call.</summary>
    public const int Iterations = 1 << 20;

    [Benchmark(Baseline = true)]
    public Vector256<float> FloatFma()
    {
        var a = Vector256.Create(1.0001f);
        var b = Vector256.Create(0.9999f);
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector256<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Fma3(a, b, c0); c1 = Fma3(a, b, c1); c2 = Fma3(a, b, c2); c3 = Fma3(a, b, c3);
            c4 = Fma3(a, b, c4); c5 = Fma3(a, b, c5); c6 = Fma3(a, b, c6); c7 = Fma3(a, b, c7);
            c8 = Fma3(a, b, c8); c9 = Fma3(a, b, c9); c10 = Fma3(a, b, c10); c11 = Fma3(a, b, c11);
        }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    }

    [Benchmark]
    public Vector512<float> FloatFma512()
    {
        if (!Avx512F.IsSupported)
        {
            return default;
        }
        var a = Vector512.Create(1.0001f);
        var b = Vector512.Create(0.9999f);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(a, b, c0); c1 = Avx512F.FusedMultiplyAdd(a, b, c1); c2 = Avx512F.FusedMultiplyAdd(a, b, c2);
            c3 = Avx512F.FusedMultiplyAdd(a, b, c3); c4 = Avx512F.FusedMultiplyAdd(a, b, c4); c5 = Avx512F.FusedMultiplyAdd(a, b, c5);
            c6 = Avx512F.FusedMultiplyAdd(a, b, c6); c7 = Avx512F.FusedMultiplyAdd(a, b, c7); c8 = Avx512F.FusedMultiplyAdd(a, b, c8);
            c9 = Avx512F.FusedMultiplyAdd(a, b, c9); c10 = Avx512F.FusedMultiplyAdd(a, b, c10); c11 = Avx512F.FusedMultiplyAdd(a, b, c11);
        }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    }

    [Benchmark]
    public Vector256<int> Int16Pairs()
    {
        // a changes every trip and each accumulator has its own b, so no product is loop-invariant or shared.
        var a = Vector256.Create((short)3);
        var step = Vector256.Create((short)1);
        Vector256<short> b0 = Vector256.Create((short)5), b1 = Vector256.Create((short)6), b2 = Vector256.Create((short)7);
        Vector256<short> b3 = Vector256.Create((short)8), b4 = Vector256.Create((short)9), b5 = Vector256.Create((short)10);
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        for (int i = 0; i < Iterations; i++)
        {
            a = Avx2.Add(a, step);
            c0 = Avx2.Add(c0, Avx2.MultiplyAddAdjacent(a, b0)); c1 = Avx2.Add(c1, Avx2.MultiplyAddAdjacent(a, b1));
            c2 = Avx2.Add(c2, Avx2.MultiplyAddAdjacent(a, b2)); c3 = Avx2.Add(c3, Avx2.MultiplyAddAdjacent(a, b3));
            c4 = Avx2.Add(c4, Avx2.MultiplyAddAdjacent(a, b4)); c5 = Avx2.Add(c5, Avx2.MultiplyAddAdjacent(a, b5));
        }
        return c0 + c1 + c2 + c3 + c4 + c5;
    }

    [Benchmark]
    public Vector256<int> UInt8Pairs()
    {
        var a = Vector256.Create((byte)3);
        var step = Vector256.Create((byte)1);
        var ones = Vector256.Create((short)1);
        Vector256<sbyte> b0 = Vector256.Create((sbyte)5), b1 = Vector256.Create((sbyte)6), b2 = Vector256.Create((sbyte)7);
        Vector256<sbyte> b3 = Vector256.Create((sbyte)8), b4 = Vector256.Create((sbyte)9), b5 = Vector256.Create((sbyte)10);
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        for (int i = 0; i < Iterations; i++)
        {
            a = Avx2.Add(a, step);
            c0 = Avx2.Add(c0, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, b0), ones));
            c1 = Avx2.Add(c1, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, b1), ones));
            c2 = Avx2.Add(c2, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, b2), ones));
            c3 = Avx2.Add(c3, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, b3), ones));
            c4 = Avx2.Add(c4, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, b4), ones));
            c5 = Avx2.Add(c5, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, b5), ones));
        }
        return c0 + c1 + c2 + c3 + c4 + c5;
    }

    [Benchmark]
    public Vector256<int> Vnni()
    {
        if (!AvxVnni.IsSupported)
        {
            return default;
        }
        // vpdpbusd adds into its accumulator, so even constant operands cannot be hoisted: 12 chains, as for FMA.
        var a = Vector256.Create((byte)3);
        var b = Vector256.Create((sbyte)5);
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector256<int> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = AvxVnni.MultiplyWideningAndAdd(c0, a, b); c1 = AvxVnni.MultiplyWideningAndAdd(c1, a, b);
            c2 = AvxVnni.MultiplyWideningAndAdd(c2, a, b); c3 = AvxVnni.MultiplyWideningAndAdd(c3, a, b);
            c4 = AvxVnni.MultiplyWideningAndAdd(c4, a, b); c5 = AvxVnni.MultiplyWideningAndAdd(c5, a, b);
            c6 = AvxVnni.MultiplyWideningAndAdd(c6, a, b); c7 = AvxVnni.MultiplyWideningAndAdd(c7, a, b);
            c8 = AvxVnni.MultiplyWideningAndAdd(c8, a, b); c9 = AvxVnni.MultiplyWideningAndAdd(c9, a, b);
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, a, b); c11 = AvxVnni.MultiplyWideningAndAdd(c11, a, b);
        }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    }

    private static Vector256<float> Fma3(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        System.Runtime.Intrinsics.X86.Fma.IsSupported ? System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a, b, c) : a * b + c;

}
