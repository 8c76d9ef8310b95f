using System.Numerics;

namespace Engine.Kernels;

/// <summary>
/// Average pooling on 8-bit codes, in integers: the mean of the stored values of each window, rounded half away from
/// zero, q_out = round(sum q / (kh kw)). Input and output share scale and zero point, so no rescaling is needed
/// (TFLite's reference AveragePool: (sum + count / 2) / count for non-negative sums, (sum - count / 2) / count otherwise).
/// </summary>
public static class AvgPoolQ8
{
    /// <summary>y[C, OH, OW] = rounded window means of x[C, H, W] (no padding).</summary>
    public static void Forward<T>(ReadOnlySpan<T> x, in ConvGeometry g, Span<T> y)
        where T : unmanaged, IBinaryInteger<T>
    {
        if (g.PadHeight != 0 || g.PadWidth != 0 || x.Length < g.InputSize || y.Length < g.Channels * g.OutHeight * g.OutWidth)
        {
            throw new ArgumentException($"integer average pooling: spans of {x.Length} and {y.Length} do not fit {g} (no padding).");
        }
        int outH = g.OutHeight, outW = g.OutWidth, count = g.KernelHeight * g.KernelWidth;
        for (int c = 0; c < g.Channels; c++)
        {
            ReadOnlySpan<T> plane = x.Slice(c * g.Height * g.Width, g.Height * g.Width);
            for (int oh = 0; oh < outH; oh++)
            {
                for (int ow = 0; ow < outW; ow++)
                {
                    int sum = 0;
                    for (int i = 0; i < g.KernelHeight; i++)
                    {
                        foreach (T v in plane.Slice((oh * g.StrideHeight + i) * g.Width + ow * g.StrideWidth, g.KernelWidth))
                        {
                            sum += int.CreateTruncating(v);
                        }
                    }
                    int mean = sum >= 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    y[(c * outH + oh) * outW + ow] = T.CreateTruncating(mean);
                }
            }
        }
    }
}
