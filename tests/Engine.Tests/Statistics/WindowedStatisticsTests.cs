using Engine.Tests.Inference;
using Engine.Statistics;

namespace Engine.Tests.Statistics;

/// <summary>Exponentially weighted running statistics (<see cref="StatisticsWindow.ExponentialHalfLife"/>).</summary>
public class WindowedStatisticsTests
{
    // The direct definition, in two passes: observation k of n weighs r^(n-1-k); mean = sum w x / W,
    // M2 = sum w (x - mean)^2, W = sum w, W2 = sum w^2.
    private static (double[] Mean, double[] M2, double W, double W2) TwoPassWeighted(IReadOnlyList<float[]> observations, int length, double r)
    {
        int n = observations.Count;
        double[] weights = Enumerable.Range(0, n).Select(k => Math.Pow(r, n - 1 - k)).ToArray();
        double w = weights.Sum(), w2 = weights.Sum(v => v * v);
        var mean = new double[length];
        var m2 = new double[length];
        for (int i = 0; i < length; i++)
        {
            mean[i] = Enumerable.Range(0, n).Sum(k => weights[k] * observations[k][i]) / w;
            m2[i] = Enumerable.Range(0, n).Sum(k => weights[k] * (observations[k][i] - mean[i]) * (observations[k][i] - mean[i]));
        }
        return (mean, m2, w, w2);
    }

    private static List<float[]> Stream(int count, int length, ulong seed, float drift) =>
        Enumerable.Range(0, count).Select(k => TestData.Uniform(length, seed + (ulong)k, -1f, 1f).Select(v => v + drift * k).ToArray()).ToList();

    public static TheoryData<int, int> LengthsAndHalfLives() => new()
    {
        { 0, 3 }, { 1, 1 }, { 3, 5 }, { 4, 10 }, { 5, 2 }, { 7, 100 }, { 9, 7 }, { 17, 3 }, { 33, 40 },
    };

    [Theory]
    [MemberData(nameof(LengthsAndHalfLives))]
    public void Matches_a_direct_weighted_computation_and_the_scalar_twin_bit_for_bit(int length, int halfLife)
    {
        var window = StatisticsWindow.ExponentialHalfLife(halfLife);
        // A drifting stream: an unweighted mean would lag far behind the recent values, so the test tells the windows apart.
        var data = Stream(40, length, 7, drift: 0.1f);
        var fast = new RunningStatistics(length, window);
        var scalar = new RunningStatistics(length, window);
        var fastDoubles = new RunningStatistics(length, window);
        var scalarDoubles = new RunningStatistics(length, window);
        foreach (float[] o in data)
        {
            fast.Observe(o, vectorised: true);
            scalar.Observe(o, vectorised: false);
            double[] d = o.Select(v => (double)v).ToArray();
            fastDoubles.Observe(d, vectorised: true);
            scalarDoubles.Observe(d, vectorised: false);
        }
        Assert.Equal(scalar.Mean.ToArray(), fast.Mean.ToArray());
        Assert.Equal(scalar.M2.ToArray(), fast.M2.ToArray());
        Assert.Equal(scalarDoubles.Mean.ToArray(), fastDoubles.Mean.ToArray());
        Assert.Equal(scalarDoubles.M2.ToArray(), fastDoubles.M2.ToArray());
        Assert.Equal(fast.M2.ToArray(), fastDoubles.M2.ToArray());

        (double[] mean, double[] m2, double w, double w2) = TwoPassWeighted(data, length, window.Decay);
        Assert.Equal(40, fast.Count);
        Assert.Equal(w, fast.Weight, 1e-12 * w);
        var population = new double[length];
        var sample = new double[length];
        fast.PopulationVariance(population);
        fast.SampleVariance(sample);
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(mean[i], fast.Mean[i], 1e-12 * Math.Max(1, Math.Abs(mean[i])));
            Assert.Equal(m2[i], fast.M2[i], 1e-11 * Math.Max(1, m2[i]));
            Assert.Equal(m2[i] / w, population[i], 1e-11 * Math.Max(1, population[i]));
            Assert.Equal(m2[i] / (w - w2 / w), sample[i], 1e-11 * Math.Max(1, sample[i]));
        }
    }

    [Fact]
    public void A_step_half_life_old_weighs_half_and_the_mean_forgets_the_past()
    {
        // One observation of 1, then h of 0: the 1 weighs r^h = 1/2 against the newest's 1, so
        // mean = (1/2) / W with W = (1 - r^(h+1)) / (1 - r).
        const int h = 8;
        var stats = new RunningStatistics(1, StatisticsWindow.ExponentialHalfLife(h));
        stats.Observe([1f]);
        for (int k = 0; k < h; k++)
        {
            stats.Observe([0f]);
        }
        double r = Math.Pow(2, -1.0 / h);
        Assert.Equal(0.5, Math.Pow(r, h), 1e-15);
        Assert.Equal(0.5 / ((1 - Math.Pow(r, h + 1)) / (1 - r)), stats.Mean[0], 1e-15);
        // After 60 half-lives of zeros the early 1 has gone (2^-60 of the newest's weight); over all steps it has not.
        var all = new RunningStatistics(1);
        all.Observe([1f]);
        for (int k = 0; k < 60 * h; k++)
        {
            stats.Observe([0f]);
            all.Observe([0f]);
        }
        Assert.True(stats.Mean[0] < 1e-18, $"windowed mean {stats.Mean[0]}");
        Assert.Equal(1.0 / (60 * h + 1), all.Mean[0], 1e-15);
        // The weight sum approaches 1 / (1 - r), about h / ln 2 observations: the effective window.
        Assert.Equal(1 / (1 - r), stats.Weight, 1e-9);
    }

    [Fact]
    public void The_first_observation_is_the_mean_with_no_start_up_bias()
    {
        var stats = new RunningStatistics(3, StatisticsWindow.ExponentialHalfLife(50));
        stats.Observe([5f, -2f, 0.25f]);
        Assert.Equal([5.0, -2.0, 0.25], stats.Mean.ToArray());
        Assert.Equal([0.0, 0.0, 0.0], stats.M2.ToArray());
        Assert.Equal(1.0, stats.Weight);
        var sample = new double[3];
        stats.SampleVariance(sample);
        Assert.All(sample, v => Assert.True(double.IsNaN(v)));
    }

    [Fact]
    public void The_all_window_is_welford_bit_for_bit()
    {
        var data = Stream(30, 11, 3, drift: 0.05f);
        var welford = new RunningStatistics(11);
        var all = new RunningStatistics(11, StatisticsWindow.All);
        // Welford's update written out here, element by element, in the order RunningStatistics computes it: the
        // All window (which multiplies M2 by r = 1 each step) must give exactly these bits.
        var mean = new double[11];
        var m2 = new double[11];
        for (int n = 1; n <= data.Count; n++)
        {
            for (int i = 0; i < 11; i++)
            {
                double x = data[n - 1][i], delta = x - mean[i];
                mean[i] += delta * (1.0 / n);
                m2[i] += delta * (x - mean[i]);
            }
        }
        // The longest half-life (r = 1 - 6.9e-10) still goes through the weighted path: over 30 steps the weights differ
        // from 1 by at most 2.1e-8, so it agrees with Welford to about that relative amount, and no closer.
        var nearlyAll = new RunningStatistics(11, StatisticsWindow.ExponentialHalfLife(StatisticsWindow.MaxHalfLifeSteps));
        data.ForEach(o => { welford.Observe(o); all.Observe(o); nearlyAll.Observe(o); });
        Assert.Equal(mean, all.Mean.ToArray());
        Assert.Equal(m2, all.M2.ToArray());
        Assert.Equal(mean, welford.Mean.ToArray());
        Assert.Equal(m2, welford.M2.ToArray());
        Assert.Equal(30.0, all.Weight);
        for (int i = 0; i < 11; i++)
        {
            Assert.Equal(welford.Mean[i], nearlyAll.Mean[i], 1e-7 * Math.Max(1, Math.Abs(welford.Mean[i])));
            Assert.Equal(welford.M2[i], nearlyAll.M2[i], 1e-7 * Math.Max(1, welford.M2[i]));
            Assert.NotEqual(welford.M2[i], nearlyAll.M2[i]);
        }
    }

    [Fact]
    public void Saved_state_resumes_exactly_and_clones_keep_the_window()
    {
        var window = StatisticsWindow.ExponentialHalfLife(6);
        var data = Stream(20, 5, 11, drift: -0.2f);
        var whole = new RunningStatistics(5, window);
        var first = new RunningStatistics(5, window);
        data.ForEach(o => whole.Observe(o));
        data.Take(12).ToList().ForEach(o => first.Observe(o));
        RunningStatistics resumed = RunningStatistics.FromState(first.Count, first.Mean.ToArray(), first.M2.ToArray(), window);
        Assert.Equal(window, resumed.Window);
        Assert.Equal(first.Weight, resumed.Weight);
        data.Skip(12).ToList().ForEach(o => resumed.Observe(o));
        Assert.Equal(whole.Mean.ToArray(), resumed.Mean.ToArray());
        Assert.Equal(whole.M2.ToArray(), resumed.M2.ToArray());
        RunningStatistics clone = whole.Clone();
        Assert.Equal(window, clone.Window);
        Assert.Equal(whole.Weight, clone.Weight);
        whole.Reset();
        Assert.Equal(0.0, whole.Weight);
    }

    [Fact]
    public void Windowed_statistics_refuse_to_merge()
    {
        var windowed = new RunningStatistics(2, StatisticsWindow.ExponentialHalfLife(4));
        var all = new RunningStatistics(2);
        Assert.Contains("cannot be merged", Assert.Throws<InvalidOperationException>(() => all.Merge(windowed)).Message);
        Assert.Contains("half-life:4", Assert.Throws<InvalidOperationException>(() => windowed.Merge(all)).Message);
    }

    [Theory]
    [InlineData("all", 0)]
    [InlineData("half-life:1", 1)]
    [InlineData("half-life:500", 500)]
    [InlineData("half-life:1000000000", 1000000000)]
    public void Window_text_round_trips(string text, int halfLife)
    {
        Assert.True(StatisticsWindow.TryParse(text, out StatisticsWindow window));
        Assert.Equal(halfLife, window.HalfLifeSteps);
        Assert.Equal(text, window.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("All")]
    [InlineData("half-life:")]
    [InlineData("half-life:0")]
    [InlineData("half-life:-5")]
    [InlineData("half-life:+5")]
    [InlineData("half-life:05")]
    [InlineData("half-life: 5")]
    [InlineData("half-life:5.0")]
    [InlineData("half-life:1000000001")]
    [InlineData("half-life:99999999999")]
    [InlineData("last:100")]
    public void Other_window_text_is_refused(string text) => Assert.False(StatisticsWindow.TryParse(text, out _));

    [Fact]
    public void Half_lives_out_of_range_are_refused_and_weight_sums_follow_the_geometric_series()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => StatisticsWindow.ExponentialHalfLife(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => StatisticsWindow.ExponentialHalfLife(StatisticsWindow.MaxHalfLifeSteps + 1));
        Assert.True(StatisticsWindow.All.IsAll);
        Assert.Equal(1.0, StatisticsWindow.All.Decay);
        var window = StatisticsWindow.ExponentialHalfLife(100);
        double r = window.Decay, w = 0, w2 = 0;
        for (int n = 1; n <= 2000; n++)
        {
            w = r * w + 1;
            w2 = r * r * w2 + 1;
            if (n % 97 == 0 || n == 1)
            {
                Assert.Equal(w, window.WeightSum(n), 1e-12 * w);
                Assert.Equal(w2, window.SquaredWeightSum(n), 1e-12 * w2);
            }
        }
        Assert.Equal(0.0, window.WeightSum(0));
    }
}

/// <summary>Allocation counts read the process-wide counter, so they run alone (every thread counts, workers included).</summary>
[Collection(ProcessWideMeasurements.Name)]
public class WindowedStatisticsAllocationTests
{
    [Fact]
    public void Windowed_observe_allocates_nothing()
    {
        var stats = new RunningStatistics(4099, StatisticsWindow.ExponentialHalfLife(100));
        float[] values = TestData.Uniform(4099, 1);
        double[] doubles = values.Select(v => (double)v).ToArray();
        stats.Observe(values);
        Assert.Equal(0, ProcessWideMeasurements.LeastAllocated(() =>
        {
            for (int k = 0; k < 50; k++)
            {
                stats.Observe(values);
                stats.Observe(doubles);
            }
        }));
    }
}
