using Engine.Cli.Demo;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace Engine.Cli.Report;

/// <summary>
/// The six pictures of the demo report, each drawn from one part of <see cref="DemoResults"/> and written as a PNG.
/// Every picture copes with missing data (no epochs, no fine-tuned points, NaN) by drawing what there is, and a note
/// where there is nothing.
/// </summary>
internal static class DemoPictures
{
    public const int Width = 800;
    public const int Height = 500;
    public const int GradientPanelWidth = 400;
    public const int GradientPanelHeight = 440;
    public const int GradientColumnsMax = 3;
    public const int WeightsHeight = 680;

    /// <summary>How far (in decades) below the smallest gradient the corner marker for all-zero gradients sits.</summary>
    private const double DeadOffset = 0.4;

    /// <summary>Size of the gradient picture: one panel per prunable layer, at most three to a row.</summary>
    public static (int Width, int Height) GradientSize(int layers)
    {
        int panels = Math.Max(1, layers);
        int columns = Math.Min(panels, GradientColumnsMax);
        int rows = (panels + columns - 1) / columns;
        return (Math.Max(Width, columns * GradientPanelWidth), rows * GradientPanelHeight + 36);
    }

    // ---- 1. Training ---------------------------------------------------------------------------------------------

    public static void Training(IReadOnlyList<DemoEpoch> epochs, string path)
    {
        Plot plot = PictureCanvas.NewPlot("Training of the float model", "epoch", "training loss (cross-entropy, nats)");
        plot.Axes.Right.Label.Text = "accuracy (%)";
        plot.Axes.Right.Label.FontSize = PictureCanvas.AxisLabelSize;
        plot.Axes.Right.Label.Bold = true;

        double[] x = epochs.Select(e => (double)e.Epoch).ToArray();
        if (x.Length == 0)
        {
            NoData(plot, "no training epochs recorded");
        }
        else
        {
            var loss = plot.Add.Scatter(Finite(epochs, e => e.TrainLoss));
            Style(loss, PictureCanvas.Series(0), "training loss (left axis)", LinePattern.Solid, MarkerShape.FilledCircle);

            var train = plot.Add.Scatter(Finite(epochs, e => 100 * e.TrainAccuracy));
            Style(train, PictureCanvas.Series(1), "train accuracy (right axis)", LinePattern.Dashed, MarkerShape.FilledSquare);
            train.Axes.YAxis = plot.Axes.Right;

            var test = plot.Add.Scatter(Finite(epochs, e => 100 * e.TestAccuracy));
            Style(test, PictureCanvas.Series(2), "test accuracy (right axis)", LinePattern.Solid, MarkerShape.FilledTriangleUp);
            test.Axes.YAxis = plot.Axes.Right;
        }
        plot.Axes.Bottom.TickGenerator = new NumericAutomatic { IntegerTicksOnly = true };
        plot.Axes.Right.TickGenerator = new NumericAutomatic();
        plot.Axes.Right.TickLabelStyle.FontSize = PictureCanvas.TickLabelSize;
        plot.Axes.Left.Label.ForeColor = PictureCanvas.Series(0);
        if (x.Length > 0)
        {
            // A legend panel on an edge with no items leaves ScottPlot's whole picture blank: only with data.
            plot.Legend.Orientation = Orientation.Horizontal;
            plot.ShowLegend(Edge.Bottom);
        }
        PictureCanvas.Save(plot, path, Width, Height);
    }

    // ---- 2. Gradient statistics --------------------------------------------------------------------------------

    public static void Gradients(IReadOnlyList<DemoLayerNeurons> layers, string path)
    {
        (int width, int height) = GradientSize(layers.Count);
        const string xLabel = "gradient mean, |E ∂L/∂w| (nats per unit weight)";
        const string yLabel = "gradient std, σ ∂L/∂w (nats per unit weight)";

        // One scale for every panel, so that layers compare at a glance; log where the values span more than two decades.
        double[] all = layers.SelectMany(l => l.GradientMean.Concat(l.GradientStd)).Where(v => double.IsFinite(v) && v > 0).ToArray();
        bool logarithmic = all.Length > 0 && all.Max() / all.Min() > 100;
        double floor = all.Length > 0 ? all.Min() : 1;
        double Axis(double v) => logarithmic ? Math.Log10(Math.Max(v, floor)) : v;

        var plots = new List<Plot>();
        foreach (DemoLayerNeurons layer in layers)
        {
            int count = Math.Min(layer.GradientMean.Length, layer.GradientStd.Length);
            int pruned = Enumerable.Range(0, count).Count(i => i < layer.Pruned.Length && layer.Pruned[i]);
            Plot plot = PictureCanvas.NewPlot($"{layer.Layer}: {count} neurons, {pruned} pruned", xLabel, yLabel);
            plot.Axes.Title.Label.FontSize = PictureCanvas.TitleSize - 2;
            plot.Axes.Bottom.Label.FontSize = PictureCanvas.AxisLabelSize - 2;
            plot.Axes.Left.Label.FontSize = PictureCanvas.AxisLabelSize - 2;

            bool Dead(int i) => layer.GradientMean[i] == 0 && layer.GradientStd[i] == 0;
            (double[] X, double[] Y) Pick(bool wanted)
            {
                var indices = Enumerable.Range(0, count)
                    .Where(i => (i < layer.Pruned.Length && layer.Pruned[i]) == wanted && !(logarithmic && Dead(i))
                        && double.IsFinite(layer.GradientMean[i]) && double.IsFinite(layer.GradientStd[i]))
                    .ToArray();
                return (indices.Select(i => Axis(layer.GradientMean[i])).ToArray(), indices.Select(i => Axis(layer.GradientStd[i])).ToArray());
            }

            (double[] keptX, double[] keptY) = Pick(wanted: false);
            (double[] prunedX, double[] prunedY) = Pick(wanted: true);
            var kept = plot.Add.Markers(keptX, keptY, MarkerShape.FilledCircle, 6, PictureCanvas.Series(0).WithAlpha(0.75));
            kept.LegendText = $"kept ({keptX.Length})";
            var removed = plot.Add.Markers(prunedX, prunedY, MarkerShape.Eks, 8, PictureCanvas.Series(3));
            removed.LegendText = $"pruned ({prunedX.Length})";
            removed.MarkerStyle.LineWidth = 2;
            // Neurons whose gradients are exactly zero (dead ReLUs) have no place on log axes: one marker in the corner.
            int dead = logarithmic ? Enumerable.Range(0, count).Count(Dead) : 0;
            if (dead > 0)
            {
                var corner = plot.Add.Marker(Axis(0) - DeadOffset, Axis(0) - DeadOffset, MarkerShape.OpenSquare, 12, PictureCanvas.Series(3));
                corner.LegendText = $"zero gradients ({dead}), in the corner";
                corner.MarkerStyle.LineWidth = 2;
            }
            if (count == 0)
            {
                NoData(plot, "no neurons recorded");
            }

            if (logarithmic)
            {
                foreach (IAxis axis in new IAxis[] { plot.Axes.Bottom, plot.Axes.Left })
                {
                    axis.TickGenerator = new NumericAutomatic
                    {
                        IntegerTicksOnly = true,
                        MinorTickGenerator = new LogMinorTickGenerator(),
                        LabelFormatter = PowerOfTen,
                    };
                }
            }
            plot.Legend.Alignment = Alignment.LowerRight;
            plot.ShowLegend();
            plots.Add(plot);
        }

        if (plots.Count == 0)
        {
            Plot empty = PictureCanvas.NewPlot("no prunable layers recorded", xLabel, yLabel);
            NoData(empty, "no gradient statistics");
            plots.Add(empty);
        }
        else if (all.Length > 0)
        {
            bool anyDead = logarithmic && layers.Any(l => l.GradientMean.Zip(l.GradientStd).Any(p => p.First == 0 && p.Second == 0));
            double low = Math.Floor(all.Select(Axis).Min() * 10) / 10 - (anyDead ? DeadOffset : 0);
            double high = all.Select(Axis).Max();
            double pad = Math.Max((high - low) * 0.08, logarithmic ? 0.1 : Math.Abs(high) * 0.05 + 1e-12);
            foreach (Plot plot in plots)
            {
                plot.Axes.SetLimits(low - pad, high + pad, low - pad, high + pad);
            }
        }

        string title = logarithmic
            ? "Per-neuron gradient statistics (log axes) and the seed criterion's decision"
            : "Per-neuron gradient statistics and the seed criterion's decision";
        PictureCanvas.Save(plots, Math.Min(plots.Count, GradientColumnsMax), title, path, width, height);
    }

    // ---- 3. Neurons kept per layer -----------------------------------------------------------------------------

    public static void NeuronsKept(IReadOnlyList<DemoNeuronsKept> kept, string path)
    {
        Plot plot = PictureCanvas.NewPlot("Neurons per prunable layer, before and after pruning", "prunable layer", "neurons (output channels or units)");
        string[] layers = kept.Select(k => k.Layer).Distinct().ToArray();
        string[] criteria = kept.Select(k => k.Criterion).Distinct().ToArray();
        if (layers.Length == 0)
        {
            NoData(plot, "no pruned model recorded");
            PictureCanvas.Save(plot, path, Width, Height);
            return;
        }

        int series = criteria.Length + 1;
        double barWidth = 0.8 / series;
        var bars = new List<Bar>();
        double highest = 0;
        for (int g = 0; g < layers.Length; g++)
        {
            int before = kept.Where(k => k.Layer == layers[g]).Max(k => k.Before);
            highest = Math.Max(highest, before);
            bars.Add(NewBar(g - 0.4 + barWidth / 2, before, barWidth, PictureCanvas.Series(7)));
            for (int c = 0; c < criteria.Length; c++)
            {
                DemoNeuronsKept? entry = kept.FirstOrDefault(k => k.Layer == layers[g] && k.Criterion == criteria[c]);
                if (entry is null)
                {
                    continue;
                }
                highest = Math.Max(highest, entry.After);
                bars.Add(NewBar(g - 0.4 + barWidth * (c + 1.5), entry.After, barWidth, PictureCanvas.Series(c)));
            }
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = layers.Length * series > 16 ? 9 : 11;
        barPlot.ValueLabelStyle.FontName = ReportFont.Family;

        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "before pruning", FillColor = PictureCanvas.Series(7) });
        for (int c = 0; c < criteria.Length; c++)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = $"after, {criteria[c]}", FillColor = PictureCanvas.Series(c) });
        }
        plot.ShowLegend(Edge.Right);

        plot.Axes.Bottom.TickGenerator = new NumericManual(Enumerable.Range(0, layers.Length).Select(i => (double)i).ToArray(), layers);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.SetLimits(-0.6, layers.Length - 0.4, 0, Math.Max(1, highest) * 1.12);
        plot.HideGrid();
        plot.Grid.YAxisStyle.IsVisible = true;
        PictureCanvas.Save(plot, path, Width, Height);
    }

    // ---- 4. Pruning sweep --------------------------------------------------------------------------------------

    public static void PruningSweep(IReadOnlyList<DemoSweepPoint> sweep, string path)
    {
        Plot plot = PictureCanvas.NewPlot("Test accuracy against the fraction pruned", "neurons removed from every prunable layer (%)", "test accuracy (%)");
        string[] criteria = sweep.Select(p => p.Criterion).Distinct().ToArray();
        bool anyPoint = false;
        for (int c = 0; c < criteria.Length; c++)
        {
            DemoSweepPoint[] points = sweep.Where(p => p.Criterion == criteria[c]).OrderBy(p => p.Amount).ToArray();
            DemoSweepPoint[] pruned = points.Where(p => double.IsFinite(p.AccuracyAfterPrune)).ToArray();
            if (pruned.Length > 0)
            {
                var line = plot.Add.Scatter(pruned.Select(p => 100 * p.Amount).ToArray(), pruned.Select(p => 100 * p.AccuracyAfterPrune).ToArray());
                Style(line, PictureCanvas.Series(c), $"{criteria[c]}, after pruning", LinePattern.Solid, MarkerShape.FilledCircle);
                anyPoint = true;
            }
            DemoSweepPoint[] tuned = points.Where(p => double.IsFinite(p.AccuracyAfterFineTune)).ToArray();
            if (tuned.Length > 0)
            {
                var line = plot.Add.Scatter(tuned.Select(p => 100 * p.Amount).ToArray(), tuned.Select(p => 100 * p.AccuracyAfterFineTune).ToArray());
                Style(line, PictureCanvas.Series(c), $"{criteria[c]}, fine-tuned", LinePattern.Dashed, MarkerShape.OpenSquare);
                line.MarkerSize = 9;
                anyPoint = true;
            }
        }
        if (!anyPoint)
        {
            NoData(plot, "no pruning sweep recorded");
        }
        else
        {
            plot.ShowLegend(Edge.Right);
            plot.Axes.AutoScale();
            AxisLimits limits = plot.Axes.GetLimits();
            plot.Axes.SetLimitsY(limits.Bottom, Math.Min(100.5, limits.Top + (limits.Top - limits.Bottom) * 0.03));
        }
        PictureCanvas.Save(plot, path, Width, Height);
    }

    // ---- 5. Weights on the int8 grid ---------------------------------------------------------------------------

    public static void WeightHistogram(DemoWeightHistogram histogram, string path)
    {
        float[] weights = histogram.Weights.Where(float.IsFinite).ToArray();
        double scale = histogram.Scale;
        int levels = histogram.CodeMax - histogram.CodeMin + 1;
        // An int8 grid has at most 256 levels; anything far larger is not one, and drawing it line by line would not end.
        bool hasGrid = double.IsFinite(scale) && scale > 0 && levels > 0 && levels <= 1024;
        double Value(int code) => scale * (code - histogram.ZeroPoint);
        int Code(double w) => (int)Math.Clamp(Math.Round(w / scale, MidpointRounding.AwayFromZero) + histogram.ZeroPoint, histogram.CodeMin, histogram.CodeMax);

        // Top: every weight, with every level of the grid drawn as a thin line over the histogram.
        Plot whole = PictureCanvas.NewPlot(
            $"{histogram.Layer} output channel {histogram.Channel}: {weights.Length:N0} weights on {Math.Max(levels, 0)} int8 levels",
            "weight value",
            "weights per bin");
        double low = hasGrid ? Value(histogram.CodeMin) : (weights.Length > 0 ? weights.Min() : -1);
        double high = hasGrid ? Value(histogram.CodeMax) : (weights.Length > 0 ? weights.Max() : 1);
        if (weights.Length > 0)
        {
            low = Math.Min(low, weights.Min());
            high = Math.Max(high, weights.Max());
        }
        if (!(high > low))
        {
            high = low + 1;
        }

        const int bins = 64;
        double binWidth = (high - low) / bins;
        double[] counts = new double[bins];
        foreach (float w in weights)
        {
            counts[Math.Clamp((int)((w - low) / binWidth), 0, bins - 1)]++;
        }
        whole.Add.Bars(Enumerable.Range(0, bins).Select(i => new Bar
        {
            Position = low + (i + 0.5) * binWidth,
            Value = counts[i],
            Size = binWidth * 0.95,
            FillColor = PictureCanvas.Series(0).WithAlpha(0.8),
            LineWidth = 0,
        }).ToList());
        double tallest = Math.Max(1, counts.Max());

        double zoomHalfWidth = 0;
        if (hasGrid)
        {
            for (int code = histogram.CodeMin; code <= histogram.CodeMax; code++)
            {
                var line = whole.Add.VerticalLine(Value(code), 1, Colors.Black.WithAlpha(0.22));
                line.LinePattern = LinePattern.Solid;
            }
            // Zoom on as many grid steps around zero as keep the snapping lines readable (2 to 8 steps each side).
            int steps = 8;
            while (steps > 2 && weights.Count(w => Math.Abs(w - Value(histogram.ZeroPoint)) <= steps * scale) > 700)
            {
                steps--;
            }
            zoomHalfWidth = (steps + 0.5) * scale;
            var span = whole.Add.HorizontalSpan(Value(histogram.ZeroPoint) - zoomHalfWidth, Value(histogram.ZeroPoint) + zoomHalfWidth);
            span.FillStyle.Color = PictureCanvas.Series(1).WithAlpha(0.25);
            span.LineStyle.Color = PictureCanvas.Series(1);
        }
        if (weights.Length == 0 || !hasGrid)
        {
            NoData(whole, weights.Length == 0 ? "no weights recorded" : "no int8 grid (the scale is not positive)");
        }
        whole.Axes.SetLimits(low - 2 * binWidth, high + 2 * binWidth, 0, tallest * 1.1);
        whole.Legend.ManualItems.Add(new LegendItem { LabelText = "float weights", FillColor = PictureCanvas.Series(0) });
        if (hasGrid)
        {
            whole.Legend.ManualItems.Add(new LegendItem { LabelText = $"int8 grid (step {scale:G3})", LineColor = Colors.Black.WithAlpha(0.5), LineWidth = 1 });
            whole.Legend.ManualItems.Add(new LegendItem { LabelText = "zoomed below", FillColor = PictureCanvas.Series(1).WithAlpha(0.25) });
        }
        whole.Legend.Alignment = Alignment.UpperRight;
        whole.ShowLegend();

        // Bottom: the weights near zero, each joined to the grid level it is rounded to.
        Plot zoom = PictureCanvas.NewPlot(
            "Near zero: each weight (top row) joined to the int8 level it rounds to (bottom row)",
            "weight value (ticks: int8 code q, value = scale × (q − zero point))",
            string.Empty);
        zoom.Axes.Title.Label.FontSize = PictureCanvas.TitleSize - 3;
        if (hasGrid)
        {
            double centre = Value(histogram.ZeroPoint);
            float[] near = weights.Where(w => Math.Abs(w - centre) <= zoomHalfWidth).ToArray();
            int firstCode = Code(centre - zoomHalfWidth + scale / 2);
            int lastCode = Code(centre + zoomHalfWidth - scale / 2);
            var perCode = new Dictionary<int, int>();
            foreach (float w in near)
            {
                int code = Code(w);
                double jitter = 0.78 + 0.2 * Jitter(w);
                var join = zoom.Add.Line(w, jitter, Value(code), 0.05);
                join.LineColor = PictureCanvas.Series(0).WithAlpha(0.18);
                join.LineWidth = 1;
                join.MarkerSize = 0;
                perCode[code] = perCode.GetValueOrDefault(code) + 1;
            }
            zoom.Add.Markers(near.Select(w => (double)w).ToArray(), near.Select(w => 0.78 + 0.2 * Jitter(w)).ToArray(), MarkerShape.FilledCircle, 3, PictureCanvas.Series(0));
            for (int code = firstCode; code <= lastCode; code++)
            {
                var line = zoom.Add.VerticalLine(Value(code), 1, Colors.Black.WithAlpha(0.35));
                line.LinePattern = LinePattern.Dotted;
                int n = perCode.GetValueOrDefault(code);
                zoom.Add.Marker(Value(code), 0.02, MarkerShape.FilledDiamond, 10, PictureCanvas.Series(3));
                var label = zoom.Add.Text(n.ToString(System.Globalization.CultureInfo.InvariantCulture), Value(code), -0.04);
                label.LabelFontSize = 11;
                label.LabelFontName = ReportFont.Family;
                label.LabelAlignment = Alignment.UpperCenter;
            }
            double[] ticks = Enumerable.Range(firstCode, lastCode - firstCode + 1).Select(Value).ToArray();
            string[] tickLabels = Enumerable.Range(firstCode, lastCode - firstCode + 1).Select(q => q.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            zoom.Axes.Bottom.TickGenerator = new NumericManual(ticks, tickLabels);
            zoom.Axes.Left.TickGenerator = new NumericManual([0.88, 0.02, -0.13], ["float weights", "int8 levels", "weights per level"]);
            zoom.Axes.SetLimits(centre - zoomHalfWidth, centre + zoomHalfWidth, -0.22, 1.05);
            zoom.HideGrid();
        }
        else
        {
            NoData(zoom, "no int8 grid to zoom on");
        }
        PictureCanvas.Save([whole, zoom], columns: 1, overallTitle: null, path, Width, WeightsHeight);
    }

    // ---- 6. Speed ----------------------------------------------------------------------------------------------

    public static void Speed(IReadOnlyList<DemoStage> stages, string path)
    {
        Plot throughput = SpeedPanel(stages, "Batch-64 throughput (higher is better)", "samples per second", s => s.SamplesPerSecond, "N0");
        Plot latency = SpeedPanel(stages, "Batch-1 latency (lower is better)", "median latency (ms)", s => s.LatencyMs, "G3");
        PictureCanvas.Save([throughput, latency], columns: 2, overallTitle: "Float vs int8, pruned vs unpruned", path, Width, Height);
    }

    private static Plot SpeedPanel(IReadOnlyList<DemoStage> stages, string title, string yLabel, Func<DemoStage, double> value, string format)
    {
        Plot plot = PictureCanvas.NewPlot(title, "model", yLabel);
        plot.Axes.Title.Label.FontSize = PictureCanvas.TitleSize - 3;
        if (stages.Count == 0)
        {
            NoData(plot, "no stages recorded");
            return plot;
        }
        double reference = value(stages[0]);
        var bars = new List<Bar>();
        for (int i = 0; i < stages.Count; i++)
        {
            double v = value(stages[i]);
            bool finite = double.IsFinite(v);
            string ratio = finite && double.IsFinite(reference) && reference > 0 && i > 0 ? $"\n{v / reference:0.0#}×" : string.Empty;
            bars.Add(new Bar
            {
                Position = i,
                Value = finite ? v : 0,
                Size = 0.7,
                FillColor = PictureCanvas.Series(i),
                LineWidth = 0,
                Label = finite ? v.ToString(format, System.Globalization.CultureInfo.InvariantCulture) + ratio : "n/a",
            });
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 11;
        barPlot.ValueLabelStyle.FontName = ReportFont.Family;
        double highest = bars.Max(b => b.Value);
        plot.Axes.Bottom.TickGenerator = new NumericManual(
            Enumerable.Range(0, stages.Count).Select(i => (double)i).ToArray(),
            stages.Select(s => s.Name.Replace(' ', '\n')).ToArray());
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.SetLimits(-0.6, stages.Count - 0.4, 0, Math.Max(highest, 1e-9) * 1.22);
        plot.HideGrid();
        plot.Grid.YAxisStyle.IsVisible = true;
        return plot;
    }

    // ---- Helpers -----------------------------------------------------------------------------------------------

    /// <summary>The epochs where <paramref name="value"/> is a number (an epoch not evaluated is left out, not drawn at 0).</summary>
    private static Coordinates[] Finite(IReadOnlyList<DemoEpoch> epochs, Func<DemoEpoch, double> value) =>
        epochs.Where(e => double.IsFinite(value(e))).Select(e => new Coordinates(e.Epoch, value(e))).ToArray();

    internal static void Style(ScottPlot.Plottables.Scatter scatter, Color color, string legend, LinePattern pattern, MarkerShape marker)
    {
        scatter.Color = color;
        scatter.LegendText = legend;
        scatter.LinePattern = pattern;
        scatter.LineWidth = 2;
        scatter.MarkerShape = marker;
        scatter.MarkerSize = 7;
    }

    private static Bar NewBar(double position, double value, double width, Color color) => new()
    {
        Position = position,
        Value = value,
        Size = width * 0.92,
        FillColor = color,
        LineWidth = 0,
        Label = value.ToString("0", System.Globalization.CultureInfo.InvariantCulture),
    };

    internal static void NoData(Plot plot, string text)
    {
        var note = plot.Add.Annotation(text, Alignment.MiddleCenter);
        note.LabelFontSize = PictureCanvas.AxisLabelSize;
        note.LabelFontName = ReportFont.Family;
        note.LabelBackgroundColor = Colors.White;
        note.LabelBorderColor = Colors.Gray;
        note.LabelShadowColor = Colors.Transparent;
    }

    /// <summary>A label "10^k" for a tick at k on a log10 axis, written with superscript digits.</summary>
    private static string PowerOfTen(double exponent)
    {
        const string superscripts = "⁰¹²³⁴⁵⁶⁷⁸⁹";
        int k = (int)Math.Round(exponent);
        string digits = string.Concat(Math.Abs(k).ToString(System.Globalization.CultureInfo.InvariantCulture).Select(d => superscripts[d - '0']));
        return "10" + (k < 0 ? "⁻" : string.Empty) + digits;
    }

    /// <summary>A spread in [0, 1) that depends only on the weight, so that the picture is the same on every run.</summary>
    private static double Jitter(float w)
    {
        uint bits = BitConverter.SingleToUInt32Bits(w) * 2654435761u;
        return (bits >> 8) / (double)(1 << 24);
    }
}
