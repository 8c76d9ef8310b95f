using System.CommandLine;
using System.CommandLine.Parsing;

namespace Engine.Cli;

/// <summary>Options shared by several commands, with validation that turns bad values into usage errors (exit 2).</summary>
internal static class CommonOptions
{
    /// <summary>The bundled MNIST subset, copied beside the executable.</summary>
    public static string DefaultDataDirectory => Path.Combine(AppContext.BaseDirectory, "data", "mnist");

    public static Option<bool> Json() => new("--json") { Description = "Print one JSON object as the last line of standard output." };

    public static Option<string> Data() => new("--data")
    {
        Description = "Directory with MNIST IDX files (train-*/t10k-*, raw or .gz). Default: the bundled 7,000/1,000 subset.",
        DefaultValueFactory = _ => DefaultDataDirectory,
    };

    public static Option<int> Threads() => Positive(new Option<int>("--threads")
    {
        Description = "Threads the kernels may use.",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    });

    public static Option<int> Positive(Option<int> option)
    {
        option.Validators.Add(result =>
        {
            if (TryGetValue(result, out int v) && v < 1)
            {
                result.AddError($"{option.Name} must be a whole number of at least 1.");
            }
        });
        return option;
    }

    public static Option<float> InRange(Option<float> option, float min, float max, bool minExclusive = false)
    {
        option.Validators.Add(result =>
        {
            if (!TryGetValue(result, out float v))
            {
                return;
            }
            bool below = minExclusive ? !(v > min) : !(v >= min);
            if (below || !(v <= max) || float.IsNaN(v))
            {
                string low = minExclusive ? $"greater than {min}" : $"at least {min}";
                result.AddError($"{option.Name} must be {low} and at most {max}, got {v}.");
            }
        });
        return option;
    }

    /// <summary>
    /// The option's converted value, or false when the text did not convert: the parser has already reported that
    /// error, and asking for the value would throw.
    /// </summary>
    public static bool TryGetValue<T>(OptionResult result, out T value)
    {
        try
        {
            value = result.GetValueOrDefault<T>()!;
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }

    /// <summary>An output path whose directory must exist; checked before any work starts, so a long run cannot fail at the end.</summary>
    public static void RequireWritableTarget(string path, string optionName)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is null || !Directory.Exists(directory))
        {
            throw new UsageException($"{optionName}: directory '{directory}' does not exist.");
        }
        if (Directory.Exists(path))
        {
            throw new UsageException($"{optionName}: '{path}' is a directory, expected a file path.");
        }
    }
}
