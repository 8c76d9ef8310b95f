namespace Engine.Tests.Docs;

/// <summary>
/// Tables and excerpts in the docs that a test computes. Each sits between <c>&lt;!-- generated: NAME --&gt;</c> and
/// <c>&lt;!-- end generated --&gt;</c>; the test that owns NAME computes the text and fails when the file holds
/// anything else, so a figure in the docs cannot drift from what the code now produces. After an intended change,
/// <c>ENGINE_ACCEPT_DOCS=1 dotnet test -c Release --project tests/Engine.Tests -- --filter-namespace Engine.Tests.Docs</c>
/// writes the new text into the file, to be reviewed with <c>git diff</c> and committed.
/// </summary>
internal static class GeneratedSections
{
    private const string End = "<!-- end generated -->";

    public static void Check(string relativePath, string name, string expected) => Check(relativePath, name, expected, (a, b) => a == b);

    /// <summary>
    /// As <see cref="Check(string, string, string)"/>, with <paramref name="equivalent"/>(in the file, computed) deciding
    /// whether the file's text still stands: for sections whose timings come from a recorded run and vary between runs.
    /// </summary>
    public static void Check(string relativePath, string name, string expected, Func<string, string, bool> equivalent)
    {
        string path = Path.Combine(RepositoryPaths.Root, relativePath);
        string text = File.ReadAllText(path).ReplaceLineEndings("\n");
        string begin = $"<!-- generated: {name} -->";
        int start = text.IndexOf(begin, StringComparison.Ordinal);
        Assert.True(start >= 0, $"{relativePath} has no '{begin}' marker");
        start += begin.Length;
        int end = text.IndexOf(End, start, StringComparison.Ordinal);
        Assert.True(end >= 0, $"{relativePath}: the section '{name}' has no '{End}' marker");
        string body = "\n" + expected.ReplaceLineEndings("\n").Trim('\n') + "\n";
        if (equivalent(text[start..end], body))
        {
            return;
        }
        if (Environment.GetEnvironmentVariable("ENGINE_ACCEPT_DOCS") == "1")
        {
            File.WriteAllText(path, string.Concat(text.AsSpan(0, start), body, text.AsSpan(end)));
            return;
        }
        Assert.Fail($"{relativePath}, section '{name}', differs from what the code now produces.\nIn the file:{text[start..end]}\nComputed:{body}" +
                    "Run with ENGINE_ACCEPT_DOCS=1 to write the computed text, then review the diff.");
    }
}
