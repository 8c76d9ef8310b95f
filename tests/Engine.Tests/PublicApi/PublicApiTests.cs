using System.Reflection;
using PublicApiGenerator;

namespace Engine.Tests.PublicApi;

/// <summary>
/// The public API of the <c>Engine</c> assembly, rendered as C# declarations by PublicApiGenerator, must equal the
/// checked-in baseline <c>tests/Engine.Tests/PublicApi/Engine.approved.txt</c>, so that every change to the public
/// surface shows up as a diff in review.
/// </summary>
/// <remarks>
/// To accept an intended change (or regenerate the baseline after a redesign), run from the repository root
/// <code>ENGINE_ACCEPT_API=1 dotnet test -c Release --project tests/Engine.Tests --filter-class Engine.Tests.PublicApi.PublicApiTests</code>
/// which rewrites the approved file from the current build; then review <c>git diff tests/Engine.Tests/PublicApi</c> and
/// commit it with the change. The file is found by walking up from the test binary to the repository, so this works
/// however the build maps source paths (CI builds map them to /_/).
/// </remarks>
public sealed class PublicApiTests
{
    private const string AcceptVariable = "ENGINE_ACCEPT_API";
    private const string ApprovedRelativePath = "tests/Engine.Tests/PublicApi/Engine.approved.txt";

    [Fact]
    public void PublicApiMatchesApprovedFile()
    {
        string actual = Render(Assembly.Load("Engine"));
        string approvedPath = FindApprovedFile();
        string approved = File.Exists(approvedPath) ? Normalize(File.ReadAllText(approvedPath)) : "";

        if (actual == approved)
        {
            return;
        }
        if (Environment.GetEnvironmentVariable(AcceptVariable) == "1")
        {
            File.WriteAllText(approvedPath, actual);
            return;
        }
        Assert.Fail(
            $"The public API of the Engine assembly differs from {ApprovedRelativePath}.\n" +
            $"{FirstDifference(approved, actual)}\n" +
            $"If the change is intended, accept it with\n" +
            $"  {AcceptVariable}=1 dotnet test -c Release --project tests/Engine.Tests --filter-class {typeof(PublicApiTests).FullName}\n" +
            "then review 'git diff tests/Engine.Tests/PublicApi' and commit the approved file with the change.");
    }

    /// <summary>The assembly's public surface, without assembly attributes (InternalsVisibleTo, target framework).</summary>
    internal static string Render(Assembly assembly) =>
        Normalize(assembly.GeneratePublicApi(new ApiGeneratorOptions { IncludeAssemblyAttributes = false }));

    private static string Normalize(string text) => text.ReplaceLineEndings("\n").TrimEnd('\n') + "\n";

    private static string FirstDifference(string approved, string actual)
    {
        string[] a = approved.Split('\n'), b = actual.Split('\n');
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i])
        {
            i++;
        }
        string Line(string[] lines) => i < lines.Length ? lines[i] : "(end of file)";
        return $"First difference at line {i + 1}:\n  approved: {Line(a)}\n  actual:   {Line(b)}\n" +
            $"({a.Length} approved lines, {b.Length} actual lines)";
    }

    // The approved file lives in the source tree, not beside the binary.
    private static string FindApprovedFile() => Path.Combine(RepositoryPaths.Root, ApprovedRelativePath);
}
