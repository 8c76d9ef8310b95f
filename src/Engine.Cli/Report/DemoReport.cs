using System.Globalization;
using System.Net;
using System.Text;
using Engine.Cli.Demo;

namespace Engine.Cli.Report;

/// <summary>
/// The report of one <c>engine demo</c> run: six PNG pictures, <c>report.html</c> (one self-contained page: pictures
/// embedded as base64 data URIs, plain HTML and CSS, no script) and <c>report.md</c> beside it, linking the same PNG
/// files. The report only draws what <see cref="DemoResults"/> holds, so it can be made again from <c>demo.json</c>.
/// </summary>
internal static class DemoReport
{
    public const string HtmlFile = "report.html";
    public const string MarkdownFile = "report.md";

    /// <summary>One picture of the report: its file, the heading it goes under and what to look at in it.</summary>
    internal sealed record Picture(string File, string Heading, string Caption, int Width, int Height);

    /// <summary>
    /// Writes the pictures, <c>report.html</c> and <c>report.md</c> into <paramref name="directory"/> (created if missing)
    /// and returns the paths of the files written: the two pages first, then the pictures in the order the pages show them.
    /// </summary>
    public static IReadOnlyList<string> Write(DemoResults results, string directory)
    {
        ArgumentNullException.ThrowIfNull(results);
        Directory.CreateDirectory(directory);

        IReadOnlyList<Picture> pictures = Pictures(results);
        Draw(results, pictures, directory);

        string html = Path.Combine(directory, HtmlFile);
        File.WriteAllText(html, Html(results, pictures, directory), new UTF8Encoding(false));
        string markdown = Path.Combine(directory, MarkdownFile);
        File.WriteAllText(markdown, Markdown(results, pictures), new UTF8Encoding(false));

        var written = new List<string> { html, markdown };
        written.AddRange(pictures.Select(p => Path.Combine(directory, p.File)));
        return written;
    }

    /// <summary>The pictures, with sizes and captions, in the order the pages show them.</summary>
    internal static IReadOnlyList<Picture> Pictures(DemoResults results)
    {
        (int gradientWidth, int gradientHeight) = DemoPictures.GradientSize(results.Neurons.Count);
        return
        [
            new("training.png", "Training", TrainingCaption(results), DemoPictures.Width, DemoPictures.Height),
            new("gradients.png", "The seed's idea, seen: gradient mean against spread", GradientCaption(results), gradientWidth, gradientHeight),
            new("neurons-kept.png", "Neurons kept per layer", NeuronsCaption(results), DemoPictures.Width, DemoPictures.Height),
            new("pruning-sweep.png", "Accuracy against pruning amount", SweepCaption(results), DemoPictures.Width, DemoPictures.Height),
            new("weights-int8.png", "Weights on the int8 grid", WeightsCaption(results), DemoPictures.Width, DemoPictures.WeightsHeight),
            new("speed.png", "Speed: float vs int8, pruned vs unpruned", SpeedCaption(results), DemoPictures.Width, DemoPictures.Height),
        ];
    }

    private static void Draw(DemoResults results, IReadOnlyList<Picture> pictures, string directory)
    {
        string PathOf(string file) => Path.Combine(directory, pictures.Single(p => p.File == file).File);
        DemoPictures.Training(results.Training, PathOf("training.png"));
        DemoPictures.Gradients(results.Neurons, PathOf("gradients.png"));
        DemoPictures.NeuronsKept(results.NeuronsKept, PathOf("neurons-kept.png"));
        DemoPictures.PruningSweep(results.PruningSweep, PathOf("pruning-sweep.png"));
        DemoPictures.WeightHistogram(results.WeightHistogram, PathOf("weights-int8.png"));
        DemoPictures.Speed(results.Stages, PathOf("speed.png"));
    }

    // ---- Captions ----------------------------------------------------------------------------------------------

    private static string TrainingCaption(DemoResults results)
    {
        string text = "The training loss (left axis) should fall and both accuracies (right axis) rise. Test accuracy that "
            + "levels off or drops while train accuracy keeps climbing is over-fitting; the two staying close means the "
            + "model generalises.";
        if (results.Training.Count > 0)
        {
            DemoEpoch last = results.Training[^1];
            text += $" After {results.Training.Count} epochs ({Number(results.Training.Sum(e => e.Seconds), "0.#")} s): "
                + $"loss {Number(last.TrainLoss, "0.000")}, train accuracy {Percent(last.TrainAccuracy)}, test accuracy {Percent(last.TestAccuracy)}.";
        }
        return text;
    }

    private static string GradientCaption(DemoResults results)
    {
        int total = results.Neurons.Sum(l => l.Pruned.Length);
        int pruned = results.Neurons.Sum(l => l.Pruned.Count(p => p));
        return "Each dot is one neuron (an output channel of a convolution or a unit of a linear layer). Across: the mean "
            + "over its weights of |E[∂L/∂w]|, how far its gradients lean one way; up: the root mean square of their "
            + "standard deviation, how much they move from batch to batch. The seed's gradient-stability criterion scores a "
            + "neuron by sqrt(mean² + std²), divided by its layer's average, and removes the lowest: its crosses should "
            + "gather towards the lower left, and a neuron whose gradients are exactly zero (a dead ReLU) sits at the "
            + "lower-left corner. Every panel has the same scale, so layers compare directly."
            + (total > 0 ? $" The demo pruned {pruned} of {total} neurons." : string.Empty);
    }

    private static string NeuronsCaption(DemoResults results)
    {
        string text = "For each prunable layer, the grey bar is its width before pruning and the coloured bars its width in "
            + "each pruned model the demo kept, one per criterion. Structured pruning removes whole neurons, so the "
            + "smaller bars are smaller layers: fewer parameters and fewer multiply-accumulates, not zeros.";
        int before = results.NeuronsKept.GroupBy(k => k.Layer).Sum(g => g.Max(k => k.Before));
        if (before > 0)
        {
            foreach (IGrouping<string, DemoNeuronsKept> criterion in results.NeuronsKept.GroupBy(k => k.Criterion))
            {
                text += $" {criterion.Key}: {criterion.Sum(k => k.After)} of {before} neurons kept.";
            }
        }
        return text;
    }

    private static string SweepCaption(DemoResults results)
    {
        bool fineTuned = results.PruningSweep.Any(p => double.IsFinite(p.AccuracyAfterFineTune));
        return "Each solid line is one criterion: the test accuracy right after removing that fraction of every prunable "
            + "layer's neurons, with no retraining. The higher a line stays as it moves right, the better the criterion "
            + "chose what to remove; random choice is the baseline every criterion should beat."
            + (fineTuned
                ? " Dashed lines with open squares are the same pruned models after fine-tuning: the gap between the two shows how much a short retraining recovers."
                : " No point was fine-tuned in this run.");
    }

    private static string WeightsCaption(DemoResults results)
    {
        DemoWeightHistogram h = results.WeightHistogram;
        int levels = h.CodeMax - h.CodeMin + 1;
        double maxAbs = h.Weights.Where(float.IsFinite).Select(w => Math.Abs((double)w)).DefaultIfEmpty(0).Max();
        // The default symmetric per-channel scale is max|w| / 127 (docs/quantization.md); say so only when it is that one.
        bool maxScale = h.ZeroPoint == 0 && maxAbs > 0 && Math.Abs(h.Scale - maxAbs / 127) <= 1e-6 * maxAbs;
        return $"The float weights of output channel {h.Channel} of {h.Layer} and the int8 grid they are rounded to: code q "
            + $"stands for scale × (q − zero point), scale {Number(h.Scale, "G4")}, zero point {h.ZeroPoint}, q from {h.CodeMin} to "
            + $"{h.CodeMax} ({Math.Max(levels, 0)} levels). Top: the histogram, with every level drawn as a thin line"
            + (maxScale ? "; the scale is max|w| / 127, so the grid just covers the largest weight" : string.Empty)
            + ". Bottom, the shaded window zoomed: each "
            + "weight (top row) is joined to the level it rounds to (bottom row, the count under it). No weight is ever "
            + "more than half a step from its level; that half step, against the spread of the weights, is the rounding "
            + "error int8 adds.";
    }

    private static string SpeedCaption(DemoResults results)
    {
        string text = "Left: samples per second at batch 64 (higher is better); right: median milliseconds for one sample "
            + "(lower is better). Ratios under the values are against the first model. Pruning saves work in proportion "
            + "to the multiply-accumulates it removes; int8 reads a quarter of the bytes per weight and multiplies in "
            + "integers (vpdpbusd where the CPU has AVX-VNNI).";
        return text + $" Measured with {results.Threads} thread{(results.Threads == 1 ? string.Empty : "s")} on the machine named above.";
    }

    // ---- Pages -------------------------------------------------------------------------------------------------

    private static readonly string[] StageHeaders =
        ["model", "test accuracy", "parameters", "file size", "multiply-accumulates", "batch-1 latency", "batch-64 throughput"];

    private static string[] StageRow(DemoStage s) =>
    [
        s.Name,
        Percent(s.Accuracy),
        Number(s.Parameters, "N0"),
        Bytes(s.Bytes),
        Number(s.MultiplyAccumulates, "N0"),
        double.IsFinite(s.LatencyMs) ? $"{Number(s.LatencyMs, "0.000")} ms" : "-",
        double.IsFinite(s.SamplesPerSecond) ? $"{Number(s.SamplesPerSecond, "N0")} samples/s" : "-",
    ];

    private const string DocsSentence = "The repository's docs explain what is drawn here: docs/pruning.md (gradient "
        + "statistics, the criteria and how neurons are removed), docs/quantization.md (the int8 grid, scales and zero "
        + "points) and docs/float-engine.md (the float engine the stages run on).";

    private static string Html(DemoResults results, IReadOnlyList<Picture> pictures, string directory)
    {
        static string E(string text) => WebUtility.HtmlEncode(text);
        var html = new StringBuilder();
        html.AppendLine("<!DOCTYPE html>");
        html.AppendLine("<html lang=\"en\">");
        html.AppendLine("<head>");
        html.AppendLine("<meta charset=\"utf-8\">");
        html.AppendLine("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        html.AppendLine("<title>engine demo report</title>");
        html.AppendLine("<style>");
        html.AppendLine("body { font-family: 'DejaVu Sans', 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1240px; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.45; }");
        html.AppendLine("h1 { font-size: 1.7rem; margin-bottom: 0.2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; }");
        html.AppendLine("p { max-width: 60rem; } .run { color: #555; margin-top: 0; }");
        html.AppendLine("table { border-collapse: collapse; margin: 1rem 0; font-size: 0.92rem; }");
        html.AppendLine("th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; } th { background: #f2f2f2; }");
        html.AppendLine("td { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; } td:first-child { text-align: left; }");
        html.AppendLine("figure { margin: 0; } img { max-width: 100%; height: auto; border: 1px solid #ddd; }");
        html.AppendLine("figcaption { margin-top: 0.4rem; color: #333; max-width: 60rem; }");
        html.AppendLine("</style>");
        html.AppendLine("</head>");
        html.AppendLine("<body>");
        html.AppendLine("<h1>engine demo</h1>");
        html.AppendLine($"<p class=\"run\">Run started {E(results.Started)}, took {E(Number(results.Seconds, "0.#"))} s, {results.Threads} thread{(results.Threads == 1 ? "" : "s")}.<br>Machine: {E(results.Machine)}</p>");

        html.AppendLine("<h2>The models</h2>");
        html.AppendLine("<table>");
        html.AppendLine("<thead><tr>" + string.Concat(StageHeaders.Select(h => $"<th>{E(h)}</th>")) + "</tr></thead>");
        html.AppendLine("<tbody>");
        foreach (DemoStage stage in results.Stages)
        {
            html.AppendLine("<tr>" + string.Concat(StageRow(stage).Select(c => $"<td>{E(c)}</td>")) + "</tr>");
        }
        html.AppendLine("</tbody>");
        html.AppendLine("</table>");
        html.AppendLine($"<p>Multiply-accumulates are per sample; latency is the median of single-sample runs. {E(DocsSentence)}</p>");

        foreach (Picture picture in pictures)
        {
            string data = Convert.ToBase64String(File.ReadAllBytes(Path.Combine(directory, picture.File)));
            html.AppendLine($"<h2>{E(picture.Heading)}</h2>");
            html.AppendLine("<figure>");
            html.AppendLine($"<img src=\"data:image/png;base64,{data}\" width=\"{picture.Width}\" height=\"{picture.Height}\" alt=\"{E(picture.Heading)} ({E(picture.File)})\" title=\"{E(picture.File)}\">");
            html.AppendLine($"<figcaption>{E(picture.Caption)}</figcaption>");
            html.AppendLine("</figure>");
        }
        html.AppendLine("</body>");
        html.AppendLine("</html>");
        return html.ToString();
    }

    private static string Markdown(DemoResults results, IReadOnlyList<Picture> pictures)
    {
        static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace('\n', ' ');
        var md = new StringBuilder();
        md.AppendLine("# engine demo");
        md.AppendLine();
        md.AppendLine($"Run started {results.Started}, took {Number(results.Seconds, "0.#")} s, {results.Threads} thread{(results.Threads == 1 ? "" : "s")}.");
        md.AppendLine();
        md.AppendLine($"Machine: {results.Machine}");
        md.AppendLine();
        md.AppendLine("## The models");
        md.AppendLine();
        md.AppendLine("| " + string.Join(" | ", StageHeaders) + " |");
        md.AppendLine("| --- |" + string.Concat(Enumerable.Repeat(" ---: |", StageHeaders.Length - 1)));
        foreach (DemoStage stage in results.Stages)
        {
            md.AppendLine("| " + string.Join(" | ", StageRow(stage).Select(Cell)) + " |");
        }
        md.AppendLine();
        md.AppendLine("Multiply-accumulates are per sample; latency is the median of single-sample runs. " + DocsSentence);
        foreach (Picture picture in pictures)
        {
            md.AppendLine();
            md.AppendLine($"## {picture.Heading}");
            md.AppendLine();
            md.AppendLine($"![{picture.Heading}]({picture.File})");
            md.AppendLine();
            md.AppendLine(picture.Caption);
        }
        return md.ToString();
    }

    // ---- Formatting ----------------------------------------------------------------------------------------------

    private static string Number(double value, string format) =>
        double.IsFinite(value) ? value.ToString(format, CultureInfo.InvariantCulture) : "-";

    private static string Percent(double fraction) => double.IsFinite(fraction) ? $"{Number(100 * fraction, "0.00")}%" : "-";

    private static string Bytes(long bytes) => bytes switch
    {
        < 0 => "-",
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{Number(bytes / 1024.0, "0.0")} KiB",
        _ => $"{Number(bytes / (1024.0 * 1024.0), "0.00")} MiB",
    };
}
