using System.Text.RegularExpressions;

namespace Engine.Tests.Docs;

/// <summary>
/// The docs tie every formula to the code that computes it, so a rename must not leave them pointing at nothing. These
/// tests read every Markdown file of the repository and fail on a relative link to a file that does not exist, an
/// anchor that names no heading, a link labelled <c>`Type.Member`</c> whose file declares no such type or member, and
/// a <c>`Type.Member`</c> mention of a type of the library whose member is gone.
/// </summary>
public sealed partial class DocsLinkTests
{
    public static TheoryData<string> MarkdownFiles()
    {
        var data = new TheoryData<string>();
        foreach (string file in RepositoryMarkdown())
        {
            data.Add(file);
        }
        return data;
    }

    [Fact]
    public void The_docs_are_found()
    {
        string[] files = RepositoryMarkdown().ToArray();
        Assert.Contains("README.md", files);
        Assert.Contains("docs/float-engine.md", files);
        Assert.Contains("docs/quantization.md", files);
        Assert.Contains("docs/pruning.md", files);
    }

    [Theory]
    [MemberData(nameof(MarkdownFiles))]
    public void Every_relative_link_points_at_a_file_and_heading_that_exist(string file)
    {
        string path = Path.Combine(RepositoryPaths.Root, file);
        var faults = new List<string>();
        foreach (Link link in Links(File.ReadAllText(path)))
        {
            if (IsExternal(link.Target))
            {
                continue;
            }
            (string target, string? anchor) = SplitAnchor(link.Target);
            string resolved = target.Length == 0 ? path : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, Uri.UnescapeDataString(target)));
            if (!File.Exists(resolved) && !Directory.Exists(resolved))
            {
                faults.Add($"line {link.Line}: [{link.Text}]({link.Target}): {target} does not exist");
                continue;
            }
            if (anchor is not null && resolved.EndsWith(".md", StringComparison.OrdinalIgnoreCase) && !HeadingAnchors(resolved).Contains(anchor))
            {
                faults.Add($"line {link.Line}: [{link.Text}]({link.Target}): no heading of {Path.GetFileName(resolved)} has the anchor #{anchor}");
            }
        }
        Assert.True(faults.Count == 0, $"{file}:\n" + string.Join("\n", faults));
    }

    [Theory]
    [MemberData(nameof(MarkdownFiles))]
    public void Every_link_to_code_names_a_type_or_member_its_file_declares(string file)
    {
        string path = Path.Combine(RepositoryPaths.Root, file);
        var faults = new List<string>();
        foreach (Link link in Links(File.ReadAllText(path)))
        {
            (string target, _) = SplitAnchor(link.Target);
            if (IsExternal(link.Target) || !target.EndsWith(".cs", StringComparison.Ordinal) || CodeName().Match(link.Text) is not { Success: true } name)
            {
                continue;
            }
            string source = File.ReadAllText(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, target)));
            string type = name.Groups["type"].Value;
            if (!DeclaresType(source, type))
            {
                faults.Add($"line {link.Line}: [{link.Text}]({link.Target}): {target} declares no type {type}");
            }
            else if (name.Groups["member"].Success && !DeclaresMember(source, name.Groups["member"].Value))
            {
                faults.Add($"line {link.Line}: [{link.Text}]({link.Target}): {target} declares no member {name.Groups["member"].Value}");
            }
        }
        Assert.True(faults.Count == 0, $"{file}:\n" + string.Join("\n", faults));
    }

    [Theory]
    [MemberData(nameof(MarkdownFiles))]
    public void Every_mentioned_member_of_a_library_type_exists(string file)
    {
        string text = File.ReadAllText(Path.Combine(RepositoryPaths.Root, file));
        IReadOnlyDictionary<string, string> types = LibrarySourcesByType.Value;
        var faults = new List<string>();
        foreach (Match code in InlineCode().Matches(text))
        {
            foreach (Match mention in MemberMention().Matches(code.Groups["code"].Value))
            {
                string type = mention.Groups["type"].Value, member = mention.Groups["member"].Value;
                if (types.TryGetValue(type, out string? source) && !DeclaresMember(source, member))
                {
                    faults.Add($"line {LineOf(text, code.Index)}: `{code.Groups["code"].Value}`: {type} has no member {member}");
                }
            }
        }
        Assert.True(faults.Count == 0, $"{file}:\n" + string.Join("\n", faults));
    }

    [Fact]
    public void The_checks_catch_what_they_are_for()
    {
        // The checks themselves, on made-up text: each kind of fault is found, and the right forms pass.
        string source = "namespace X;\npublic static class GemmF32\n{\n    public static void Multiply(int a) { }\n    public int Count { get; }\n}\n";
        Assert.True(DeclaresType(source, "GemmF32"));
        Assert.False(DeclaresType(source, "GemmF64"));
        Assert.True(DeclaresMember(source, "Multiply"));
        Assert.True(DeclaresMember(source, "Count"));
        Assert.False(DeclaresMember(source, "MultiplyPacked"));
        Assert.Equal(["a-b", "4-the-integer-gemm-and-the-saturation-hazard", "x-y", "a-b-1"],
            Slugs("# A B\n## 4. The integer GEMM, and the saturation hazard\n### `x`-y\n## A b\n```\n# not a heading\n```\n"));
        Link[] links = Links("see [`GemmF32.Multiply`](../src/GemmF32.cs#L3) and [b](https://x.org)\n```\n[c](d.md)\n```\n").ToArray();
        Assert.Equal(2, links.Length);
        Assert.Equal("`GemmF32.Multiply`", links[0].Text);
        Match name = CodeName().Match(links[0].Text);
        Assert.Equal(("GemmF32", "Multiply"), (name.Groups["type"].Value, name.Groups["member"].Value));
        Assert.True(IsExternal(links[1].Target));
    }

    // ---- reading Markdown ----

    private readonly record struct Link(string Text, string Target, int Line);

    /// <summary>The Markdown files of the repository (README, docs, bench, package readmes), as paths from its root.</summary>
    private static IEnumerable<string> RepositoryMarkdown()
    {
        string root = RepositoryPaths.Root;
        var files = new List<string> { "README.md" };
        foreach (string folder in new[] { "docs", "bench", "src", "tests" })
        {
            files.AddRange(Directory.EnumerateFiles(Path.Combine(root, folder), "*.md", SearchOption.AllDirectories)
                .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                            && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                            && !f.Contains("BenchmarkDotNet.Artifacts", StringComparison.Ordinal))
                .Select(f => Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/')));
        }
        return files.Order(StringComparer.Ordinal);
    }

    /// <summary>Inline links and images outside fenced code blocks.</summary>
    private static IEnumerable<Link> Links(string markdown)
    {
        string[] lines = markdown.Split('\n');
        bool fenced = false;
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
                continue;
            }
            if (fenced)
            {
                continue;
            }
            foreach (Match m in InlineLink().Matches(lines[i]))
            {
                yield return new Link(m.Groups["text"].Value, m.Groups["target"].Value, i + 1);
            }
        }
    }

    private static bool IsExternal(string target) =>
        target.StartsWith("http://", StringComparison.Ordinal) || target.StartsWith("https://", StringComparison.Ordinal)
        || target.StartsWith("mailto:", StringComparison.Ordinal);

    private static (string Path, string? Anchor) SplitAnchor(string target)
    {
        int hash = target.IndexOf('#', StringComparison.Ordinal);
        return hash < 0 ? (target, null) : (target[..hash], target[(hash + 1)..]);
    }

    private static HashSet<string> HeadingAnchors(string markdownPath) => [.. Slugs(File.ReadAllText(markdownPath))];

    /// <summary>GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, "-1", "-2" for repeats.</summary>
    private static List<string> Slugs(string markdown)
    {
        var slugs = new List<string>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        bool fenced = false;
        foreach (string line in markdown.Split('\n'))
        {
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
                continue;
            }
            if (fenced || Heading().Match(line) is not { Success: true } heading)
            {
                continue;
            }
            string slug = new string(heading.Groups["title"].Value.Trim().ToLowerInvariant()
                .Where(c => char.IsLetterOrDigit(c) || c is ' ' or '-' or '_').ToArray()).Replace(' ', '-');
            int count = seen.GetValueOrDefault(slug);
            seen[slug] = count + 1;
            slugs.Add(count == 0 ? slug : $"{slug}-{count}");
        }
        return slugs;
    }

    private static int LineOf(string text, int index) => text.AsSpan(0, index).Count('\n') + 1;

    // ---- reading C# ----

    private static bool DeclaresType(string source, string type) =>
        Regex.IsMatch(source, $@"\b(class|struct|record|interface|enum)\s+{Regex.Escape(type)}\b");

    /// <summary>
    /// Whether the source declares a method, property, field, constant, enum member or nested type of that name: the
    /// name followed by a parameter list, generic arguments, a property body, an initialiser or an enum separator, after
    /// a type or modifier (a call such as <c>x.Name(</c> has a dot before it and does not count).
    /// </summary>
    private static bool DeclaresMember(string source, string member) =>
        DeclaresType(source, member)
        || Regex.IsMatch(source, $@"(?<![.\w]){Regex.Escape(member)}\s*(\(|<|\{{|=>|=|;|,)", RegexOptions.Multiline)
           && Regex.IsMatch(source, $@"[\w>\]\)?]\s+{Regex.Escape(member)}\s*(\(|<|\{{|=>|=|;)|^\s*{Regex.Escape(member)}\s*(=|,|$)", RegexOptions.Multiline);

    /// <summary>Every type declared under src/ (file text by type name; a partial type's files are concatenated).</summary>
    private static readonly Lazy<IReadOnlyDictionary<string, string>> LibrarySourcesByType = new(() =>
    {
        var byType = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(Path.Combine(RepositoryPaths.Root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                || file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            {
                continue;
            }
            string source = File.ReadAllText(file);
            foreach (Match m in TypeDeclaration().Matches(source))
            {
                string name = m.Groups["name"].Value;
                byType[name] = byType.TryGetValue(name, out string? earlier) ? earlier + "\n" + source : source;
            }
        }
        return byType;
    });

    [GeneratedRegex(@"\[(?<text>[^\]\n]*)\]\((?<target>[^)\s]+)\)")]
    private static partial Regex InlineLink();

    [GeneratedRegex(@"^#{1,6}\s+(?<title>.+?)\s*#*\s*$")]
    private static partial Regex Heading();

    /// <summary>A link label naming code: `Type`, `Type.Member` or `Type.Member(...)`.</summary>
    [GeneratedRegex(@"^`(?<type>[A-Z]\w*)(\.(?<member>[A-Z]\w*))?(\(.*\))?`$")]
    private static partial Regex CodeName();

    [GeneratedRegex(@"`(?<code>[^`\n]+)`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"(?<![.\w])(?<type>[A-Z]\w*)\.(?<member>[A-Z]\w*)(?![.\w])")]
    private static partial Regex MemberMention();

    [GeneratedRegex(@"\b(class|struct|record|interface|enum)\s+(?<name>[A-Z]\w*)")]
    private static partial Regex TypeDeclaration();
}
