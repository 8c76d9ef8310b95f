namespace Engine.Kernels;

/// <summary>
/// Integer-only rescaling of int32 accumulators, as gemmlowp (fixedpoint/fixedpoint.h) and TFLite define it: a real
/// multiplier M is stored as an int32 mantissa m in [2^30, 2^31) (a Q0.31 fraction in [0.5, 1)) and a power-of-two
/// exponent, so that x M = (x m / 2^31) 2^shift is computed with one 64-bit product and two rounding shifts.
/// </summary>
public static class FixedPoint
{
    /// <summary>
    /// Splits <paramref name="multiplier"/> (&gt; 0) into a Q0.31 mantissa in [2^30, 2^31) and an exponent:
    /// multiplier = mantissa / 2^31 * 2^shift (TFLite, QuantizeMultiplier).
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
        if (shift < -31)
        {
            // Below 2^-32 every int32 input rounds to 0; say so with a zero mantissa rather than an unbounded shift.
            return (0, 0);
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
    /// value), the rounding doubling high multiply, then a rounding right shift (TFLite, MultiplyByQuantizedMultiplier).
    /// </summary>
    public static int MultiplyByQuantizedMultiplier(int x, int mantissa, int shift)
    {
        int leftShift = shift > 0 ? shift : 0;
        int rightShift = shift > 0 ? 0 : -shift;
        long shifted = (long)x << leftShift;
        int input = (int)Math.Clamp(shifted, int.MinValue, int.MaxValue);
        return RoundingDivideByPowerOfTwo(SaturatingRoundingDoublingHighMul(input, mantissa), rightShift);
    }
}
