using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Engine.Statistics;

/// <summary>
/// Running mean and variance of every element of a fixed-length vector, one observation at a time, by Welford's
/// algorithm (Welford 1962; Knuth, TAOCP vol. 2, 4.2.2). For observation n of element i:
/// <code>
///   delta = x - mean;   mean += delta / n;   M2 += delta (x - mean)
/// </code>
/// so that variance = M2 / n (population) or M2 / (n - 1) (sample). Unlike sum-of-squares formulas it does not lose
/// precision when the mean is large against the spread. State is double, laid out as arrays over elements (structure of
/// arrays) so that one observation updates every element in one vectorised pass; every observation covers every element,
/// so one count is shared.
/// <para>
/// With a <see cref="StatisticsWindow.ExponentialHalfLife"/> window the same recurrence runs with weights: observation k
/// of n weighs r^(n-k) (r = <see cref="StatisticsWindow.Decay"/>), W = sum of the weights. West's weighted update
/// (West 1979, "Updating mean and variance estimates: an improved method"; in exponential form Finch 2009,
/// "Incremental calculation of weighted mean and variance", section 9), after scaling the earlier weights by r, which
/// leaves the mean unchanged and scales M2 by r:
/// <code>
///   W = r W + 1;   delta = x - mean;   mean += delta / W;   M2 = r M2 + delta (x - mean)
/// </code>
/// so that mean = sum w x / W and M2 = sum w (x - mean)^2 exactly, from the first observation (no start-up bias, unlike
/// the fixed-rate form mean += alpha delta started at 0). With r = 1 this is Welford's update, bit for bit (M2 x 1 is M2).
/// </para>
/// <para>
/// NaN: a NaN value makes that element's mean and M2 NaN from then on, exactly as the formula does. It is not skipped:
/// a NaN gradient is a bug the user should see, not a statistic to hide.
/// </para>
/// </summary>
public sealed class RunningStatistics
{
    private readonly double[] _mean;
    private readonly double[] _m2;
    private readonly double _decay;

    /// <summary>A tracker of <paramref name="length"/> elements with no observations, over all of them (Welford).</summary>
    public RunningStatistics(int length) : this(length, StatisticsWindow.All)
    {
    }

    /// <summary>A tracker of <paramref name="length"/> elements with no observations, weighted as <paramref name="window"/> says.</summary>
    public RunningStatistics(int length, StatisticsWindow window)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _mean = new double[length];
        _m2 = new double[length];
        Window = window;
        _decay = window.Decay;
    }

    private RunningStatistics(long count, double[] mean, double[] m2, StatisticsWindow window)
    {
        Count = count;
        _mean = mean;
        _m2 = m2;
        Window = window;
        _decay = window.Decay;
        Weight = window.WeightSum(count);
    }

    /// <summary>Which observations the statistics describe, and with what weights.</summary>
    public StatisticsWindow Window { get; }

    /// <summary>The sum of the observations' weights W (the newest weighs 1): <see cref="Count"/> for <see cref="StatisticsWindow.All"/>.</summary>
    public double Weight { get; private set; }

    /// <summary>The number of elements.</summary>
    public int Length => _mean.Length;

    /// <summary>The number of observations.</summary>
    public long Count { get; private set; }

    /// <summary>The running mean of each element.</summary>
    public ReadOnlySpan<double> Mean => _mean;

    /// <summary>The (weighted) sum of squared deviations from the mean of each element.</summary>
    public ReadOnlySpan<double> M2 => _m2;

    /// <summary>Adds one observation of every element.</summary>
    public void Observe(ReadOnlySpan<float> values) => Observe(values, vectorised: true);

    /// <summary>Adds one observation of every element.</summary>
    public void Observe(ReadOnlySpan<double> values) => Observe(values, vectorised: true);

    /// <summary>Adds one observation; <paramref name="vectorised"/> false runs the scalar reference (tests compare the two).</summary>
    internal void Observe(ReadOnlySpan<float> values, bool vectorised)
    {
        CheckLength(values.Length);
        Count++;
        // W from its closed form rather than the recurrence W = r W + 1: a tracker restored from a file, which stores
        // only the count, then continues bit for bit as the original would have.
        Weight = Window.WeightSum(Count);
        double inverse = 1.0 / Weight, decay = _decay;
        int i = 0;
        if (vectorised && Vector256.IsHardwareAccelerated)
        {
            ReadOnlySpan<Vector128<float>> chunks = MemoryMarshal.Cast<float, Vector128<float>>(values);
            Span<Vector256<double>> mean = MemoryMarshal.Cast<double, Vector256<double>>(_mean.AsSpan());
            Span<Vector256<double>> m2 = MemoryMarshal.Cast<double, Vector256<double>>(_m2.AsSpan());
            Vector256<double> inv = Vector256.Create(inverse), r = Vector256.Create(decay);
            for (int c = 0; c < chunks.Length; c++)
            {
                // Widen four floats to four doubles: the update itself runs in double.
                Vector128<float> x4 = chunks[c];
                Vector256<double> x = Vector256.Create(Vector128.WidenLower(x4), Vector128.WidenUpper(x4));
                Vector256<double> delta = x - mean[c];
                Vector256<double> updated = mean[c] + delta * inv;
                mean[c] = updated;
                m2[c] = m2[c] * r + delta * (x - updated);
            }
            i = chunks.Length * 4;
        }
        for (; i < values.Length; i++)
        {
            double x = values[i];
            double delta = x - _mean[i];
            _mean[i] += delta * inverse;
            _m2[i] = _m2[i] * decay + delta * (x - _mean[i]);
        }
    }

    /// <summary>Adds one observation; <paramref name="vectorised"/> false runs the scalar reference.</summary>
    internal void Observe(ReadOnlySpan<double> values, bool vectorised)
    {
        CheckLength(values.Length);
        Count++;
        Weight = Window.WeightSum(Count);
        double inverse = 1.0 / Weight, decay = _decay;
        int i = 0;
        if (vectorised && Vector.IsHardwareAccelerated)
        {
            ReadOnlySpan<Vector<double>> x = MemoryMarshal.Cast<double, Vector<double>>(values);
            Span<Vector<double>> mean = MemoryMarshal.Cast<double, Vector<double>>(_mean.AsSpan());
            Span<Vector<double>> m2 = MemoryMarshal.Cast<double, Vector<double>>(_m2.AsSpan());
            var inv = new Vector<double>(inverse);
            var r = new Vector<double>(decay);
            for (int c = 0; c < x.Length; c++)
            {
                Vector<double> delta = x[c] - mean[c];
                Vector<double> updated = mean[c] + delta * inv;
                mean[c] = updated;
                m2[c] = m2[c] * r + delta * (x[c] - updated);
            }
            i = x.Length * Vector<double>.Count;
        }
        for (; i < values.Length; i++)
        {
            double delta = values[i] - _mean[i];
            _mean[i] += delta * inverse;
            _m2[i] = _m2[i] * decay + delta * (values[i] - _mean[i]);
        }
    }

    /// <summary>M2 / n (M2 / W with a window) for each element (0 before any observation).</summary>
    public void PopulationVariance(Span<double> destination) => Variance(destination, Count > 0, Weight, 0.0);

    /// <summary>
    /// M2 / (n - 1) for each element; with a window M2 / (W - W2 / W), W2 the sum of squared weights, the unbiased form
    /// for reliability weights (which is n - 1 when every weight is 1). NaN with fewer than two observations: the sample
    /// variance is undefined.
    /// </summary>
    public void SampleVariance(Span<double> destination) =>
        Variance(destination, Count > 1, Window.IsAll ? Count - 1 : Weight - Window.SquaredWeightSum(Count) / Weight, double.NaN);

    /// <summary>The square root of the population (default) or sample variance of each element.</summary>
    public void StandardDeviation(Span<double> destination, bool sample = false)
    {
        if (sample)
        {
            SampleVariance(destination);
        }
        else
        {
            PopulationVariance(destination);
        }
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = Math.Sqrt(destination[i]);
        }
    }

    /// <summary>
    /// Folds <paramref name="other"/> into this tracker, as if this one had also seen its observations
    /// (Chan, Golub and LeVeque, 1979): with n = na + nb and delta = mean_b - mean_a,
    /// mean = mean_a + delta nb / n and M2 = M2_a + M2_b + delta^2 na nb / n. Per-thread or per-shard trackers combine exactly.
    /// Only for <see cref="StatisticsWindow.All"/>: with exponential weights, whose observations are older than whose
    /// depends on how the two streams interleave in time, which the trackers do not record (an
    /// <see cref="InvalidOperationException"/>).
    /// </summary>
    public void Merge(RunningStatistics other)
    {
        CheckLength(other.Length);
        if (!Window.IsAll || !other.Window.IsAll)
        {
            throw new InvalidOperationException($"statistics windowed {Window} and {other.Window} cannot be merged: only statistics over all observations can.");
        }
        if (other.Count == 0)
        {
            return;
        }
        if (Count == 0)
        {
            other._mean.CopyTo(_mean, 0);
            other._m2.CopyTo(_m2, 0);
            Count = other.Count;
            Weight = other.Weight;
            return;
        }
        double na = Count, nb = other.Count, n = na + nb;
        for (int i = 0; i < _mean.Length; i++)
        {
            double delta = other._mean[i] - _mean[i];
            _mean[i] += delta * nb / n;
            _m2[i] += other._m2[i] + delta * delta * na * nb / n;
        }
        Count += other.Count;
        Weight = Count;
    }

    /// <summary>Forgets every observation.</summary>
    public void Reset()
    {
        Count = 0;
        Weight = 0;
        Array.Clear(_mean);
        Array.Clear(_m2);
    }

    /// <summary>An independent copy.</summary>
    public RunningStatistics Clone() => new(Count, (double[])_mean.Clone(), (double[])_m2.Clone(), Window);

    /// <summary>A tracker over all observations restored from saved state; throws an <see cref="ArgumentException"/> naming what is inconsistent.</summary>
    public static RunningStatistics FromState(long count, double[] mean, double[] m2) => FromState(count, mean, m2, StatisticsWindow.All);

    /// <summary>
    /// A tracker with <paramref name="window"/> restored from saved state (the weight sum follows from the count and the
    /// window); throws an <see cref="ArgumentException"/> naming what is inconsistent.
    /// </summary>
    public static RunningStatistics FromState(long count, double[] mean, double[] m2, StatisticsWindow window)
    {
        if (count < 0)
        {
            throw new ArgumentException($"count must be >= 0, got {count}.");
        }
        if (mean.Length != m2.Length)
        {
            throw new ArgumentException($"mean has {mean.Length} elements but M2 has {m2.Length}.");
        }
        int negative = Array.FindIndex(m2, v => v < 0);
        if (negative >= 0)
        {
            throw new ArgumentException($"M2[{negative}] = {m2[negative]} is negative; a sum of squares cannot be.");
        }
        if (count == 0 && (mean.Any(v => v != 0) || m2.Any(v => v != 0)))
        {
            throw new ArgumentException("with no observations mean and M2 must be zero.");
        }
        return new RunningStatistics(count, (double[])mean.Clone(), (double[])m2.Clone(), window);
    }

    private void Variance(Span<double> destination, bool defined, double divisor, double undefined)
    {
        CheckLength(destination.Length);
        for (int i = 0; i < _m2.Length; i++)
        {
            destination[i] = defined ? _m2[i] / divisor : undefined;
        }
    }

    private void CheckLength(int length)
    {
        if (length != _mean.Length)
        {
            throw new ArgumentException($"running statistics over {_mean.Length} elements were given {length} values.");
        }
    }
}
