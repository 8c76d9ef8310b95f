using System.Globalization;
using Engine.Statistics;

namespace Engine.Tests.Docs;

/// <summary>The table of docs/pruning.md, section 1: why the naive variance formula fails where Welford's does not.</summary>
public sealed class WelfordDocTests
{
    [Fact]
    public void Naive_variance_against_welford_on_a_large_mean()
    {
        // 1,000 values 10^9 + u, u uniform in [-1, 1]: the spread is tiny beside the mean, as a gradient's spread can be
        // beside its mean early in training (and as any stream's is when its values sit far from zero).
        const int n = 1000;
        var random = new SeededRandom(3);
        double[] values = Enumerable.Range(0, n).Select(_ => 1e9 + random.NextUniform(-1f, 1f)).ToArray();

        double mean = values.Average();
        double reference = values.Sum(v => (v - mean) * (v - mean)) / n;        // two passes: subtract the mean first
        double naive = values.Sum(v => v * v) / n - mean * mean;               // E[x^2] - E[x]^2 in one pass
        var stats = new RunningStatistics(1);
        foreach (double v in values)
        {
            stats.Observe([v]);
        }
        Span<double> welford = stackalloc double[1];
        stats.PopulationVariance(welford);

        string table = string.Join("\n",
            "| method | variance | relative error |",
            "| --- | ---: | ---: |",
            Row("two passes: mean first, then mean of (x - mean)^2", reference, reference),
            Row("naive, one pass: E[x^2] - E[x]^2", naive, reference),
            Row("Welford, one pass (`RunningStatistics.Observe`)", welford[0], reference));
        GeneratedSections.Check("docs/pruning.md", "welford-naive", table);

        Assert.True(Math.Abs(welford[0] - reference) < 1e-6 * reference);
        Assert.True(Math.Abs(naive - reference) > 0.1 * reference);
    }

    private static string Row(string method, double value, double reference) =>
        $"| {method} | {value.ToString("G6", CultureInfo.InvariantCulture)} | {(Math.Abs(value - reference) / reference).ToString("G2", CultureInfo.InvariantCulture)} |";
}
