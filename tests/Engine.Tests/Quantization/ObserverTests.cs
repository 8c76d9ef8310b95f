using Engine.Kernels;
using Engine.Quantization;

namespace Engine.Tests.Quantization;

public class ObserverTests
{
    [Fact]
    public void MinMax_keeps_the_global_extremes_and_refuses_bad_values()
    {
        var observer = new MinMaxObserver();
        Assert.Throws<InvalidOperationException>(() => observer.Range);
        observer.Observe([1f, 2f, 3f]);
        observer.Observe([]);
        observer.Observe([-4f, 0.5f]);
        Assert.Equal((-4f, 3f), observer.Range);
        Assert.Equal(5, observer.Count);
        Assert.Throws<ArgumentException>(() => observer.Observe([1f, float.NaN]));
        Assert.Throws<ArgumentException>(() => observer.Observe([float.PositiveInfinity]));
    }

    [Fact]
    public void Moving_average_starts_from_the_first_batch_then_moves_by_the_constant()
    {
        var observer = new MovingAverageMinMaxObserver(0.5f);
        observer.Observe([0f, 10f]);
        Assert.Equal((0f, 10f), observer.Range);
        observer.Observe([-10f, 20f]);
        Assert.Equal((-5f, 15f), observer.Range);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MovingAverageMinMaxObserver(0f));
    }

    private static float ExactQuantile(float[] sorted, double fraction) => sorted[(int)Math.Clamp(fraction * sorted.Length, 0, sorted.Length - 1)];

    [Fact]
    public void Percentile_matches_sorted_order_percentiles_within_a_bin_and_clips_outliers()
    {
        var random = new SeededRandom(3);
        float[] values = Enumerable.Range(0, 100_000).Select(_ => (float)random.NextGaussian()).ToArray();
        values[17] = 1000f;
        values[99] = -500f;
        var percentile = new PercentileObserver(99);
        var minMax = new MinMaxObserver();
        // Batches in an order that widens the range several times (re-binning).
        foreach (int[] chunk in Enumerable.Range(0, values.Length).Chunk(10_000))
        {
            float[] batch = chunk.Select(i => values[i]).ToArray();
            percentile.Observe(batch);
            minMax.Observe(batch);
        }
        float[] sorted = values.Order().ToArray();
        (float low, float high) = percentile.Range;
        double bin = (1000.0 + 500.0) / 2048;
        Assert.InRange(low, ExactQuantile(sorted, 0.01) - 2 * bin, ExactQuantile(sorted, 0.01) + 2 * bin);
        Assert.InRange(high, ExactQuantile(sorted, 0.99) - 2 * bin, ExactQuantile(sorted, 0.99) + 2 * bin);
        Assert.Equal((-500f, 1000f), minMax.Range);
        Assert.True(high < 5f && low > -5f, $"outliers should be clipped: {low} .. {high}");
    }

    [Fact]
    public void Percentile_100_is_min_max_and_constant_values_give_a_point_range()
    {
        var all = new PercentileObserver(100);
        all.Observe([3f, -1f, 7f]);
        all.Observe([2f, 9f]);
        Assert.Equal((-1f, 9f), all.Range);
        var constant = new PercentileObserver();
        constant.Observe([2.5f, 2.5f, 2.5f]);
        Assert.Equal((2.5f, 2.5f), constant.Range);
        // A range of one value still quantizes (widened to contain 0).
        QuantParams p = QuantParams.Asymmetric(constant.Range.Min, constant.Range.Max, 0, 255);
        Assert.Equal(0, p.ZeroPoint);
    }

    [Fact]
    public void Names_parse_and_create_every_kind()
    {
        foreach (string name in ActivationObserver.Names)
        {
            ObserverKind kind = ActivationObserver.ParseKind(name.ToUpperInvariant());
            Assert.Equal(name, ActivationObserver.Create(kind).Name);
            Assert.Equal(name, ActivationObserver.NameOf(kind));
        }
        ArgumentException e = Assert.Throws<ArgumentException>(() => ActivationObserver.ParseKind("median"));
        Assert.Contains("percentile", e.Message);
    }
}
