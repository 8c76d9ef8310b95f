using ScottPlot;
using SkiaSharp;

namespace Engine.Cli.Report;

/// <summary>
/// The typeface every picture of the report is drawn with: DejaVu Sans, regular and bold, embedded in this assembly
/// (Report/Fonts, with its licence DejaVuSans-LICENSE.txt). Skia's Linux build without dependencies finds fonts only
/// where a machine happens to have them installed; a machine without any would draw plots with no text at all, so the
/// report never asks the system.
/// </summary>
internal static class ReportFont
{
    /// <summary>The family name the plots ask for; the resolver below answers it from the embedded files.</summary>
    public const string Family = "DejaVu Sans";

    private static readonly SKData RegularData = Load("DejaVuSans.ttf");
    private static readonly SKData BoldData = Load("DejaVuSans-Bold.ttf");

    /// <summary>The bold face, for text the report draws on the canvas itself (a picture's overall title).</summary>
    public static readonly SKTypeface Bold = SKTypeface.FromData(BoldData);

    private static readonly Lock Gate = new();
    private static bool registered;

    /// <summary>Puts the embedded faces first among ScottPlot's font resolvers and makes them its default (once per process).</summary>
    public static void Register()
    {
        lock (Gate)
        {
            if (registered)
            {
                return;
            }
            Fonts.FontResolvers.Insert(0, new EmbeddedFontResolver());
            Fonts.Default = Family;
            Fonts.Sans = Family;
            registered = true;
        }
    }

    private static SKData Load(string file)
    {
        string name = $"Engine.Cli.Report.Fonts.{file}";
        using Stream stream = typeof(ReportFont).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The font {name} is not embedded in {typeof(ReportFont).Assembly.GetName().Name}.");
        return SKData.Create(stream);
    }

    /// <summary>Answers <see cref="Family"/> (bold or not; italics fall back to upright) and nothing else.</summary>
    private sealed class EmbeddedFontResolver : IFontResolver
    {
        // ScottPlot caches what a resolver returns and asks for "a new instance" each time it misses its cache.
        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) =>
            string.Equals(fontName, Family, StringComparison.OrdinalIgnoreCase) ? SKTypeface.FromData(bold ? BoldData : RegularData) : null;

        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing width) =>
            CreateTypeface(fontName, weight >= FontWeight.SemiBold, slant != FontSlant.Upright);
    }
}
