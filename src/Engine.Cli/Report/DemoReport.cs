using Engine.Cli.Demo;

namespace Engine.Cli.Report;

/// <summary>
/// PLACEHOLDER, replaced when branches merge: the real report (HTML and Markdown with plots) is written by another
/// branch at this same path with this same signature. This stand-in writes nothing and returns no files.
/// </summary>
internal static class DemoReport
{
    /// <summary>Writes the report of <paramref name="results"/> into <paramref name="directory"/>; returns the files written.</summary>
    public static IReadOnlyList<string> Write(DemoResults results, string directory) => [];
}
