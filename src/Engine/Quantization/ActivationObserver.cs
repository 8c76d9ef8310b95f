using System.Numerics.Tensors;

namespace Engine.Quantization;

/// <summary>How activation ranges are chosen from calibration data.</summary>
public enum ObserverKind
{
    /// <summary>The global minimum and maximum seen (<see cref="MinMaxObserver"/>).</summary>
    MinMax,

    /// <summary>An exponential moving average of per-batch minima and maxima (<see cref="MovingAverageMinMaxObserver"/>).</summary>
    MovingAverage,

    /// <summary>Percentiles of a histogram, clipping rare outliers (<see cref="PercentileObserver"/>).</summary>
    Percentile,
}

/// <summary>
/// Watches the values of one activation tensor over calibration batches and proposes the real range [Min, Max] to
/// quantize it to (PyTorch's torch.ao.quantization observers play the same role). A wider range wastes codes on values
/// that never occur; a narrower one clips the values outside it.
/// </summary>
public abstract class ActivationObserver
{
    /// <summary>Number of values observed so far.</summary>
    public long Count { get; protected set; }

    /// <summary>The name used on the command line and in reports.</summary>
    public abstract string Name { get; }

    /// <summary>The range to quantize to; throws before any value has been observed.</summary>
    public (float Min, float Max) Range => Count > 0
        ? ComputeRange()
        : throw new InvalidOperationException($"{Name} observer: observed no values, so there is no range.");

    /// <summary>Records one batch of activation values (an empty batch is ignored).</summary>
    public void Observe(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
        {
            return;
        }
        float min = TensorPrimitives.Min(values), max = TensorPrimitives.Max(values);
        if (!float.IsFinite(min) || !float.IsFinite(max))
        {
            throw new ArgumentException($"{Name} observer: activation values must be finite (saw {min} .. {max}).", nameof(values));
        }
        ObserveBatch(values, min, max);
        Count += values.Length;
    }

    /// <summary>Records a batch whose minimum and maximum are already known (and finite).</summary>
    protected abstract void ObserveBatch(ReadOnlySpan<float> values, float min, float max);

    /// <summary>The proposed range, once at least one value was seen.</summary>
    protected abstract (float Min, float Max) ComputeRange();

    /// <summary>An observer of <paramref name="kind"/> with default settings.</summary>
    public static ActivationObserver Create(ObserverKind kind) => kind switch
    {
        ObserverKind.MinMax => new MinMaxObserver(),
        ObserverKind.MovingAverage => new MovingAverageMinMaxObserver(),
        ObserverKind.Percentile => new PercentileObserver(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown observer kind."),
    };

    /// <summary>The command-line names: minmax, moving-average, percentile.</summary>
    public static IReadOnlyList<string> Names { get; } = ["minmax", "moving-average", "percentile"];

    /// <summary>Parses a command-line name (case-insensitive).</summary>
    public static ObserverKind ParseKind(string name) => name.ToLowerInvariant() switch
    {
        "minmax" => ObserverKind.MinMax,
        "moving-average" => ObserverKind.MovingAverage,
        "percentile" => ObserverKind.Percentile,
        _ => throw new ArgumentException($"unknown observer '{name}'; expected one of {string.Join(", ", Names)}.", nameof(name)),
    };

    /// <summary>The command-line name of <paramref name="kind"/>.</summary>
    public static string NameOf(ObserverKind kind) => Names[(int)kind];
}

/// <summary>The running global minimum and maximum: nothing is ever clipped, one outlier stretches the scale.</summary>
public sealed class MinMaxObserver : ActivationObserver
{
    private float _min = float.PositiveInfinity, _max = float.NegativeInfinity;

    /// <inheritdoc/>
    public override string Name => "minmax";

    /// <inheritdoc/>
    protected override void ObserveBatch(ReadOnlySpan<float> values, float min, float max)
    {
        _min = MathF.Min(_min, min);
        _max = MathF.Max(_max, max);
    }

    /// <inheritdoc/>
    protected override (float Min, float Max) ComputeRange() => (_min, _max);
}

/// <summary>
/// PyTorch's MovingAverageMinMaxObserver: the first batch sets the range, then min += c (batch_min - min) and
/// max += c (batch_max - max), so a single extreme batch moves the range only by a fraction c.
/// </summary>
public sealed class MovingAverageMinMaxObserver : ActivationObserver
{
    private float _min, _max;

    /// <summary>An observer with averaging constant <paramref name="averagingConstant"/> in (0, 1].</summary>
    public MovingAverageMinMaxObserver(float averagingConstant = 0.01f)
    {
        if (!(averagingConstant > 0f && averagingConstant <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(averagingConstant), averagingConstant, "the averaging constant must be in (0, 1].");
        }
        AveragingConstant = averagingConstant;
    }

    /// <summary>The weight c of each new batch.</summary>
    public float AveragingConstant { get; }

    /// <inheritdoc/>
    public override string Name => "moving-average";

    /// <inheritdoc/>
    protected override void ObserveBatch(ReadOnlySpan<float> values, float min, float max)
    {
        if (Count == 0)
        {
            (_min, _max) = (min, max);
            return;
        }
        _min += AveragingConstant * (min - _min);
        _max += AveragingConstant * (max - _max);
    }

    /// <inheritdoc/>
    protected override (float Min, float Max) ComputeRange() => (_min, _max);
}

/// <summary>
/// Percentile calibration (Wu et al. 2020, "Integer Quantization for Deep Learning Inference", arXiv:2004.09602): a
/// histogram of every value seen, and the range from its lower (100 - p) and upper p percentiles, so that the rare
/// largest activations are clipped and the common ones get finer steps. The histogram spans the running [min, max];
/// when a batch widens it, each old bin's count moves to the new bin holding the old bin's centre, an approximation of
/// at most one new bin width per value.
/// </summary>
public sealed class PercentileObserver : ActivationObserver
{
    private readonly long[] _counts;
    private readonly long[] _rebinned;
    private float _min, _max;

    /// <summary>An observer keeping the central <paramref name="percentile"/> per cent on each side, with <paramref name="bins"/> bins.</summary>
    public PercentileObserver(double percentile = 99.99, int bins = 2048)
    {
        if (!(percentile > 50 && percentile <= 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "the percentile must be in (50, 100].");
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 16);
        Percentile = percentile;
        _counts = new long[bins];
        _rebinned = new long[bins];
    }

    /// <summary>The upper percentile kept (the lower one is 100 minus it).</summary>
    public double Percentile { get; }

    /// <inheritdoc/>
    public override string Name => "percentile";

    /// <inheritdoc/>
    protected override void ObserveBatch(ReadOnlySpan<float> values, float min, float max)
    {
        if (Count == 0)
        {
            (_min, _max) = (min, max);
        }
        else if (min < _min || max > _max)
        {
            Widen(MathF.Min(min, _min), MathF.Max(max, _max));
        }
        int bins = _counts.Length;
        double width = ((double)_max - _min) / bins;
        foreach (float v in values)
        {
            _counts[width > 0 ? Math.Min((int)((v - _min) / width), bins - 1) : 0]++;
        }
    }

    /// <inheritdoc/>
    protected override (float Min, float Max) ComputeRange()
    {
        if (_min == _max || Percentile == 100)
        {
            return (_min, _max);
        }
        double tail = Count * (100 - Percentile) / 100;
        float low = Quantile(tail), high = Quantile(Count - tail);
        return (Math.Clamp(low, _min, _max), Math.Clamp(high, _min, _max));
    }

    // The value below which `rank` of the observed values lie, interpolating linearly inside the bin that crosses it.
    private float Quantile(double rank)
    {
        double width = ((double)_max - _min) / _counts.Length, below = 0;
        for (int b = 0; b < _counts.Length; b++)
        {
            if (below + _counts[b] >= rank && _counts[b] > 0)
            {
                double fraction = (rank - below) / _counts[b];
                return (float)(_min + (b + Math.Clamp(fraction, 0, 1)) * width);
            }
            below += _counts[b];
        }
        return _max;
    }

    private void Widen(float min, float max)
    {
        int bins = _counts.Length;
        double oldWidth = ((double)_max - _min) / bins, newWidth = ((double)max - min) / bins;
        Array.Clear(_rebinned);
        for (int b = 0; b < bins; b++)
        {
            if (_counts[b] == 0)
            {
                continue;
            }
            double centre = _min + (b + 0.5) * oldWidth;
            _rebinned[Math.Clamp((int)((centre - min) / newWidth), 0, bins - 1)] += _counts[b];
        }
        Array.Copy(_rebinned, _counts, bins);
        (_min, _max) = (min, max);
    }
}
