using ScottPlot;
using SkiaSharp;

namespace Engine.Cli.Report;

/// <summary>
/// Shared look of the report's plots and the one place that turns plots into a PNG file: one plot fills the picture, or
/// several are laid out in a grid under an overall title drawn on the same canvas.
/// </summary>
internal static class PictureCanvas
{
    public const float TitleSize = 17;
    public const float AxisLabelSize = 14;
    public const float TickLabelSize = 12;
    public const float LegendSize = 12;

    private const float OverallTitleHeight = 36;

    /// <summary>A plot with the report's font and sizes.</summary>
    public static Plot NewPlot(string title, string xLabel, string yLabel)
    {
        ReportFont.Register();
        var plot = new Plot();
        plot.Font.Set(ReportFont.Family);
        plot.Title(title, TitleSize);
        plot.XLabel(xLabel, AxisLabelSize);
        plot.YLabel(yLabel, AxisLabelSize);
        foreach (IAxis axis in plot.Axes.GetAxes())
        {
            axis.TickLabelStyle.FontSize = TickLabelSize;
        }
        plot.Legend.FontSize = LegendSize;
        return plot;
    }

    /// <summary>The colour of series <paramref name="index"/> (Tableau 10: distinguishable, and readable in grey).</summary>
    public static Color Series(int index) => Palette.GetColor(index);

    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    /// <summary>Writes one plot as a <paramref name="width"/> x <paramref name="height"/> PNG.</summary>
    public static void Save(Plot plot, string path, int width, int height) => Save([plot], columns: 1, overallTitle: null, path, width, height);

    /// <summary>
    /// Writes <paramref name="plots"/> in a grid of <paramref name="columns"/> columns (row by row) under
    /// <paramref name="overallTitle"/>, as one <paramref name="width"/> x <paramref name="height"/> PNG.
    /// </summary>
    public static void Save(IReadOnlyList<Plot> plots, int columns, string? overallTitle, string path, int width, int height)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using SKSurface surface = SKSurface.Create(info);
        SKCanvas canvas = surface.Canvas;
        canvas.Clear(SKColors.White);

        float top = 0;
        if (overallTitle is not null)
        {
            using var font = new SKFont(ReportFont.Bold, TitleSize + 1);
            using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            canvas.DrawText(overallTitle, width / 2f, OverallTitleHeight - 11, SKTextAlign.Center, font, paint);
            top = OverallTitleHeight;
        }

        int rows = Math.Max(1, (plots.Count + columns - 1) / columns);
        int cellWidth = width / columns;
        int cellHeight = (int)((height - top) / rows);
        for (int i = 0; i < plots.Count; i++)
        {
            // Each plot is drawn on its own surface and then placed: ScottPlot clears the whole canvas it is given.
            using SKSurface cell = SKSurface.Create(new SKImageInfo(cellWidth, cellHeight, SKColorType.Rgba8888, SKAlphaType.Premul));
            plots[i].Render(cell.Canvas, cellWidth, cellHeight);
            using SKImage drawn = cell.Snapshot();
            canvas.DrawImage(drawn, i % columns * cellWidth, top + i / columns * cellHeight);
        }

        using SKImage image = surface.Snapshot();
        using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
        using FileStream file = File.Create(path);
        png.SaveTo(file);
    }
}
