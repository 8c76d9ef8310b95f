namespace Engine.Kernels;

/// <summary>
/// Integer-only rescaling of int32 accumulators, as gemmlowp (fixedpoint/fixedpoint.h) and TFLite define it: a real
/// multiplier M is stored as an int32 mantissa m in [2^30, 2^31) (a Q0.31 fraction in [0.5, 1)) and a power-of-two
/// exponent, so that x M = (x m / 2^31) 2^shift is computed with one 64-bit product and two rounding shifts.
/// </summary>
public static class FixedPoint
{
    /// <summary>The largest exponent <see cref="QuantizeMultiplier"/> returns (TFLite's cap, quantization_util.cc).</summary>
    public const int MaxShift = 30;

    /// <summary>The smallest exponent <see cref="QuantizeMultiplier"/> returns; smaller multipliers become a zero mantissa.</summary>
    public const int MinShift = -31;

    /// <summary>
    /// Splits <paramref name="multiplier"/> (finite, &gt; 0) into a Q0.31 mantissa in [2^30, 2^31) and an exponent in
    /// [<see cref="MinShift"/>, <see cref="MaxShift"/>]: multiplier = mantissa / 2^31 * 2^shift (TFLite,
    /// QuantizeMultiplier in kernels/internal/quantization_util.cc). At the two ends it does what TFLite does:
    /// <list type="bullet">
    /// <item>below 2^-32 (shift &lt; -31) every int32 input would round to 0, so the result is (0, 0), a zero multiplier;</item>
    /// <item>at 2^30 and above (shift &gt; 30) it saturates to (2^31 - 1, 30), a multiplier of just under 2^30, as TFLite
    /// does because its single-rounding MultiplyByQuantizedMultiplier supports shifts up to 30 only. Any input
    /// other than 0 and +-1 then saturates int32 in <see cref="MultiplyByQuantizedMultiplier"/>, and +-1 gives about +-2^30:
    /// far outside any 8-bit code, so a requantized output clamps to the same code as with the exact multiplier.</item>
    /// </list>
    /// </summary>
    public static (int Mantissa, int Shift) QuantizeMultiplier(double multiplier)
    {
        if (!(multiplier > 0) || double.IsInfinity(multiplier))
        {
            throw new ArgumentOutOfRangeException(nameof(multiplier), multiplier, "a requantization multiplier must be finite and > 0.");
        }
        int shift = Math.ILogB(multiplier) + 1;                       // multiplier = fraction 2^shift, fraction in [0.5, 1)
        double fraction = Math.ScaleB(multiplier, -shift);
        long mantissa = (long)Math.Round(fraction * (1L << 31), MidpointRounding.AwayFromZero);
        if (mantissa == 1L << 31)
        {
            // The fraction rounded up to 1.0: halve the mantissa, double the exponent.
            mantissa /= 2;
            shift++;
        }
        if (shift < MinShift)
        {
            // Below 2^-32 every int32 input rounds to 0; say so with a zero mantissa rather than an unbounded shift.
            return (0, 0);
        }
        if (shift > MaxShift)
        {
            return (int.MaxValue, MaxShift);
        }
        return ((int)mantissa, shift);
    }

    /// <summary>
    /// a b / 2^31 rounded to nearest with ties toward +infinity (-0.5 gives 0, 0.5 gives 1), saturating the one overflow
    /// case a = b = int.MinValue (gemmlowp, SaturatingRoundingDoublingHighMul: a nudge of 2^30, or 1 - 2^30 for negative
    /// products, then division truncating toward zero). Kept exactly as gemmlowp has it, so results match TFLite.
    /// </summary>
    public static int SaturatingRoundingDoublingHighMul(int a, int b)
    {
        if (a == int.MinValue && b == int.MinValue)
        {
            return int.MaxValue;
        }
        long product = (long)a * b;
        long nudge = product >= 0 ? 1L << 30 : 1 - (1L << 30);
        return (int)((product + nudge) / (1L << 31));
    }

    /// <summary>x / 2^exponent rounded to nearest, ties away from zero (gemmlowp, RoundingDivideByPOT), 0 &lt;= exponent &lt;= 31.</summary>
    public static int RoundingDivideByPowerOfTwo(int x, int exponent)
    {
        if ((uint)exponent > 31)
        {
            throw new ArgumentOutOfRangeException(nameof(exponent), exponent, "exponent must be in [0, 31].");
        }
        int mask = (int)((1L << exponent) - 1);
        int remainder = x & mask;
        int threshold = (mask >> 1) + (x < 0 ? 1 : 0);
        return (x >> exponent) + (remainder > threshold ? 1 : 0);
    }

    /// <summary>
    /// x M for a multiplier split by <see cref="QuantizeMultiplier"/>: a left shift for M &gt;= 1 (saturating the shifted
    /// value to int32), the rounding doubling high multiply, then a rounding right shift (TFLite,
    /// MultiplyByQuantizedMultiplier, double rounding). Defined for every <paramref name="shift"/>, not only the
    /// [<see cref="MinShift"/>, <see cref="MaxShift"/>] that <see cref="QuantizeMultiplier"/> produces:
    /// <list type="bullet">
    /// <item>shift &gt; 0: x 2^shift saturates to int32 before the multiply, so a shift of 32 or more saturates every
    /// x other than 0 (it is never computed as a 64-bit shift, whose count would wrap at 64);</item>
    /// <item>shift &lt; -31: 0, which is what the rounding right shift gives there (the high multiply's magnitude is
    /// below 2^31, so dividing it by 2^32 or more rounds to 0).</item>
    /// </list>
    /// </summary>
    public static int MultiplyByQuantizedMultiplier(int x, int mantissa, int shift)
    {
        if (shift > 0)
        {
            int input = shift >= 32
                ? (x == 0 ? 0 : x > 0 ? int.MaxValue : int.MinValue)
                : (int)Math.Clamp((long)x << shift, int.MinValue, int.MaxValue);   // |x| 2^31 < 2^63: exact in int64
            return SaturatingRoundingDoublingHighMul(input, mantissa);
        }
        if (shift < -31)
        {
            return 0;
        }
        return RoundingDivideByPowerOfTwo(SaturatingRoundingDoublingHighMul(x, mantissa), -shift);
    }
}
