using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// From int32 accumulators to 8-bit output codes, integer-only (TFLite's int8 spec, gemmlowp's output stage):
/// <code>
///   q = clamp(MultiplyByQuantizedMultiplier(acc + addend, mantissa, shift) + zero_point, low, high)
/// </code>
/// where addend carries the bias and the zero-point corrections of one output channel, (mantissa, shift) encode
/// input_scale x weight_scale[c] / output_scale, and [low, high] is the type's range, or [zero_point, high] to fuse a
/// following ReLU (real 0 is the zero point). acc + addend wraps as int32 addition does; the sum with the zero point
/// does not (it is clamped as if computed in int64).
/// <para>
/// The AVX2 variant computes the same integers eight lanes at a time. The rounding doubling high multiply needs the
/// 64-bit product x m; AVX2 multiplies only unsigned 32-bit lanes into 64 bits (vpmuludq), so it multiplies |x| (exact
/// as an unsigned value, even for int.MinValue) by m &gt;= 0 and restores the sign, using gemmlowp's nudges:
/// (|x| m + 2^30) &gt;&gt; 31 for x &gt;= 0 and -((|x| m + 2^30 - 1) &gt;&gt; 31) for x &lt; 0, which is what truncating
/// (x m + 1 - 2^30) / 2^31 gives. Multipliers &gt;= 1 (shift in [1, 31], rare: calibrated layers shrink) saturate the
/// left-shifted input first, as the scalar does; larger shifts and zero points so far outside the type that
/// low - zero_point does not fit an int take the scalar path.
/// </para>
/// <para>
/// The AVX-512 variant is the same sequence on 16 lanes (vpmuludq zmm), 64 codes per step: half the instructions per
/// code, which matters because every output of a convolution passes through here (conv2: 65,536 codes per image).
/// </para>
/// </summary>
public static class RequantizeS32
{
    /// <summary>The fastest variant this CPU runs.</summary>
    public static KernelVariant Best { get; } =
        Avx512Supported ? KernelVariant.Avx512 : Avx2.IsSupported ? KernelVariant.Avx2Fma : KernelVariant.Scalar;

    /// <summary>Every variant this CPU runs, reference first.</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } =
    [
        KernelVariant.Scalar,
        .. Avx2.IsSupported ? [KernelVariant.Avx2Fma] : Array.Empty<KernelVariant>(),
        .. Avx512Supported ? [KernelVariant.Avx512] : Array.Empty<KernelVariant>(),
    ];

    // vpmuludq and vpabsd on zmm are AVX-512F; the byte narrowing of 64 lanes is AVX-512BW.
    private static bool Avx512Supported => Avx512F.IsSupported && Avx512BW.IsSupported && Avx2.IsSupported;

    /// <summary>Requantizes one output channel's accumulators to uint8 codes with the fastest variant.</summary>
    public static void Row(ReadOnlySpan<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high, Span<byte> output) =>
        Row(accumulators, addend, mantissa, shift, zeroPoint, low, high, output, Best);

    /// <summary>
    /// Requantizes one output channel's accumulators to uint8 codes with <paramref name="variant"/>:
    /// output[i] = clamp(MultiplyByQuantizedMultiplier(accumulators[i] + addend, mantissa, shift) + zeroPoint, low, high),
    /// 0 &lt;= low &lt;= high &lt;= 255.
    /// </summary>
    public static void Row(ReadOnlySpan<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high, Span<byte> output,
        KernelVariant variant)
    {
        Check(accumulators.Length, output.Length, low, high, byte.MinValue, byte.MaxValue, mantissa);
        int done = UseAvx2(variant, shift, zeroPoint, low, high)
            ? VectorRows(accumulators, addend, mantissa, shift, zeroPoint, low, high, output, variant)
            : 0;
        RowScalar(accumulators[done..], addend, mantissa, shift, zeroPoint, low, high, output[done..]);
    }

    /// <summary>Requantizes one output channel's accumulators to int8 codes with the fastest variant.</summary>
    public static void Row(ReadOnlySpan<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high, Span<sbyte> output) =>
        Row(accumulators, addend, mantissa, shift, zeroPoint, low, high, output, Best);

    /// <summary>
    /// Requantizes one output channel's accumulators to int8 codes with <paramref name="variant"/>:
    /// output[i] = clamp(MultiplyByQuantizedMultiplier(accumulators[i] + addend, mantissa, shift) + zeroPoint, low, high),
    /// -128 &lt;= low &lt;= high &lt;= 127.
    /// </summary>
    public static void Row(ReadOnlySpan<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high, Span<sbyte> output,
        KernelVariant variant)
    {
        Check(accumulators.Length, output.Length, low, high, sbyte.MinValue, sbyte.MaxValue, mantissa);
        // The vector core narrows by truncation, which keeps the two's complement bits of values already in [-128, 127].
        int done = UseAvx2(variant, shift, zeroPoint, low, high)
            ? VectorRows(accumulators, addend, mantissa, shift, zeroPoint, low, high, MemoryMarshal.AsBytes(output), variant)
            : 0;
        RowScalar(accumulators[done..], addend, mantissa, shift, zeroPoint, low, high, output[done..]);
    }

    /// <summary>
    /// The reference: output[i] = clamp(<see cref="FixedPoint.MultiplyByQuantizedMultiplier"/>(accumulators[i] + addend,
    /// mantissa, shift) + zeroPoint, low, high), the sum with the zero point taken in int64.
    /// </summary>
    public static void RowScalar<T>(ReadOnlySpan<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high, Span<T> output)
        where T : unmanaged, IBinaryInteger<T>
    {
        if (output.Length != accumulators.Length)
        {
            throw new ArgumentException($"requantize: {accumulators.Length} accumulators, {output.Length} outputs.");
        }
        for (int i = 0; i < accumulators.Length; i++)
        {
            int scaled = FixedPoint.MultiplyByQuantizedMultiplier(unchecked(accumulators[i] + addend), mantissa, shift);
            output[i] = T.CreateTruncating(Math.Clamp((long)scaled + zeroPoint, low, high));
        }
    }

    // The vector core clamps the scaled value to [low - zeroPoint, high - zeroPoint] before adding the zero point, so
    // that int32 lanes never overflow (scaled can reach int.MaxValue - 1 at shift 0); both bounds must fit an int.
    private static bool UseAvx2(KernelVariant variant, int shift, int zeroPoint, int low, int high) =>
        variant != KernelVariant.Scalar && Avx2.IsSupported && shift >= -31 && shift <= 31
        && (long)low - zeroPoint >= int.MinValue && (long)high - zeroPoint <= int.MaxValue;

    // The AVX-512 loop (64 codes per step) where asked for and present, then the AVX2 loop on what is left (32 per step).
    private static int VectorRows(ReadOnlySpan<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high,
        Span<byte> output, KernelVariant variant)
    {
        int done = variant == KernelVariant.Avx512 && Avx512Supported
            ? Avx512Rows(accumulators, addend, mantissa, shift, zeroPoint, low, high, output)
            : 0;
        return done + Avx2Rows(accumulators[done..], addend, mantissa, shift, zeroPoint, low, high, output[done..]);
    }

    // 64 codes per step; returns how many were written (a multiple of 64).
    private static int Avx512Rows(ReadOnlySpan<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high, Span<byte> output)
    {
        var add = Vector512.Create(addend);
        var m = Vector512.Create((uint)mantissa);
        var zero = Vector512.Create(zeroPoint);
        var lowV = Vector512.Create(low - zeroPoint);
        var highV = Vector512.Create(high - zeroPoint);
        int leftShift = Math.Max(shift, 0), rightShift = Math.Max(-shift, 0);
        int i = 0;
        for (; i + 64 <= accumulators.Length; i += 64)
        {
            Vector512<int> a = Scale(Vector512.Create(accumulators[i..]) + add, m, leftShift, rightShift);
            Vector512<int> b = Scale(Vector512.Create(accumulators[(i + 16)..]) + add, m, leftShift, rightShift);
            Vector512<int> c = Scale(Vector512.Create(accumulators[(i + 32)..]) + add, m, leftShift, rightShift);
            Vector512<int> d = Scale(Vector512.Create(accumulators[(i + 48)..]) + add, m, leftShift, rightShift);
            a = Vector512.Min(Vector512.Max(a, lowV), highV) + zero;
            b = Vector512.Min(Vector512.Max(b, lowV), highV) + zero;
            c = Vector512.Min(Vector512.Max(c, lowV), highV) + zero;
            d = Vector512.Min(Vector512.Max(d, lowV), highV) + zero;
            Vector512<byte> codes = Vector512.Narrow(Vector512.Narrow(a.AsUInt32(), b.AsUInt32()), Vector512.Narrow(c.AsUInt32(), d.AsUInt32()));
            codes.CopyTo(output[i..]);
        }
        return i;
    }

    /// <summary>Sixteen codes as int32 lanes: <see cref="Lanes(Vector256{int}, int, int, int, int, int, int)"/> on a zmm register (AVX-512F; only where <see cref="CanVectorize"/> holds).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<int> Lanes(Vector512<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high)
    {
        Vector512<int> scaled = Scale(accumulators + Vector512.Create(addend), Vector512.Create((uint)mantissa), Math.Max(shift, 0), Math.Max(-shift, 0));
        return Vector512.Min(Vector512.Max(scaled, Vector512.Create(low - zeroPoint)), Vector512.Create(high - zeroPoint)) + Vector512.Create(zeroPoint);
    }

    // Scale on 16 lanes, step for step.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Scale(Vector512<int> x, Vector512<uint> m, int leftShift, int rightShift)
    {
        if (leftShift != 0)
        {
            Vector512<int> shifted = Vector512.ShiftLeft(x, leftShift);
            Vector512<int> overflow = ~Vector512.Equals(Vector512.ShiftRightArithmetic(shifted, leftShift), x);
            Vector512<int> saturated = Vector512.Create(int.MaxValue) ^ Vector512.ShiftRightArithmetic(x, 31);
            x = Vector512.ConditionalSelect(overflow, saturated, shifted);
        }
        Vector512<int> negative = Vector512.LessThan(x, Vector512<int>.Zero);          // -1 where x < 0
        Vector512<uint> magnitude = Avx512F.Abs(x);                                      // |int.MinValue| = 2^31, exact as uint
        Vector512<int> nudge = Vector512.Create(1 << 30) + negative;                   // 2^30, or 2^30 - 1 for x < 0
        Vector512<ulong> evenProduct = Avx512F.Multiply(magnitude, m);                   // lanes 0, 2, ..., 14
        Vector512<ulong> oddProduct = Avx512F.Multiply(Vector512.ShiftRightLogical(magnitude.AsUInt64(), 32).AsUInt32(), m);
        Vector512<ulong> evenNudge = nudge.AsUInt64() & Vector512.Create(0xFFFF_FFFFUL);
        Vector512<ulong> oddNudge = Vector512.ShiftRightLogical(nudge.AsUInt64(), 32);
        // (|x| m + nudge) >> 31 < 2^31: the even results leave their upper halves 0 and the odd ones (shifted up) their
        // lower halves, so an OR interleaves them.
        Vector512<ulong> even = Vector512.ShiftRightLogical(evenProduct + evenNudge, 31);
        Vector512<ulong> odd = Vector512.ShiftLeft(Vector512.ShiftRightLogical(oddProduct + oddNudge, 31), 32);
        Vector512<int> high = (even | odd).AsInt32();
        high = (high ^ negative) - negative;                                             // restore the sign
        if (rightShift == 0)
        {
            return high;
        }
        var mask = Vector512.Create((1 << rightShift) - 1);
        Vector512<int> remainder = high & mask;
        Vector512<int> threshold = Vector512.ShiftRightArithmetic(mask, 1) - Vector512.LessThan(high, Vector512<int>.Zero);
        return Vector512.ShiftRightArithmetic(high, rightShift) - Vector512.GreaterThan(remainder, threshold);
    }

    // 32 codes per step; returns how many were written (a multiple of 32), the caller finishes the tail.
    private static int Avx2Rows(ReadOnlySpan<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high, Span<byte> output)
    {
        var add = Vector256.Create(addend);
        var m = Vector256.Create((uint)mantissa);
        var zero = Vector256.Create(zeroPoint);
        var lowV = Vector256.Create(low - zeroPoint);
        var highV = Vector256.Create(high - zeroPoint);
        int leftShift = Math.Max(shift, 0), rightShift = Math.Max(-shift, 0);
        int i = 0;
        for (; i + 32 <= accumulators.Length; i += 32)
        {
            Vector256<int> a = Scale(Vector256.Create(accumulators[i..]) + add, m, leftShift, rightShift);
            Vector256<int> b = Scale(Vector256.Create(accumulators[(i + 8)..]) + add, m, leftShift, rightShift);
            Vector256<int> c = Scale(Vector256.Create(accumulators[(i + 16)..]) + add, m, leftShift, rightShift);
            Vector256<int> d = Scale(Vector256.Create(accumulators[(i + 24)..]) + add, m, leftShift, rightShift);
            a = Vector256.Min(Vector256.Max(a, lowV), highV) + zero;
            b = Vector256.Min(Vector256.Max(b, lowV), highV) + zero;
            c = Vector256.Min(Vector256.Max(c, lowV), highV) + zero;
            d = Vector256.Min(Vector256.Max(d, lowV), highV) + zero;
            // Values are inside [low, high] now, so truncating narrows are exact (and keep lane order, unlike vpackssdw,
            // which packs within 128-bit halves).
            Vector256<byte> codes = Vector256.Narrow(Vector256.Narrow(a.AsUInt32(), b.AsUInt32()), Vector256.Narrow(c.AsUInt32(), d.AsUInt32()));
            codes.CopyTo(output[i..]);
        }
        return i;
    }

    /// <summary>
    /// Whether <see cref="Lanes(Vector256{int}, int, int, int, int, int, int)"/> computes what <see cref="RowScalar{T}"/> does for these parameters (the AVX2 variant's
    /// own condition): AVX2 present, a shift in [-31, 31], and clamp bounds that stay ints once the zero point is taken off.
    /// </summary>
    internal static bool CanVectorize(int shift, int zeroPoint, int low, int high) =>
        UseAvx2(KernelVariant.Avx2Fma, shift, zeroPoint, low, high);

    /// <summary>
    /// Eight codes as int32 lanes, exactly as <see cref="RowScalar{T}"/> computes them:
    /// clamp(MultiplyByQuantizedMultiplier(acc + addend, mantissa, shift) + zeroPoint, low, high), for kernels that
    /// requantize accumulators still in registers. Only where <see cref="CanVectorize"/> holds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> Lanes(Vector256<int> accumulators, int addend, int mantissa, int shift, int zeroPoint, int low, int high)
    {
        Vector256<int> scaled = Scale(accumulators + Vector256.Create(addend), Vector256.Create((uint)mantissa), Math.Max(shift, 0), Math.Max(-shift, 0));
        return Vector256.Min(Vector256.Max(scaled, Vector256.Create(low - zeroPoint)), Vector256.Create(high - zeroPoint)) + Vector256.Create(zeroPoint);
    }

    // MultiplyByQuantizedMultiplier: saturating left shift (at most one of the two shifts is non-zero), rounding doubling
    // high multiply, rounding right shift.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Scale(Vector256<int> x, Vector256<uint> m, int leftShift, int rightShift)
    {
        if (leftShift != 0)
        {
            // The scalar shifts in int64 and clamps to int32: a lane overflowed when shifting back does not restore it,
            // and then saturates toward its sign (int.MaxValue ^ -1 = int.MinValue).
            Vector256<int> shifted = Vector256.ShiftLeft(x, leftShift);
            Vector256<int> overflow = ~Vector256.Equals(Vector256.ShiftRightArithmetic(shifted, leftShift), x);
            Vector256<int> saturated = Vector256.Create(int.MaxValue) ^ Vector256.ShiftRightArithmetic(x, 31);
            x = Vector256.ConditionalSelect(overflow, saturated, shifted);
        }
        Vector256<int> negative = Vector256.LessThan(x, Vector256<int>.Zero);          // -1 where x < 0
        Vector256<uint> magnitude = Avx2.Abs(x);                                         // |int.MinValue| = 2^31, exact as uint
        Vector256<int> nudge = Vector256.Create(1 << 30) + negative;                   // 2^30, or 2^30 - 1 for x < 0
        Vector256<ulong> evenProduct = Avx2.Multiply(magnitude, m);                      // lanes 0, 2, 4, 6
        Vector256<ulong> oddProduct = Avx2.Multiply(Vector256.ShiftRightLogical(magnitude.AsUInt64(), 32).AsUInt32(), m);
        Vector256<ulong> evenNudge = nudge.AsUInt64() & Vector256.Create(0xFFFF_FFFFUL);
        Vector256<ulong> oddNudge = Vector256.ShiftRightLogical(nudge.AsUInt64(), 32);
        Vector256<ulong> even = Vector256.ShiftRightLogical(evenProduct + evenNudge, 31);
        Vector256<ulong> odd = Vector256.ShiftLeft(Vector256.ShiftRightLogical(oddProduct + oddNudge, 31), 32);
        Vector256<int> high = Avx2.Blend(even.AsInt32(), odd.AsInt32(), 0b1010_1010);
        high = (high ^ negative) - negative;                                             // restore the sign
        if (rightShift == 0)
        {
            return high;
        }
        // RoundingDivideByPowerOfTwo: floor shift, plus 1 where the remainder exceeds half (ties away from zero).
        var mask = Vector256.Create((1 << rightShift) - 1);
        Vector256<int> remainder = high & mask;
        Vector256<int> threshold = Vector256.ShiftRightArithmetic(mask, 1) - Vector256.LessThan(high, Vector256<int>.Zero);
        return Vector256.ShiftRightArithmetic(high, rightShift) - Vector256.GreaterThan(remainder, threshold);
    }

    private static void Check(int accumulators, int outputs, int low, int high, int typeMin, int typeMax, int mantissa)
    {
        if (outputs != accumulators)
        {
            throw new ArgumentException($"requantize: {accumulators} accumulators, {outputs} outputs.");
        }
        if (low > high || low < typeMin || high > typeMax)
        {
            throw new ArgumentException($"requantize: clamp range [{low}, {high}] is empty or outside [{typeMin}, {typeMax}].");
        }
        if (mantissa < 0)
        {
            throw new ArgumentException($"requantize: mantissa {mantissa} must be >= 0.");
        }
    }
}
