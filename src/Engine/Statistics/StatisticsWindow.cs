using System.Globalization;

namespace Engine.Statistics;

/// <summary>
/// Which observations running statistics describe: <see cref="All"/> (every observation weighs the same, Welford's
/// statistics of the whole stream) or <see cref="ExponentialHalfLife"/> (observation weights decay by a factor
/// r = 2^(-1/h) per observation, so an observation h steps old weighs half as much as the newest one).
/// <para>
/// Why exponential weights rather than the last K observations: exact statistics over a sliding window of K steps need
/// either the K observations kept (K copies of every gradient: 500 steps of the seed network's 420,000 parameters is
/// 840 MB) or a subtraction of the leaving observation's terms, which loses precision the way E[x^2] - E[x]^2 does.
/// Exponential weights need the same O(1) state per element as Welford (a mean and an M2) and one multiply more per
/// step; the weight sum is a function of the count alone, so files store nothing new but the half-life. With weights
/// r^k, an observation's weight falls below 1/2 after h steps and the weights sum to about h / ln 2 = 1.44 h
/// observations once the stream is long, the effective window.
/// </para>
/// </summary>
public readonly record struct StatisticsWindow
{
    private StatisticsWindow(int halfLifeSteps) => HalfLifeSteps = halfLifeSteps;

    /// <summary>The largest half-life: beyond it r rounds so close to 1 that the window is all of any practical run.</summary>
    public const int MaxHalfLifeSteps = 1_000_000_000;

    /// <summary>Every observation weighs the same (Welford): the default, and what files without a window hold.</summary>
    public static StatisticsWindow All => default;

    /// <summary>
    /// Exponentially decaying weights with a half-life of <paramref name="steps"/> observations (1 to
    /// <see cref="MaxHalfLifeSteps"/>).
    /// </summary>
    public static StatisticsWindow ExponentialHalfLife(int steps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(steps, MaxHalfLifeSteps);
        return new StatisticsWindow(steps);
    }

    /// <summary>The half-life in observations, or 0 for <see cref="All"/>.</summary>
    public int HalfLifeSteps { get; }

    /// <summary>True for <see cref="All"/>.</summary>
    public bool IsAll => HalfLifeSteps == 0;

    /// <summary>The factor r by which every earlier observation's weight shrinks at each new observation: 1 for <see cref="All"/>, 2^(-1/h) otherwise.</summary>
    public double Decay => IsAll ? 1.0 : Math.Exp(LogDecay);

    // ln r = -ln 2 / h.
    private double LogDecay => -Math.Log(2.0) / HalfLifeSteps;

    /// <summary>
    /// The sum of the weights of <paramref name="count"/> observations, the newest weighing 1: count for <see cref="All"/>,
    /// (1 - r^count) / (1 - r) otherwise (a geometric series, computed with expm1 so that it stays exact for r near 1).
    /// </summary>
    public double WeightSum(long count) => IsAll ? count : double.ExpM1(count * LogDecay) / double.ExpM1(LogDecay);

    /// <summary>The sum of the squared weights of <paramref name="count"/> observations: count, or (1 - r^2count) / (1 - r^2).</summary>
    public double SquaredWeightSum(long count) => IsAll ? count : double.ExpM1(2 * count * LogDecay) / double.ExpM1(2 * LogDecay);

    /// <summary>"all", or "half-life:STEPS": the text gradient statistics files store (docs/file-formats.md).</summary>
    public override string ToString() => IsAll ? "all" : "half-life:" + HalfLifeSteps.ToString(CultureInfo.InvariantCulture);

    /// <summary>Reads <see cref="ToString"/>'s text back; false for anything else (other spellings, signs, spaces, out-of-range steps).</summary>
    public static bool TryParse(string text, out StatisticsWindow window)
    {
        window = All;
        if (text == "all")
        {
            return true;
        }
        const string prefix = "half-life:";
        if (!text.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }
        string digits = text[prefix.Length..];
        // Plain decimal digits only, no leading zero: one spelling per window, so a file's text compares as written.
        if (digits.Length == 0 || digits.Length > 10 || digits[0] == '0' || !digits.All(char.IsAsciiDigit)
            || !long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long steps) || steps > MaxHalfLifeSteps)
        {
            return false;
        }
        window = new StatisticsWindow((int)steps);
        return true;
    }
}
