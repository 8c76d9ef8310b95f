namespace Engine.Cli;

/// <summary>The exit codes of the contract: 0 success, 1 a failure such as a bad file, 2 bad usage.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Usage = 2;

    /// <summary>Stopped by Ctrl-C (SIGINT): 128 + 2, as a shell reports a process ended by that signal.</summary>
    public const int Interrupted = 130;
}

/// <summary>A bad command-line value found after parsing (for example a file that must exist); exits with code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Maps exceptions to a one-line message on standard error and an exit code: user errors never show a stack trace.</summary>
internal static class CliErrors
{
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (UsageException e)
        {
            Report(e.Message);
            return ExitCodes.Usage;
        }
        catch (OperationCanceledException)
        {
            Report("interrupted; nothing was written.");
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException
                                      or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            // FileNotFoundException and DirectoryNotFoundException are IOExceptions; format errors are InvalidDataException.
            Report(e.Message);
            return ExitCodes.Failure;
        }
    }

    /// <summary>
    /// A parser message in the user's terms: "Cannot parse argument 'x' for option '--n' as expected type 'System.Int32'"
    /// becomes "--n: 'x' is not a whole number." (no .NET type names); other messages pass unchanged.
    /// </summary>
    public static string Plain(string message)
    {
        var match = System.Text.RegularExpressions.Regex.Match(message, "^Cannot parse argument '(.*)' for option '(.*)' as expected type '(.*)'\\.?$");
        if (!match.Success)
        {
            return message;
        }
        string kind = match.Groups[3].Value switch
        {
            "System.Int32" or "System.Int64" or "System.UInt64" or "System.Nullable`1[System.Int32]" => "a whole number",
            _ => "a number",
        };
        return $"{match.Groups[2].Value}: '{match.Groups[1].Value}' is not {kind}.";
    }

    public static void Report(string message) => Console.Error.WriteLine($"engine: error: {message}");
}
