using System.Buffers.Binary;
using System.Text.RegularExpressions;
using Engine.Cli.Demo;
using Engine.Cli.Report;
using SkiaSharp;

namespace Engine.Tests.Report;

public sealed class DemoReportTests : IDisposable
{
    // ENGINE_REPORT_KEEP=<folder> keeps the pictures there to be looked at; otherwise each test writes to its own
    // temporary folder and removes it.
    private readonly string? _keep = Environment.GetEnvironmentVariable("ENGINE_REPORT_KEEP");
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-report-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private string Folder(string name) => _keep is null ? _dir : Path.Combine(_keep, name);

    private static readonly string[] PictureFiles =
        ["training.png", "gradients.png", "neurons-kept.png", "pruning-sweep.png", "weights-int8.png", "speed.png"];

    /// <summary>Width and height from a PNG's IHDR chunk, after checking the signature and that Skia decodes it whole.</summary>
    private static (int Width, int Height) PngSize(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 33, $"{path} is too short for a PNG");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        int width = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), height = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20));
        using SKBitmap? decoded = SKBitmap.Decode(bytes);
        Assert.NotNull(decoded);
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        return (width, height);
    }

    /// <summary>Pixels that are neither white nor near-white: a picture with nothing drawn has none.</summary>
    private static int InkedPixels(string path)
    {
        using SKBitmap bitmap = SKBitmap.Decode(path);
        int inked = 0;
        foreach (SKColor pixel in bitmap.Pixels)
        {
            if (pixel.Red + pixel.Green + pixel.Blue < 3 * 200)
            {
                inked++;
            }
        }
        return inked;
    }

    [Fact]
    public void Write_produces_both_pages_and_every_picture_at_its_size()
    {
        DemoResults results = DemoResultsFixture.Realistic();
        string dir = Folder("realistic");
        IReadOnlyList<string> written = DemoReport.Write(results, dir);

        string[] expected = [DemoReport.HtmlFile, DemoReport.MarkdownFile, .. PictureFiles];
        Assert.Equal(expected, written.Select(Path.GetFileName).ToArray());
        Assert.All(written, path => Assert.True(File.Exists(path), path));
        Assert.All(written, path => Assert.Equal(Path.GetFullPath(dir), Path.GetDirectoryName(Path.GetFullPath(path))));

        foreach (DemoReport.Picture picture in DemoReport.Pictures(results))
        {
            string path = Path.Combine(dir, picture.File);
            Assert.Equal((picture.Width, picture.Height), PngSize(path));
            // Three panels for the three prunable layers of the fixture; every other picture is 800 wide.
            Assert.Equal(picture.File == "gradients.png" ? 1200 : 800, picture.Width);
            Assert.True(InkedPixels(path) > picture.Width * picture.Height / 50, $"{picture.File} is nearly blank");
        }
    }

    [Fact]
    public void Html_embeds_every_picture_and_holds_the_stage_table_and_no_script()
    {
        DemoResults results = DemoResultsFixture.Realistic();
        string dir = Folder("html");
        DemoReport.Write(results, dir);
        string html = File.ReadAllText(Path.Combine(dir, DemoReport.HtmlFile));

        // Self-contained: every picture is in the page, byte for byte, as a data URI (the page works when moved alone).
        var images = Regex.Matches(html, "<img src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"[^>]*title=\"([^\"]+)\"");
        Assert.Equal(PictureFiles, images.Select(m => m.Groups[2].Value).ToArray());
        foreach (Match image in images)
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, image.Groups[2].Value)), Convert.FromBase64String(image.Groups[1].Value));
        }
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(PictureFiles.Length, Regex.Matches(html, "<figcaption>").Count);

        Assert.Contains("<th>model</th><th>test accuracy</th><th>parameters</th><th>file size</th><th>multiply-accumulates</th><th>batch-1 latency</th><th>batch-64 throughput</th>", html);
        Assert.Contains("<tr><td>float</td><td>98.62%</td><td>544,522</td><td>2.08 MiB</td><td>19,694,848</td><td>0.912 ms</td><td>3,410 samples/s</td></tr>", html);
        Assert.Contains("<tr><td>pruned int8</td><td>98.27%</td><td>309,394</td><td>316.5 KiB</td><td>11,180,032</td><td>0.198 ms</td><td>16,480 samples/s</td></tr>", html);
        Assert.Contains(results.Machine, html);
        Assert.Contains(results.Started, html);
        foreach (string doc in new[] { "docs/pruning.md", "docs/quantization.md", "docs/float-engine.md" })
        {
            Assert.Contains(doc, html);
        }
    }

    [Fact]
    public void Markdown_links_every_picture_and_holds_the_stage_table()
    {
        DemoResults results = DemoResultsFixture.Realistic();
        string dir = Folder("markdown");
        DemoReport.Write(results, dir);
        string md = File.ReadAllText(Path.Combine(dir, DemoReport.MarkdownFile));

        var links = Regex.Matches(md, @"!\[[^\]]+\]\(([^)]+)\)");
        Assert.Equal(PictureFiles, links.Select(m => m.Groups[1].Value).ToArray());
        Assert.All(links, link => Assert.True(File.Exists(Path.Combine(dir, link.Groups[1].Value))));
        Assert.Contains("| model | test accuracy | parameters | file size | multiply-accumulates | batch-1 latency | batch-64 throughput |", md);
        Assert.Contains("| int8 | 98.59% | 544,522 | 547.1 KiB | 19,694,848 | 0.301 ms | 10,920 samples/s |", md);
        Assert.Contains(results.Machine, md);
    }

    [Fact]
    public void Missing_and_not_a_number_inputs_still_give_every_picture()
    {
        DemoResults full = DemoResultsFixture.Realistic();
        // No fine-tuned point, a layer that lost no neuron, NaN accuracies and speeds, an epoch not evaluated, a stage
        // whose name holds a pipe.
        DemoResults sparse = full with
        {
            Training = full.Training.Select(e => e.Epoch == 4 ? e with { TestAccuracy = double.NaN } : e).ToArray(),
            PruningSweep = full.PruningSweep.Select(p => p with
            {
                AccuracyAfterFineTune = double.NaN,
                AccuracyAfterPrune = p.Amount == 0.5 ? double.NaN : p.AccuracyAfterPrune,
            }).ToArray(),
            Neurons = full.Neurons.Select(l => l.Layer == "conv1" ? l with { Pruned = new bool[l.Pruned.Length] } : l).ToArray(),
            NeuronsKept = full.NeuronsKept.Select(k => k.Layer == "conv1" ? k with { After = k.Before } : k).ToArray(),
            Stages = [full.Stages[0] with { Name = "float | fp32", LatencyMs = double.NaN, SamplesPerSecond = double.NaN }, full.Stages[2]],
        };
        string dir = Folder("sparse");
        DemoReport.Write(sparse, dir);
        foreach (DemoReport.Picture picture in DemoReport.Pictures(sparse))
        {
            Assert.Equal((picture.Width, picture.Height), PngSize(Path.Combine(dir, picture.File)));
        }
        string md = File.ReadAllText(Path.Combine(dir, DemoReport.MarkdownFile));
        Assert.Contains("| float \\| fp32 | 98.62% | 544,522 | 2.08 MiB | 19,694,848 | - | - |", md);
        Assert.Contains("No point was fine-tuned in this run.", md);
    }

    [Fact]
    public void Empty_results_still_give_every_picture()
    {
        var empty = new DemoResults
        {
            Started = "2026-12-01T11:00:00Z",
            Machine = "test",
            Threads = 1,
            Training = [],
            Neurons = [],
            NeuronsKept = [],
            PruningSweep = [],
            WeightHistogram = new DemoWeightHistogram("fc1", 0, [], 0f, 0, -127, 127),
            Stages = [],
        };
        string dir = Folder("empty");
        IReadOnlyList<string> written = DemoReport.Write(empty, dir);
        Assert.Equal(2 + PictureFiles.Length, written.Count);
        foreach (DemoReport.Picture picture in DemoReport.Pictures(empty))
        {
            string path = Path.Combine(dir, picture.File);
            Assert.Equal((picture.Width, picture.Height), PngSize(path));
            // The "no data" note is drawn: not a blank canvas.
            Assert.True(InkedPixels(path) > 500, $"{picture.File} is blank");
        }
    }

    [Fact]
    public void Text_is_drawn_with_the_bundled_font_whatever_the_machine_has()
    {
        ReportFont.Register();
        // The first resolver ScottPlot asks is the report's, and it answers from the embedded files, not the system's.
        using SKTypeface? embedded = ScottPlot.Fonts.FontResolvers[0].CreateTypeface(ReportFont.Family, bold: false, italic: false);
        Assert.NotNull(embedded);
        Assert.Equal("DejaVu Sans", embedded.FamilyName);
        Assert.Null(ScottPlot.Fonts.FontResolvers[0].CreateTypeface("Some Other Family", bold: false, italic: false));
        Assert.Equal("DejaVu Sans", ReportFont.Bold.FamilyName);
        Assert.True(ReportFont.Bold.IsBold);
        // The glyphs the pictures use beyond ASCII: superscripts of log ticks, sigma, partial, minus, times.
        ushort[] glyphs = ScottPlot.Fonts.GetTypeface(ReportFont.Family, bold: false, italic: false).GetGlyphs("⁻³σ∂−×");
        Assert.All(glyphs, g => Assert.NotEqual(0, g));
    }
}
