using Engine.Tests.Inference;
using Engine.Statistics;

namespace Engine.Tests.Statistics;

public class RunningStatisticsTests
{
    private static (double[] Mean, double[] M2) TwoPass(IReadOnlyList<float[]> observations, int length)
    {
        var mean = new double[length];
        var m2 = new double[length];
        for (int i = 0; i < length; i++)
        {
            mean[i] = observations.Average(o => (double)o[i]);
            m2[i] = observations.Sum(o => (o[i] - mean[i]) * (o[i] - mean[i]));
        }
        return (mean, m2);
    }

    private static List<float[]> Stream(int count, int length, ulong seed, float offset = 0f, float scale = 1f) =>
        Enumerable.Range(0, count).Select(k => TestData.Uniform(length, seed + (ulong)k, -scale, scale).Select(v => v + offset).ToArray()).ToList();

    public static TheoryData<int> Lengths() => [0, 1, 3, 4, 5, 7, 8, 9, 17, 33];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Matches_a_two_pass_computation_and_the_scalar_twin_bit_for_bit(int length)
    {
        var data = Stream(25, length, 1);
        var fast = new RunningStatistics(length);
        var scalar = new RunningStatistics(length);
        foreach (float[] o in data)
        {
            fast.Observe(o, vectorised: true);
            scalar.Observe(o, vectorised: false);
        }
        Assert.Equal(scalar.Mean.ToArray(), fast.Mean.ToArray());
        Assert.Equal(scalar.M2.ToArray(), fast.M2.ToArray());
        (double[] mean, double[] m2) = TwoPass(data, length);
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(mean[i], fast.Mean[i], 1e-12);
            Assert.Equal(m2[i], fast.M2[i], 1e-10);
        }
        var doubles = new RunningStatistics(length);
        var doublesScalar = new RunningStatistics(length);
        foreach (float[] o in data)
        {
            double[] d = o.Select(v => (double)v).ToArray();
            doubles.Observe(d, vectorised: true);
            doublesScalar.Observe(d, vectorised: false);
        }
        Assert.Equal(doublesScalar.M2.ToArray(), doubles.M2.ToArray());
        Assert.Equal(fast.M2.ToArray(), doubles.M2.ToArray());
    }

    [Fact]
    public void Large_offset_with_small_noise_keeps_its_variance()
    {
        // Values 1e9 + noise of size 1: in double, E[x^2] - E[x]^2 cancels 1e18 against 1e18 with about 1e2 of rounding
        // error, more than the variance itself (about 0.3); Welford keeps a relative error near 1e-7 (float noise
        // around 1e9 is quantised to 64, so the observed stream is rebuilt in double here).
        const int n = 1000;
        var random = new SeededRandom(3);
        double[] values = Enumerable.Range(0, n).Select(_ => 1e9 + random.NextUniform(-1f, 1f)).ToArray();
        var stats = new RunningStatistics(1);
        foreach (double v in values)
        {
            stats.Observe([v]);
        }
        double mean = values.Average();
        double m2 = values.Sum(v => (v - mean) * (v - mean));
        Assert.Equal(mean, stats.Mean[0], 1e-5);
        Assert.Equal(m2, stats.M2[0], m2 * 1e-6);
        double naive = values.Sum(v => v * v) / n - mean * mean;
        Assert.True(Math.Abs(naive - m2 / n) > 1e-3 * (m2 / n), "the naive formula should fail on this data, or the test shows nothing");
    }

    [Fact]
    public void Constant_streams_have_zero_variance_and_one_observation_has_no_sample_variance()
    {
        var stats = new RunningStatistics(5);
        stats.Observe([3f, 3f, -7f, 0f, 1e30f]);
        var v = new double[5];
        stats.PopulationVariance(v);
        Assert.All(v, x => Assert.Equal(0.0, x));
        stats.SampleVariance(v);
        Assert.All(v, x => Assert.True(double.IsNaN(x)));
        for (int k = 0; k < 9; k++)
        {
            stats.Observe([3f, 3f, -7f, 0f, 1e30f]);
        }
        stats.SampleVariance(v);
        Assert.All(v, x => Assert.Equal(0.0, x));
        Assert.Equal(1e30, stats.Mean[4], 1e24);
        var empty = new RunningStatistics(2);
        empty.PopulationVariance(v.AsSpan(0, 2));
        Assert.Equal([0.0, 0.0], v[..2]);
    }

    [Fact]
    public void Population_and_sample_deviation_follow_their_definitions()
    {
        var stats = new RunningStatistics(1);
        foreach (float x in new[] { 2f, 4f, 4f, 4f, 5f, 5f, 7f, 9f })
        {
            stats.Observe([x]);
        }
        var sd = new double[1];
        stats.StandardDeviation(sd);
        Assert.Equal(2.0, sd[0], 1e-12);
        stats.StandardDeviation(sd, sample: true);
        Assert.Equal(Math.Sqrt(32.0 / 7), sd[0], 1e-12);
    }

    [Fact]
    public void NaN_poisons_only_its_element()
    {
        var stats = new RunningStatistics(3);
        stats.Observe([1f, float.NaN, 2f]);
        stats.Observe([2f, 1f, 3f]);
        Assert.True(double.IsNaN(stats.Mean[1]));
        Assert.True(double.IsNaN(stats.M2[1]));
        Assert.Equal(1.5, stats.Mean[0]);
        Assert.Equal(2.5, stats.Mean[2]);
    }

    [Theory]
    [InlineData(0, 7)]
    [InlineData(7, 0)]
    [InlineData(1, 1)]
    [InlineData(3, 11)]
    [InlineData(20, 5)]
    public void Merging_two_trackers_equals_one_over_the_concatenation(int countA, int countB)
    {
        const int length = 13;
        var a = Stream(countA, length, 10, offset: 5f);
        var b = Stream(countB, length, 100, offset: -3f, scale: 4f);
        var left = new RunningStatistics(length);
        var right = new RunningStatistics(length);
        var whole = new RunningStatistics(length);
        a.ForEach(o => left.Observe(o));
        b.ForEach(o => right.Observe(o));
        a.Concat(b).ToList().ForEach(o => whole.Observe(o));
        left.Merge(right);
        Assert.Equal(whole.Count, left.Count);
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(whole.Mean[i], left.Mean[i], 1e-12 * Math.Max(1, Math.Abs(whole.Mean[i])));
            Assert.Equal(whole.M2[i], left.M2[i], 1e-10 * Math.Max(1, whole.M2[i]));
        }
    }

    [Fact]
    public void Shards_merge_to_the_same_result_in_any_grouping()
    {
        const int length = 6;
        var shards = Enumerable.Range(0, 4).Select(s =>
        {
            var r = new RunningStatistics(length);
            Stream(3 + s, length, 50 + (ulong)s * 10).ForEach(o => r.Observe(o));
            return r;
        }).ToList();
        RunningStatistics leftFold = shards[0].Clone();
        shards.Skip(1).ToList().ForEach(leftFold.Merge);
        RunningStatistics pairs = shards[0].Clone();
        pairs.Merge(shards[1]);
        RunningStatistics other = shards[2].Clone();
        other.Merge(shards[3]);
        pairs.Merge(other);
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(leftFold.Mean[i], pairs.Mean[i], 1e-12);
            Assert.Equal(leftFold.M2[i], pairs.M2[i], 1e-10);
        }
    }

    [Fact]
    public void State_round_trips_and_bad_state_is_refused()
    {
        var stats = new RunningStatistics(3);
        stats.Observe([1f, 2f, 3f]);
        stats.Observe([2f, 0f, 3f]);
        RunningStatistics back = RunningStatistics.FromState(stats.Count, stats.Mean.ToArray(), stats.M2.ToArray());
        Assert.Equal(stats.M2.ToArray(), back.M2.ToArray());
        Assert.Equal(2, back.Count);
        Assert.Contains("negative", Assert.Throws<ArgumentException>(() => RunningStatistics.FromState(2, [0.0], [-1.0])).Message);
        Assert.Contains("M2 has", Assert.Throws<ArgumentException>(() => RunningStatistics.FromState(2, [0.0], [])).Message);
        Assert.Contains("count", Assert.Throws<ArgumentException>(() => RunningStatistics.FromState(-1, [], [])).Message);
        Assert.Contains("given 2 values", Assert.Throws<ArgumentException>(() => stats.Observe([1f, 2f])).Message);
        stats.Reset();
        Assert.Equal(0, stats.Count);
        Assert.All(stats.Mean.ToArray(), v => Assert.Equal(0.0, v));
    }

}

/// <summary>Allocation counts read the process-wide counter, so they run alone (every thread counts, workers included).</summary>
[Collection(ProcessWideMeasurements.Name)]
public class RunningStatisticsAllocationTests
{
    [Fact]
    public void Observe_allocates_nothing()
    {
        var stats = new RunningStatistics(4099);
        float[] values = TestData.Uniform(4099, 1);
        stats.Observe(values);
        Assert.Equal(0, ProcessWideMeasurements.LeastAllocated(() =>
        {
            for (int k = 0; k < 50; k++)
            {
                stats.Observe(values);
            }
        }));
    }
}
