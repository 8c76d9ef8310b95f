using System.Buffers.Binary;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Engine.Inference;

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

    /// <summary>The most threads --threads takes: 256, or four per logical processor on a larger machine.</summary>
    public static int MaxThreads => Math.Max(256, 4 * Environment.ProcessorCount);

    public static Option<int> Threads() => Between(new Option<int>("--threads")
    {
        Description = $"Threads the kernels may use (1 to {MaxThreads}).",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    }, 1, MaxThreads);

    /// <summary>An unsigned 64-bit seed; text that is not one (such as -5) is refused with a message, not a type name.</summary>
    public static Option<ulong> Seed(string description, ulong defaultValue) => new("--seed")
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            string text = result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Join(' ', result.Tokens.Select(t => t.Value));
            if (ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed))
            {
                return seed;
            }
            result.AddError($"--seed must be a whole number from 0 to {ulong.MaxValue}, got '{text}'.");
            return 0;
        },
    };

    /// <summary>A pruning criterion by its command-line name; an unknown name is a usage error naming <paramref name="option"/> (exit 2).</summary>
    public static Engine.Pruning.PruningCriterion ParseCriterion(string text, string option)
    {
        try
        {
            return Engine.Pruning.NeuronImportance.Parse(text);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{option}: {e.Message}");
        }
    }

    /// <summary>An integer option that must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static Option<int> Between(Option<int> option, int min, int max)
    {
        option.Validators.Add(result =>
        {
            if (TryGetValue(result, out int v) && (v < min || v > max))
            {
                result.AddError($"{option.Name} must be a whole number from {min} to {max}, got {v}.");
            }
        });
        return option;
    }

    public static Option<int?> Between(Option<int?> option, int min, int max)
    {
        option.Validators.Add(result =>
        {
            if (TryGetValue(result, out int? v) && v is int value && (value < min || value > max))
            {
                result.AddError($"{option.Name} must be a whole number from {min} to {max}, got {value}.");
            }
        });
        return option;
    }

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

    /// <summary>
    /// A data directory (--data) that exists and is a directory: a file given instead is named as such (exit 1, like a
    /// missing directory), rather than reported as a directory that does not exist.
    /// </summary>
    public static void RequireDataDirectory(string path)
    {
        if (File.Exists(path))
        {
            throw new IOException($"--data: '{path}' is a file, not a directory; give the directory that holds the MNIST IDX files.");
        }
    }

    /// <summary>
    /// A model file (--model): a directory, a missing file or a file that is not a model is refused with a message naming
    /// it (exit 1) before anything else is read; the kind of file is told by <see cref="Predictor.DetectFormat(Stream, string)"/>.
    /// </summary>
    public static ModelFormat RequireModelFile(string path, string optionName)
    {
        RequireFile(path, optionName);
        using var stream = File.OpenRead(path);
        return Predictor.DetectFormat(stream, Path.GetFileName(path));
    }

    /// <summary>
    /// A gradient-statistics file (--stats): an existing file that starts as a safetensors file does (an 8-byte header
    /// length, then a JSON object: the test <see cref="Predictor.DetectFormat(Stream, string)"/> makes), else exit 1.
    /// </summary>
    public static void RequireStatisticsFile(string path, string optionName)
    {
        RequireFile(path, optionName);
        Span<byte> prefix = stackalloc byte[9];
        int read;
        using (var stream = File.OpenRead(path))
        {
            read = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        }
        if (read < prefix.Length || prefix[8] != (byte)'{' || BinaryPrimitives.ReadUInt64LittleEndian(prefix) < 2)
        {
            throw new InvalidDataException($"{optionName}: {Path.GetFileName(path)} is not a safetensors file (an 8-byte header length, then a JSON header).");
        }
    }

    private static void RequireFile(string path, string optionName)
    {
        if (Directory.Exists(path))
        {
            throw new IOException($"{optionName}: '{path}' is a directory, not a file.");
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{optionName}: file '{path}' not found.", path);
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
