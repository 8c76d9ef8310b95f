namespace Engine.Tests;

/// <summary>Where the repository's own files are, for tests that read sources, docs or checked-in baselines.</summary>
internal static class RepositoryPaths
{
    /// <summary>
    /// The repository root: the first folder above the test's output folder (tests/Engine.Tests/bin/&lt;config&gt;/net10.0/)
    /// that holds Engine.sln.
    /// </summary>
    public static string Root
    {
        get
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "Engine.sln")))
                {
                    return directory.FullName;
                }
            }
            throw new DirectoryNotFoundException($"No folder above {AppContext.BaseDirectory} holds Engine.sln; run the tests from the repository.");
        }
    }
}
