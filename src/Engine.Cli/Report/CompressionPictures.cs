using Engine.Compression;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace Engine.Cli.Report;

/// <summary>The pictures of <c>engine analyze</c> (sensitivity per layer) and <c>engine compress</c> (candidates and Pareto front).</summary>
internal static class CompressionPictures
{
    public const int Width = 1000;
    public const int Height = 480;

    /// <summary>Left: accuracy against the fraction of one layer pruned, a line per layer. Right: accuracy against one layer's weight bits.</summary>
    public static void Sensitivity(SensitivityReport report, string criterion, string path)
    {
        double baseline = 100 * report.BaselineAccuracy;
        Plot pruning = PictureCanvas.NewPlot($"Only one layer pruned ({criterion}, no fine-tuning)", "neurons removed from the layer (%)", "test accuracy (%)");
        Plot bits = PictureCanvas.NewPlot("Only one layer's weights quantized", "weight bits (per-channel symmetric codes)", "test accuracy (%)");
        foreach (Plot p in new[] { pruning, bits })
        {
            p.Axes.Title.Label.FontSize = PictureCanvas.TitleSize - 3;
            var line = p.Add.HorizontalLine(baseline);
            line.Color = Colors.Gray;
            line.LinePattern = LinePattern.Dotted;
            line.LegendText = "untouched";
        }
        for (int i = 0; i < report.Layers.Count; i++)
        {
            LayerSensitivity layer = report.Layers[i];
            if (layer.Pruned.Count > 0)
            {
                var points = layer.Pruned.OrderBy(p => p.Amount).ToArray();
                var scatter = pruning.Add.Scatter(
                    points.Select(p => 100 * p.Amount).Prepend(0).ToArray(),
                    points.Select(p => 100.0 * p.Accuracy).Prepend(baseline).ToArray());
                DemoPictures.Style(scatter, PictureCanvas.Series(i), layer.Layer, LinePattern.Solid, MarkerShape.FilledCircle);
            }
            if (layer.Quantized.Count > 0)
            {
                var points = layer.Quantized.OrderByDescending(q => q.Bits).ToArray();
                var scatter = bits.Add.Scatter(points.Select(q => (double)q.Bits).ToArray(), points.Select(q => 100.0 * q.Accuracy).ToArray());
                DemoPictures.Style(scatter, PictureCanvas.Series(i), layer.Layer, LinePattern.Solid, MarkerShape.FilledSquare);
            }
        }
        pruning.ShowLegend(Edge.Bottom);
        bits.ShowLegend(Edge.Bottom);
        bits.Axes.Bottom.TickGenerator = new NumericFixedInterval(1);
        bits.Axes.AutoScale(invertX: true);
        // At least two points of accuracy on the bits panel, so that a 0.1-point wobble does not look like a cliff.
        AxisLimits limits = bits.Axes.GetLimits();
        if (limits.Top - limits.Bottom < 2)
        {
            bits.Axes.SetLimitsY(Math.Min(limits.Bottom, baseline - 1.8), Math.Max(limits.Top, baseline + 0.2));
        }
        PictureCanvas.Save([pruning, bits], columns: 2, overallTitle: "Sensitivity per layer: test accuracy when only that layer is compressed", path, Width, Height);
    }

    /// <summary>Every candidate (objective against accuracy), the Pareto front joined, the chosen one ringed, the float model and the budget as lines.</summary>
    public static void ParetoFront(CompressionResult result, CompressionOptions options, long floatFileBytes, string path)
    {
        bool size = options.Objective == CompressionObjective.Size;
        Plot plot = PictureCanvas.NewPlot("Compression candidates and their Pareto front",
            size ? "int8 model file (bytes, log scale)" : $"time of a batch of {options.BatchSize} (ms, log scale)", "test accuracy (%)");
        double X(CompressionCandidate c) => Math.Log10(size ? c.Bytes : 1000 * c.BatchSeconds);
        if (result.Candidates.Count == 0)
        {
            DemoPictures.NoData(plot, "no candidate measured");
            PictureCanvas.Save(plot, path, Width, Height);
            return;
        }
        var floatLine = plot.Add.HorizontalLine(100.0 * result.FloatAccuracy);
        floatLine.Color = Colors.Gray;
        floatLine.LinePattern = LinePattern.Dotted;
        floatLine.LegendText = $"float model ({(size ? $"{floatFileBytes:N0} bytes" : $"{1000 * result.FloatBatchSeconds:F2} ms")})";
        var budget = plot.Add.HorizontalLine(100.0 * result.FloatAccuracy - options.MaxAccuracyDrop);
        budget.Color = Colors.Red;
        budget.LinePattern = LinePattern.Dashed;
        budget.LegendText = $"budget: {options.MaxAccuracyDrop:0.###} points below float";

        foreach (bool within in new[] { true, false })
        {
            var group = result.Candidates.Where(c => c.WithinBudget == within).ToArray();
            if (group.Length == 0)
            {
                continue;
            }
            var points = plot.Add.ScatterPoints(group.Select(X).ToArray(), group.Select(c => 100.0 * c.Accuracy).ToArray());
            points.Color = within ? PictureCanvas.Series(0) : PictureCanvas.Series(7);
            points.MarkerShape = within ? MarkerShape.FilledCircle : MarkerShape.Cross;
            points.MarkerSize = 8;
            points.LegendText = within ? "candidate within budget" : "candidate over budget";
        }
        var front = result.ParetoFront.OrderBy(X).ToArray();
        var frontLine = plot.Add.Scatter(front.Select(X).ToArray(), front.Select(c => 100.0 * c.Accuracy).ToArray());
        frontLine.ConnectStyle = ConnectStyle.StepHorizontal;
        DemoPictures.Style(frontLine, PictureCanvas.Series(1), "Pareto front", LinePattern.Solid, MarkerShape.OpenCircle);
        frontLine.MarkerSize = 12;
        if (result.Chosen is { } chosen)
        {
            var ring = plot.Add.ScatterPoints(new[] { X(chosen) }, new[] { 100.0 * chosen.Accuracy });
            ring.MarkerShape = MarkerShape.OpenSquare;
            ring.MarkerSize = 18;
            ring.MarkerLineWidth = 2.5f;
            ring.Color = PictureCanvas.Series(3);
            ring.LegendText = $"chosen: #{chosen.Index}";
        }
        // Ticks at 1, 2 and 5 times the powers of ten inside the range, labelled with the value they stand for.
        plot.Axes.AutoScale();
        AxisLimits limits = plot.Axes.GetLimits();
        var ticks = new List<double>();
        for (int power = (int)Math.Floor(limits.Left); power <= (int)Math.Ceiling(limits.Right); power++)
        {
            foreach (double m in new[] { 1.0, 2.0, 5.0 })
            {
                double at = power + Math.Log10(m);
                if (at >= limits.Left && at <= limits.Right)
                {
                    ticks.Add(at);
                }
            }
        }
        plot.Axes.Bottom.TickGenerator = new NumericManual(ticks.ToArray(), ticks.Select(t => Magnitude(Math.Pow(10, t), size)).ToArray());
        plot.ShowLegend(Edge.Right);
        PictureCanvas.Save(plot, path, Width, Height);
    }

    private static string Magnitude(double value, bool bytes) => bytes
        ? value >= 1e6 ? FormattableString.Invariant($"{value / 1e6:0.##} M") : value >= 1e3 ? FormattableString.Invariant($"{value / 1e3:0.#} k") : FormattableString.Invariant($"{value:0}")
        : FormattableString.Invariant($"{value:0.##}");
}
