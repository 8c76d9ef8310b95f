using System.CommandLine;
using System.Text.RegularExpressions;
using Engine.Cli;

namespace Engine.Tests.Docs;

/// <summary>
/// The command table of README.md and the sections of docs/command-line.md against the commands the program really
/// defines (<see cref="EngineCommandLine"/>): every command has a row and a section, every option the docs name exists,
/// and every option a command has is documented in its section.
/// </summary>
public sealed partial class CommandLineDocsTests
{
    private static readonly Command Root = EngineCommandLine.Create();

    public static TheoryData<string> Commands()
    {
        var data = new TheoryData<string>();
        foreach (Command command in Root.Subcommands)
        {
            data.Add(command.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void The_readme_table_has_a_row_for_the_command_and_names_only_its_options(string name)
    {
        string[] cells = ReadmeRow(name);
        Command command = Root.Subcommands.Single(c => c.Name == name);
        string[] unknown = OptionNames(cells[2]).Where(o => !HasOption(command, o)).ToArray();
        Assert.True(unknown.Length == 0, $"README.md's row for '{name}' names options the command does not have: {string.Join(", ", unknown)}");
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void The_command_line_doc_has_a_section_naming_every_option(string name)
    {
        string section = CommandLineSection(name);
        Command command = Root.Subcommands.Single(c => c.Name == name);
        string[] documented = OptionNames(WithoutOtherCommands(section, name)).ToArray();
        string[] missing = command.Options.Where(o => o is not System.CommandLine.Help.HelpOption)
            .Select(o => o.Name).Where(o => !documented.Contains(o)).ToArray();
        string[] unknown = documented.Where(o => !HasOption(command, o)).Distinct().ToArray();
        Assert.True(missing.Length == 0, $"docs/command-line.md, section '{name}', does not document: {string.Join(", ", missing)}");
        Assert.True(unknown.Length == 0, $"docs/command-line.md, section '{name}', names options '{name}' does not have: {string.Join(", ", unknown)}");
    }

    [Fact]
    public void The_readme_lists_no_command_that_does_not_exist()
    {
        string[] listed = ReadmeRows().Select(cells => cells[0].Trim('`', ' ')).ToArray();
        Assert.NotEmpty(listed);
        Assert.All(listed, name => Assert.Contains(Root.Subcommands, c => c.Name == name));
    }

    private static bool HasOption(Command command, string option) =>
        command.Options.Any(o => o.Name == option || o.Aliases.Contains(option)) || option is "--help" or "-h";

    /// <summary>The options a text names, leaving out those of a <c>dotnet run ... --</c> prefix (they belong to dotnet).</summary>
    private static IEnumerable<string> OptionNames(string text) =>
        OptionToken().Matches(DotnetPrefix().Replace(text, " ")).Select(m => m.Value).Distinct();

    /// <summary>The rows of the README's command table (the first table under "## The command line"), as cells.</summary>
    private static IEnumerable<string[]> ReadmeRows()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "README.md")).ReplaceLineEndings("\n");
        int start = readme.IndexOf("\n## The command line", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no '## The command line' section");
        int end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        bool inTable = false;
        foreach (string line in readme[start..(end < 0 ? readme.Length : end)].Split('\n'))
        {
            if (inTable && !line.StartsWith('|'))
            {
                yield break;   // the first table of the section is the command table
            }
            inTable |= line.StartsWith('|');
            if (line.StartsWith("| `", StringComparison.Ordinal))
            {
                yield return line.Trim('|').Split(" | ").Select(c => c.Trim()).ToArray();
            }
        }
    }

    /// <summary>
    /// The text without inline code and lines that show another command (`prune --structured` in the demo's section
    /// names prune's option, not the demo's).
    /// </summary>
    private static string WithoutOtherCommands(string text, string name)
    {
        string others = string.Join('|', Root.Subcommands.Select(c => c.Name).Where(n => n != name).Select(Regex.Escape));
        string code = Regex.Replace(text, $@"`(engine |dotnet [^`]*? -- )?({others})\b[^`]*`", "``");
        return Regex.Replace(code, $@"^\s*(engine |dotnet .*? -- )({others})\b.*$", "", RegexOptions.Multiline);
    }

    private static string[] ReadmeRow(string name)
    {
        string[]? row = ReadmeRows().FirstOrDefault(cells => cells[0] == $"`{name}`");
        Assert.True(row is not null, $"README.md's command table has no row for '{name}'");
        Assert.True(row.Length >= 3, $"README.md's row for '{name}' should have command, what and options cells");
        return row;
    }

    private static string CommandLineSection(string name)
    {
        string doc = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "docs", "command-line.md")).ReplaceLineEndings("\n");
        int start = doc.IndexOf($"\n## {name}\n", StringComparison.Ordinal);
        Assert.True(start >= 0, $"docs/command-line.md has no '## {name}' section");
        int end = doc.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return doc[start..(end < 0 ? doc.Length : end)];
    }

    [GeneratedRegex(@"dotnet \w+[^\n`]*?( -- |(?=`)|$)", RegexOptions.Multiline)]
    private static partial Regex DotnetPrefix();

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z0-9-]*")]
    private static partial Regex OptionToken();
}
