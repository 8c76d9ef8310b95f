using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Engine.Cli;

/// <summary>
/// Human-readable output: rich (live progress bars, tables) on a terminal, plain lines when standard output is redirected,
/// and with --json one JSON object as the last line of standard output.
/// </summary>
internal static class ConsoleReport
{
    /// <summary>Whether standard output is a terminal that can draw a live progress bar.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    public static void Line(string text) => AnsiConsole.MarkupLine(Markup.Escape(text));

    public static void Table(string title, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var table = new Table().Title(Markup.Escape(title));
        foreach (string h in headers)
        {
            table.AddColumn(new TableColumn(Markup.Escape(h)).RightAligned());
        }
        foreach (IReadOnlyList<string> row in rows)
        {
            table.AddRow(row.Select(Markup.Escape).ToArray());
        }
        if (Console.IsOutputRedirected)
        {
            table.Border(TableBorder.Ascii);
        }
        AnsiConsole.Write(table);
    }

    /// <summary>Writes <paramref name="result"/> as one compact JSON line (the last line of stdout for --json).</summary>
    public static void Json(JsonObject result)
    {
        Console.Out.Flush();
        Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
    }

    public static string Percent(float fraction) => float.IsNaN(fraction) ? "-" : $"{100 * fraction:F2}%";
}
