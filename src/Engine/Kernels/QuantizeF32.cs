using System.Numerics;
using System.Runtime.Intrinsics;

namespace Engine.Kernels;

/// <summary>
/// Float to 8-bit quantization, q = clamp(round_half_away(x / scale) + zero_point, qmin, qmax). The vector path rounds as trunc(s) + sign(s) [|s - trunc(s)| &gt;= 0.5], which equals
/// <see cref="MidpointRounding.AwayFromZero"/> exactly (adding 0.5 would not: 0.49999997 + 0.5 rounds up to 1 in float),
/// so it matches the scalar reference <see cref="QuantParams.Quantize"/> bit for bit; NaN maps to the zero point.
/// </summary>
public static class QuantizeF32
{
    /// <summary>uint8 codes of <paramref name="x"/> (parameters over a range inside [0, 255]).</summary>
    public static void ToUInt8(ReadOnlySpan<float> x, in QuantParams p, Span<byte> q, bool vectorised = true) =>
        Quantize(x, p, q, vectorised, 0, 255);

    /// <summary>int8 codes of <paramref name="x"/> (parameters over a range inside [-128, 127]).</summary>
    public static void ToInt8(ReadOnlySpan<float> x, in QuantParams p, Span<sbyte> q, bool vectorised = true) =>
        Quantize(x, p, q, vectorised, -128, 127);

    private static void Quantize<T>(ReadOnlySpan<float> x, in QuantParams p, Span<T> q, bool vectorised, int typeMin, int typeMax)
        where T : unmanaged, INumberBase<T>
    {
        Check(x.Length, q.Length, p, typeMin, typeMax);
        int i = 0;
        if (vectorised && Vector256.IsHardwareAccelerated)
        {
            var rounding = new Rounding(p);
            for (; i + 8 <= x.Length; i += 8)
            {
                Vector256<int> codes = rounding.Codes(Vector256.Create(x[i..]));
                for (int lane = 0; lane < 8; lane++)
                {
                    q[i + lane] = T.CreateTruncating(codes.GetElement(lane));
                }
            }
        }
        for (; i < x.Length; i++)
        {
            q[i] = T.CreateTruncating(p.Quantize(x[i]));
        }
    }

    // The vector form of QuantParams.Quantize for 8 lanes; constants built once per call.
    private readonly struct Rounding(QuantParams p)
    {
        private readonly Vector256<float> _scale = Vector256.Create(p.Scale);
        private readonly Vector256<int> _zeroPoint = Vector256.Create(p.ZeroPoint);
        private readonly Vector256<int> _qmin = Vector256.Create(p.QMin);
        private readonly Vector256<int> _qmax = Vector256.Create(p.QMax);

        public Vector256<int> Codes(Vector256<float> x)
        {
            Vector256<float> s = x / _scale;
            s = Vector256.ConditionalSelect(Vector256.Equals(s, s), s, Vector256<float>.Zero);   // NaN -> 0
            var limit = Vector256.Create(1e9f);
            s = Vector256.Min(Vector256.Max(s, -limit), limit);
            Vector256<float> whole = Vector256.Truncate(s);
            Vector256<float> away = Vector256.GreaterThanOrEqual(Vector256.Abs(s - whole), Vector256.Create(0.5f));
            Vector256<float> sign = Vector256.ConditionalSelect(Vector256.LessThan(s, Vector256<float>.Zero), Vector256.Create(-1f), Vector256.Create(1f));
            Vector256<int> codes = Vector256.ConvertToInt32(whole + (away & sign)) + _zeroPoint;
            return Vector256.Min(Vector256.Max(codes, _qmin), _qmax);
        }
    }

    private static void Check(int xLength, int qLength, in QuantParams p, int typeMin, int typeMax)
    {
        if (xLength != qLength)
        {
            throw new ArgumentException($"quantize: {xLength} values, {qLength} outputs.");
        }
        if (p.QMin < typeMin || p.QMax > typeMax || !(p.Scale > 0) || !float.IsFinite(p.Scale))
        {
            throw new ArgumentException($"quantize: parameters {p} do not fit the output type's [{typeMin}, {typeMax}].");
        }
    }
}
