namespace Engine.Kernels;

/// <summary>
/// Affine quantization of real values to integers in [<see cref="QMin"/>, <see cref="QMax"/>], as TFLite's int8
/// specification and gemmlowp define it: real = <see cref="Scale"/> (q - <see cref="ZeroPoint"/>).
/// Rounding everywhere in this engine is half away from zero (as TFLite's reference kernels and gemmlowp do).
/// </summary>
public readonly record struct QuantParams(float Scale, int ZeroPoint, int QMin, int QMax)
{
    /// <summary>uint8 activations: [0, 255].</summary>
    public static (int Min, int Max) UInt8 => (0, 255);

    /// <summary>int8 activations: [-128, 127].</summary>
    public static (int Min, int Max) Int8 => (-128, 127);

    /// <summary>
    /// Asymmetric parameters for values observed in [<paramref name="min"/>, <paramref name="max"/>] (gemmlowp,
    /// doc/quantization_example.cc, ChooseQuantizationParams): the range is widened to contain 0, scale =
    /// (max - min) / (qmax - qmin), and the zero point qmin - min / scale is rounded and clamped into [qmin, qmax]
    /// ("nudged"), so that real 0 is exactly representable, which zero padding and ReLU need.
    /// </summary>
    public static QuantParams Asymmetric(float min, float max, int qmin, int qmax)
    {
        if (!float.IsFinite(min) || !float.IsFinite(max) || min > max)
        {
            throw new ArgumentException($"quantization range [{min}, {max}] must be finite with min <= max.");
        }
        if (qmin >= qmax)
        {
            throw new ArgumentException($"integer range [{qmin}, {qmax}] is empty.");
        }
        min = MathF.Min(min, 0f);
        max = MathF.Max(max, 0f);
        if (min == max)
        {
            // Only zeros were seen: any scale represents them; 1 keeps dequantization trivial.
            return new QuantParams(1f, qmin < 0 && qmax > 0 ? 0 : qmin, qmin, qmax);
        }
        double scale = ((double)max - min) / (qmax - qmin);
        double zeroPointReal = qmin - min / scale;
        int zeroPoint = (int)Math.Clamp(Math.Round(zeroPointReal, MidpointRounding.AwayFromZero), qmin, qmax);
        return new QuantParams((float)scale, zeroPoint, qmin, qmax);
    }

    /// <summary>
    /// Symmetric parameters (zero point 0) for values with |x| &lt;= <paramref name="absMax"/>, over
    /// [-<paramref name="qmax"/>, <paramref name="qmax"/>]: TFLite's int8 weights use qmax = 127, leaving -128 unused so
    /// that negation never overflows.
    /// </summary>
    public static QuantParams Symmetric(float absMax, int qmax = 127)
    {
        if (!float.IsFinite(absMax) || absMax < 0)
        {
            throw new ArgumentException($"symmetric range {absMax} must be finite and >= 0.");
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(qmax);
        return new QuantParams(absMax == 0 ? 1f : absMax / qmax, 0, -qmax, qmax);
    }

    /// <summary>q = clamp(round_half_away(x / scale) + zero_point, qmin, qmax).</summary>
    public int Quantize(float x)
    {
        float scaled = x / Scale;
        if (float.IsNaN(scaled))
        {
            return Math.Clamp(ZeroPoint, QMin, QMax);
        }
        // Clamp in float first: values far outside the range would overflow the integer conversion.
        float rounded = MathF.Round(Math.Clamp(scaled, -1e9f, 1e9f), MidpointRounding.AwayFromZero);
        return (int)Math.Clamp((long)rounded + ZeroPoint, QMin, QMax);
    }

    /// <summary>real = scale (q - zero_point).</summary>
    public float Dequantize(int q) => Scale * (q - ZeroPoint);
}
